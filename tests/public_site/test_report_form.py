"""The web report form through the app: a report opens a case (intake web) whose routing a real
worker runs; fields are checked and kept on an error; photos are checked by their bytes and
stored; a phone is proved by a texted code (wrong, expired, too many tries); codes and reports
are throttled; CSRF is required."""

from __future__ import annotations

import hashlib
import io
import re
import secrets
import struct
import zlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from cases import verification
from cases.models import Attachment, Case, CaseEvent, Intake, PhoneVerification, utcnow
from hotline.db import Database
from hotline.wiring import Wiring
from tests.conftest import wait_until
from tests.public_site.test_public import new_address
from tests.support.flaky_proxy import FlakyProxy
from tests.support.staff import Account, Console

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CASE_NUMBER = re.compile(r'id="case-number">(\d+)<')


def tiny_png() -> bytes:
    """A real one-pixel PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def mobile() -> str:
    """A mainland mobile number nobody else's test texts."""
    return "139" + "".join(str(secrets.randbelow(10)) for _ in range(8))


class Visitor:
    """One browser on the report form: its cookie, its address, its CSRF token."""

    def __init__(self, app: Flask, *, lang: str = "en-US") -> None:
        self.client: FlaskClient = app.test_client()
        self.address = new_address()
        self.lang = lang

    def get(self, path: str = "/report") -> Any:
        return self.client.get(
            f"{path}?lang={self.lang}", environ_overrides={"REMOTE_ADDR": self.address}
        )

    def token(self) -> str:
        found = TOKEN.search(self.get().get_data(as_text=True))
        assert found, "the report form carries a CSRF token"
        return found.group(1)

    def post(self, data: dict[str, Any], *, token: bool = True, **kwargs: Any) -> Any:
        form = {"csrf_token": self.token(), **data} if token else data
        return self.client.post(
            f"/report?lang={self.lang}",
            data=form,
            content_type="multipart/form-data",
            environ_overrides={"REMOTE_ADDR": self.address},
            **kwargs,
        )

    def send_code(self, phone: str, *, headers: dict[str, str] | None = None, **data: Any) -> Any:
        return self.post({"phone": phone, "send_code": "1", **data}, headers=headers or {})

    def report(self, **data: Any) -> Any:
        return self.post({"submit": "1", **data})

    def sent_number(self) -> str:
        found = CASE_NUMBER.search(self.get("/report/sent").get_data(as_text=True))
        assert found, "the sent page shows the case number"
        return found.group(1)


@pytest.fixture
def visitor(app: Flask) -> Visitor:
    return Visitor(app)


def case_by_number(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        session.expunge(case)
        return case


def texted_code(twilio_api: FlakyProxy, number: str) -> str:
    """The code in the last text to `number`, as it reached Twilio (Prism)."""
    texts = wait_until(lambda: twilio_api.messages_to(number), timeout=10, what="the code text")
    found = re.search(r"\b(\d{6})\b", texts[-1]["form"]["Body"])
    assert found, texts[-1]["form"]["Body"]
    return found.group(1)


def field_error(html: str, field: str) -> str:
    found = re.search(rf'id="{field}-error">([^<]*)<', html)
    return found.group(1) if found else ""


# --- the page -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "title", "place"),
    [
        ("zh-CN", '<html lang="zh-CN">', ">鲁城街道<"),
        ("en-US", "Report a problem", ">鲁城街道 (Lucheng)<"),
        ("ko-KR", '<html lang="ko-KR">', ">鲁城街道 (Lucheng)<"),
    ],
)
def test_the_form_is_offered_in_three_languages_with_the_gazetteers_places(
    app: Flask, lang: str, title: str, place: str
) -> None:
    answer = Visitor(app, lang=lang).get()
    html = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert title in html and place in html
    assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert 'enctype="multipart/form-data"' in html and 'name="csrf_token"' in html


# --- reports ------------------------------------------------------------------------------


