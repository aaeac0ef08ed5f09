"""After-call jobs on a real Celery worker: fetching recordings and texting case numbers."""

from __future__ import annotations

import hashlib
import re

import pytest

from cases.models import CaseStatus, RecordingStatus, SmsStatus
from hotline.config import load_settings
from ivr import tasks
from ivr.emulator import Speak, TwilioEmulator
from tests.conftest import AUDIO, wait_until
from tests.ivr.conftest import SPEECH

pytestmark = pytest.mark.usefixtures("celery_worker")


def settled_recording(lookups, call_sid: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    """The call's case once its recording left `pending`."""

    def settled() -> bool:
        return lookups.case_of(call_sid).recordings[0].status != RecordingStatus.PENDING

    wait_until(settled, timeout=timeout, interval=0.2, what="the recording job")
    # Read again: the poll's case and recording rows came from two statements, which under
    # READ COMMITTED may straddle the job's commit.
    return lookups.case_of(call_sid)


def test_a_recording_that_is_404_first_is_fetched_and_stored(
    emulator: TwilioEmulator, lookups, recording_server, environ
) -> None:
    # In Korean, the language with a model here: a Mandarin case would (rightly) be flagged
    # for listening by the transcription job, which is not what this test is about.
    log = emulator.call(["3", "1", Speak(SPEECH, not_found_first=2)])

    case = settled_recording(lookups, log.call_sid)
    recording = case.recordings[0]
    assert recording.status == RecordingStatus.STORED
    stored = load_settings(environ).recordings_dir / recording.storage_path
    assert stored.read_bytes() == SPEECH
    assert recording.sha256 == hashlib.sha256(SPEECH).hexdigest()
    assert (recording.sample_rate, recording.channels) == (8000, 1)
    assert recording.duration_seconds == pytest.approx(4.72, abs=0.01)
    assert recording_server.hits(recording.recording_sid) >= 3  # two 404s, then the audio
    assert recording.fetch_attempts >= 3
    assert not case.needs_review
    assert [e.kind for e in case.events].count("recording_stored") == 1


def test_fetching_again_changes_nothing(
    emulator: TwilioEmulator, lookups, recording_server
) -> None:
    log = emulator.call(["1", "1", Speak(SPEECH, not_found_first=0)])
    case = settled_recording(lookups, log.call_sid)
    recording = case.recordings[0]
    hits = recording_server.hits(recording.recording_sid)

    assert tasks.fetch_recording.apply(args=[recording.id]).get() == RecordingStatus.STORED

    assert recording_server.hits(recording.recording_sid) == hits
    again = lookups.case_of(log.call_sid)
    assert [e.kind for e in again.events].count("recording_stored") == 1


def test_a_recording_that_never_arrives_keeps_the_case_and_flags_it_for_the_desk(
    emulator: TwilioEmulator, lookups, recording_server
) -> None:
    log = emulator.call(["1", "1", Speak(SPEECH, never_arrives=True)])

    case = settled_recording(lookups, log.call_sid)
    assert case.recordings[0].status == RecordingStatus.MISSING
    assert case.needs_review and "never arrived" in (case.review_reason or "")
    assert case.status == CaseStatus.TRIAGE and case.department_code == "hotline_office"
    assert "flagged_for_review" in [event.kind for event in case.events]
    # Retried with backoff: RECORDING_FETCH_RETRIES=4 in the tests, so five tries in all.
    assert recording_server.hits(case.recordings[0].recording_sid) == 5


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
    audio: bytes, reason: str, emulator: TwilioEmulator, lookups, environ
) -> None:
    if reason == "no audio":  # a header that promises nothing
        audio = audio[:40] + (0).to_bytes(4, "little")
    # Twilio recorded five seconds; what its media URL serves is broken.
    log = emulator.call(["1", "1", Speak(audio, not_found_first=0, reported_duration=5)])

    case = settled_recording(lookups, log.call_sid)
    recording = case.recordings[0]
    assert recording.status == RecordingStatus.INVALID
    assert reason in (recording.last_error or "")
    assert case.needs_review and case.department_code == "hotline_office"
    kept = load_settings(environ).recordings_dir / (recording.storage_path or "")
    assert kept.read_bytes() == audio  # nothing the caller sent is thrown away


def test_the_case_number_is_texted_through_twilios_api(
    emulator: TwilioEmulator, lookups, twilio_api
) -> None:
    emulator.from_number = "+8613911110001"
    log = emulator.call(["2", "1", Speak(SPEECH)])
    number = lookups.case_of(log.call_sid).number

    case = wait_until(
        lambda: (c := lookups.case_of(log.call_sid)).sms_status != SmsStatus.PENDING and c,
        timeout=60,
        what="the SMS job",
    )
    assert case.sms_status == SmsStatus.SENT
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", case.sms_message_sid or "")
    (message,) = twilio_api.messages_to("+8613911110001")
    assert message["status"] == 201  # Prism validated the request against Twilio's spec
    assert number in message["form"]["Body"] and message["form"]["From"] == "+15005550006"
    assert "your report is registered as case" in message["form"]["Body"]  # the caller's language

    # Running the job again sends nothing more.
    assert tasks.send_case_number_sms.apply(args=[case.id]).get() == SmsStatus.SENT
    assert len(twilio_api.messages_to("+8613911110001")) == 1


def test_a_failed_sms_is_retried_and_the_call_is_unaffected(
    emulator: TwilioEmulator, lookups, twilio_api, prompts
) -> None:
    emulator.from_number = "+8613911110002"
    twilio_api.fail_next(2, to="+8613911110002")
    log = emulator.call(["1", "1", Speak(SPEECH)])

    assert log.said[-1].text == prompts["zh-CN"].text("sms_will_follow")  # the call went on
    case = wait_until(
        lambda: (c := lookups.case_of(log.call_sid)).sms_status == SmsStatus.SENT and c,
        timeout=60,
        what="the SMS to be retried and sent",
    )
    assert twilio_api.failures_for("+8613911110002") == 2
    assert len(twilio_api.messages_to("+8613911110002")) == 1
    assert case.sms_message_sid
