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

from cases import intake, lifecycle
from cases.models import Recording, RecordingStatus, utcnow
from ivr import recordings
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


# A fetch chain is retried for about nine minutes at most; one silent for longer was lost.
STALLED_AFTER = timedelta(minutes=15)
NEVER_STARTED_AFTER = timedelta(minutes=2)


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
            stale_before=utcnow() - STALLED_AFTER,
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
            recordings.write_atomically(settings.recordings_dir / kept, error.data)
        _give_up(wiring, recording_id, RecordingStatus.INVALID, str(error), kept)
        return RecordingStatus.INVALID

    relative = folder / f"{name}.wav"
    recordings.write_atomically(settings.recordings_dir / relative, fetched.data)
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
    log.warning("%s; case sent to the dispatch desk to listen", reason, extra=extra)
    return "flagged"


@shared_task(name="ivr.requeue_stalled_fetches")  # type: ignore[untyped-decorator]
def requeue_stalled_fetches(wiring: Wiring) -> int:
    """Beat job: re-send fetches lost to a broker outage or a worker crash."""
    now = utcnow()
    with wiring.database.session() as session, session.begin():
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
