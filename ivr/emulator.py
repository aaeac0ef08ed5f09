"""A Twilio Voice emulator: plays whole calls against the app over real HTTP, signed like Twilio."""

from __future__ import annotations

import base64
import hmac
import io
import json
import re
import secrets
import struct
import threading
import time
import wave
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
import simple_websocket
from twilio.request_validator import RequestValidator

from transcription.audio import decode_wav, pcm16_to_mulaw, resample

API_VERSION = "2010-04-01"
_PHONE_KEYS = frozenset("0123456789*#")
_RECORD_FINISH_KEYS = "1234567890*#"  # Twilio's default finishOnKey for <Record>
_SPEAK_ENDS = {"#": "pressed #", "hangup": "hung up", "timeout": "went quiet (timeout)"}
_DIAL_STATUSES = ("completed", "no-answer", "busy", "failed")


class EmulatorError(Exception):
    """The call script and the app's TwiML disagree, the app answered badly, or the call looped."""


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _twilio_error(code: int, message: str, status: int) -> bytes:
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return json.dumps(body).encode()


@dataclass
class _Recording:
    wav: bytes
    not_found_first: int
    never_arrives: bool
    hits: int = 0


class RecordingServer:
    """Serves recordings as api.twilio.com does: Basic auth, and 404 until they are ready."""

    def __init__(
        self, *, account_sid: str, auth_token: str, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.account_sid = account_sid
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        self._host, self._port = host, port
        self._recordings: dict[str, _Recording] = {}
        self._lock = threading.Lock()  # handler threads count hits while tests call add()/hits()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        """Listen in a daemon thread; returns self."""
        if self._server is None:
            self._server = ThreadingHTTPServer(
                (self._host, self._port), partial(_RecordingHandler, self)
            )
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # so stop() returns quickly
                name="twilio-recordings",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """Where the server listens, e.g. "http://127.0.0.1:54321"."""
        if self._server is None:
            raise EmulatorError("RecordingServer is not started")
        return f"http://{self._host}:{self._server.server_port}"

    def add(
        self,
        recording_sid: str,
        wav: bytes,
        *,
        not_found_first: int = 1,
        never_arrives: bool = False,
    ) -> str:
        """Publish a recording; returns its RecordingUrl (no extension), as Twilio sends it."""
        with self._lock:
            self._recordings[recording_sid] = _Recording(wav, not_found_first, never_arrives)
        return f"{self.base_url}{self._prefix()}{recording_sid}"

    def hits(self, recording_sid: str) -> int:
        """How many authorised GETs that recording got, 404s included."""
        with self._lock:
            recording = self._recordings.get(recording_sid)
            return recording.hits if recording else 0

    def _prefix(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Recordings/"

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for one GET of path."""
        if not hmac.compare_digest((authorization or "").encode(), self._authorization.encode()):
            headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'}
            return 401, headers, _twilio_error(20003, "Authenticate", 401)
        sid = path.removeprefix(self._prefix()).removesuffix(".wav")
        with self._lock:
            recording = self._recordings.get(sid) if path.startswith(self._prefix()) else None
            if recording is not None:
                recording.hits += 1
                # Twilio's media store lags the <Record> action: the first fetches 404
                if not recording.never_arrives and recording.hits > recording.not_found_first:
                    return 200, {"Content-Type": "audio/x-wav"}, recording.wav
        message = f"The requested resource {path} was not found"
        return 404, {}, _twilio_error(20404, message, 404)


class _RecordingHandler(BaseHTTPRequestHandler):
    def __init__(self, owner: RecordingServer, *args: Any, **kwargs: Any) -> None:
        self.owner = owner  # set first: the base __init__ handles the request straight away
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        status, headers, body = self.owner.answer(path, self.headers.get("Authorization"))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the CLI report progress themselves."""


@dataclass(frozen=True)
class Speak:
    """What the caller does at a <Record>: says the WAV's contents, then ends it."""

    wav: bytes | None = field(repr=False)  # None: the caller stays silent
    end: str = "#"  # "#" (pressed the key), "hangup", or "timeout" (silence ended it)
    not_found_first: int = 1
    never_arrives: bool = False
    # What Twilio reports as RecordingDuration; by default read from the WAV. Set it to serve
    # media that disagrees with what Twilio recorded (corrupt or truncated files).
    reported_duration: int | None = None
    # With a live <Stream> open: the socket breaks off halfway through the audio, no `stop`.
    drop_stream: bool = False

    def __post_init__(self) -> None:
        if self.end not in _SPEAK_ENDS:
            raise ValueError(f"Speak.end must be one of {sorted(_SPEAK_ENDS)}, not {self.end!r}")


@dataclass(frozen=True)
class DialOutcome:
    """What happens at a <Dial>."""

    status: str = "no-answer"
    duration: int = 0

    def __post_init__(self) -> None:
        if self.status not in _DIAL_STATUSES:
            raise ValueError(f"DialOutcome.status must be one of {_DIAL_STATUSES}")


Input = str | None | Speak | DialOutcome


@dataclass
class Spoken:
    """One <Say>: its text, language and voice."""

    text: str
    language: str | None
    voice: str | None


def _spoken(say: ET.Element) -> Spoken:
    # itertext() so SSML children such as <break/> or <prosody> keep their words
    return Spoken("".join(say.itertext()).strip(), say.get("language"), say.get("voice"))


def _parse_twiml(body: str) -> ET.Element | None:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None
    return root if root.tag == "Response" else None


@dataclass
class Step:
    """One webhook request the emulator made and what the app answered."""

    url: str  # the public URL that was signed
    params: dict[str, str]
    signature: str
    status_code: int
    body: str
    said: list[Spoken] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)

    @property
    def twiml(self) -> ET.Element:
        """The answer parsed as a TwiML <Response>."""
        root = _parse_twiml(self.body)
        if root is None:
            raise EmulatorError(f"not a TwiML <Response> ({self.status_code}): {self.body[:300]!r}")
        return root


@dataclass
class CallLog:
    """Everything that happened during one emulated call."""

    call_sid: str
    steps: list[Step] = field(default_factory=list)
    recordings: list[dict[str, str]] = field(default_factory=list)
    dialed: list[list[str]] = field(default_factory=list)
    streams: list[dict[str, Any]] = field(default_factory=list)
    ended_by: str = ""  # "hangup-verb" | "end-of-twiml" | "caller-hangup"
    heard: list[Spoken] = field(default_factory=list)
    events: list[str] = field(default_factory=list)  # transcript lines, in call order

    @property
    def said(self) -> list[Spoken]:
        """The <Say>s the caller actually heard (skipped verbs excluded), in order."""
        return list(self.heard)

    def transcript(self) -> str:
        """The call as human-readable lines: requests, TwiML heard and caller actions."""
        return "\n".join(self.events)


def _keys(pressed: str, finish_on_key: str, num_digits: int | None) -> str:
    """The Digits Twilio reports: keys before finishOnKey, at most numDigits of them."""
    digits = ""
    for key in pressed:
        if key == finish_on_key:
            break
        digits += key
        if num_digits is not None and len(digits) >= num_digits:
            break
    return digits


def _duration(wav: bytes) -> int:
    """Whole seconds of audio, read from the WAV header."""
    try:
        with wave.open(io.BytesIO(wav), "rb") as reader:
            return round(reader.getnframes() / reader.getframerate())
    except (wave.Error, EOFError, struct.error, ArithmeticError, RuntimeError, ValueError):
        # Raw bytes or a broken header (wave raises all of these): assume 8 kHz 16-bit mono
        return len(wav) // 16000


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law, as Twilio sends it


class MediaStream:
    """One Twilio Media Stream: a signed WebSocket carrying the caller's audio as JSON frames."""

    def __init__(
        self, *, url: str, transport_url: str, signature: str, start: dict[str, Any]
    ) -> None:
        self.url = url
        self.stream_sid = _sid("MZ")
        self.sequence = 0
        self.frames_sent = 0
        self.closed = False
        self.socket = simple_websocket.Client.connect(
            transport_url, headers={"X-Twilio-Signature": signature}
        )
        self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        self._send(
            {
                "event": "start",
                "start": {
                    **start,
                    "streamSid": self.stream_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                },
                "streamSid": self.stream_sid,
            }
        )

    def _send(self, message: dict[str, Any]) -> None:
        self.sequence += 1
        self.socket.send(json.dumps({"sequenceNumber": str(self.sequence), **message}))

    def send_audio(self, wav: bytes, *, speed: float | None, drop_halfway: bool = False) -> None:
        """Send the WAV's audio as 20 ms mu-law frames; `speed` 1.0 is real time, None as fast
        as the socket takes it."""
        audio = decode_wav(wav)
        mulaw = pcm16_to_mulaw(resample(audio.samples, audio.sample_rate, 8000))
        frames = [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]
        started = time.monotonic()
        for index, frame in enumerate(frames):
            if drop_halfway and index == len(frames) // 2:
                self.socket.close()  # a network failure: no stop message
                self.closed = True
                return
            self._send(
                {
                    "event": "media",
                    "streamSid": self.stream_sid,
                    "media": {
                        "track": "inbound",
                        "chunk": str(self.frames_sent + 1),
                        "timestamp": str(self.frames_sent * 20),
                        "payload": base64.b64encode(frame).decode(),
                    },
                }
            )
            self.frames_sent += 1
            if speed:  # keep to the wall clock, as a live call does
                delay = started + (index + 1) * 0.02 / speed - time.monotonic()
                if delay > 0:
                    time.sleep(delay)

    def stop(self, call_sid: str, account_sid: str) -> None:
        """End the stream the way Twilio does: a `stop` message, then close."""
        if self.closed:
            return
        self._send(
            {
                "event": "stop",
                "streamSid": self.stream_sid,
                "stop": {"accountSid": account_sid, "callSid": call_sid},
            }
        )
        self.socket.close()
        self.closed = True


class TwilioEmulator:
    """Plays phone calls against the app the way Twilio does, over real HTTP."""

    def __init__(
        self,
        *,
        public_base_url: str,
        auth_token: str,
        account_sid: str,
        recordings: RecordingServer,
        app_url: str | None = None,
        from_number: str = "+8613800138000",
        to_number: str = "+865374412345",
        http: requests.Session | None = None,
        timeout: float = 15.0,
        on_step: Callable[[Step], None] | None = None,
        stream_speed: float | None = None,
    ) -> None:
        self.public_base_url = public_base_url.rstrip("/")
        self.app_url = (app_url or public_base_url).rstrip("/")
        self.account_sid = account_sid
        self.recordings = recordings
        self.from_number = from_number
        self.to_number = to_number
        self.timeout = timeout  # Twilio gives a voice webhook 15 s in all
        self.on_step = on_step
        self._validator = RequestValidator(auth_token)
        self.http = http
        self.stream_speed = stream_speed  # 1.0: Media Streams audio in real time; None: flat out

    def new_call_sid(self) -> str:
        """A fresh CallSid: "CA" + 32 lowercase hex."""
        return _sid("CA")

    def base_params(self, call_sid: str) -> dict[str, str]:
        """The parameters Twilio sends with every voice request of an answered inbound call."""
        return {
            "CallSid": call_sid,
            "AccountSid": self.account_sid,
            "From": self.from_number,
            "To": self.to_number,
            "Caller": self.from_number,
            "Called": self.to_number,
            "CallStatus": "in-progress",
            "ApiVersion": API_VERSION,
            "Direction": "inbound",
            "FromCountry": "CN",
            "ToCountry": "CN",
            "FromCity": "",
            "ToCity": "",
        }

    def call(
        self,
        inputs: Sequence[Input],
        *,
        voice_path: str = "/ivr/voice",
        call_sid: str | None = None,
        max_steps: int = 60,
        extra_params: Mapping[str, str] | None = None,
    ) -> CallLog:
        """Place one inbound call at voice_path and follow the TwiML, feeding it the inputs."""
        sid = call_sid or self.new_call_sid()
        params = {**self.base_params(sid), "CallStatus": "ringing", **(extra_params or {})}
        return _Call(self, CallLog(sid), params, deque(inputs), max_steps).run(voice_path)

    def public_url(self, url: str) -> str:
        """The public URL for a path (absolute URLs are returned unchanged)."""
        if urlsplit(url).scheme:
            return url
        return f"{self.public_base_url}/{url.lstrip('/')}"

    def _transport_url(self, public: str) -> str:
        base = self.public_base_url
        if public == base or public.startswith((base + "/", base + "?")):
            return self.app_url + public[len(base) :]
        return public

    def post(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        signature: str | None = None,
        sign: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> Step:
        """Send one form-encoded POST, signed over its public URL as Twilio does."""
        # Twilio signs without the fragment, which only carries its connection overrides
        public = urldefrag(self.public_url(url)).url
        sent = dict(params)
        if signature is None:
            signature = self._validator.compute_signature(public, sent)
        request_headers = {"User-Agent": "TwilioProxy/1.1", **(headers or {})}
        if sign:
            request_headers["X-Twilio-Signature"] = signature
        try:
            # Without a session, requests.post opens and closes one per request: nothing leaks
            response = (self.http or requests).post(
                self._transport_url(public),
                data=sent,
                headers=request_headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise EmulatorError(f"POST {public} failed: {exc}") from exc
        # TwiML is UTF-8 unless the app says otherwise; requests would guess Latin-1 for text/*
        has_charset = "charset=" in response.headers.get("Content-Type", "").lower()
        body = response.content.decode(
            (response.encoding if has_charset else None) or "utf-8", "replace"
        )
        root = _parse_twiml(body)
        step = Step(
            url=public,
            params=sent,
            signature=signature if sign else "",
            status_code=response.status_code,
            body=body,
            said=[_spoken(say) for say in root.iter("Say")] if root is not None else [],
            verbs=[verb.tag for verb in root] if root is not None else [],
        )
        if self.on_step is not None:
            self.on_step(step)
        return step

    def replay(self, step: Step) -> Step:
        """Re-send exactly the same URL, params and signature, as a Twilio retry does."""
        return self.post(step.url, step.params, signature=step.signature, sign=bool(step.signature))

    def open_stream(self, call_sid: str, stream: dict[str, Any]) -> MediaStream:
        """Connect a <Start><Stream> to its WebSocket, signed like any webhook."""
        url = stream["url"]
        as_http = re.sub(r"^ws", "http", url)  # wss -> https, ws -> http
        transport = re.sub(r"^http", "ws", self._transport_url(as_http))
        start = {
            "accountSid": self.account_sid,
            "callSid": call_sid,
            "customParameters": stream["parameters"],
        }
        signature = self._validator.compute_signature(url, {})
        return MediaStream(url=url, transport_url=transport, signature=signature, start=start)


_Outcome = Step | str | None  # follow this answer | the call ended this way | next verb


@dataclass
class _Call:
    """One call in progress: the remaining script, the log, and a handler per TwiML verb."""

    emulator: TwilioEmulator
    log: CallLog
    params: dict[str, str]  # sent with every voice request
    inputs: deque[Input]
    max_steps: int

    def __post_init__(self) -> None:
        self.open_streams: dict[str, MediaStream] = {}
        self.handlers: dict[str, Callable[[ET.Element, str], _Outcome]] = {
            "Say": self.say,
            "Play": self.logged,
            "Pause": self.logged,
            "Gather": self.gather,
            "Record": self.record,
            "Redirect": self.redirect,
            "Dial": self.dial,
            "Start": self.start,
            "Stop": self.stop,
            "Hangup": self.hangup,
            "Reject": self.hangup,
        }

    def run(self, voice_path: str) -> CallLog:
        try:
            step = self.request(self.emulator.public_url(voice_path), {})
            self.params["CallStatus"] = "in-progress"  # only the first webhook sees "ringing"
            while True:
                outcome = self.walk(step)
                if isinstance(outcome, str):
                    self.log.ended_by = outcome
                    self.log.events.append(f"■ call ended: {outcome}")
                    return self.log
                step = outcome
        finally:
            for stream in self.open_streams.values():  # a hang-up stops every stream
                stream.stop(self.log.call_sid, self.emulator.account_sid)

    def where(self, url: str) -> str:
        return f"step {len(self.log.steps)} ({_path(url)})"

    def request(
        self, url: str, extra: dict[str, str], *, twiml: bool = True, base: bool = True
    ) -> Step:
        if len(self.log.steps) >= self.max_steps:
            raise EmulatorError(f"more than {self.max_steps} requests: is the IVR looping?")
        step = self.emulator.post(url, {**self.params, **extra} if base else extra)
        self.log.steps.append(step)
        shown = "".join(
            f" {name}={value}" for name, value in extra.items() if name not in self.params
        )
        self.log.events.append(f"→ POST {_path(step.url)}{shown}")
        if not 200 <= step.status_code < 300:
            raise EmulatorError(
                f"{self.where(url)} answered {step.status_code}: {step.body[:300]!r}"
            )
        if twiml and _parse_twiml(step.body) is None:
            raise EmulatorError(f"{self.where(url)} answered no TwiML: {step.body[:300]!r}")
        return step

    def walk(self, step: Step) -> Step | str:
        for verb in step.twiml:
            handler = self.handlers.get(verb.tag)
            if handler is None:  # <Enqueue>, <Connect>, ...: the app isn't meant to use them
                raise EmulatorError(f"{self.where(step.url)}: unsupported verb <{verb.tag}>")
            outcome = handler(verb, step.url)
            if outcome is not None:
                return outcome
        return "end-of-twiml"

    def caller_hangs_up(self) -> str:
        self.log.events.append("⏎ hung up (script exhausted)")
        return "caller-hangup"

    def say(self, verb: ET.Element, url: str) -> None:
        spoken = _spoken(verb)
        self.log.heard.append(spoken)
        language = f"[{spoken.language}]" if spoken.language else ""
        self.log.events.append(f"← Say{language} {spoken.text}")

    def logged(self, verb: ET.Element, url: str) -> None:
        # <Play>, <Pause> (never slept) and <Stop> change nothing the app can observe
        details = [f"{name}={value}" for name, value in verb.attrib.items()]
        details += [(verb.text or "").strip()] + [child.get("name") or child.tag for child in verb]
        self.log.events.append(" ".join(["←", verb.tag, *filter(None, details)]))

    def gather(self, verb: ET.Element, url: str) -> _Outcome:
        self.log.events.append("← Gather")
        for child in verb:  # the prompts play before the caller can answer
            if child.tag in ("Say", "Play", "Pause"):
                self.handlers[child.tag](child, url)
        if not self.inputs:
            return self.caller_hangs_up()
        pressed = self.inputs.popleft()
        if pressed is not None and not isinstance(pressed, str):
            raise EmulatorError(f"{self.where(url)}: <Gather> expects keys, not {pressed!r}")
        if not pressed:
            self.log.events.append("⏎ no key pressed (timeout)")
            return None  # Twilio falls through to the next verb
        if not set(pressed) <= _PHONE_KEYS or "dtmf" not in verb.get("input", "dtmf"):
            raise EmulatorError(f"{self.where(url)}: <Gather> can't take keys {pressed!r}")
        num_digits = verb.get("numDigits", "")
        digits = _keys(pressed, verb.get("finishOnKey", "#"), int(num_digits or 0) or None)
        self.log.events.append(f"⏎ pressed {pressed}")
        if not digits:
            return None  # only the finish key: Twilio treats it as no input
        return self.request(urljoin(url, verb.get("action") or url), {"Digits": digits})

    def record(self, verb: ET.Element, url: str) -> _Outcome:
        self.log.events.append("← Record")
        if not self.inputs:
            return self.caller_hangs_up()
        speak = self.inputs.popleft()
        if not isinstance(speak, Speak):
            raise EmulatorError(f"{self.where(url)}: <Record> expects a Speak, not {speak!r}")
        if speak.end == "#" and "#" not in verb.get("finishOnKey", _RECORD_FINISH_KEYS):
            raise EmulatorError(f"{self.where(url)}: the caller pressed # but finishOnKey lacks it")
        if speak.wav is None and speak.end != "hangup":
            self.log.events.append("⏎ stayed silent: nothing recorded")
            return None  # Twilio runs the verbs after <Record> only when nothing was recorded
        params = {"RecordingSid": _sid("RE"), "RecordingDuration": "0"}
        if speak.wav is not None:
            for stream in self.open_streams.values():  # live listeners hear it as it is said
                stream.send_audio(
                    speak.wav, speed=self.emulator.stream_speed, drop_halfway=speak.drop_stream
                )
            params["RecordingUrl"] = self.emulator.recordings.add(
                params["RecordingSid"],
                speak.wav,
                not_found_first=speak.not_found_first,
                never_arrives=speak.never_arrives,
            )
            duration = speak.reported_duration
            params["RecordingDuration"] = str(
                _duration(speak.wav) if duration is None else duration
            )
        if speak.end != "timeout":
            params["Digits"] = speak.end  # the key that ended it, or "hangup"
        self.log.recordings.append(params)
        spoke = f"spoke {params['RecordingDuration']}s" if speak.wav is not None else "said nothing"
        self.log.events.append(f"⏎ {spoke}, then {_SPEAK_ENDS[speak.end]}")
        hung_up = speak.end == "hangup"
        if hung_up:
            self.params["CallStatus"] = "completed"
        # After a hangup Twilio still posts the action but ignores whatever it answers
        answer = self.request(urljoin(url, verb.get("action") or url), params, twiml=not hung_up)
        callback = verb.get("recordingStatusCallback")
        if callback:
            status = {
                "CallSid": self.log.call_sid,
                "AccountSid": self.emulator.account_sid,
                **params,
                "RecordingStatus": "completed" if "RecordingUrl" in params else "absent",
                "RecordingChannels": "1",
                "RecordingSource": "RecordVerb",
            }
            status.pop("Digits", None)
            self.request(urljoin(url, callback), status, twiml=False, base=False)
        return "caller-hangup" if hung_up else answer

    def redirect(self, verb: ET.Element, url: str) -> Step:
        target = urljoin(url, (verb.text or "").strip())
        self.log.events.append(f"← Redirect {_path(target)}")
        return self.request(target, {})

    def dial(self, verb: ET.Element, url: str) -> _Outcome:
        numbers = [(number.text or "").strip() for number in verb.findall("Number")]
        if not numbers and (verb.text or "").strip():
            numbers = [(verb.text or "").strip()]
        self.log.dialed.append(numbers)
        self.log.events.append(f"← Dial {', '.join(numbers)}")
        head = self.inputs[0] if self.inputs else None
        outcome = head if isinstance(head, DialOutcome) else DialOutcome()
        if isinstance(head, DialOutcome):
            self.inputs.popleft()
        self.log.events.append(f"⏎ dial {outcome.status} ({outcome.duration}s)")
        action = verb.get("action")
        if not action:
            return None  # without an action Twilio carries on with the next verb
        params = {"DialCallStatus": outcome.status, "DialCallDuration": str(outcome.duration)}
        if outcome.status == "completed":
            params["DialCallSid"] = _sid("CA")
        return self.request(urljoin(url, action), params)

    def start(self, verb: ET.Element, url: str) -> None:
        for child in verb:
            if child.tag != "Stream":
                self.log.events.append(f"← Start {child.tag} (ignored)")
                continue
            parameters = {p.get("name", ""): p.get("value", "") for p in child.iter("Parameter")}
            stream = {"url": child.get("url"), "name": child.get("name"), "parameters": parameters}
            self.log.streams.append(stream)
            self.log.events.append(f"← Start Stream {stream['url']} {parameters}")
            key = child.get("name") or child.get("url") or ""
            self.open_streams[key] = self.emulator.open_stream(self.log.call_sid, stream)

    def stop(self, verb: ET.Element, url: str) -> None:
        for child in verb:
            stream = self.open_streams.pop(child.get("name", ""), None)
            self.log.events.append(f"← Stop {child.tag} {child.get('name', '')}")
            if stream is not None:
                stream.stop(self.log.call_sid, self.emulator.account_sid)

    def hangup(self, verb: ET.Element, url: str) -> str:
        self.log.events.append(f"← {verb.tag}")
        return "hangup-verb"
