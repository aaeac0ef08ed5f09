"""Callers the IVR used to lose (issue 12, defects 5, 6, 8 and 9): a database blip at the
number's read-back, a RecordingSid reused from another call, an absurd RecordingDuration, a
hang-up instead of #, menus that time out, and a withheld caller's keyed number. Whole calls
through the emulator over real HTTP; the worker and Prism where a text is sent."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cases import lifecycle, staff
from cases.models import (
    Call,
    Case,
    CaseStatus,
    Department,
    Recording,
    RecordingStatus,
    SmsStatus,
    utcnow,
)
from emulator import RecordingServer, Speak, TwilioEmulator
from hotline.db import Database
from ivr import views
from ivr.prompts import Prompts
from ivr.steps import MAX_SECONDS
from tests.conftest import wait_until
from tests.ivr.test_rating_sms import text_in
from tests.support.calls import SPEECH, Lookups
from tests.support.flaky_proxy import FlakyProxy
from tests.support.receivers import make_department, new_caller_number
from tests.support.staff import Console


def read_back(prompts: Prompts, number: str) -> str:
    return f"{prompts.text('case_opened')} {prompts.digits(number)}"


def recorded_params(
    emulator: TwilioEmulator, call_sid: str, *, recording_sid: str, duration: str
) -> dict[str, str]:
    return {
        **emulator.base_params(call_sid),
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/{recording_sid}",
        "RecordingSid": recording_sid,
        "RecordingDuration": duration,
        "Digits": "#",
    }


# --- Defect 5: a database blip at /ivr/report/check ------------------------------------------


def test_a_caller_whose_case_is_committed_hears_their_number_through_a_database_blip(
    emulator: TwilioEmulator,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    log = emulator.call(["1", Speak(SPEECH)])
    number = lookups.case_of(log.call_sid).number
    # From here on the webhooks' database cannot be reached (a file in no directory).
    unreachable = create_engine(f"sqlite:///{tmp_path / 'gone' / 'hotline.sqlite'}")
    monkeypatch.setattr(views, "db", lambda: Session(unreachable))

    step = emulator.post(
        f"/ivr/report/check?lang=zh-CN&case={number}&sms=1", emulator.base_params(log.call_sid)
    )

    assert step.status_code == 200
    assert step.said[0].text == read_back(prompts["zh-CN"], number)
    assert step.said[2].text == prompts["zh-CN"].text("sms_will_follow")


def test_a_caller_never_hears_a_case_number_that_is_not_theirs(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    theirs = lookups.case_of(emulator.call(["1", Speak(SPEECH)]).call_sid).number
    other_call = emulator.call(["1", Speak(SPEECH)]).call_sid
    own = lookups.case_of(other_call).number

    step = emulator.post(
        f"/ivr/report/check?lang=zh-CN&case={theirs}&sms=1", emulator.base_params(other_call)
    )

    said = " ".join(spoken.text for spoken in step.said)
    assert prompts["zh-CN"].digits(theirs) not in said
    assert step.said[0].text == read_back(prompts["zh-CN"], own)


def test_a_signed_url_with_a_malformed_number_is_never_read_out_in_a_blip(
    emulator: TwilioEmulator,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    log = emulator.call(["1", Speak(SPEECH)])
    unreachable = create_engine(f"sqlite:///{tmp_path / 'gone' / 'hotline.sqlite'}")
    monkeypatch.setattr(views, "db", lambda: Session(unreachable))

    step = emulator.post(
        "/ivr/report/check?lang=zh-CN&case=123456780&sms=1", emulator.base_params(log.call_sid)
    )

    assert step.status_code == 200
    assert step.said[0].text == prompts["zh-CN"].text("error_apology")  # and it records again
    assert step.twiml.find("Record") is not None


# --- Defect 6: a RecordingSid from another call; an absurd RecordingDuration ----------------


def test_a_recording_sid_reused_by_another_call_never_takes_that_callers_recording(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    first = emulator.call(["1", Speak(SPEECH)])
    first_case = lookups.case_of(first.call_sid)
    reused = first.recordings[0]["RecordingSid"]
    second = emulator.new_call_sid()
    assert emulator.post("/ivr/voice", emulator.base_params(second)).status_code == 200

    step = emulator.post(
        "/ivr/recorded?lang=zh-CN&attempt=0",
        recorded_params(emulator, second, recording_sid=reused, duration="6"),
    )
    emulator.post(  # and its status callback, naming the other call's recording as failed
        "/ivr/recording-status",
        {
            **emulator.base_params(second),
            "RecordingSid": reused,
            "RecordingStatus": "failed",
        },
    )

    # The first caller's recording stays theirs, untouched.
    (kept,) = lookups.recordings_of(first.call_sid)
    assert (kept.case_id, kept.recording_sid) == (first_case.id, reused)
    assert kept.status != RecordingStatus.MISSING
    # The second caller is still heard: a case of their own, flagged for the desk.
    second_case = lookups.case_of(second)
    assert step.said[0].text == read_back(prompts["zh-CN"], second_case.number)
    (refused,) = lookups.recordings_of(second)
    assert refused.recording_sid is None and refused.status == RecordingStatus.INVALID
    assert second_case.needs_review and "another call" in (second_case.review_reason or "")


@pytest.mark.parametrize("duration", ["99999999999999999999", "9" * 5000, "4.5", "-3"])
def test_a_caller_whose_recording_duration_is_absurd_still_hears_their_number(
    duration: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    call_sid = emulator.new_call_sid()
    assert emulator.post("/ivr/voice", emulator.base_params(call_sid)).status_code == 200

    step = emulator.post(
        "/ivr/recorded?lang=zh-CN&attempt=0",
        recorded_params(
            emulator, call_sid, recording_sid="RE" + uuid.uuid4().hex, duration=duration
        ),
    )

    case = lookups.case_of(call_sid)
    assert step.said[0].text == read_back(prompts["zh-CN"], case.number)
    (recording,) = case.recordings
    assert 0 <= recording.reported_duration <= MAX_SECONDS


# --- Defect 8: a hang-up instead of #, and menus that time out ------------------------------


@pytest.mark.usefixtures("celery_worker")
def test_a_caller_who_hangs_up_after_speaking_still_gets_a_case_and_the_sms(
    emulator: TwilioEmulator, lookups: Lookups, twilio_api: FlakyProxy
) -> None:
    caller = new_caller_number()
    emulator.from_number = caller
    log = emulator.call(["1", Speak(SPEECH, end="hangup")])
    assert log.ended_by == "caller-hangup"

    case = wait_until(
        lambda: (c := lookups.case_of(log.call_sid)).sms_status == SmsStatus.SENT and c,
        timeout=60,
        what="the case-number text",
    )
    (message,) = twilio_api.messages_to(caller)
    assert case.number in message["form"]["Body"]
    recording = wait_until(
        lambda: (
            (r := lookups.recordings_of(log.call_sid)[0]).status == RecordingStatus.STORED and r
        ),
        timeout=60,
        what="the recording to be stored",
    )
    assert recording.case_id == case.id


def test_a_caller_who_keys_nothing_usable_three_times_reaches_a_person_or_a_recording(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call(["4", "5", "7", "2", Speak(SPEECH)])

    assert prompts["zh-CN"].text("person_unavailable_offer") in [s.text for s in log.said]
    case = lookups.case_of(log.call_sid)  # nobody free: the caller chose to be recorded
    assert log.said[-3].text == read_back(prompts["zh-CN"], case.number)


# --- Build item 5: calls that end without a report, listed for the desk ----------------------


def unreported_ids(page: str) -> set[int]:
    return {int(found) for found in re.findall(r'id="unreported-call-(\d+)"', page)}


def listed(desk: Console) -> set[int]:
    """The calls on the desk's list, as its page shows them."""
    return unreported_ids(desk.get("/console/unreported-calls").get_data(as_text=True))