def test_an_anonymous_report_opens_a_web_case_that_the_worker_routes(
    app: Flask, database: Database, celery_worker: Path
) -> None:
    visitor = Visitor(app, lang="zh-CN")
    answer = visitor.report(
        description="春秋路的路灯坏了好几天了，晚上一片漆黑",
        place="lucheng",
        address="春秋路与鼓楼大街路口",
    )
    assert answer.status_code == 303 and "/report/sent" in answer.headers["Location"]
    number = visitor.sent_number()
    page = visitor.get("/report/sent").get_data(as_text=True)
    assert 'id="follow-anonymous"' in page

    case = case_by_number(database, number)
    assert case.intake == Intake.WEB and case.locale == "zh-CN"
    assert case.caller_number is None
    assert case.address == "鲁城街道 春秋路与鼓楼大街路口"
    assert case.report_text is not None and "鲁城街道" in case.report_text

    def routed() -> Case | None:
        row = case_by_number(database, number)
        return row if row.routed_at is not None else None

    routed_case = wait_until(routed, timeout=60, what="the worker to route the web case")
    assert routed_case.category_code == "streetlight"
    assert routed_case.place_code == "lucheng"


def test_the_same_form_posted_twice_opens_one_case(visitor: Visitor, database: Database) -> None:
    """A double click, or a reload that posts again: the form's one-time token finds the case
    the first post opened, and the visitor is shown its number."""
    page = visitor.get().get_data(as_text=True)
    found = re.search(r'name="submission" type="hidden" value="([^"]+)"', page)
    assert found, "the form carries a one-time submission token"
    data = {"description": "陋巷街的井盖丢了，很危险", "place": "lucheng", "submission": found[1]}
    first = visitor.report(**data)
    second = visitor.report(**data)
    assert first.status_code == second.status_code == 303
    number = visitor.sent_number()
    with database.session() as session:
        opened = session.scalars(
            select(Case)
            .join(CaseEvent)
            .where(
                CaseEvent.kind == "opened",
                CaseEvent.data["submission"].as_string() == found[1],
            )
        ).all()
    assert [case.number for case in opened] == [number]
    # A fresh form is a fresh report.
    assert visitor.report(description="陋巷街的井盖又丢了一个", place="lucheng").status_code == 303
    assert visitor.sent_number() != number


def test_a_missing_description_is_said_next_to_the_field_and_nothing_typed_is_lost(
    visitor: Visitor, database: Database
) -> None:
    answer = visitor.report(description="  ", place="nishan", address="尼山书院门口")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert field_error(html, "description") == "Describe the problem."
    assert 'value="尼山书院门口"' in html
    assert '<option value="nishan" selected>' in html
    with database.session() as session:
        assert (
            session.scalars(select(Case).where(Case.address == "尼山镇 尼山书院门口")).first()
            is None
        )


def test_a_place_not_in_the_gazetteer_is_refused(visitor: Visitor) -> None:
    answer = visitor.report(description="路面坑洼", place="atlantis")
    assert answer.status_code == 400
    assert field_error(answer.get_data(as_text=True), "place")


def test_a_report_without_a_csrf_token_is_refused_and_opens_nothing(
    visitor: Visitor, database: Database
) -> None:
    text = f"没有令牌的反映 {secrets.token_hex(4)}"
    answer = visitor.post({"submit": "1", "description": text}, token=False)
    assert answer.status_code == 400
    assert "expired or did not come from this site" in answer.get_data(as_text=True)
    with database.session() as session:
        assert session.scalars(select(Case).where(Case.report_text == text)).first() is None


def test_reports_from_one_address_are_throttled_with_the_form_kept(visitor: Visitor) -> None:
    for count in range(5):
        assert visitor.report(description=f"第{count}个问题").status_code == 303
    answer = visitor.report(description="第六个问题", address="书院街道")
    html = answer.get_data(as_text=True)
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    assert 'id="report-throttled"' in html and "第六个问题" in html
    # Another address is not slowed.
    other = Visitor(visitor.client.application)
    assert other.report(description="另一个地方的问题").status_code == 303


# --- photos -------------------------------------------------------------------------------


