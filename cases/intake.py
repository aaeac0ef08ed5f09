"""Intake: from the call to a routed case. Calls, the report's recording, the case it opens,
its transcript, and the routing decision the case keeps.

Service functions take keyword arguments and an explicit session, and never commit.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Dialect, Executable, Table, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from cases import numbers, phones
from cases.errors import UnknownCallError
from cases.lifecycle import flag_for_review
from cases.models import (
    WRITTEN_INTAKES,
    Call,
    Case,
    CaseStatus,
    Intake,
    Recording,
    RecordingStatus,
    SmsStatus,
    Transcript,
    utcnow,
)
from cases.timeline import add_event

WITHHELD_CALLER_IDS = frozenset({"", "anonymous", "restricted", "unknown", "private"})


@dataclass(frozen=True)
class CallerInfo:
    """What identifies a call and its caller, as the telephone network reported it."""

    call_sid: str
    account_sid: str
    from_number: str
    to_number: str
    details: Mapping[str, str]

    @property
    def caller_id_withheld(self) -> bool:
        """Whether the network withheld the caller's number."""
        return self.from_number.strip().lower() in WITHHELD_CALLER_IDS


# How a call ended without a report, as the IVR saw it (`Call.ending`); a call that ends
# with none of these noted hung up somewhere in the menus.
ENDING_SILENCE = "silence"  # nothing heard at the report, twice
ENDING_HANGUP_BEFORE_REPORT = "hangup_before_report"  # hung up at the report, before speaking
ENDING_STATUS_NOT_FOUND = "status_not_found"  # keyed a case number we could not find, twice
# Twilio's final call statuses: a status callback after one of these changes nothing.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
# Every status Twilio documents for a call; anything else tells us nothing and is not kept.
CALL_STATUSES = FINAL_CALL_STATUSES | {"queued", "ringing", "in-progress"}


@dataclass(frozen=True)
class RecordingReport:
    """A finished recording, as reported by the telephone provider."""

    url: str
    recording_sid: str | None
    duration: int


@dataclass(frozen=True)
class OpenedCase:
    """The case a report opened, and whether this request opened it (false on a retry)."""

    case: Case
    recording: Recording
    created: bool
    # The recording was kept before the case (by the recording status callback).
    recording_kept_before: bool = False


class WriteBehind(Protocol):
    """Where a write can be queued without waiting for it (the shell's group commit)."""

    @property
    def dialect(self) -> Dialect:
        """The database's dialect, which the statement is built for."""

    def submit(self, statement: Executable, parameters: Mapping[str, Any], *, label: str) -> None:
        """Queue the statement for a transaction soon; `label` names it in the log if it fails."""


@functools.cache
def _insert_call_unless_recorded(dialect: str) -> Insert:
    # Built once per dialect: compiling a fresh ORM insert for every webhook cost more than
    # the database write itself.
    calls = cast(Table, Call.__table__)
    if dialect == "postgresql":
        return postgresql_insert(calls).on_conflict_do_nothing(index_elements=["call_sid"])
    # SQLite: OR IGNORE rather than ON CONFLICT, because SQLAlchemy sends a batch of such
    # inserts as one multi-row INSERT (see `hotline.db.make_engine`), and it will not with
    # an ON CONFLICT clause. OR IGNORE would also drop, silently, a row missing a required
    # value; a call row never is (`_new_call_row` sets every column, `caller_from_form`
    # requires CallSid and AccountSid), so the only constraint it can meet is its CallSid's.
    return sqlite_insert(calls).prefix_with("OR IGNORE", dialect="sqlite")


