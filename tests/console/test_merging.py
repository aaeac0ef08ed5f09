"""并单 in the console: the desk merges a repeat report into the case kept and splits a wrong
merge back off, through the case page's forms; both timelines say so; department staff are
refused; the pages show the merged report's link, the co-reporters (numbers masked as the
caller's number is) and a written report's own words, address and photos."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cases import merging
from cases.models import Attachment, Case, CaseStatus, Department, Intake
from cases.numbers import new_case_number
from cases.privacy import mask_number
from hotline.db import Database
from tests.support.calls import fresh_mobile_number
from tests.support.factories import case_named, make_case
from tests.support.staff import Console

# A department few other tests route to, so that its inbox's first page is this test's.
QUIET = "education"


@pytest.fixture
def emailed(database: Database) -> Iterator[str]:
    """The quiet department, pushed its cases by e-mail for the test, so that each push is an
    outbox row to count; its channels as they were afterwards."""
    with database.session() as session, session.begin():
        department = session.get_one(Department, QUIET)
        before, department.email = department.email, "education@example.org"
    yield QUIET
    with database.session() as session, session.begin():
        session.get_one(Department, QUIET).email = before


def english(browser: Console) -> Console:
    """The browser with the console in English, so the test reads the page's own words."""
    assert browser.post("/console/locale", {"locale": "en-US"}).status_code == 302
    return browser


def new_case(database: Database, **kwargs: Any) -> str:
    """A routed case (assigned to its department) with a caller number of its own."""
    kwargs.setdefault("caller_number", fresh_mobile_number())
    with database.session() as session, session.begin():
        return make_case(session, **kwargs).number


def merged_pair(database: Database, **kwargs: Any) -> tuple[str, str]:
    """Two cases about one problem, the first joined to the second as the routing job joins
    repeats; their numbers (report, case kept)."""
    report, kept = new_case(database, **kwargs), new_case(database, **kwargs)
    with database.session() as session, session.begin():
        merging.join(
            session,
            case=session.scalars(select(Case).where(Case.number == report)).one(),
            into=session.scalars(select(Case).where(Case.number == kept)).one(),
            actor="system",
            how="similar",
        )
    return report, kept


def events(case: Case, kind: str) -> list[dict[str, Any]]:
    return [event.data for event in case.events if event.kind == kind]


def pushes(case: Case, topic: str) -> list[str]:
    """The departments the case was pushed to on `topic` (not texts to its reporter)."""
    return [d.recipient for d in case.deliveries if d.recipient != "caller" and d.topic == topic]


def test_the_desk_merges_a_case_into_another_and_splits_it_back(
    database: Database, signed_in: Callable[..., Console], emailed: str
) -> None:
    desk = english(signed_in("dispatcher"))
    report, kept = (
        new_case(database, department_code=emailed, category_code="education") for _ in "ab"
    )
    assert pushes(case_named(database, report), "assigned") == [emailed]

    response = desk.post(
        f"/console/cases/{report}/merge", {"merge-into": f" {kept[:3]}-{kept[3:]}"}
    )

    assert response.status_code == 302, response.get_data(as_text=True)
    merged, into = case_named(database, report), case_named(database, kept)
    assert merged.status == CaseStatus.MERGED and merged.merged_into_id == into.id
    assert into.reporters == 2
    assert events(merged, "merged_into") == [{"into": kept, "how": "desk"}]
    assert events(into, "reporter_joined") == [{"reports": [report], "reporters": 2, "how": "desk"}]
    # Its department had it: it is told the case lives on in the other.
    assert pushes(merged, "merged") == [emailed]
    assert pushes(into, "assigned") == [emailed]  # and the case kept is not pushed again
    page = desk.get(f"/console/cases/{report}").get_data(as_text=True)
    assert f'href="/console/cases/{kept}" id="merged-into-link">Merged into case {kept}<' in page
    assert 'id="case-status">Merged<' in page
    assert 'id="split-form"' in page and 'id="merge-form"' not in page
    # The timeline names the case kept, as a link.
    assert re.search(
        rf'<dt>Merged into</dt><dd><a class="case-link" href="/console/cases/{kept}"', page
    )
    kept_page = desk.get(f"/console/cases/{kept}").get_data(as_text=True)
    assert 'id="case-reporters">2 reporters<' in kept_page
    assert f'id="co-reporter-{report}"' in kept_page

    response = desk.post(f"/console/cases/{report}/split", {})

    assert response.status_code == 302, response.get_data(as_text=True)
    split, into = case_named(database, report), case_named(database, kept)
    assert split.merged_into_id is None and split.status == CaseStatus.ASSIGNED
    assert into.reporters == 1
    assert events(split, "split_from") == [{"case_number": kept}]
    assert events(into, "reporter_split") == [{"report": report, "reporters": 1}]
    # Its own department gets it again at once.
    assert pushes(split, "assigned-after-split") == [emailed]
    page = desk.get(f"/console/cases/{report}").get_data(as_text=True)
    assert 'id="merged-into"' not in page and 'id="merge-form"' in page
    assert f'id="co-reporter-{report}"' not in desk.get(f"/console/cases/{kept}").get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("itself", "A case cannot be merged into itself"),
        ("unknown", "No case has that number"),
        ("resolved", "A case can only be merged into one still being worked on"),
        ("123456789", "That is not a case number: check its nine digits."),
    ],
)
def test_a_merge_the_domain_refuses_is_said_on_the_page_and_changes_nothing(
    database: Database, signed_in: Callable[..., Console], typed: str, message: str
) -> None:
    desk = english(signed_in("dispatcher"))
    report = new_case(database)
    if typed == "itself":
        typed = report
    elif typed == "unknown":
        typed = unused_case_number(database)
    elif typed == "resolved":
        typed = new_case(database)
        with database.session() as session, session.begin():
            case = session.scalars(select(Case).where(Case.number == typed)).one()
            case.status = CaseStatus.CLOSED
    before = len(case_named(database, report).events)

    response = desk.post(f"/console/cases/{report}/merge", {"merge-into": typed})

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    after = case_named(database, report)
    assert after.status == CaseStatus.ASSIGNED and after.merged_into_id is None
    assert len(after.events) == before


