"""A report no model can hear goes to the desk with the triage time limit, never without one."""

from __future__ import annotations

import uuid

from flask import Flask

from cases.models import Call, Case, CaseStatus, Category, Recording, RecordingStatus
from hotline.db import Database
from hotline.wiring import Wiring
from ivr import tasks
from routing.deadlines import compute_deadline
from tests.support.factories import case_named


def stored_mandarin_report(database: Database) -> tuple[str, int]:
    """A Mandarin case whose recording is stored: the number and the recording's id."""
    with database.session() as session, session.begin():
        call = Call(call_sid=f"CA{uuid.uuid4().hex}", account_sid="AC" + "1" * 32, locale="zh-CN")
        case = Case(number=str(uuid.uuid4().int)[:12], call=call, locale="zh-CN")
        recording = Recording(
            call=call,
            case=case,
            recording_sid=f"RE{uuid.uuid4().hex}",
            source_url="https://api.twilio.com/recording",
            status=RecordingStatus.STORED,
            storage_path="unheard.wav",
        )
        session.add_all([call, case, recording])
        session.flush()
        return case.number, recording.id


def test_a_report_no_model_can_hear_gets_the_triage_deadline(
    app: Flask, wiring: Wiring, database: Database
) -> None:
    # No Mandarin model is installed in the tests' instance folder: the job cannot hear it.
    assert "zh-CN" in wiring.models.without_model(["zh-CN"])
    number, recording_id = stored_mandarin_report(database)

    assert tasks.transcribe_recording.apply(args=[recording_id]).get() == "flagged"

    case = case_named(database, number)
    assert case.needs_review and "no speech model" in (case.review_reason or "")
    assert case.status == CaseStatus.TRIAGE and case.department_code == "hotline_office"
    with database.session() as session:
        other = session.get_one(Category, "other")
        limit = other.time_limit_working_days
    assert limit == 1  # config/directory.toml: a working day to triage
    expected = compute_deadline(
        opened_at=case.opened_at,
        hours=None,
        working_days=limit,
        calendar=wiring.router.calendar,
    )
    assert case.deadline_at == expected


def test_a_deadline_already_set_is_kept_when_the_case_goes_to_the_desk(
    app: Flask, wiring: Wiring, database: Database
) -> None:
    number, recording_id = stored_mandarin_report(database)
    with database.session() as session, session.begin():
        case = session.get_one(Case, case_named(database, number).id)
        set_before = case.opened_at.replace(microsecond=0)
        case.deadline_at = set_before

    assert tasks.transcribe_recording.apply(args=[recording_id]).get() == "flagged"
    assert case_named(database, number).deadline_at == set_before