def queue_call_record(writer: WriteBehind, *, caller: CallerInfo) -> None:
    """Insert the call record soon, without waiting: the write-behind of a call's first webhook.

    The row is committed within moments, in a transaction shared with the other calls arriving
    meanwhile, and before the process exits. Losing it would cost nothing the caller said:
    nobody has spoken yet, every later webhook of the call records the call if its row is
    missing (`record_call`), and so does the call's status callback (`end_call`). Only a
    process killed outright in those moments loses a row, and then only of a call that ends
    unanswered with no status callback configured. No Session: this runs on every call's
    first webhook, where a Session's bookkeeping costs more than the write.
    """
    statement = _insert_call_unless_recorded(writer.dialect.name)
    writer.submit(statement, _new_call_row(caller), label=f"call {caller.call_sid}")


def _new_call_row(caller: CallerInfo) -> dict[str, Any]:
    now = utcnow()
    return {
        "call_sid": caller.call_sid,
        "account_sid": caller.account_sid,
        "from_number": caller.from_number,
        "to_number": caller.to_number,
        "caller_id_withheld": caller.caller_id_withheld,
        "callback_number": None,
        "locale": None,
        "details": dict(caller.details),
        "status": "in-progress",
        "started_at": now,
        "updated_at": now,
    }


def record_call(session: Session, *, caller: CallerInfo) -> Call:
    """Find or create the call record; safe to repeat and to race."""
    connection = session.connection()
    statement = _insert_call_unless_recorded(connection.dialect.name)
    connection.execute(statement, _new_call_row(caller))
    return session.scalars(select(Call).where(Call.call_sid == caller.call_sid)).one()


def get_call(session: Session, *, call_sid: str) -> Call:
    """The call with this CallSid, or UnknownCallError."""
    call = session.scalars(select(Call).where(Call.call_sid == call_sid)).one_or_none()
    if call is None:
        raise UnknownCallError(call_sid)
    return call


def choose_locale(session: Session, *, caller: CallerInfo, locale: str) -> Call:
    """Remember the language the caller chose."""
    call = record_call(session, caller=caller)
    call.locale = locale
    return call


def set_callback_number(session: Session, *, caller: CallerInfo, number: str, region: str) -> Call:
    """Remember the number a caller with a withheld ID keyed for us to reach them, in E.164
    (read in `region` when keyed without a country code); keys that make no phone number
    are dropped, so no text is sent to nobody."""
    call = record_call(session, caller=caller)
    call.callback_number = phones.to_e164(number, region=region)
    return call


def note_call_ending(session: Session, *, caller: CallerInfo, ending: str) -> Call:
    """Note how the IVR saw the call end without a report (`ENDING_*`), for the desk's list."""
    call = record_call(session, caller=caller)
    call.ending = ending
    return call


def mark_call_served(session: Session, *, caller: CallerInfo, how: str) -> Call:
    """The caller got what they called for without a report (heard a case's status, talked
    to an operator): the call needs no follow-up from the desk."""
    call = record_call(session, caller=caller)
    call.served = how
    return call


def end_call(
    session: Session, *, caller: CallerInfo, status: str, duration: int | None = None
) -> Call:
    """Apply the call's status callback; a call we have no row for is recorded now.

    The first webhook's row is written behind its answer (`queue_call_record`), so a call
    can end before its row is there, or without it if that process was killed. Callbacks
    may repeat and arrive out of order: the first final status (`FINAL_CALL_STATUSES`) is
    kept with its time, and nothing after it changes the call.
    """
    call = record_call(session, caller=caller)
    if call.ended_at is not None or status not in CALL_STATUSES:
        return call
    call.status = status
    if status in FINAL_CALL_STATUSES:
        call.ended_at = utcnow()
        call.duration_seconds = duration
    return call


def _recording_for(session: Session, *, call: Call, report: RecordingReport) -> Recording | None:
    """This call's recording for the report; only ever one of this call's own."""
    if report.recording_sid:
        query = select(Recording).where(Recording.recording_sid == report.recording_sid)
    else:
        query = select(Recording).where(Recording.source_url == report.url)
    return session.scalars(query.where(Recording.call_id == call.id)).first()


def _sid_of_another_call(session: Session, *, call: Call, report: RecordingReport) -> bool:
    if not report.recording_sid:
        return False
    owner = session.scalars(
        select(Recording.call_id).where(Recording.recording_sid == report.recording_sid)
    ).first()
    return owner is not None and owner != call.id