def test_a_photo_is_checked_by_its_bytes_and_stored_with_the_case(
    visitor: Visitor, database: Database, wiring: Wiring
) -> None:
    fake = visitor.report(description="垃圾没人清", photo=(_file(b"not a picture"), "dump.jpg"))
    assert fake.status_code == 400
    assert field_error(fake.get_data(as_text=True), "photo") == (
        "Only JPEG, PNG or WebP photos can be sent."
    )

    huge = b"\xff\xd8\xff" + bytes(wiring.settings.photo_max_bytes)
    # Encoded in memory: the test client would spool it to a temporary file it never closes.
    body, _length, boundary = stream_encode_multipart(
        {
            "csrf_token": visitor.token(),
            "submit": "1",
            "description": "垃圾没人清",
            "photo": FileStorage(io.BytesIO(huge), filename="big.jpg"),
        },
        use_tempfile=False,
    )
    too_big = visitor.client.post(
        "/report?lang=en-US",
        data=body.read(),
        content_type=f"multipart/form-data; boundary={boundary}",
        environ_overrides={"REMOTE_ADDR": visitor.address},
    )
    assert too_big.status_code == 400
    assert "at most 5 MB" in field_error(too_big.get_data(as_text=True), "photo")

    png = tiny_png()
    # The name says JPEG; the bytes say PNG, and the bytes win.
    answer = visitor.report(description="垃圾没人清", photo=(_file(png), "photo.jpg"))
    assert answer.status_code == 303
    number = visitor.sent_number()
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        photo = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).one()
        assert (photo.kind, photo.content_type, photo.size) == ("photo", "image/png", len(png))
        assert photo.sha256 == hashlib.sha256(png).hexdigest()
        stored = wiring.settings.media_dir / photo.path
    assert stored.read_bytes() == png


def test_a_photo_chosen_before_an_error_is_kept_for_the_next_post(
    visitor: Visitor, database: Database, wiring: Wiring
) -> None:
    png = tiny_png()
    first = visitor.report(description="", photo=(_file(png), "pothole.png"))
    assert first.status_code == 400
    assert 'id="held-photo"' in first.get_data(as_text=True)
    assert visitor.report(description="路上有个大坑").status_code == 303
    number = visitor.sent_number()
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        photo = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).one()
        assert photo.sha256 == hashlib.sha256(png).hexdigest()
    pending = wiring.settings.media_dir / "pending"
    assert all(held.read_bytes() != png for held in pending.iterdir())