def call_row(lookups: Lookups, call_sid: str) -> Call:
    return cast(Call, lookups.call(call_sid))


def test_a_caller_who_leaves_no_report_is_listed_for_the_desk_who_opens_a_case_for_them(
    emulator: TwilioEmulator, lookups: Lookups, signed_in: Callable[..., Console]
) -> None:
    emulator.status_callback = "/ivr/call-status"
    caller = new_caller_number()
    emulator.from_number = caller
    silent = emulator.call(["1", Speak(None), Speak(None)])  # nothing heard, twice
    call = call_row(lookups, silent.call_sid)
    assert call.ended_at is not None and call.ending == "silence"
    assert lookups.cases_of(silent.call_sid) == []

    desk = signed_in("dispatcher")
    page = desk.get("/console/unreported-calls").get_data(as_text=True)
    assert call.id in unreported_ids(page)
    assert caller in page  # the dispatcher calls them back
    assert "两次都没有听到声音" in page  # why, in the desk's language

    opened = desk.post(
        f"/console/unreported-calls/{call.id}/open-case", {"note": "回拨：春秋路路灯不亮"}
    )
    assert opened.status_code == 302
    case = lookups.case_of(silent.call_sid)
    assert opened.headers["Location"].endswith(f"/console/cases/{case.number}")
    assert (case.status, case.department_code, case.caller_number) == (
        CaseStatus.TRIAGE,
        "hotline_office",
        caller,
    )
    assert case.events[0].kind == "opened" and case.events[0].actor == desk.account.username
    assert case.events[0].data["note"] == "回拨：春秋路路灯不亮"
    assert call.id not in unreported_ids(
        desk.get("/console/unreported-calls").get_data(as_text=True)
    )
    # A second dispatcher (or the form sent twice) opens nothing more.
    again = desk.post(f"/console/unreported-calls/{call.id}/open-case", {"note": ""})
    assert again.status_code == 400
    assert len(lookups.cases_of(silent.call_sid)) == 1