def _find_or_make_recording(session: Session, *, call: Call, report: RecordingReport) -> Recording:
    """The call's recording for this report, made if new. A RecordingSid already kept for
    another call is never moved or shared: this call gets a recording of its own without the
    SID, marked unusable (it is not fetched, since its URL may well be the other call's
    audio); the case it goes with is flagged for the desk (`open_case_from_recording`)."""
    recording = _recording_for(session, call=call, report=report)
    if recording is not None:
        return recording
    reused = _sid_of_another_call(session, call=call, report=report)
    recording = Recording(
        call=call,
        recording_sid=None if reused else report.recording_sid,
        source_url=report.url,
        reported_duration=report.duration,
    )
    if reused:
        recording.status = RecordingStatus.INVALID
        recording.last_error = (
            f"RecordingSid {report.recording_sid} already belongs to another call; not fetched"
        )
    session.add(recording)
    return recording


def _new_case(session: Session, *, call: Call, locale: str, region: str) -> Case:
    """A new open case for the call, texted its number where the caller can be reached, with
    the call's live transcript if it came first."""
    reachable = phones.to_e164(call.reachable_number, region=region)
    case = Case(
        number=_unused_case_number(session),
        call=call,
        locale=locale,
        caller_number=reachable,
        sms_status=SmsStatus.PENDING if reachable else SmsStatus.NONE,
        status=CaseStatus.OPEN,
    )
    # The live stream may have finished before the case was opened: its transcript joins it.
    transcript = session.scalars(select(Transcript).where(Transcript.call_id == call.id)).first()
    if transcript is not None:
        transcript.case = case
    return case


def _unused_case_number(session: Session) -> str:
    while True:
        number = numbers.new_case_number()
        if session.scalars(select(Case.id).where(Case.number == number)).first() is None:
            return number


@dataclass(frozen=True)
class WrittenReport:
    """A report that came in as words (a text, the web form, an Open311 request)."""

    intake: Intake
    text: str
    locale: str
    # Where updates go, in E.164; None for an anonymous report.
    reporter_number: str | None = None
    address: str | None = None
    point: tuple[float, float] | None = None  # (lat, long)
    open311_client: str | None = None
    open311_token: str | None = None


def open_case_from_writing(
    session: Session, *, report: WrittenReport, actor: str, **opened: Any
) -> Case:
    """A new open case for a written report; the adapter queues its routing after commit
    (`routing.tasks.enqueue_routing`), as for a call's transcript. Its words are kept on the
    case (`report_text`), cleaned of what the free-text rule refuses; `opened` goes on its
    "opened" event."""
    if report.intake not in WRITTEN_INTAKES:
        raise ValueError(f"{report.intake} is not a written intake")
    lat, long = report.point if report.point is not None else (None, None)
    case = Case(
        number=_unused_case_number(session),
        intake=report.intake,
        report_text=report.text,
        locale=report.locale,
        caller_number=report.reporter_number,
        # The adapter gives the number in its own answer (the reply text, the page, the
        # Open311 response): no separate case-number text.
        sms_status=SmsStatus.NONE,
        status=CaseStatus.OPEN,
        address=report.address,
        lat=lat,
        long=long,
        open311_client=report.open311_client,
        open311_token=report.open311_token,
    )
    session.add(case)
    add_event(
        session,
        case=case,
        kind="opened",
        actor=actor,
        intake=report.intake.value,
        locale=report.locale,
        **opened,
    )
    session.flush()
    return case


def report_words(case: Case) -> str | None:
    """What the reporter said or wrote, once it is all there: a written report's text, or the
    call's complete transcript; None while a call's transcript is still to come."""
    if case.intake in WRITTEN_INTAKES:
        return case.report_text or ""
    if case.transcript is None or not case.transcript.complete:
        return None
    return case.transcript.text


