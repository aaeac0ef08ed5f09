"""After-call jobs: fetch the recording, text the case number. They take ids and can run twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from sqlalchemy import or_, select
from twilio.base.exceptions import TwilioException

from cases import lifecycle, outbox, services
from cases.database import Database
from cases.models import Case, Category, Recording, RecordingStatus, SmsStatus, utcnow
from ivr import recordings, sms
from ivr.prompts import Prompts
from routing.router import ClassifierMissingError, Router, routes_from_categories
from transcription.audio import AudioError, decode_wav
from transcription.models import ModelRegistry, ModelUnavailableError
from transcription.recognizer import Transcript, transcribe

if TYPE_CHECKING:
    from hotline.config import Settings

log = logging.getLogger("hotline.jobs")


@dataclass(frozen=True)
class JobContext:
    """What the jobs need, wired by the shell in each process that runs or sends them."""

    database: Database
    settings: Settings
    prompts: dict[str, Prompts]
    models: ModelRegistry
    router: Router


_context: JobContext | None = None


def configure(context: JobContext) -> None:
    """Give the jobs their database and settings (called by hotline at start-up)."""
    global _context
    _context = context


def context() -> JobContext:
    """The wired context; jobs cannot run before the shell configured them."""
    if _context is None:
        raise RuntimeError("ivr.tasks.configure() was not called: start through hotline")
    return _context


def enqueue(task: Any, *args: Any) -> None:
    """Send a job; if the broker is down the call must go on, and the sweep sends it later."""
    try:
        task.delay(*args)
    except Exception:
        log.exception("could not enqueue %s%r; the sweep will retry", task.name, args)


# A fetch chain is retried for about nine minutes at most; one silent for longer was lost.
STALLED_AFTER = timedelta(minutes=15)
NEVER_STARTED_AFTER = timedelta(minutes=2)


def transcript_text(transcript: Transcript) -> services.TranscriptText:
    """The engine's transcript as the plain data the case keeps."""
    return services.TranscriptText(
        text=transcript.text,
        words=[word.to_dict() for word in transcript.words],
        duration_seconds=transcript.duration_seconds,
        engine=transcript.engine,
        model=transcript.model,
        processing_seconds=transcript.processing_seconds,
    )


def _backoff(base: float, retries: int) -> float:
    return min(base * 2**retries, 600.0)


@shared_task(bind=True, name="ivr.fetch_recording", max_retries=None, acks_late=True)
def fetch_recording(self: Task, recording_id: int) -> str:
    """Download a recording from Twilio and store it; retry while Twilio answers 404."""
    ctx = context()
    settings = ctx.settings
    with ctx.database.session() as session, session.begin():
        recording = services.claim_recording_fetch(
            session,
            recording_id=recording_id,
            job_id=self.request.id or "eager",
            stale_before=utcnow() - STALLED_AFTER,
        )
        if recording is None:
            # Settled already, or another job is on it: a repeat changes nothing.
            return str(services.get_recording(session, recording_id=recording_id).status)
        url, name = recording.source_url, recording.recording_sid or f"recording-{recording.id}"
        folder = Path(f"{recording.created_at:%Y/%m}")

    auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    try:
        fetched = recordings.download(url, auth=auth, max_bytes=settings.recording_max_bytes)
    except recordings.RecordingNotReadyError as error:
        if self.request.retries >= settings.recording_fetch_retries:
            _give_up(ctx, recording_id, RecordingStatus.MISSING, f"never arrived: {error}")
            return RecordingStatus.MISSING
        log.info("recording not ready (%s); retrying", error, extra={"recording_id": recording_id})
        countdown = _backoff(settings.recording_fetch_backoff, self.request.retries)
        raise self.retry(countdown=countdown) from error
    except recordings.RecordingRejectedError as error:
        kept = None
        if error.data:
            # Keep what arrived: a person may still make sense of it.
            kept = folder / f"{name}.rejected"
            recordings.write_atomically(settings.recordings_dir / kept, error.data)
        _give_up(ctx, recording_id, RecordingStatus.INVALID, str(error), kept)
        return RecordingStatus.INVALID

    relative = folder / f"{name}.wav"
    recordings.write_atomically(settings.recordings_dir / relative, fetched.data)
    with ctx.database.session() as session, session.begin():
        recording = services.get_recording(session, recording_id=recording_id)
        services.mark_recording_stored(
            session,
            recording=recording,
            storage_path=str(relative),
            size_bytes=len(fetched.data),
            sha256=fetched.sha256,
            sample_rate=fetched.info.sample_rate,
            channels=fetched.info.channels,
            duration_seconds=fetched.info.duration_seconds,
        )
        case_number = recording.case.number if recording.case else None
    log.info(
        "recording stored",
        extra={"recording_id": recording_id, "case_number": case_number, "path": str(relative)},
    )
    if case_number is not None:
        enqueue(transcribe_recording, recording_id)
    return RecordingStatus.STORED


