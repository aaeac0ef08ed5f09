"""Text already stored that the free-text rule would refuse today (a lone surrogate, NUL, control
characters: from before the rule, or written by a path that skipped it) still reads on every
surface: the department API (valid JSON), the console, the public lookup and `case show`.

The bad rows are written directly with SQLAlchemy, as an old release or a bug would have left
them. PostgreSQL's text columns refuse NUL and lone surrogates, so those go where both databases
keep them: the JSON data of a timeline event (as `\\u0000` and `\\ud800` escapes)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cases import lifecycle, staff
from cases.access import Actor
from cases.models import Case, CaseEvent, Role
from hotline.db import Database
from tests.support.factories import make_case
from tests.support.staff import Console

WATER = Actor(name="water-staff", role=Role.DEPARTMENT, department_code="water")
CALLER = "+8613912340042"
# Where both databases keep them: in an event's JSON data.
BAD_NOTE = "\ud800坏\x00字符\x1b[31m"
SHOWN_NOTE = "\ufffd坏\ufffd字符\ufffd[31m"
# In text columns, which PostgreSQL keeps only without NUL and surrogates.
BAD_REPLY = "主管道已修复\x07，供水已恢复\x1b[0m"
SHOWN_REPLY = "主管道已修复\ufffd，供水已恢复\ufffd[0m"
BAD_TRANSCRIPT = "杏坛路停水\x08两天了\x7f"
SHOWN_TRANSCRIPT = "杏坛路停水\ufffd两天了\ufffd"


def case_with_bad_text(database: Database) -> str:
    """A resolved water case whose note, reply and transcript hold bad code points."""
    with database.session() as session, session.begin():
        case = make_case(
            session,
            department_code="water",
            category_code="water_supply",
            caller_number=CALLER,
            text="杏坛路停水两天了",
        )
        lifecycle.accept(session, case=case, actor=WATER)
        lifecycle.resolve(session, case=case, actor=WATER, reply="主管道已修复")
        session.add(CaseEvent(case=case, kind="note", actor=WATER.name, data={"text": BAD_NOTE}))
        case.resolution = BAD_REPLY
        assert case.transcript is not None
        case.transcript.text = BAD_TRANSCRIPT
        number = case.number
    with database.session() as session:
        # The rows hold what was written: nothing on the way in cleaned them.
        stored = session.scalars(select(Case).where(Case.number == number)).one()
        assert stored.resolution == BAD_REPLY
        assert [e.data["text"] for e in stored.events if e.kind == "note"] == [BAD_NOTE]
    return number


def test_a_case_holding_bad_text_still_reads_for_the_department_api(
    app: Flask, database: Database
) -> None:
    number = case_with_bad_text(database)
    with database.session() as session, session.begin():
        key = staff.issue_api_key(session, code="water")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}

    shown = client.get(f"/api/v1/cases/{number}", headers=headers)

    assert shown.status_code == 200
    detail = json.loads(shown.get_data())  # strict UTF-8 and JSON
    assert [e["data"]["text"] for e in detail["timeline"] if e["kind"] == "note"] == [SHOWN_NOTE]
    assert detail["resolution"] == SHOWN_REPLY
    assert detail["transcript"] == SHOWN_TRANSCRIPT
    listed = client.get("/api/v1/cases?status=resolved&per_page=100", headers=headers)
    assert listed.status_code == 200
    assert number in [case["number"] for case in json.loads(listed.get_data())["cases"]]


def test_a_case_holding_bad_text_still_opens_in_the_console(
    signed_in: Callable[..., Console], database: Database
) -> None:
    number = case_with_bad_text(database)
    for browser in (signed_in("department", "water"), signed_in("dispatcher")):
        page = browser.get(f"/console/cases/{number}")

        assert page.status_code == 200
        html = page.get_data().decode("utf-8")  # strict: the page is valid UTF-8
        assert SHOWN_NOTE in html and SHOWN_REPLY in html and SHOWN_TRANSCRIPT in html
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", html)


def test_a_case_holding_bad_text_still_shows_its_reply_to_the_public(
    app: Flask, database: Database
) -> None:
    number = case_with_bad_text(database)
    client: FlaskClient = app.test_client()
    form = client.get("/lookup").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form)
    assert token is not None

    found = client.post(
        "/lookup",
        data={"csrf_token": token.group(1), "number": number, "phone_last4": CALLER[-4:]},
        environ_overrides={"REMOTE_ADDR": "10.42.0.7"},
    )

    assert found.status_code == 200
    assert SHOWN_REPLY in found.get_data().decode("utf-8")


def test_a_case_holding_bad_text_still_prints_with_case_show(
    app: Flask, database: Database
) -> None:
    number = case_with_bad_text(database)

    result = app.test_cli_runner().invoke(args=["case", "show", number])

    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert [e["data"]["text"] for e in record["events"] if e["kind"] == "note"] == [SHOWN_NOTE]
    assert record["transcript"]["text"] == SHOWN_TRANSCRIPT