def open_case_from_recording(
    session: Session, *, caller: CallerInfo, locale: str, report: RecordingReport, region: str
) -> OpenedCase:
    """Open the call's case around its recording; a repeat returns the case already opened.

    The caller's number is kept in E.164 (`region` reads a number without a country code).
    A recording whose SID belongs to another call is refused (see `_find_or_make_recording`)
    and the case is put before the desk, flagged; the other call keeps its recording.
    """
    call = record_call(session, caller=caller)
    existing = session.scalars(select(Case).where(Case.call_id == call.id)).one_or_none()
    if existing is not None:
        recording = (
            _recording_for(session, call=call, report=report)
            or next(iter(existing.recordings), None)
            # A case the desk opened for the call before this (late) action: keep the audio.
            or _find_or_make_recording(session, call=call, report=report)
        )
        recording.case = recording.case or existing
        session.flush()
        return OpenedCase(case=existing, recording=recording, created=False)

    case = _new_case(session, call=call, locale=locale, region=region)
    kept_before = _recording_for(session, call=call, report=report) is not None
    recording = _find_or_make_recording(session, call=call, report=report)
    recording.case = case
    session.add(case)
    add_event(
        session,
        case=case,
        kind="opened",
        actor="ivr",
        call_sid=call.call_sid,
        recording_sid=report.recording_sid,
        duration=report.duration,
        locale=locale,
    )
    # Flush now: a concurrent retry of the same webhook fails here on the unique call_id,
    # and the caller's transaction is rolled back instead of opening a second case.
    session.flush()
    if recording.status in (RecordingStatus.INVALID, RecordingStatus.MISSING):
        # Refused (a SID of another call), or failed before the case existed: the desk hears.
        reason = f"recording {recording.status}: {recording.last_error or 'unusable'}"
        flag_for_review(session, case=case, reason=reason)
    return OpenedCase(
        case=case, recording=recording, created=True, recording_kept_before=kept_before
    )


def note_recording_status(
    session: Session,
    *,
    caller: CallerInfo,
    recording_sid: str,
    status: str,
    url: str,
    duration: int | None,
) -> int | None:
    """Apply a recording status callback; returns the id of a recording now worth fetching.

    Only the call's own recording is touched: a SID from another call changes nothing. A
    completed recording the Record action has not kept (it has not arrived yet, or it failed)
    is kept with the call now, so nothing the caller said is lost: the action attaches it to
    the case when it comes, and a call that ends without one lists it for the desk.
    """
    recording = session.scalars(
        select(Recording)
        .join(Call, Recording.call_id == Call.id)
        .where(Recording.recording_sid == recording_sid, Call.call_sid == caller.call_sid)
    ).one_or_none()
    if recording is None:
        if status != "completed" or not url:
            return None
        call = record_call(session, caller=caller)
        report = RecordingReport(url=url, recording_sid=recording_sid, duration=duration or 0)
        if _sid_of_another_call(session, call=call, report=report):
            return None
        recording = _find_or_make_recording(session, call=call, report=report)
        # A report cut short for an emergency has its case already (`open_case_for_emergency`)
        # and no Record action will come: the audio joins the case now.
        recording.case = (
            recording.case
            or session.scalars(select(Case).where(Case.call_id == call.id)).one_or_none()
        )
        session.flush()
        return recording.id
    if recording.status != RecordingStatus.PENDING:
        return None
    if status in ("failed", "absent"):
        mark_recording_failed(
            session,
            recording=recording,
            status=RecordingStatus.MISSING,
            reason=f"Twilio reported the recording {status}",
        )
        return None
    return recording.id