def _give_up(
    ctx: JobContext,
    recording_id: int,
    status: RecordingStatus,
    reason: str,
    kept: Path | None = None,
) -> None:
    with ctx.database.session() as session, session.begin():
        recording = services.get_recording(session, recording_id=recording_id)
        services.mark_recording_failed(
            session,
            recording=recording,
            status=status,
            reason=reason,
            storage_path=str(kept) if kept else None,
        )
        case_number = recording.case.number if recording.case else None
    log.warning(
        "recording %s: %s; case sent to the dispatch desk",
        status,
        reason,
        extra={"recording_id": recording_id, "case_number": case_number},
    )


@shared_task(name="ivr.transcribe_recording", acks_late=True)
def transcribe_recording(recording_id: int) -> str:
    """Transcribe a case's stored recording, unless the live stream already did."""
    ctx = context()
    with ctx.database.session() as session, session.begin():
        recording = services.get_recording(session, recording_id=recording_id)
        case = recording.case
        if case is None or recording.status != RecordingStatus.STORED or not recording.storage_path:
            return "nothing to transcribe"
        if services.has_complete_transcript(session, call_id=recording.call_id):
            return "already transcribed"
        locale, case_number = case.locale, case.number
        path = ctx.settings.recordings_dir / recording.storage_path

    extra = {"recording_id": recording_id, "case_number": case_number}
    try:
        model = ctx.models.get(locale)
        result = transcribe(decode_wav(path.read_bytes()), model)
    except ModelUnavailableError as error:
        return _transcription_failed(ctx, recording_id, f"no speech model: {error}", extra)
    except AudioError as error:
        return _transcription_failed(ctx, recording_id, f"unreadable audio: {error}", extra)
    except Exception as error:  # the case must reach a person whatever broke
        log.exception("transcription crashed", extra=extra)
        return _transcription_failed(ctx, recording_id, f"transcription failed: {error}", extra)

    with ctx.database.session() as session, session.begin():
        recording = services.get_recording(session, recording_id=recording_id)
        stored = services.store_transcript(
            session,
            call=recording.call,
            source="batch",
            complete=True,
            result=transcript_text(result),
        )
        case_id = recording.case_id
    log.info("batch transcript stored" if stored else "live transcript won the race", extra=extra)
    if stored and case_id is not None:
        enqueue(route_case, case_id)
    return "transcribed" if stored else "already transcribed"


