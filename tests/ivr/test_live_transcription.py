"""The live path: a report streamed over a real WebSocket into the real Korean Vosk model,
with the batch job on a real Celery worker filling in whatever the live path missed."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import simple_websocket
from flask import Flask
from twilio.request_validator import RequestValidator

from cases import models
from emulator import Speak, TwilioEmulator
from hotline.wiring import Wiring, wiring_of
from ivr import streams
from ivr.prompts import Prompts
from tests.conftest import AUDIO, AUTH_TOKEN, PUBLIC_BASE_URL, wait_until
from tests.support.calls import Lookups
from transcription.audio import decode_wav
from transcription.models import LoadedModel
from transcription.quality import character_error_rate
from transcription.recognizer import Transcript, TranscriptionError, transcribe

pytestmark = pytest.mark.usefixtures("celery_worker")

KOREAN = "3"
FIXTURES = ["ko_water", "ko_garbage", "ko_parking"]


def wav(name: str) -> bytes:
    return (AUDIO / f"{name}.wav").read_bytes()


def batch_text(app: Flask, name: str) -> str:
    model = wiring_of(app).models.get("ko-KR")
    return transcribe(decode_wav(wav(name)), model).text


def settled_transcript(
    lookups: Lookups, call_sid: str, *, source: str | None = None
) -> models.Transcript:
    def done() -> models.Transcript | None:
        transcript = lookups.transcript_of(call_sid)
        if transcript and transcript.complete and (source is None or transcript.source == source):
            return transcript
        return None

    return wait_until(done, timeout=60, interval=0.1, what=f"a complete {source} transcript")


def test_the_report_is_streamed_live_and_its_transcript_stored_at_stop(
    emulator: TwilioEmulator, lookups: Lookups, app: Flask
) -> None:
    # Twilio is slow to serve the file here, so the live path is first, as it is in life.
    log = emulator.call([KOREAN, "1", Speak(wav("ko_streetlight"), not_found_first=4)])

    (stream,) = log.streams
    assert stream["url"] == PUBLIC_BASE_URL.replace("https://", "wss://") + "/ivr/stream"
    assert stream["parameters"]["locale"] == "ko-KR"
    transcript = settled_transcript(lookups, log.call_sid)
    assert transcript.source == "live" and transcript.text
    assert transcript.model == "vosk-model-small-ko-0.22"
    assert transcript.duration_seconds == pytest.approx(4.72, abs=0.05)
    case = lookups.case_of(log.call_sid)
    assert transcript.case_id == case.id

    # Vosk dithers its input with a shared random generator, so two decodes of the same
    # audio differ even at one rate; this is a tripwire, the measured figure is printed.
    cer = character_error_rate(batch_text(app, "ko_streetlight"), transcript.text)
    print(f"\nlive (mu-law 8 kHz over the WebSocket) vs batch: CER {cer:.2f}")
    assert cer <= 0.85


def test_locales_without_a_model_are_not_streamed(emulator: TwilioEmulator) -> None:
    log = emulator.call(["1", "1", Speak(wav("ko_water"))])  # zh-CN: no model on this machine
    assert log.streams == []


def test_a_dropped_socket_leaves_a_partial_text_that_the_batch_job_replaces(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call([KOREAN, "1", Speak(wav("ko_road"), drop_stream=True)])

    transcript = settled_transcript(lookups, log.call_sid, source="batch")
    assert transcript.text
    case = lookups.case_of(log.call_sid)
    assert transcript.case_id == case.id and not case.needs_review


class BrokenRecognizer:
    """A live recognizer (`ivr.streams.LiveRecognizer`) whose decoding dies a few frames in,
    as a real one reports it: at the end, as a TranscriptionError."""

    def __init__(self, model: LoadedModel) -> None:
        self.frames = 0

    def put_mulaw(self, payload: bytes) -> None:
        self.frames += 1

    def close(self, timeout: float | None = 60.0) -> Transcript:
        raise TranscriptionError(f"recognizer failed mid-call, after {min(self.frames, 10)} frames")


def test_a_recognizer_failure_during_a_live_call_loses_no_case(
    emulator: TwilioEmulator,
    lookups: Lookups,
    wiring: Wiring,
    monkeypatch: pytest.MonkeyPatch,
    prompts: dict[str, Prompts],
) -> None:
    monkeypatch.setattr(wiring.live, "open_recognizer", BrokenRecognizer)
    log = emulator.call([KOREAN, "1", Speak(wav("ko_noise"))])

    assert log.said[-1].text == prompts["ko-KR"].text("sms_will_follow")  # the call went on
    case = lookups.case_of(log.call_sid)
    transcript = settled_transcript(lookups, log.call_sid, source="batch")
    assert transcript.case_id == case.id


def test_several_calls_at_once_keep_their_texts_apart(
    emulator: TwilioEmulator, lookups: Lookups, app: Flask
) -> None:
    references = {name: batch_text(app, name) for name in FIXTURES}

    def call(name: str) -> str:
        return emulator.call([KOREAN, "1", Speak(wav(name), not_found_first=6)]).call_sid

    with ThreadPoolExecutor(max_workers=len(FIXTURES)) as pool:
        call_sids = dict(zip(FIXTURES, pool.map(call, FIXTURES), strict=True))

    for name, call_sid in call_sids.items():
        text = settled_transcript(lookups, call_sid).text
        distances = {other: character_error_rate(ref, text) for other, ref in references.items()}
        print(f"\n{name}: CER to each call's own batch text {distances}")
        assert min(distances, key=distances.__getitem__) == name


@pytest.mark.parametrize("signature", [None, "RSOYDt4T1cUTdK1PDd93/VVr8B8="])
def test_an_unsigned_or_forged_stream_upgrade_is_refused_before_the_handshake(
    live_server: str, signature: str | None
) -> None:
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    if signature:
        upgrade["X-Twilio-Signature"] = signature
    answer = requests.get(live_server + "/ivr/stream", headers=upgrade, timeout=10)
    assert answer.status_code == 403


@pytest.mark.parametrize("token", ["another call's", "not ASCII"])
def test_a_stream_with_another_calls_token_stores_nothing(
    token: str,
    live_server: str,
    emulator: TwilioEmulator,
    lookups: Lookups,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = emulator.call([KOREAN, "2"])  # a real call, but no report
    url = PUBLIC_BASE_URL.replace("https://", "wss://") + "/ivr/stream"
    socket = simple_websocket.Client.connect(
        live_server.replace("http", "ws") + "/ivr/stream",
        headers={"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, {})},
    )
    start = {
        "callSid": log.call_sid,
        "customParameters": {
            "token": streams.stream_token("wrong", log.call_sid)
            if token == "another call's"
            else "令牌" * 16,
            "locale": "ko-KR",
        },
    }
    socket.send(json.dumps({"event": "start", "start": start}))
    with pytest.raises(simple_websocket.ConnectionClosed):
        for _ in range(100):
            socket.receive(timeout=0.1)
    assert lookups.transcript_of(log.call_sid) is None
    assert "media stream with a wrong token" in caplog.text  # refused, not crashed


def test_past_the_live_capacity_a_call_is_left_to_the_batch_job(
    emulator: TwilioEmulator, lookups: Lookups, wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiring.live, "max_streams", 0)

    log = emulator.call([KOREAN, "1", Speak(wav("ko_parking"))])

    assert log.streams  # the stream was offered, but not decoded here
    transcript = settled_transcript(lookups, log.call_sid)
    assert transcript.source == "batch" and transcript.text
    assert streams.active_streams() == 0
