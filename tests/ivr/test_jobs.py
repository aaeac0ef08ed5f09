"""After-call jobs on a real Celery worker: fetching recordings from Twilio and storing them."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from datetime import timedelta
from typing import cast

import pytest
from sqlalchemy import update

from cases.models import Case, CaseStatus, RecordingStatus, utcnow
from emulator import RecordingServer, Speak, TwilioEmulator
from hotline.config import load_settings
from hotline.wiring import Wiring
from ivr import tasks
from tests.conftest import AUDIO, wait_until
from tests.support.calls import SPEECH, Lookups
from tests.support.factories import make_case
from tests.support.staff import store_recording

pytestmark = pytest.mark.usefixtures("celery_worker")


def settled_recording(lookups: Lookups, call_sid: str, timeout: float = 60) -> Case:
    """The call's case once its recording left `pending`."""

    def settled() -> bool:
        return lookups.case_of(call_sid).recordings[0].status != RecordingStatus.PENDING

    wait_until(settled, timeout=timeout, interval=0.2, what="the recording job")
    # Read again: the poll's case and recording rows came from two statements, which under
    # READ COMMITTED may straddle the job's commit.
    return lookups.case_of(call_sid)


def test_a_recording_that_is_404_first_is_fetched_and_stored(
    emulator: TwilioEmulator,
    lookups: Lookups,
    recording_server: RecordingServer,
    environ: dict[str, str],
    wiring: Wiring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # In Korean, the language with a model here: a Mandarin case would (rightly) be flagged
    # for listening by the transcription job, which is not what this test is about.
    # The Record action listens to the recording for speech unless told not to: here only the
    # job's own fetches may meet the two 404s.
    options = dataclasses.replace(wiring.call_flow.options, speech_check_wait=0)
    monkeypatch.setattr(wiring.call_flow, "options", options)
    log = emulator.call(["3", "1", Speak(SPEECH, not_found_first=2)])

    case = settled_recording(lookups, log.call_sid)
    recording = case.recordings[0]
    assert recording.status == RecordingStatus.STORED
    stored = load_settings(environ).recordings_dir / cast(str, recording.storage_path)
    assert stored.read_bytes() == SPEECH
    assert recording.sha256 == hashlib.sha256(SPEECH).hexdigest()
    assert (recording.sample_rate, recording.channels) == (8000, 1)
    assert recording.duration_seconds == pytest.approx(4.72, abs=0.01)
    assert (
        recording_server.hits(cast(str, recording.recording_sid)) >= 3  # two 404s, then the audio
    )
    assert recording.fetch_attempts >= 3
    assert not case.needs_review
    assert [e.kind for e in case.events].count("recording_stored") == 1


def test_fetching_again_changes_nothing(
    emulator: TwilioEmulator, lookups: Lookups, recording_server: RecordingServer
) -> None:
    log = emulator.call(["1", Speak(SPEECH, not_found_first=0)])
    case = settled_recording(lookups, log.call_sid)
    recording = case.recordings[0]
    hits = recording_server.hits(cast(str, recording.recording_sid))

    assert tasks.fetch_recording.apply(args=[recording.id]).get() == RecordingStatus.STORED

    assert recording_server.hits(cast(str, recording.recording_sid)) == hits
    again = lookups.case_of(log.call_sid)
    assert [e.kind for e in again.events].count("recording_stored") == 1


def test_a_recording_that_never_arrives_keeps_the_case_and_flags_it_for_the_desk(
    emulator: TwilioEmulator, lookups: Lookups, recording_server: RecordingServer
) -> None:
    log = emulator.call(["1", Speak(SPEECH, never_arrives=True)])

    case = settled_recording(lookups, log.call_sid)
    assert case.recordings[0].status == RecordingStatus.MISSING
    assert case.needs_review and "never arrived" in (case.review_reason or "")
    assert case.status == CaseStatus.TRIAGE and case.department_code == "hotline_office"
    assert "flagged_for_review" in [event.kind for event in case.events]
    # Retried with backoff: RECORDING_FETCH_RETRIES=4 in the tests, so five tries in all (the
    # Record action's own listen for speech asks the server too, so count the job's tries).
    assert case.recordings[0].fetch_attempts == 5


@pytest.mark.parametrize(
    ("audio", "reason"),
    [
        (b"this is not audio at all" * 200, "not a WAV"),
        (SPEECH[: len(SPEECH) // 2], "truncated"),
        (SPEECH[:44], "no audio"),
        ((AUDIO / "make_audio.sh").read_bytes(), "not a WAV"),
    ],
    ids=["garbage", "truncated", "zero-length", "wrong-type"],
)
def test_a_corrupt_recording_is_kept_and_its_case_goes_to_the_desk(
    audio: bytes, reason: str, emulator: TwilioEmulator, lookups: Lookups, environ: dict[str, str]
) -> None:
    if reason == "no audio":  # a header that promises nothing
        audio = audio[:40] + (0).to_bytes(4, "little")
    # Twilio recorded five seconds; what its media URL serves is broken.
    log = emulator.call(["1", Speak(audio, not_found_first=0, reported_duration=5)])

    case = settled_recording(lookups, log.call_sid)
    recording = case.recordings[0]
    assert recording.status == RecordingStatus.INVALID
    assert reason in (recording.last_error or "")
    assert case.needs_review and case.department_code == "hotline_office"
    kept = load_settings(environ).recordings_dir / (recording.storage_path or "")
    assert kept.read_bytes() == audio  # nothing the caller sent is thrown away


def test_the_sweep_passes_over_a_case_another_transaction_holds(
    wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case whose row a transaction holds is being worked on: the re-drive sweep neither
    waits for it nor queues its transcription again (queued every sweep, such jobs only
    waited on the row, and held every transcriber thread in CI). Once free, it is queued."""
    database = wiring.database
    if database.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite writes one transaction at a time")
    with database.session() as session, session.begin():
        case = make_case(session, locale="ko-KR")
        if case.transcript is not None:
            session.delete(case.transcript)
        recording = store_recording(
            session, case=case, recordings_dir=wiring.settings.recordings_dir
        )
        recording.stored_at = utcnow() - timedelta(hours=1)
        case_id, recording_id = case.id, recording.id
    queued: list[int] = []
    monkeypatch.setattr(
        tasks,
        "enqueue",
        lambda task, *args: queued.append(args[0]) if task is tasks.transcribe_recording else None,
    )

    with database.session() as holder, holder.begin():
        holder.execute(update(Case).where(Case.id == case_id).values(updated_at=utcnow()))
        started = time.monotonic()
        tasks.requeue_stalled_fetches.apply().get(timeout=30)
        assert time.monotonic() - started < 10  # it did not wait on the held row
        assert recording_id not in queued

    tasks.requeue_stalled_fetches.apply().get(timeout=30)
    assert recording_id in queued