def unused_case_number(database: Database) -> str:
    """A well-formed case number that no case has."""
    with database.session() as session:
        while True:
            number = new_case_number()
            if session.scalars(select(Case.id).where(Case.number == number)).first() is None:
                return number


def test_department_staff_are_refused_merge_and_split(
    database: Database, signed_in: Callable[..., Console]
) -> None:
    staff = signed_in("department", "urban_mgmt")
    report, kept = new_case(database), new_case(database)

    refused = staff.post(f"/console/cases/{report}/merge", {"merge-into": kept})

    assert refused.status_code == 403
    assert case_named(database, report).status == CaseStatus.ASSIGNED
    assert case_named(database, kept).reporters == 1
    page = staff.get(f"/console/cases/{report}").get_data(as_text=True)
    assert 'id="merge-form"' not in page

    merged, into = merged_pair(database)
    refused = staff.post(f"/console/cases/{merged}/split", {})

    assert refused.status_code == 403
    assert case_named(database, merged).status == CaseStatus.MERGED
    assert case_named(database, into).reporters == 2
    assert 'id="split-form"' not in staff.get(f"/console/cases/{merged}").get_data(as_text=True)


def test_co_reporters_numbers_are_masked_as_the_callers_number_is(
    database: Database, signed_in: Callable[..., Console]
) -> None:
    phone = fresh_mobile_number()
    report, kept = merged_pair(database, department_code=QUIET, category_code="education")
    with database.session() as session, session.begin():
        session.scalars(select(Case).where(Case.number == report)).one().caller_number = phone

    for role, department, shown in [
        ("dispatcher", None, phone),
        ("admin", None, phone),
        ("supervisor", None, mask_number(phone)),
        ("department", QUIET, mask_number(phone)),
    ]:
        browser = english(signed_in(role, department))
        page = browser.get(f"/console/cases/{kept}").get_data(as_text=True)
        row = re.search(rf'<tr id="co-reporter-{report}">.*?</tr>', page, re.S)
        assert row, role
        assert f'<td class="reporter-number">{shown}</td>' in row.group(0), role
        assert "Phone call" in row.group(0)
        if shown != phone:
            assert phone not in page, role
    # The reporter count shows in the department's list too.
    inbox = english(signed_in("department", QUIET)).get("/console/").get_data(as_text=True)
    row = re.search(rf'<tr[^>]*id="case-row-{kept}".*?</tr>', inbox, re.S)
    assert row and "2 reporters" in row.group(0)


def test_a_written_merged_report_shows_its_words_address_photos_and_the_case_it_joined(
    database: Database, signed_in: Callable[..., Console]
) -> None:
    report, kept = merged_pair(database)
    with database.session() as session, session.begin():
        case = session.scalars(select(Case).where(Case.number == report)).one()
        case.intake = Intake.WEB
        case.report_text = "春秋路口的路灯又不亮了"
        case.address = "春秋路12号"
        case.lat, case.long = 35.59, 116.99
        session.add(
            Attachment(
                case=case,
                kind="photo",
                content_type="image/jpeg",
                size=204_800,
                sha256="0" * 64,
                path=f"attachments/{uuid.uuid4().hex}.jpg",
            )
        )

    page = english(signed_in("supervisor")).get(f"/console/cases/{report}").get_data(as_text=True)

    assert 'id="case-intake">Web form<' in page
    assert 'id="report-text" lang="zh-CN">春秋路口的路灯又不亮了<' in page
    assert 'id="case-address">春秋路12号<' in page
    assert 'id="case-point">35.59000, 116.99000<' in page
    assert re.search(r'id="attachment-\d+">.*?Photo</a> · 200 KB', page)
    # A written report has no recording to play.
    assert 'id="recording-section"' not in page
    assert f'href="/console/cases/{kept}" id="merged-into-link"' in page
    assert 'id="case-status">Merged<' in page
    # A supervisor reads; the desk splits.
    assert 'id="split-form"' not in page
