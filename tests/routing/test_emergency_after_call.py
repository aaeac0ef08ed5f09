"""An emergency heard only in the recording, after the call, puts the case before the desk at
once: nobody was put through in the call, so a person must call back."""

from __future__ import annotations

import uuid

from flask import Flask

from cases import intake
from cases.models import Call, Case, CaseStatus, Transcript
from cases.numbers import new_case_number
from hotline.db import Database
from routing import tasks
from tests.support.factories import case_named

COLLAPSED = "我爸倒在地上叫不醒了，也不喘气了，快来人"


def transcribed_case(database: Database, text: str, *, transferred: bool) -> tuple[int, str]:
    """A case whose complete transcript is `text`, not yet routed; the case's id and number."""
    with database.session() as session, session.begin():
        call = Call(call_sid=f"CA{uuid.uuid4().hex}", account_sid="AC" + "1" * 32, locale="zh-CN")
        case = Case(number=new_case_number(), call=call, locale="zh-CN")
        transcript = Transcript(
            call=call, case=case, source="batch", text=text, engine="test", model="test"
        )
        session.add_all([call, case, transcript])
        session.flush()
        if transferred:
            intake.record_emergency_transfer(session, case=case, kind="medical", number="120")
        return case.id, case.number


def test_an_emergency_heard_only_after_the_call_goes_to_the_desk_to_call_back(
    app: Flask, database: Database
) -> None:
    case_id, number = transcribed_case(database, COLLAPSED, transferred=False)

    assert tasks.route_case.apply(args=[case_id]).get() == "routed"

    case = case_named(database, number)
    assert case.urgency == "emergency"
    assert case.needs_review
    assert case.review_reason == intake.EMERGENCY_AFTER_CALL_REASON.format(number="120")
    assert [e.kind for e in case.events].count("flagged_for_review") == 1
    assert case.status in (CaseStatus.ASSIGNED, CaseStatus.TRIAGE)  # routed all the same


def test_an_emergency_put_through_in_the_call_is_not_sent_to_the_desk_again(
    app: Flask, database: Database
) -> None:
    case_id, number = transcribed_case(database, COLLAPSED, transferred=True)

    assert tasks.route_case.apply(args=[case_id]).get() == "routed"

    case = case_named(database, number)
    assert case.urgency == "emergency"
    assert not case.needs_review
    assert "flagged_for_review" not in [e.kind for e in case.events]
