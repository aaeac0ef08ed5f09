"""After-call jobs: fetch the recording from Twilio, transcribe it. They take ids and can run
twice. Jobs are given the shell's `Wiring` as their first argument
(`hotline.celery_app.WiredTask`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError, OperationalError

from cases import intake, lifecycle, models
from cases.attachments import write_atomically
from cases.models import Call, Case, Recording, RecordingStatus, SmsStatus, utcnow
from delivery import tasks as delivery_tasks
from ivr import recordings
from ivr.steps import RecordedStep
from routing import tasks as routing_tasks
from transcription.audio import AudioError, decode_wav
from transcription.models import ModelUnavailableError
from transcription.recognizer import Transcript, transcribe

if TYPE_CHECKING:
    from hotline.wiring import Wiring

log = logging.getLogger("hotline.jobs")


def enqueue(task: Any, *args: Any) -> None:
    """Send a job; if the broker is down the call must go on, and the sweep sends it later."""
    try:
        task.delay(*args)
    except Exception:
        log.exception("could not enqueue %s%r; the sweep will retry", task.name, args)


def transcript_text(transcript: Transcript) -> intake.TranscriptText:
    """The engine's transcript as the plain data the case keeps."""
    return intake.TranscriptText(
        text=transcript.text,
        words=[word.to_dict() for word in transcript.words],
        duration_seconds=transcript.duration_seconds,
        engine=transcript.engine,
        model=transcript.model,
        processing_seconds=transcript.processing_seconds,
    )


def _backoff(base: float, retries: int) -> float:
    return min(base * 2.0 ** int(retries), 600.0)


