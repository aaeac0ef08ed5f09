"""Staff and the public read Chinese: every console and public page, rendered in zh-CN for
each role with a case that has been through most of its life, shows no ASCII word but those
on the allow-list (brand names, file formats, the language switch's own "English").

A code (`urgent`, `caller_sms`, `assigned`), an English sentence left untranslated or a
developer's message on a page is exactly what this catches; numbers, case numbers, phone
numbers and times are not words and pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import pytest

from cases import lifecycle, outbox
from cases.access import SYSTEM, Actor
from cases.models import Role, utcnow
from delivery.services import record_delivered
from hotline.db import Database
from hotline.wiring import Wiring
from tests.support.factories import make_case
from tests.support.staff import Console, store_recording

# Words a Chinese page may show: names of things that have no Chinese name people use.
ALLOWED = {
    "English",  # the language switch names each language in itself
    "CSV",
    "Excel",
    "JSON",
    "Open311",
    "API",
    "Vosk",
    "Twilio",
    "SIP",
    "Webhook",
    "webhook",
    "GB",  # 国家标准 GB/T 33358, as Chinese text writes it
    "App",  # 爱山东App
    "app",
    "IC",  # IC卡
    "JPEG",
    "PNG",
    "WebP",
    "MB",
}
WORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*[A-Za-z0-9]")


# Elements that never hold text of their own (no end tag).
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
VOID |= {"track", "wbr"}


class VisibleText(HTMLParser):
    """The text a Chinese reader is given to read: not scripts, styles or attribute values
    (ids, URLs); not what the page marks as another language's (`lang="en"`: an article's
    English version, a caller's Korean words) or as a name not to translate (`translate="no"`:
    a username, a model's version); but labels and placeholders, which readers meet too."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._open: list[bool] = []  # per open element: whether its text is skipped

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        skipped = (
            tag in ("script", "style", "template")
            or values.get("translate") == "no"
            or not (values.get("lang") or "zh").startswith("zh")
        )
        if not skipped:
            for name in ("placeholder", "title", "aria-label", "alt"):
                if values.get(name):
                    self.parts.append(values[name] or "")
        if tag not in VOID:
            self._open.append(skipped or (bool(self._open) and self._open[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if not (self._open and self._open[-1]):
            self.parts.append(data)


def stray_words(html: str) -> set[str]:
    parser = VisibleText()
    parser.feed(html)
    text = " ".join(parser.parts)
    # A web address a page shows (the API's base URL for a department) is not prose.
    text = re.sub(r"https?://\S+|\S+@\S+\.\S+", " ", text)
    return {word for word in WORD.findall(text) if word not in ALLOWED}


@pytest.fixture
def lived_case(database: Database, wiring: Wiring) -> str:
    """A case with a recording, a transcript, a routing, deliveries, a note, a request for
    more time, a supervision notice, an assisting department and a call back asked for: most
    of what a case page can show."""
    with database.session() as session, session.begin():
        case = make_case(session, department_code="water", category_code="water_supply")
        store_recording(session, case=case, recordings_dir=wiring.settings.recordings_dir)
        holder = Actor(name="li.wei", role=Role.DEPARTMENT, department_code="water")
        lifecycle.accept(session, case=case, actor=holder)
        lifecycle.add_note(session, case=case, actor=holder, text="已联系来电人")
        assert case.deadline_at is not None
        lifecycle.request_extension(
            session,
            case=case,
            actor=holder,
            until=case.deadline_at.replace(year=case.deadline_at.year + 1),
            reason="需更换管道",
        )
        lifecycle.supervise(session, case=case, actor=SYSTEM, instruction="请尽快办理")
        lifecycle.add_assist(
            session, case=case, actor=SYSTEM, department_code="housing", task="排查楼内管道"
        )
        lifecycle.ask_for_call_back(session, case=case, actor=SYSTEM)
        texted = outbox.text_caller(session, case=case, message="accepted")
        assert texted is not None
        session.flush()
        # Sent through Twilio, with its receipt: the timeline's "delivered" entry shows too.
        record_delivered(session, delivery_row_id=texted.id, receipt="SM" + "a" * 32, now=utcnow())
        return case.number


def pages_for(role: str, number: str, article: str) -> list[str]:
    everyone = ["/console/", f"/console/cases/{number}", "/console/search"]
    everyone += [f"/console/search?number={number}", "/console/overdue", "/console/escalated"]
    everyone += ["/console/knowledge", f"/console/knowledge/{article}"]
    by_role = {
        "dispatcher": [
            "/console/triage",
            "/console/sent-back",
            "/console/extension-requests",
            "/console/unreported-calls",
            "/console/seats",
            "/console/service-level",
            "/console/knowledge/new",
        ],
        "admin": [
            "/console/admin/departments",
            "/console/admin/staff",
            "/console/admin/time-limits",
            "/console/admin/audit",
        ],
        "supervisor": ["/console/seats", "/console/service-level"],
        "department": [],
    }
    return everyone + by_role[role]


@pytest.mark.parametrize("role", ["dispatcher", "department", "supervisor", "admin"])
def test_no_console_page_shows_an_ascii_word_to_chinese_staff(
    role: str,
    lived_case: str,
    signed_in: Callable[..., Console],
    database: Database,
) -> None:
    browser = signed_in(role, "water" if role == "department" else None)
    # An article this reader may open: the first their list shows.
    listed = re.search(
        r'data-article="([^"]+)"', browser.get("/console/knowledge").get_data(as_text=True)
    )
    assert listed
    article = listed.group(1)
    found: dict[str, set[str]] = {}
    for url in pages_for(role, lived_case, article):
        response = browser.get(url)
        assert response.status_code == 200, url
        words = stray_words(response.get_data(as_text=True))
        if words:
            found[url] = words
    assert not found, "\n".join(f"{url}: {sorted(words)}" for url, words in found.items())


@pytest.mark.parametrize("url", ["/", "/lookup", "/disclosure", "/report", "/faq"])
def test_no_public_page_shows_an_ascii_word_in_chinese(
    url: str, console: Callable[[], Console]
) -> None:
    response = console().get(url, headers={"Accept-Language": "zh-CN"})
    assert response.status_code == 200, url
    assert not stray_words(response.get_data(as_text=True)), url


def test_the_scan_finds_a_code_left_on_a_page() -> None:
    # The control: the scan is not blind.
    page = (
        '<p id="x">状态：<b>assigned</b> 工单 123456782 +8613800000000 <a href="/a">CSV</a>'
        '<br><span translate="no">li.wei</span> <q lang="en">Street light</q> <i>urgent</i></p>'
    )
    assert stray_words(page) == {"assigned", "urgent"}
