"""The live path: a report streamed over a real WebSocket into the real Korean Vosk model,
with the batch job on a real Celery worker filling in whatever the live path missed."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from flask import Flask
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cases import models
from emulator import Speak, TwilioEmulator
from hotline.wiring import Wiring, wiring_of
from ivr import streams
from ivr.prompts import Prompts
from ivr.stream_server import MAX_FRAME_BYTES
from tests.conftest import AUDIO, AUTH_TOKEN, PUBLIC_BASE_URL, wait_until
from tests.support.calls import Lookups
from transcription.audio import decode_wav
from transcription.models import LoadedModel
from transcription.quality import character_error_rate
from transcription.recognizer import Transcript, TranscriptionError, transcribe

pytestmark = pytest.mark.usefixtures("celery_worker")

KOREAN = "3"
FIXTURES = ["ko_water", "ko_garbage", "ko_parking"]
STREAM_URL = PUBLIC_BASE_URL.replace("https://", "wss://") + "/ivr/stream"
SECRET_KEY = "test-secret"  # the session's (tests/conftest.py `environ`)


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
    log = emulator.call(["1", Speak(wav("ko_water"))])  # zh-CN: no model on this machine
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


def open_stream(streams_server: str) -> ClientConnection:
    """A Media Streams socket, upgraded with Twilio's signature over the public stream URL."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(STREAM_URL, {})
    return connect(
        streams_server + "/ivr/stream",
        additional_headers={"X-Twilio-Signature": signature},
        open_timeout=10,
        proxy=None,
        legacy=True,
    )


def start_frame(call_sid: str, token: str) -> str:
    return json.dumps(
        {
            "event": "start",
            "start": {
                "callSid": call_sid,
                "streamSid": "MZ" + "0" * 32,
                "customParameters": {"token": token, "locale": "ko-KR"},
            },
        }
    )


def closed_by_server(socket: ClientConnection) -> int:
    """Wait for the server to close the socket; its close code."""
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(100):
            try:
                socket.recv(timeout=0.1)
            except TimeoutError:
                continue
    assert closed.value.rcvd is not None, "the server did not close the socket"
    return closed.value.rcvd.code


@pytest.mark.parametrize("signature", [None, "RSOYDt4T1cUTdK1PDd93/VVr8B8="])
def test_an_unsigned_or_forged_stream_upgrade_is_refused_before_the_handshake(
    streams_server: str, signature: str | None
) -> None:
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    if signature:
        upgrade["X-Twilio-Signature"] = signature
    url = streams_server.replace("ws://", "http://") + "/ivr/stream"
    answer = requests.get(url, headers=upgrade, timeout=10)
    assert answer.status_code == 403


def test_the_web_process_serves_no_stream_sockets(live_server: str) -> None:
    # A socket would hold one of its threads for a whole recording: they have their own process.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(STREAM_URL, {})
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "X-Twilio-Signature": signature,
    }
    answer = requests.get(live_server + "/ivr/stream", headers=upgrade, timeout=10)
    assert answer.status_code == 404