def test_a_caller_who_hangs_up_in_the_menus_is_listed_until_the_desk_marks_it_handled(
    emulator: TwilioEmulator, lookups: Lookups, signed_in: Callable[..., Console]
) -> None:
    emulator.status_callback = "/ivr/call-status"
    menus = emulator.call([])  # hangs up at the greeting
    before = emulator.call(["1", Speak(None, end="hangup")])  # at the beep, silent
    # No seat is open: the caller asks to be called back, so the callback list has them.
    served = emulator.call(["0", "1"])
    reported = emulator.call(["1", Speak(SPEECH)])
    desk = signed_in("dispatcher")

    on_list = listed(desk)
    ids = {
        log.call_sid: call_row(lookups, log.call_sid).id
        for log in (menus, before, served, reported)
    }
    assert ids[menus.call_sid] in on_list and ids[before.call_sid] in on_list
    assert ids[served.call_sid] not in on_list and ids[reported.call_sid] not in on_list
    assert call_row(lookups, before.call_sid).ending == "hangup_before_report"

    handled = desk.post(f"/console/unreported-calls/{ids[menus.call_sid]}/handled")
    assert handled.status_code == 302
    assert ids[menus.call_sid] not in listed(desk)
    assert lookups.cases_of(menus.call_sid) == []
    # Department staff see no such list.
    assert signed_in("department", "water").get("/console/unreported-calls").status_code == 403