@shared_task(name="ivr.route_case", acks_late=True)
def route_case(case_id: int) -> str:
    """Classify the case's transcript and route it; a case is routed once, whatever repeats."""
    ctx = context()
    with ctx.database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        if case.routed_at is not None:
            return "already routed"
        if case.transcript is None or not case.transcript.complete:
            return "no transcript yet"  # the transcript's arrival queues this job again
        text, opened_at, case_number = case.transcript.text, case.opened_at, case.number
        directory = routes_from_categories(session.scalars(select(Category)))
    extra = {"case_id": case_id, "case_number": case_number}
    try:
        outcome = ctx.router.outcome(text, opened_at=opened_at, directory=directory or None)
    except ClassifierMissingError as error:
        with ctx.database.session() as session, session.begin():
            services.flag_for_review(
                session, case=session.get_one(Case, case_id), reason=str(error)
            )
        log.error("cannot route: %s", error, extra=extra)
        return "flagged"
    with ctx.database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        routed = services.route_case(session, case=case, outcome=outcome)
        # The push to the department (and leadership's copy) leaves after this commits.
        lifecycle.deliver_routed_case(session, case=case)
    log.info(
        "case routed to %s (%s, %s, confidence %.2f)",
        outcome.department,
        outcome.category,
        outcome.urgency,
        outcome.confidence,
        extra=extra,
    )
    return "routed" if routed else "already routed"


def _transcription_failed(
    ctx: JobContext, recording_id: int, reason: str, extra: dict[str, object]
) -> str:
    with ctx.database.session() as session, session.begin():
        recording = services.get_recording(session, recording_id=recording_id)
        if recording.case is not None:
            services.flag_for_review(session, case=recording.case, reason=reason)
    log.warning("%s; case sent to the dispatch desk to listen", reason, extra=extra)
    return "flagged"


@shared_task(bind=True, name="ivr.send_case_number_sms", max_retries=None, acks_late=True)
def send_case_number_sms(self: Task, case_id: int) -> str:
    """Text the caller their case number; a failure is retried and never touches the call."""
    ctx = context()
    settings = ctx.settings
    with ctx.database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        if case.sms_status != SmsStatus.PENDING or not case.caller_number:
            return str(case.sms_status)
        to, number = case.caller_number, case.number
        prompts = ctx.prompts.get(case.locale) or next(iter(ctx.prompts.values()))
        body = prompts.text("sms_case_opened", number=number)

    if not settings.sms_enabled:
        log.info(
            "SMS not configured; would send to %s: %s", to, body, extra={"case_number": number}
        )
        _record_sms(ctx, case_id, SmsStatus.LOGGED)
        return SmsStatus.LOGGED

    client = sms.twilio_client(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        api_base_url=settings.twilio_api_base_url,
    )
    try:
        message_sid = sms.send_sms(
            client, to=to, from_number=settings.twilio_from_number, body=body
        )
    except (TwilioException, OSError) as error:
        if self.request.retries >= settings.sms_retries:
            _record_sms(ctx, case_id, SmsStatus.FAILED, error=outbox.hide_phone_numbers(str(error)))
            return SmsStatus.FAILED
        log.warning("SMS failed (%s); retrying", error, extra={"case_number": number})
        countdown = _backoff(settings.sms_backoff, self.request.retries)
        raise self.retry(countdown=countdown) from error
    _record_sms(ctx, case_id, SmsStatus.SENT, message_sid=message_sid)
    log.info("SMS sent", extra={"case_number": number, "message_sid": message_sid})
    return SmsStatus.SENT


def _record_sms(
    ctx: JobContext,
    case_id: int,
    status: SmsStatus,
    *,
    message_sid: str | None = None,
    error: str | None = None,
) -> None:
    with ctx.database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        services.record_sms_result(
            session, case=case, status=status, message_sid=message_sid, error=error
        )


@shared_task(name="ivr.requeue_stalled_fetches")
def requeue_stalled_fetches() -> int:
    """Beat job: re-send fetches lost to a broker outage or a worker crash."""
    ctx = context()
    now = utcnow()
    with ctx.database.session() as session, session.begin():
        stalled = session.scalars(
            select(Recording.id).where(
                Recording.status == RecordingStatus.PENDING,
                or_(
                    (Recording.last_attempt_at.is_(None))
                    & (Recording.created_at < now - NEVER_STARTED_AFTER),
                    Recording.last_attempt_at < now - STALLED_AFTER,
                ),
            )
        ).all()
    for recording_id in stalled:
        enqueue(fetch_recording, recording_id)
    return len(stalled)