def claim_recording_fetch(
    session: Session, *, recording_id: int, job_id: str, stale_before: datetime
) -> Recording | None:
    """Take the recording's fetch for this job chain; None if it is settled or another live
    chain holds it (one that has not tried since `stale_before` is presumed dead)."""
    claimed = session.execute(
        update(Recording)
        .where(
            Recording.id == recording_id,
            Recording.status == RecordingStatus.PENDING,
            or_(
                Recording.fetch_job_id.is_(None),
                Recording.fetch_job_id == job_id,
                Recording.last_attempt_at < stale_before,
            ),
        )
        .values(
            fetch_job_id=job_id,
            fetch_attempts=Recording.fetch_attempts + 1,
            last_attempt_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    return session.get_one(Recording, recording_id, populate_existing=True)


def get_recording(session: Session, *, recording_id: int) -> Recording:
    """The recording with this id (jobs take ids)."""
    return session.get_one(Recording, recording_id)


def _settle_recording(session: Session, *, recording: Recording, **values: Any) -> bool:
    """Move a pending recording to its final state; False if another run got there first."""
    # A conditional UPDATE, so two fetches racing (the Record action and the status callback
    # both queue one) settle the recording once, and its case gets one event, not two.
    result = session.execute(
        update(Recording)
        .where(Recording.id == recording.id, Recording.status == RecordingStatus.PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    settled = getattr(result, "rowcount", 0) == 1
    session.refresh(recording)
    return settled


def mark_recording_stored(
    session: Session,
    *,
    recording: Recording,
    storage_path: str,
    size_bytes: int,
    sha256: str,
    sample_rate: int,
    channels: int,
    duration_seconds: float,
) -> bool:
    """Record that the audio is stored here; False if it already was."""
    settled = _settle_recording(
        session,
        recording=recording,
        status=RecordingStatus.STORED,
        storage_path=storage_path,
        size_bytes=size_bytes,
        sha256=sha256,
        sample_rate=sample_rate,
        channels=channels,
        duration_seconds=duration_seconds,
        stored_at=utcnow(),
        last_error=None,
    )
    if settled and recording.case is not None:
        add_event(
            session,
            case=recording.case,
            kind="recording_stored",
            recording_sid=recording.recording_sid,
            size_bytes=size_bytes,
            duration_seconds=round(duration_seconds, 2),
        )
    return settled


def mark_recording_failed(
    session: Session,
    *,
    recording: Recording,
    status: RecordingStatus,
    reason: str,
    storage_path: str | None = None,
) -> bool:
    """Record that the audio could not be had, and put its case in front of the desk."""
    settled = _settle_recording(
        session,
        recording=recording,
        status=status,
        last_error=reason,
        storage_path=storage_path,
    )
    if settled and recording.case is not None:
        flag_for_review(session, case=recording.case, reason=f"recording {status}: {reason}")
    return settled


def record_sms_result(
    session: Session,
    *,
    case: Case,
    status: SmsStatus,
    message_sid: str | None = None,
    error: str | None = None,
) -> None:
    """Record what became of the case-number text message."""
    case.sms_status = status
    case.sms_message_sid = message_sid
    add_event(session, case=case, kind=f"sms_{status}", message_sid=message_sid, error=error)


@dataclass(frozen=True)
class TranscriptText:
    """A transcript as the transcription engine produced it (plain data, no engine types)."""

    text: str
    words: list[dict[str, Any]]
    duration_seconds: float
    engine: str
    model: str
    processing_seconds: float


def store_transcript(
    session: Session, *, call: Call, source: str, complete: bool, result: TranscriptText
) -> Transcript | None:
    """Keep the call's transcript; a complete one is never replaced. None if this one lost."""
    existing = session.scalars(
        select(Transcript).where(Transcript.call_id == call.id)
    ).one_or_none()
    if existing is not None and existing.complete:
        return None
    transcript = existing or Transcript(call=call)
    transcript.source = source
    transcript.complete = complete
    transcript.text = result.text
    transcript.words = result.words
    transcript.duration_seconds = result.duration_seconds
    transcript.engine = result.engine
    transcript.model = result.model
    transcript.processing_seconds = result.processing_seconds
    case = session.scalars(select(Case).where(Case.call_id == call.id)).one_or_none()
    transcript.case = case
    session.add(transcript)
    if case is not None and complete:
        add_event(session, case=case, kind="transcribed", source=source, model=result.model)
    session.flush()
    return transcript


def has_complete_transcript(session: Session, *, call_id: int) -> bool:
    """Whether the call's words are already text (so the batch job has nothing to do)."""
    return (
        session.scalars(
            select(Transcript.id).where(Transcript.call_id == call_id, Transcript.complete)
        ).first()
        is not None
    )


@dataclass(frozen=True)
class RoutingOutcome:
    """A routing decision as plain data (the routing package makes it; the case keeps it)."""

    category: str
    department: str
    urgency: str
    confidence: float
    place_code: str | None
    deadline: datetime
    needs_triage: bool
    emergency: str | None
    explanation: dict[str, Any]
    model_version: str


def route_case(session: Session, *, case: Case, outcome: RoutingOutcome) -> bool:
    """Give the case its category, department and deadline; False if it was routed already.

    A case a person must look at (a failed recording, no speech model) keeps its place at the
    dispatch desk: the decision is kept as the desk's suggestion.
    """
    if case.routed_at is not None:
        return False
    case.routed_at = utcnow()
    case.routing = {
        "category": outcome.category,
        "department": outcome.department,
        "urgency": outcome.urgency,
        "confidence": round(outcome.confidence, 4),
        "place": outcome.place_code,
        "deadline": outcome.deadline.isoformat(),
        "needs_triage": outcome.needs_triage,
        "emergency": outcome.emergency,
        "explanation": outcome.explanation,
        "model_version": outcome.model_version,
    }
    case.category_code = outcome.category
    case.urgency = outcome.urgency
    case.confidence = outcome.confidence
    case.place_code = outcome.place_code
    case.deadline_at = outcome.deadline
    if case.needs_review:
        add_event(session, case=case, kind="routing_suggested", **case.routing)
    else:
        case.department_code = outcome.department
        case.status = CaseStatus.TRIAGE if outcome.needs_triage else CaseStatus.ASSIGNED
        add_event(session, case=case, kind="routed", **case.routing)
    if outcome.emergency and not any(e.kind == "emergency_transfer" for e in case.events):
        # Heard only in the recording, after the call (the check in the call could not run,
        # or the caller wrote or was cut off): nobody was put through, so a person calls back now.
        flag_for_review(
            session,
            case=case,
            reason=EMERGENCY_AFTER_CALL_REASON.format(
                number=outcome.explanation.get("emergency_rule", {}).get("number", "")
            ),
        )
    return True


# Stored on the case and shown to the desk as it is (Chinese, the desk's language).
EMERGENCY_AFTER_CALL_REASON = (
    "通话结束后才从录音中听出紧急情况，来电人未被转接：请立即回拨来电人，并通报{number}"
)


def record_emergency_transfer(session: Session, *, case: Case, kind: str, number: str) -> None:
    """Note that the caller was put through to an emergency service; the case is kept."""
    case.urgency = "emergency"
    add_event(
        session, case=case, kind="emergency_transfer", actor="ivr", service=kind, number=number
    )


@dataclass(frozen=True)
class EmergencyCase:
    """The case of a report cut short for an emergency, and whether this request opened it."""

    case: Case
    created: bool
    # The recording status callback kept the call's audio before the case existed.
    recording_kept_before: bool = False


def open_case_for_emergency(
    session: Session, *, caller: CallerInfo, locale: str, region: str, kind: str, number: str
) -> EmergencyCase:
    """Open (or find) the case of a call whose report was cut short because an emergency was
    heard while the caller spoke, and note the transfer, once.

    Twilio posts no Record action for a recording its call was redirected from, so the case
    is opened from the call alone: the live transcript joins it now or when it is stored, the
    recording when its status callback comes (`note_recording_status`). A repeat (a retried
    webhook, a second interrupt) finds the same case and notes nothing twice.
    """
    call = record_call(session, caller=caller)
    case = session.scalars(select(Case).where(Case.call_id == call.id)).one_or_none()
    created, kept_before = case is None, False
    if case is None:
        case = _new_case(session, call=call, locale=locale, region=region)
        session.add(case)
        kept = session.scalars(
            select(Recording).where(Recording.call_id == call.id, Recording.case_id.is_(None))
        ).all()
        for recording in kept:
            recording.case = case
        kept_before = bool(kept)
        add_event(
            session,
            case=case,
            kind="opened",
            actor="ivr",
            call_sid=call.call_sid,
            locale=locale,
            interrupted_for=kind,
        )
        # Flush now: a concurrent retry fails here on the unique call_id (see above).
        session.flush()
    if not any(event.kind == "emergency_transfer" for event in case.events):
        record_emergency_transfer(session, case=case, kind=kind, number=number)
    return EmergencyCase(case=case, created=created, recording_kept_before=kept_before)


def case_number_of_call(session: Session, *, call_sid: str) -> str | None:
    """The number of the case this call opened, if it opened one."""
    return session.scalars(
        select(Case.number).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
    ).first()


def mark_live_decoding(session: Session, *, call_sid: str, decoding: bool) -> None:
    """Note that the call is (or no longer is) being decoded live."""
    session.execute(update(Call).where(Call.call_sid == call_sid).values(live_decoding=decoding))


def live_decoding(session: Session, *, call_sid: str) -> bool:
    """Whether a live transcript of the call may still come (its decode is running)."""
    return bool(session.scalar(select(Call.live_decoding).where(Call.call_sid == call_sid)))


def transcript_of_call(session: Session, *, call_sid: str) -> Transcript | None:
    """The call's complete transcript, if there is one yet."""
    return session.scalars(
        select(Transcript)
        .join(Call, Transcript.call_id == Call.id)
        .where(Call.call_sid == call_sid, Transcript.complete)
    ).one_or_none()


def mark_speech_heard(session: Session, *, call_sid: str, heard: bool) -> None:
    """Note the live stream's verdict on the caller's audio: speech heard (True), or a stream
    that ended having heard none (False). A True is never taken back."""
    session.execute(
        update(Call)
        .where(Call.call_sid == call_sid, or_(Call.speech_heard.is_(None), ~Call.speech_heard))
        .values(speech_heard=heard)
    )


def speech_heard(session: Session, *, call_sid: str) -> bool | None:
    """The live stream's verdict on the call's audio so far (None: no verdict)."""
    return session.scalar(select(Call.speech_heard).where(Call.call_sid == call_sid))


def note_check_skipped(session: Session, *, case: Case, checks: list[str], reason: str) -> None:
    """Record on the case that checks after the report could not run in the call (the live
    transcript was late, no model for the locale, a database error), so nobody assumes they
    passed."""
    add_event(session, case=case, kind="check_skipped", actor="ivr", checks=checks, reason=reason)


def reach_case_at_callback_number(session: Session, *, call_sid: str) -> Case | None:
    """After a withheld caller keyed a number (once their report is kept), their case takes it,
    so the case number can be texted; the case, if it now has a text to send."""
    case = session.scalars(
        select(Case).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
    ).one_or_none()
    if case is None or case.caller_number or case.call is None or not case.call.callback_number:
        return None
    case.caller_number = case.call.callback_number
    case.sms_status = SmsStatus.PENDING
    return case


def open_case_for_person(session: Session, *, call_sid: str, locale: str, region: str) -> Case:
    """The case of a call a person answered: the report the caller already made (0 during the
    recording), or a new case for the call. The operator then writes it up
    (`cases.lifecycle.route_at_seat`)."""
    call = get_call(session, call_sid=call_sid)
    case = session.scalars(select(Case).where(Case.call_id == call.id)).one_or_none()
    if case is None:
        case = _new_case(session, call=call, locale=locale, region=region)
        session.add(case)
        add_event(session, case=case, kind="opened", actor="seat", call_sid=call_sid, locale=locale)
        session.flush()
    return case