def test_late_and_repeated_status_callbacks_keep_the_calls_first_ending(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    call_sid = emulator.new_call_sid()
    base = emulator.base_params(call_sid)
    completed = {**base, "CallStatus": "completed", "CallDuration": "42", "SequenceNumber": "3"}
    assert emulator.post("/ivr/call-status", completed).status_code == 200
    ended = call_row(lookups, call_sid).ended_at
    late = {**base, "CallStatus": "in-progress", "SequenceNumber": "1"}  # out of order
    assert emulator.post("/ivr/call-status", late).status_code == 200
    assert emulator.post("/ivr/call-status", completed).status_code == 200  # a retry
    call = call_row(lookups, call_sid)
    assert (call.status, call.ended_at, call.duration_seconds) == ("completed", ended, 42)


# --- Defect 9: a withheld caller's keyed number, in E.164 -----------------------------------


@pytest.mark.usefixtures("celery_worker")
def test_a_withheld_caller_who_keys_their_number_gets_the_sms_and_can_rate_by_reply(
    emulator: TwilioEmulator,
    lookups: Lookups,
    database: Database,
    twilio_api: FlakyProxy,
    prompts: dict[str, Prompts],
) -> None:
    e164 = new_caller_number()
    emulator.from_number = "anonymous"
    log = emulator.call(["1", Speak(SPEECH), e164.removeprefix("+86") + "#"])

    case = wait_until(
        lambda: (c := lookups.case_of(log.call_sid)).sms_status == SmsStatus.SENT and c,
        timeout=60,
        what="the case-number text",
    )
    assert case.caller_number == e164
    (message,) = twilio_api.messages_to(e164)
    assert case.number in message["form"]["Body"]

    # The worker is done with the case once it has left OPEN; then a department resolves it.
    wait_until(
        lambda: lookups.case_of(log.call_sid).status != CaseStatus.OPEN,
        timeout=60,
        what="the case to be routed or sent to the desk",
    )
    with database.session() as session, session.begin():
        code = make_department(session, email=f"duty-{uuid.uuid4().hex[:8]}@example.test")
        row = session.scalars(select(Case).where(Case.id == case.id)).one()
        row.department_code, row.status, row.needs_review = code, CaseStatus.ASSIGNED, False
        row.routed_at = row.routed_at or utcnow()
        actor = staff.department_actor(session.get_one(Department, code))
        lifecycle.accept(session, case=row, actor=actor)
        lifecycle.resolve(session, case=row, actor=actor, reply="路灯已修复。")

    # Twilio reports the reply as From=+86139...: it finds the caller's case.
    answer = text_in(emulator, caller=e164, body="5")
    assert answer.status_code == 200
    assert prompts["zh-CN"].text("sms_rating_thanks", number=case.number) in answer.body
    assert lookups.case_of(log.call_sid).status == CaseStatus.CLOSED


# --- The recording status callback keeps what the Record action could not -----------------


@pytest.mark.usefixtures("celery_worker")
def test_a_recording_whose_record_action_never_came_is_kept_and_listed_for_the_desk(
    emulator: TwilioEmulator,
    lookups: Lookups,
    recording_server: RecordingServer,
    signed_in: Callable[..., Console],
) -> None:
    # Twilio's Record action request failed (a timeout, a blip): only the recording status
    # callback and then the call's status callback arrive.
    call_sid = emulator.new_call_sid()
    recording_sid = f"RE{uuid.uuid4().hex}"
    url = recording_server.add(recording_sid, SPEECH, not_found_first=0)
    assert emulator.post("/ivr/voice", emulator.base_params(call_sid)).status_code == 200
    base = emulator.base_params(call_sid)
    callback = {
        **base,
        "RecordingSid": recording_sid,
        "RecordingUrl": url,
        "RecordingStatus": "completed",
        "RecordingDuration": "5",
    }
    assert emulator.post("/ivr/recording-status", callback).status_code == 200
    ended = {**base, "CallStatus": "completed", "CallDuration": "30"}
    assert emulator.post("/ivr/call-status", ended).status_code == 200

    def stored() -> Recording | None:
        kept = lookups.recordings_of(call_sid)
        return kept[0] if kept and kept[0].status == RecordingStatus.STORED else None

    recording = wait_until(stored, timeout=60, what="the recording to be stored")
    assert recording.recording_sid == recording_sid
    desk = signed_in("dispatcher")
    call_id = call_row(lookups, call_sid).id
    page = desk.get("/console/unreported-calls").get_data(as_text=True)
    assert call_id in unreported_ids(page)
    path = f"/console/unreported-calls/{call_id}/recordings/{recording.id}"
    link = re.search(rf'src="({re.escape(path)}\?[^"]+)"', page)
    assert link, "the list links the call's recording"
    # The link is signed for this person and expires, like the case page's.
    bare = desk.get(path)
    assert bare.status_code == 403
    audio = desk.get(unescape(link.group(1)))
    head = audio.data[:4]
    audio.close()
    assert audio.status_code == 200 and head == b"RIFF"

    opened = desk.post(f"/console/unreported-calls/{call_id}/open-case", {"note": ""})
    assert opened.status_code == 302
    case = lookups.case_of(call_sid)
    assert [r.id for r in case.recordings] == [recording.id]


@pytest.mark.usefixtures("celery_worker")
def test_a_recording_callback_that_beats_the_record_action_still_makes_one_transcribed_case(
    emulator: TwilioEmulator, lookups: Lookups, recording_server: RecordingServer
) -> None:
    call_sid = emulator.new_call_sid()
    recording_sid = f"RE{uuid.uuid4().hex}"
    url = recording_server.add(recording_sid, SPEECH, not_found_first=0)
    assert emulator.post("/ivr/voice", emulator.base_params(call_sid)).status_code == 200
    callback = {
        **emulator.base_params(call_sid),
        "RecordingSid": recording_sid,
        "RecordingUrl": url,
        "RecordingStatus": "completed",
        "RecordingDuration": "5",
    }
    assert emulator.post("/ivr/recording-status", callback).status_code == 200
    # Let its fetch finish before the action arrives: the case must still be transcribed.
    wait_until(
        lambda: lookups.recordings_of(call_sid)[0].status == RecordingStatus.STORED,
        timeout=60,
        what="the early recording to be stored",
    )

    params = {**callback, "Digits": "#"}
    del params["RecordingStatus"]
    step = emulator.post("/ivr/recorded?lang=ko-KR&attempt=0", params)
    assert step.status_code == 200

    case = lookups.case_of(call_sid)
    (recording,) = lookups.recordings_of(call_sid)
    assert recording.case_id == case.id
    wait_until(
        lambda: lookups.transcript_of(call_sid) is not None,
        timeout=120,
        what="the batch transcript",
    )