@pytest.mark.parametrize("token", ["another call's", "not ASCII", "expired", "no expiry"])
def test_a_stream_with_another_calls_or_an_expired_token_stores_nothing(
    token: str,
    streams_server: str,
    emulator: TwilioEmulator,
    lookups: Lookups,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = emulator.call([KOREAN, "9"])  # a real call, but no report
    tokens = {
        "another call's": streams.new_stream_token(SECRET_KEY, emulator.new_call_sid()),
        "not ASCII": "令牌" * 16,
        # A token captured from an earlier call's TwiML, replayed after it expired.
        "expired": streams.stream_token(SECRET_KEY, log.call_sid, expires_at=int(time.time()) - 1),
        # The token of the first release: an HMAC over the call alone, valid for ever.
        "no expiry": "0" * 32,
    }
    socket = open_stream(streams_server)
    socket.send(start_frame(log.call_sid, tokens[token]))
    assert closed_by_server(socket) == 1008  # policy violation
    assert lookups.transcript_of(log.call_sid) is None
    assert "media stream refused" in caplog.text  # refused, not crashed
    assert streams.active_streams() == 0


def test_repeated_start_frames_on_one_socket_leave_real_calls_their_live_transcription(
    emulator: TwilioEmulator,
    lookups: Lookups,
    streams_server: str,
    wiring: Wiring,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(wiring.live, "max_streams", 4)
    # The audit's attack: 4 sockets, each sending 9 starts with a valid token for its call.
    for _ in range(4):
        call_sid = emulator.new_call_sid()
        socket = open_stream(streams_server)
        token = streams.new_stream_token(SECRET_KEY, call_sid)
        try:
            for _ in range(9):
                socket.send(start_frame(call_sid, token))
        except ConnectionClosed:
            pass  # closed after the second start, as it should be
        assert closed_by_server(socket) == 1008
    assert "media stream refused: a second start on one stream" in caplog.text
    wait_until(lambda: streams.active_streams() == 0, timeout=30, what="every slot given back")

    log = emulator.call([KOREAN, "1", Speak(wav("ko_parking"), not_found_first=6)])
    assert settled_transcript(lookups, log.call_sid).source == "live"


GARBAGE: dict[str, str | bytes] = {
    "null": "null",
    "a list": "[]",
    "a number": "123",
    "a null start": '{"start": null}',
    "an event with a null start": '{"event": "start", "start": null}',
    "a start without its call": '{"event": "start", "start": {"customParameters": []}}',
    "not JSON": "{'event': 'start'",
    "nested too deep": "[" * 30_000 + "]" * 30_000,
    "binary": b"\x00\xff" * 80,
    "huge": json.dumps({"event": "media", "media": {"payload": "A" * (MAX_FRAME_BYTES + 1)}}),
    "media that is not base64": '{"event": "media", "media": {"payload": "!!!"}}',
    "media without a payload": '{"event": "media", "media": 5}',
}


@pytest.mark.parametrize("frame", sorted(GARBAGE))
def test_a_garbage_frame_closes_its_socket_and_nothing_else(
    frame: str,
    emulator: TwilioEmulator,
    streams_server: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    call_sid = emulator.new_call_sid()
    socket = open_stream(streams_server)
    if frame.startswith("media"):  # after a good start, as in the middle of a real call
        socket.send(start_frame(call_sid, streams.new_stream_token(SECRET_KEY, call_sid)))
    socket.send(GARBAGE[frame])
    assert closed_by_server(socket) in (1003, 1009)  # unsupported data, or too big
    # A frame over the size limit is refused by the protocol layer itself, which closes the
    # socket before the handler's recv() learns why; the handler's log line comes just after.
    wait_until(lambda: "media stream closed: " in caplog.text, timeout=10, what="the log line")
    assert "Traceback" not in caplog.text and "Error in connection handler" not in caplog.text
    wait_until(lambda: streams.active_streams() == 0, timeout=30, what="every slot given back")

    # The server goes on: the next stream is taken and ends normally at its stop.
    socket = open_stream(streams_server)
    socket.send(start_frame(call_sid, streams.new_stream_token(SECRET_KEY, call_sid)))
    socket.send(json.dumps({"event": "stop", "stop": {"callSid": call_sid}}))
    assert closed_by_server(socket) == 1000


def test_past_the_live_capacity_a_call_is_left_to_the_batch_job(
    emulator: TwilioEmulator, lookups: Lookups, wiring: Wiring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wiring.live, "max_streams", 0)

    log = emulator.call([KOREAN, "1", Speak(wav("ko_parking"))])

    assert log.streams  # the stream was offered, but not decoded here
    transcript = settled_transcript(lookups, log.call_sid)
    assert transcript.source == "batch" and transcript.text
    assert streams.active_streams() == 0
