"""Tests for the Twilio emulator against a tiny signature-checking Flask app (no app code)."""

from __future__ import annotations

import io
import threading
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from emulator import (
    CallLog,
    DialOutcome,
    EmulatorError,
    RecordingServer,
    Speak,
    Step,
    TwilioEmulator,
)

PUBLIC = "https://hotline.example.org"  # what "Twilio" signs; the app really listens elsewhere
TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT = "AC" + "1" * 32

Route = str | tuple[str, int] | Callable[[dict[str, str]], "str | tuple[str, int]"]


def twiml(inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'


def make_wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


@dataclass
class Received:
    path: str  # path plus query string
    form: dict[str, str]
    valid: bool


class FakeApp:
    """Serves canned TwiML per path and rejects requests whose signature doesn't match PUBLIC."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.received: list[Received] = []
        self._validator = RequestValidator(TOKEN)
        flask_app = Flask(__name__)
        flask_app.add_url_rule("/<path:path>", view_func=self._handle, methods=["POST"])
        self._server = make_server("127.0.0.1", 0, flask_app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        # A short poll keeps shutdown (once per test) quick
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _handle(self, path: str) -> Response:
        query = request.query_string.decode()
        full_path = request.path + (f"?{query}" if query else "")
        form = request.form.to_dict()
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = self._validator.validate(PUBLIC + full_path, form, signature)
        self.received.append(Received(full_path, form, valid))
        if not valid:
            return Response("bad signature", status=403)
        route = self.routes.get(full_path, self.routes.get(request.path))
        if route is None:
            return Response("no route", status=404)
        answer = route(form) if callable(route) else route
        body, status = answer if isinstance(answer, tuple) else (answer, 200)
        return Response(body, status=status, mimetype="text/xml")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [received.path for received in self.received]


@pytest.fixture
def app() -> Iterator[FakeApp]:
    fake = FakeApp()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def recordings() -> Iterator[RecordingServer]:
    with RecordingServer(account_sid=ACCOUNT, auth_token=TOKEN) as server:
        yield server


@pytest.fixture
def make_emulator(
    app: FakeApp, recordings: RecordingServer
) -> Iterator[Callable[..., TwilioEmulator]]:
    sessions: list[requests.Session] = []

    def make(cls: type[TwilioEmulator] = TwilioEmulator, **kwargs: Any) -> TwilioEmulator:
        sessions.append(requests.Session())
        options: dict[str, Any] = {
            "public_base_url": PUBLIC,
            "app_url": app.url,
            "auth_token": TOKEN,
            "account_sid": ACCOUNT,
            "recordings": recordings,
            "http": sessions[-1],
        }
        return cls(**(options | kwargs))

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def emulator(make_emulator: Callable[..., TwilioEmulator]) -> TwilioEmulator:
    return make_emulator()


def texts(log: CallLog) -> list[str]:
    return [spoken.text for spoken in log.said]


def test_gather_posts_digits_to_action_signed_over_public_url(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    app.routes["/ivr/voice"] = twiml(
        '<Gather action="/ivr/menu?lang=en-US" numDigits="1">'
        '<Say language="cmn-CN" voice="Polly.Zhiyu">请按键</Say></Gather><Say>No input</Say>'
    )
    app.routes["/ivr/menu"] = twiml('<Say language="en-US">You chose one</Say><Hangup/>')

    log = emulator.call(["1"])

    assert app.paths() == ["/ivr/voice", "/ivr/menu?lang=en-US"]
    assert all(received.valid for received in app.received)
    first, menu = log.steps
    assert menu.url == PUBLIC + "/ivr/menu?lang=en-US"
    assert menu.params["Digits"] == "1"
    assert first.params["CallStatus"] == "ringing" and menu.params["CallStatus"] == "in-progress"
    expected = {"From": "+8613800138000", "Caller": "+8613800138000", "CallSid": log.call_sid}
    expected |= {"AccountSid": ACCOUNT, "Direction": "inbound", "ApiVersion": "2010-04-01"}
    assert {name: menu.params[name] for name in expected} == expected
    assert log.call_sid.startswith("CA") and len(log.call_sid) == 34
    assert first.verbs == ["Gather", "Say"]
    assert [s.text for s in first.said] == ["请按键", "No input"]  # the whole response
    assert texts(log) == ["请按键", "You chose one"]  # what the caller heard
    assert (log.said[0].language, log.said[0].voice) == ("cmn-CN", "Polly.Zhiyu")
    assert log.ended_by == "hangup-verb"
    transcript = log.transcript()
    for line in ("→ POST /ivr/voice", "← Say[cmn-CN] 请按键", "⏎ pressed 1"):
        assert line in transcript
    assert "→ POST /ivr/menu?lang=en-US Digits=1" in transcript


@pytest.mark.parametrize("silence", [None, ""])
def test_gather_timeout_falls_through_and_exhausted_script_hangs_up(
    app: FakeApp, emulator: TwilioEmulator, silence: str | None
) -> None:
    app.routes["/ivr/voice"] = twiml(
        '<Gather numDigits="1"><Say>Menu</Say></Gather><Say>No input</Say>'
        "<Redirect>/ivr/voice</Redirect>"
    )

    log = emulator.call([silence])

    assert app.paths() == ["/ivr/voice", "/ivr/voice"]
    assert "Digits" not in log.steps[1].params
    assert texts(log) == ["Menu", "No input", "Menu"]
    assert log.ended_by == "caller-hangup"


@pytest.mark.parametrize(
    ("attributes", "pressed", "digits"),
    [
        ('numDigits="3"', "12345", "123"),
        ("", "42#9", "42"),
        ('finishOnKey="*"', "7*#", "7"),
        ('finishOnKey=""', "12#", "12#"),
        ('numDigits="4"', "1#", "1"),
    ],
)
def test_gather_honours_num_digits_and_finish_on_key(
    app: FakeApp, emulator: TwilioEmulator, attributes: str, pressed: str, digits: str
) -> None:
    def voice(form: dict[str, str]) -> str:
        return twiml("<Hangup/>") if "Digits" in form else twiml(f"<Gather {attributes}/>")

    app.routes["/ivr/voice"] = voice

    log = emulator.call([pressed])

    assert log.steps[1].url == PUBLIC + "/ivr/voice"  # no action: back to the current URL
    assert log.steps[1].params["Digits"] == digits


def test_gather_rejects_script_mismatches(app: FakeApp, emulator: TwilioEmulator) -> None:
    app.routes["/ivr/voice"] = twiml("<Gather/>")

    with pytest.raises(EmulatorError, match=r"step 1 \(/ivr/voice\).*Speak"):
        emulator.call([Speak(make_wav(1))])
    with pytest.raises(EmulatorError, match="can't take keys"):
        emulator.call(["12a"])


def test_record_posts_action_and_status_callback_and_publishes_audio(
    app: FakeApp, emulator: TwilioEmulator, recordings: RecordingServer
) -> None:
    wav = make_wav(3)
    app.routes["/ivr/voice"] = twiml(
        "<Say>Speak after the tone</Say>"
        '<Record action="recorded" finishOnKey="#" recordingStatusCallback="/ivr/rec-status"/>'
        "<Say>Not heard</Say>"
    )
    app.routes["/ivr/recorded"] = twiml("<Say>Thanks</Say><Hangup/>")
    app.routes["/ivr/rec-status"] = ("", 204)

    log = emulator.call([Speak(wav)])

    assert app.paths() == ["/ivr/voice", "/ivr/recorded", "/ivr/rec-status"]
    assert all(received.valid for received in app.received)
    action, callback = log.steps[1], log.steps[2]
    assert action.url == PUBLIC + "/ivr/recorded"  # relative action resolved against /ivr/voice
    recorded = ("RecordingSid", "RecordingUrl", "RecordingDuration", "Digits")
    assert log.recordings == [{name: action.params[name] for name in recorded}]
    sid, url = action.params["RecordingSid"], action.params["RecordingUrl"]
    assert sid.startswith("RE") and len(sid) == 34
    assert url == f"{recordings.base_url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{sid}"
    assert (action.params["RecordingDuration"], action.params["Digits"]) == ("3", "#")
    assert callback.status_code == 204
    assert callback.params == {
        "CallSid": log.call_sid,
        "AccountSid": ACCOUNT,
        "RecordingSid": sid,
        "RecordingUrl": url,
        "RecordingStatus": "completed",
        "RecordingDuration": "3",
        "RecordingChannels": "1",
        "RecordingSource": "RecordVerb",
    }
    assert texts(log) == ["Speak after the tone", "Thanks"]
    assert log.ended_by == "hangup-verb"

    unauthorised = requests.get(url, timeout=5)
    assert unauthorised.status_code == 401
    assert unauthorised.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert requests.get(url, auth=(ACCOUNT, "wrong"), timeout=5).status_code == 401
    assert recordings.hits(sid) == 0  # unauthorised requests don't count
    not_yet = requests.get(url, auth=(ACCOUNT, TOKEN), timeout=5)
    assert not_yet.status_code == 404
    assert not_yet.json()["code"] == 20404
    for fetched in (url, url + ".wav"):
        ready = requests.get(fetched, auth=(ACCOUNT, TOKEN), timeout=5)
        assert ready.status_code == 200
        assert ready.headers["Content-Type"] == "audio/x-wav"
        assert ready.content == wav
    assert recordings.hits(sid) == 3


def test_recording_server_never_arrives_and_unknown_sids(recordings: RecordingServer) -> None:
    url = recordings.add("RE" + "a" * 32, b"RIFF", never_arrives=True)
    late = recordings.add("RE" + "b" * 32, b"RIFF", not_found_first=2)

    statuses = [requests.get(url, auth=(ACCOUNT, TOKEN), timeout=5).status_code for _ in range(3)]
    late_statuses = [
        requests.get(late + ".wav", auth=(ACCOUNT, TOKEN), timeout=5).status_code for _ in range(3)
    ]
    unknown = url.replace("a" * 32, "c" * 32)

    assert statuses == [404, 404, 404]
    assert late_statuses == [404, 404, 200]
    assert recordings.hits("RE" + "a" * 32) == 3
    assert requests.get(unknown, auth=(ACCOUNT, TOKEN), timeout=5).status_code == 404
    assert recordings.hits("RE" + "c" * 32) == 0


@pytest.mark.parametrize("end", ["#", "timeout"])
def test_silent_caller_falls_through_the_record(
    app: FakeApp, emulator: TwilioEmulator, end: str
) -> None:
    app.routes["/ivr/voice"] = twiml(
        '<Record action="/ivr/recorded"/><Say>We heard nothing</Say><Hangup/>'
    )

    log = emulator.call([Speak(None, end=end)])

    assert app.paths() == ["/ivr/voice"]
    assert log.recordings == []
    assert texts(log) == ["We heard nothing"]
    assert log.ended_by == "hangup-verb"


@pytest.mark.parametrize("wav", [make_wav(2), None])
def test_hangup_while_recording_posts_action_then_ends_the_call(
    app: FakeApp, emulator: TwilioEmulator, wav: bytes | None
) -> None:
    app.routes["/ivr/voice"] = twiml('<Record action="/ivr/recorded"/>')
    # Twilio ignores TwiML answered after the caller hung up: neither followed nor heard
    app.routes["/ivr/recorded"] = twiml("<Say>Ignored</Say><Redirect>/ivr/voice</Redirect>")

    log = emulator.call([Speak(wav, end="hangup")])

    assert app.paths() == ["/ivr/voice", "/ivr/recorded"]
    params = log.steps[1].params
    assert (params["Digits"], params["CallStatus"]) == ("hangup", "completed")
    assert params["RecordingDuration"] == ("2" if wav else "0")
    assert ("RecordingUrl" in params) == (wav is not None)
    assert texts(log) == []
    assert log.ended_by == "caller-hangup"


def test_record_ended_by_timeout_sends_no_digits_and_tolerates_raw_audio(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    app.routes["/ivr/voice"] = twiml('<Record action="/ivr/recorded"/>')
    app.routes["/ivr/recorded"] = twiml("<Hangup/>")

    log = emulator.call([Speak(b"\x01" * 32000, end="timeout")])  # not a WAV: 16 kB/s assumed

    assert "Digits" not in log.steps[1].params
    assert log.steps[1].params["RecordingDuration"] == "2"


def test_record_with_exhausted_script_hangs_up_without_posting(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    app.routes["/ivr/voice"] = twiml('<Record action="/ivr/recorded"/>')

    log = emulator.call([])

    assert app.paths() == ["/ivr/voice"]
    assert (log.recordings, log.ended_by) == ([], "caller-hangup")


def test_redirect_resolves_relative_urls(app: FakeApp, emulator: TwilioEmulator) -> None:
    app.routes["/ivr/voice"] = twiml("<Redirect>menu?lang=ko-KR</Redirect>")
    app.routes["/ivr/menu"] = twiml('<Say language="ko-KR">안녕하세요</Say>')

    log = emulator.call([])

    assert app.paths() == ["/ivr/voice", "/ivr/menu?lang=ko-KR"]
    assert log.steps[1].url == PUBLIC + "/ivr/menu?lang=ko-KR"
    assert texts(log) == ["안녕하세요"]
    assert log.ended_by == "end-of-twiml"


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(DialOutcome("busy"), ("busy", "0")), (DialOutcome("completed", 42), ("completed", "42"))],
)
def test_dial_with_action_posts_the_outcome(
    app: FakeApp, emulator: TwilioEmulator, outcome: DialOutcome, expected: tuple[str, str]
) -> None:
    app.routes["/ivr/voice"] = twiml(
        '<Dial action="/ivr/after-dial" timeout="20">'
        "<Number>+865371234567</Number><Number>+865370000000</Number></Dial><Say>Skipped</Say>"
    )
    app.routes["/ivr/after-dial"] = twiml("<Say>Goodbye</Say><Hangup/>")

    log = emulator.call([outcome])

    assert log.dialed == [["+865371234567", "+865370000000"]]
    params = log.steps[1].params
    assert (params["DialCallStatus"], params["DialCallDuration"]) == expected
    assert ("DialCallSid" in params) == (outcome.status == "completed")
    assert texts(log) == ["Goodbye"]


def test_dial_without_action_continues_and_keeps_other_inputs(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    def voice(form: dict[str, str]) -> str:
        if "Digits" in form:
            return twiml("<Hangup/>")
        return twiml('<Dial>+865371234567</Dial><Gather numDigits="1"/>')

    app.routes["/ivr/voice"] = voice

    log = emulator.call(["5"])  # no DialOutcome: the Dial goes unanswered, "5" is for the Gather

    assert log.dialed == [["+865371234567"]]
    assert log.steps[1].params["Digits"] == "5"
    assert "⏎ dial no-answer (0s)" in log.transcript()


def test_start_stream_collects_parameters_and_stop_ends_the_stream(
    app: FakeApp, make_emulator: Callable[..., TwilioEmulator]
) -> None:
    started: list[tuple[str, dict[str, Any]]] = []
    stopped: list[str] = []

    class RecordedStream:
        def stop(self, call_sid: str, account_sid: str) -> None:
            stopped.append(call_sid)

    class StreamingEmulator(TwilioEmulator):
        def open_stream(self, call_sid: str, stream: dict[str, Any]) -> Any:
            started.append((call_sid, stream))
            return RecordedStream()

    app.routes["/ivr/voice"] = twiml(
        '<Start><Stream url="wss://hotline.example.org/ivr/stream" name="caller-audio">'
        '<Parameter name="lang" value="cmn-CN"/><Parameter name="case" value="42"/>'
        '</Stream></Start><Pause length="2"/><Stop><Stream name="caller-audio"/></Stop><Hangup/>'
    )

    log = make_emulator(StreamingEmulator).call([])

    stream = {
        "url": "wss://hotline.example.org/ivr/stream",
        "name": "caller-audio",
        "parameters": {"lang": "cmn-CN", "case": "42"},
    }
    assert log.streams == [stream]
    assert started == [(log.call_sid, stream)]
    assert stopped == [log.call_sid]  # once, by <Stop>, not again at the hang-up
    assert log.steps[0].verbs == ["Start", "Pause", "Stop", "Hangup"]
    assert log.ended_by == "hangup-verb"


def test_replay_resends_identical_params_and_signature(
    app: FakeApp, emulator: TwilioEmulator
) -> None:
    app.routes["/ivr/voice"] = twiml("<Hangup/>")
    params = emulator.base_params(emulator.new_call_sid())

    first = emulator.post("/ivr/voice", params)
    again = emulator.replay(first)

    expected = RequestValidator(TOKEN).compute_signature(PUBLIC + "/ivr/voice", params)
    assert first.signature == again.signature == expected
    assert again.params == first.params == params
    assert [r.form for r in app.received] == [params, params]
    assert all(r.valid for r in app.received) and again.status_code == 200


def test_post_can_send_unsigned_or_forged_requests(app: FakeApp, emulator: TwilioEmulator) -> None:
    app.routes["/ivr/voice"] = twiml("<Hangup/>")

    unsigned = emulator.post("/ivr/voice", {"CallSid": "CA" + "0" * 32}, sign=False)
    forged = emulator.post(PUBLIC + "/ivr/voice", {"CallSid": "CA" + "0" * 32}, signature="AAAA")

    assert (unsigned.status_code, unsigned.signature) == (403, "")
    assert forged.status_code == 403 and forged.signature == "AAAA"


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (("Internal error", 500), "answered 500: 'Internal error'"),
        ("hello", "answered no TwiML: 'hello'"),
        (twiml("<Enqueue>support</Enqueue>"), "unsupported verb <Enqueue>"),
        (twiml("<Redirect>/ivr/voice</Redirect>"), "more than 5 requests"),
    ],
)
def test_bad_answers_raise(
    app: FakeApp, emulator: TwilioEmulator, route: str | tuple[str, int], message: str
) -> None:
    app.routes["/ivr/voice"] = route

    with pytest.raises(EmulatorError, match=message):
        emulator.call([], max_steps=5)


def test_caller_id_extra_params_and_on_step(
    app: FakeApp, make_emulator: Callable[..., TwilioEmulator]
) -> None:
    seen: list[Step] = []
    emulator = make_emulator(from_number="anonymous", on_step=seen.append)
    app.routes["/ivr/voice"] = twiml("<Redirect>/ivr/bye</Redirect>")
    app.routes["/ivr/bye"] = twiml("<Say>Bye</Say>")

    log = emulator.call([], extra_params={"FromState": "SD"}, call_sid="CA" + "9" * 32)

    assert seen == log.steps and len(seen) == 2
    form = app.received[0].form
    assert (form["From"], form["Caller"], form["FromState"]) == ("anonymous", "anonymous", "SD")
    assert form["CallSid"] == log.call_sid == "CA" + "9" * 32
    assert log.ended_by == "end-of-twiml"


def test_script_values_are_validated() -> None:
    with pytest.raises(ValueError, match=r"Speak\.end"):
        Speak(None, end="star")
    with pytest.raises(ValueError, match=r"DialOutcome\.status"):
        DialOutcome("answered")


@pytest.mark.parametrize(
    ("inputs", "ended_by", "at_least"),
    [
        ([], "caller-hangup", 0),  # hung up at the menu
        (["1"], "hangup-verb", 0),
        ([None, Speak(make_wav(3), end="hangup")], "caller-hangup", 3),  # hung up recording
    ],
)
def test_the_numbers_status_callback_is_posted_once_the_call_is_over(
    app: FakeApp,
    make_emulator: Callable[..., TwilioEmulator],
    inputs: list[Any],
    ended_by: str,
    at_least: int,
) -> None:
    app.routes["/ivr/voice"] = twiml(
        '<Gather action="/ivr/menu" numDigits="1"><Say>Press 1</Say></Gather>'
        '<Record action="/ivr/recorded"/>'
    )
    app.routes["/ivr/menu"] = twiml("<Say>Bye</Say><Hangup/>")
    app.routes["/ivr/recorded"] = twiml("")
    app.routes["/ivr/call-status"] = twiml("")
    emulator = make_emulator(status_callback="/ivr/call-status")

    log = emulator.call(inputs)

    assert log.ended_by == ended_by
    assert app.paths()[-1] == "/ivr/call-status"  # last, after every other request
    assert app.received[-1].valid  # signed like any webhook
    (status,) = log.status_callbacks
    form = status.params
    assert (form["CallSid"], form["CallStatus"]) == (log.call_sid, "completed")
    assert int(form["CallDuration"]) >= at_least
    assert form["Timestamp"] and form["CallbackSource"] == "call-progress-events"


def test_no_status_callback_without_one_configured(app: FakeApp, emulator: TwilioEmulator) -> None:
    app.routes["/ivr/voice"] = twiml("<Hangup/>")
    log = emulator.call([])
    assert app.paths() == ["/ivr/voice"] and log.status_callbacks == []