@shared_task(bind=True, name="ivr.fetch_recording", max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def fetch_recording(self: Task, wiring: Wiring, recording_id: int) -> str:
    """Download a recording from Twilio and store it; retry while Twilio answers 404."""
    settings = wiring.settings
    with wiring.database.session() as session, session.begin():
        recording = intake.claim_recording_fetch(
            session,
            recording_id=recording_id,
            job_id=self.request.id or "eager",
            # A fetch chain is retried for minutes; one silent for longer lost its worker.
            stale_before=utcnow() - timedelta(seconds=settings.jobs_stalled_seconds),
        )
        if recording is None:
            # Settled already, or another job is on it: a repeat changes nothing.
            return str(intake.get_recording(session, recording_id=recording_id).status)
        url, name = recording.source_url, recording.recording_sid or f"recording-{recording.id}"
        folder = Path(f"{recording.created_at:%Y/%m}")

    auth = (settings.twilio_account_sid, settings.twilio_auth_token)
    try:
        fetched = recordings.download(url, auth=auth, max_bytes=settings.recording_max_bytes)
    except recordings.RecordingNotReadyError as error:
        if self.request.retries >= settings.recording_fetch_retries:
            _give_up(wiring, recording_id, RecordingStatus.MISSING, f"never arrived: {error}")
            return RecordingStatus.MISSING
        log.info("recording not ready (%s); retrying", error, extra={"recording_id": recording_id})
        countdown = _backoff(settings.recording_fetch_backoff, self.request.retries)
        raise self.retry(countdown=countdown) from error
    except recordings.RecordingRejectedError as error:
        kept = None
        if error.data:
            # Keep what arrived: a person may still make sense of it.
            kept = folder / f"{name}.rejected"
            write_atomically(settings.recordings_dir / kept, error.data)
        _give_up(wiring, recording_id, RecordingStatus.INVALID, str(error), kept)
        return RecordingStatus.INVALID

    relative = folder / f"{name}.wav"
    try:
        write_atomically(settings.recordings_dir / relative, fetched.data)
    except OSError as error:  # a full disk, above all: nothing was written
        return _store_failed(self, wiring, recording_id, error, settings.recordings_dir / relative)
    with wiring.database.session() as session, session.begin():
        recording = intake.get_recording(session, recording_id=recording_id)
        intake.mark_recording_stored(
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


# What the desk reads on a case whose audio could not be written here (staff read Chinese; the
# error itself, with its errno and path, goes to the log).
STORE_FAILED_REASON = (
    "录音无法保存到本机（磁盘已满或存储故障）；录音仍在 Twilio，空间恢复后自动重新下载"
)


def _store_failed(task: Task, wiring: Wiring, recording_id: int, error: OSError, path: Path) -> str:
    """The audio could not be written (a full disk): its case goes to the desk at once, and
    the fetch is tried again, since Twilio keeps the recording. After the retries the row is
    left pending, and the stalled-fetch sweep tries again later."""
    settings = wiring.settings
    with wiring.database.session() as session, session.begin():
        recording = intake.get_recording(session, recording_id=recording_id)
        case = recording.case
        # Once per case: a retry that fails the same way adds nothing for the desk to read.
        if case is not None and STORE_FAILED_REASON not in (case.review_reason or ""):
            lifecycle.flag_for_review(session, case=case, reason=STORE_FAILED_REASON)
        case_number = case.number if case is not None else None
    log.error(
        "recording could not be stored (%s); case sent to the dispatch desk",
        error,
        extra={
            "recording_id": recording_id,
            "case_number": case_number,
            "errno": error.errno,
            "path": str(path),
        },
    )
    if task.request.retries >= settings.recording_fetch_retries:
        return "not stored"
    countdown = _backoff(settings.recording_fetch_backoff, task.request.retries)
    raise task.retry(countdown=countdown, exc=error)


def _give_up(
    wiring: Wiring,
    recording_id: int,
    status: RecordingStatus,
    reason: str,
    kept: Path | None = None,
) -> None:
    with wiring.database.session() as session, session.begin():
        recording = intake.get_recording(session, recording_id=recording_id)
        intake.mark_recording_failed(
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


@shared_task(name="ivr.transcribe_recording", acks_late=True)  # type: ignore[untyped-decorator]
def transcribe_recording(wiring: Wiring, recording_id: int) -> str:
    """Transcribe a case's stored recording, unless the live stream already did."""
    with wiring.database.session() as session, session.begin():
        recording = intake.get_recording(session, recording_id=recording_id)
        case = recording.case
        if case is None or recording.status != RecordingStatus.STORED or not recording.storage_path:
            return "nothing to transcribe"
        if intake.has_complete_transcript(session, call_id=recording.call_id):
            return "already transcribed"
        locale, case_number = case.locale, case.number
        path = wiring.settings.recordings_dir / recording.storage_path

    extra = {"recording_id": recording_id, "case_number": case_number}
    try:
        model = wiring.models.get(locale)
        result = transcribe(decode_wav(path.read_bytes()), model)
    except ModelUnavailableError as error:
        return _transcription_failed(wiring, recording_id, f"no speech model: {error}", extra)
    except AudioError as error:
        return _transcription_failed(wiring, recording_id, f"unreadable audio: {error}", extra)
    except Exception as error:  # the case must reach a person whatever broke
        log.exception("transcription crashed", extra=extra)
        return _transcription_failed(wiring, recording_id, f"transcription failed: {error}", extra)

    with wiring.database.session() as session, session.begin():
        recording = intake.get_recording(session, recording_id=recording_id)
        # Locked: a re-driven run beside a slow one waits here, then finds the transcript
        # complete and stores nothing (without the lock both would, and route twice).
        session.get_one(Call, recording.call_id, with_for_update=True)
        stored = intake.store_transcript(
            session,
            call=recording.call,
            source="batch",
            complete=True,
            result=transcript_text(result),
        )
        case_id = recording.case_id
    log.info("batch transcript stored" if stored else "live transcript won the race", extra=extra)
    if stored and case_id is not None:
        enqueue(routing_tasks.route_case, case_id)
    return "transcribed" if stored else "already transcribed"


def _transcription_failed(
    wiring: Wiring, recording_id: int, reason: str, extra: dict[str, object]
) -> str:
    with wiring.database.session() as session, session.begin():
        recording = intake.get_recording(session, recording_id=recording_id)
        if recording.case is not None:
            lifecycle.flag_for_review(session, case=recording.case, reason=reason)
            routing_tasks.give_triage_deadline(session, case=recording.case, router=wiring.router)
    log.warning("%s; case sent to the dispatch desk to listen", reason, extra=extra)
    return "flagged"


def hand_over_report(form: dict[str, str], locale: str) -> bool:
    """The Record action could not open its case (the database is out): hand the report to
    `open_case_later` through the broker, which does not depend on the database. Whether the
    broker took it."""
    try:
        open_case_later.delay(form, locale)
    except Exception:
        log.exception("could not hand over the report", extra={"call_sid": form.get("CallSid")})
        return False
    log.warning(
        "report handed to a job until the database is back",
        extra={"call_sid": form.get("CallSid"), "recording_sid": form.get("RecordingSid")},
    )
    return True


@shared_task(bind=True, name="ivr.open_case_later", max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def open_case_later(self: Task, wiring: Wiring, form: dict[str, str], locale: str) -> str:
    """Open the case of a report whose Record action failed, once the database answers.

    It does what the action would have (`ivr.views.recorded`): the same CallSid and
    RecordingSid find a case opened meanwhile (the caller, asked to record again, may have
    been luckier), so a report handed over twice still opens one case.
    """
    step = RecordedStep.from_form(form)
    if step.report is None:
        return "nothing recorded"
    try:
        with wiring.database.session() as session, session.begin():
            opened = intake.open_case_from_recording(
                session,
                caller=step.caller,
                locale=locale,
                report=step.report,
                region=wiring.settings.phone_default_region,
            )
            case_id, recording_id = opened.case.id, opened.recording.id
            case_number, created = opened.case.number, opened.created
            sms_follows = opened.case.sms_status != SmsStatus.NONE
    except (OperationalError, IntegrityError) as error:
        # Still out (or a concurrent request kept it first: the retry finds it).
        countdown = _backoff(1.0, self.request.retries)
        raise self.retry(countdown=min(countdown, 60.0)) from error
    if created:
        enqueue(fetch_recording, recording_id)
        if sms_follows:
            enqueue(delivery_tasks.send_case_number_text, case_id)
    log.info(
        "case opened from a handed-over report" if created else "handed-over report: case exists",
        extra={"call_sid": step.caller.call_sid, "case_number": case_number},
    )
    return case_number


@shared_task(name="ivr.requeue_stalled_fetches")  # type: ignore[untyped-decorator]
def requeue_stalled_fetches(wiring: Wiring) -> int:
    """Beat job: re-send fetches and transcriptions lost to a broker outage or a dead worker.

    The rows are the jobs' outbox: a recording still `pending` is a fetch owed, a stored one
    whose case has no complete transcript is a transcription owed. Both jobs are idempotent,
    so one queued twice (a slow job taken for a lost one) costs time, never a second result.
    Cases already with the desk (flagged for review) are left to the person listening.
    """
    settings, now = wiring.settings, utcnow()
    lost_before = now - timedelta(seconds=settings.jobs_lost_after_seconds)
    stalled_before = now - timedelta(seconds=settings.jobs_stalled_seconds)
    with wiring.database.session() as session, session.begin():
        stalled = session.scalars(
            select(Recording.id)
            .where(
                Recording.status == RecordingStatus.PENDING,
                or_(
                    (Recording.last_attempt_at.is_(None)) & (Recording.created_at < lost_before),
                    Recording.last_attempt_at < stalled_before,
                ),
            )
            .with_for_update(skip_locked=True)
        ).all()
        complete = select(models.Transcript.id).where(
            models.Transcript.call_id == Recording.call_id, models.Transcript.complete
        )
        untranscribed = session.scalars(
            select(Recording.id)
            .join(Case, Recording.case_id == Case.id)
            .where(
                Recording.status == RecordingStatus.STORED,
                Recording.stored_at < lost_before,
                ~Case.needs_review,
                ~complete.exists(),
            )
            # A case whose row another transaction holds is being worked on, not lost: its
            # job would only wait on the lock. CI's PostgreSQL run showed how that ends: a
            # transaction left open on a case held its row, the sweep queued the case's
            # transcription every 2 s, and both of a transcriber's threads waited on the row
            # for good while the calls behind them were never transcribed (the threads' stacks,
            # dumped on SIGUSR1 by tests/faults, were blocked in that UPDATE).
            .with_for_update(of=Case, skip_locked=True)
        ).all()
    for recording_id in stalled:
        enqueue(fetch_recording, recording_id)
    for recording_id in untranscribed:
        enqueue(transcribe_recording, recording_id)
    if stalled or untranscribed:
        log.warning("re-queued %d fetches and %d transcriptions", len(stalled), len(untranscribed))
    return len(stalled) + len(untranscribed)