def _file(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


# --- the phone's code ---------------------------------------------------------------------


def test_a_number_proved_by_the_texted_code_is_kept_on_the_case(
    visitor: Visitor, database: Database, twilio_api: FlakyProxy
) -> None:
    phone = mobile()
    step_one = visitor.send_code(phone, description="小区停水两天了", place="wucun")
    html = step_one.get_data(as_text=True)
    assert step_one.status_code == 200
    assert "We have texted a code to" in html and 'id="code-field" hidden' not in html
    # Step one keeps the other fields and does not yet complain about them.
    assert "小区停水两天了" in html and '<option value="wucun" selected>' in html
    assert 'id="report-errors"' not in html
    e164 = f"+86{phone}"
    code = texted_code(twilio_api, e164)
    with database.session() as session:
        row = session.scalars(
            select(PhoneVerification).where(PhoneVerification.number == e164)
        ).one()
        assert code not in row.code_hash
        assert row.expires_at - row.created_at == timedelta(minutes=10)

    answer = visitor.report(description="小区停水两天了", place="wucun", phone=phone, code=code)
    assert answer.status_code == 303
    number = visitor.sent_number()
    assert case_by_number(database, number).caller_number == e164
    assert 'id="follow-with-phone"' in visitor.get("/report/sent").get_data(as_text=True)


def test_a_wrong_code_costs_a_try_and_the_sixth_is_refused_even_if_right(
    visitor: Visitor, twilio_api: FlakyProxy
) -> None:
    phone = mobile()
    visitor.send_code(phone)
    code = texted_code(twilio_api, f"+86{phone}")
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    first = visitor.report(description="噪音扰民", phone=phone, code=wrong)
    html = first.get_data(as_text=True)
    assert first.status_code == 400
    assert field_error(html, "code") == "This code is not right: 4 tries left."
    assert "噪音扰民" in html and f'value="{phone}"' in html
    for _ in range(4):
        last = visitor.report(description="噪音扰民", phone=phone, code=wrong)
    assert field_error(last.get_data(as_text=True), "code") == (
        "Too many wrong codes: ask for a new one."
    )
    refused = visitor.report(description="噪音扰民", phone=phone, code=code)
    assert refused.status_code == 400
    assert field_error(refused.get_data(as_text=True), "code") == (
        "Too many wrong codes: ask for a new one."
    )


def test_an_expired_code_is_refused(
    visitor: Visitor, database: Database, twilio_api: FlakyProxy
) -> None:
    phone = mobile()
    visitor.send_code(phone)
    code = texted_code(twilio_api, f"+86{phone}")
    with database.session() as session, session.begin():
        row = session.scalars(
            select(PhoneVerification).where(PhoneVerification.number == f"+86{phone}")
        ).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
    answer = visitor.report(description="路灯不亮", phone=phone, code=code)
    assert answer.status_code == 400
    assert field_error(answer.get_data(as_text=True), "code") == (
        "This code has expired: ask for a new one."
    )


def test_a_number_without_a_code_is_refused_and_a_bad_number_is_said(visitor: Visitor) -> None:
    no_code = visitor.report(description="路灯不亮", phone=mobile())
    assert no_code.status_code == 400
    assert "leave the mobile number empty" in field_error(no_code.get_data(as_text=True), "code")
    bad = visitor.send_code("12")
    assert bad.status_code == 400
    assert field_error(bad.get_data(as_text=True), "phone") == (
        "This is not a phone number we can text: please check it."
    )


def test_the_code_step_answers_the_pages_script_in_json(
    visitor: Visitor, twilio_api: FlakyProxy
) -> None:
    phone = mobile()
    answer = visitor.send_code(phone, headers={"Accept": "application/json"})
    assert answer.status_code == 200
    assert answer.get_json() == {
        "sent": True,
        "message": f"We have texted a code to {phone}. Type it below.",
    }
    assert texted_code(twilio_api, f"+86{phone}")


def test_codes_are_throttled_per_number_and_address_and_per_number(
    app: Flask, twilio_api: FlakyProxy
) -> None:
    visitor, phone = Visitor(app), mobile()
    for _ in range(verification.SEND_POLICY.free):
        assert visitor.send_code(phone).status_code == 200
    refused = visitor.send_code(phone)
    assert refused.status_code == 429
    assert "Too many codes were asked for" in field_error(refused.get_data(as_text=True), "phone")
    # From other addresses, the number still gets at most CODES_PER_NUMBER an hour.
    for _ in range(verification.CODES_PER_NUMBER - verification.SEND_POLICY.free):
        assert Visitor(app).send_code(phone).status_code == 200
    assert Visitor(app).send_code(phone).status_code == 429
    assert len(twilio_api.messages_to(f"+86{phone}")) == verification.CODES_PER_NUMBER


def test_a_code_is_hashed_with_a_salt_and_checked_in_constant_time() -> None:
    first, second = verification.hash_code("123456"), verification.hash_code("123456")
    assert first != second and "123456" not in first
    assert verification.code_matches("123456", first)
    assert not verification.code_matches("123457", first)
    assert re.fullmatch(r"\d{6}", verification.new_code())


def test_the_desk_sees_the_photo_through_a_signed_link_and_other_departments_do_not(
    visitor: Visitor, console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    png = tiny_png()
    assert (
        visitor.report(description="井盖丢了", photo=(_file(png), "cover.png")).status_code == 303
    )
    number = visitor.sent_number()
    desk = console()
    desk.sign_in(make_account("dispatcher"))
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    found = re.search(r'class="attachment-link" href="([^"]+)"', page)
    assert found
    link = found.group(1).replace("&amp;", "&")
    with desk.get(link) as photo:
        assert photo.status_code == 200 and photo.data == png
        assert photo.headers["Content-Type"] == "image/png"
    tampered = desk.get(re.sub(r"signature=\w+", "signature=" + "0" * 64, link))
    assert tampered.status_code == 403
    water = console()
    water.sign_in(make_account("department", "water"))
    assert water.get(link).status_code == 404
