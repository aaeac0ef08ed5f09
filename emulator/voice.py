"""Twilio Voice: plays whole calls against the app over real HTTP, signed like Twilio, following
the TwiML it answers verb by verb."""

from __future__ import annotations

import email.utils
import io
import re
import struct
import wave
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from twilio.request_validator import RequestValidator

from emulator.clock import Clock, InstantClock
from emulator.protocol import API_VERSION, EmulatorError, new_sid
from emulator.recordings import RecordingServer
from emulator.streams import MediaStream

if TYPE_CHECKING:
    from emulator.switchboard import Leg

_PHONE_KEYS = frozenset("0123456789*#")
_RECORD_FINISH_KEYS = "1234567890*#"  # Twilio's default finishOnKey for <Record>
_SPEAK_ENDS = {
    **{key: f"pressed {key}" for key in "0123456789*#"},
    "hangup": "hung up",
    "timeout": "went quiet (timeout)",
}
_DIAL_STATUSES = ("completed", "no-answer", "busy", "failed")
_GATHER_TIMEOUT = 5.0  # seconds Twilio waits for a first key by default
_DIAL_TIMEOUT = 30.0  # seconds a <Dial> rings by default


def speech_seconds(text: str) -> float:
    """Roughly how long text-to-speech takes to say `text`: Chinese and Korean about four
    syllables a second, alphabetic text about fourteen characters a second."""
    wide = sum(1 for char in text if ord(char) >= 0x1100)
    return max(0.5, wide / 4 + (len(text) - wide) / 14)


@dataclass(frozen=True)
class Speak:
    """What the caller does at a <Record>: says the WAV's contents, then ends it."""

    wav: bytes | None = field(repr=False)  # None: the caller stays silent
    # A key pressed to end it ("#", or any phone key, such as "0"), "hangup", or "timeout"
    # (silence ended it).
    end: str = "#"
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
    # The number's status callback requests made when the call ended (see status_callback).
    status_callbacks: list[Step] = field(default_factory=list)
    direction: str = "inbound"  # or "outbound-api": placed through the REST API
    status: str = ""  # the final CallStatus once it ended (completed, no-answer, busy, failed)

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
        status_callback: str | None = None,
        stream_speed: float | None = None,
        public_stream_url: str | None = None,
        streams_url: str | None = None,
        call_updates: Callable[[str], str | None] | None = None,
    ) -> None:
        self.public_base_url = public_base_url.rstrip("/")
        self.app_url = (app_url or public_base_url).rstrip("/")
        self.account_sid = account_sid
        self.recordings = recordings
        self.from_number = from_number
        self.to_number = to_number
        self.timeout = timeout  # Twilio gives a voice webhook 15 s in all
        self.on_step = on_step
        # The number's "call status changes" URL: when a call ends, Twilio posts
        # CallStatus=completed there (None: the number has none configured).
        self.status_callback = status_callback
        self._validator = RequestValidator(auth_token)
        self.http = http
        self.stream_speed = stream_speed  # 1.0: Media Streams audio in real time; None: flat out
        # Media Streams are served by their own process: `<Stream>` URLs under the public
        # stream base are connected to `streams_url` (ws://host:port), as the app's are to
        # app_url. Without one, streams go where the app is (a server that serves both).
        self.public_stream_url = (
            public_stream_url or re.sub(r"^http", "ws", self.public_base_url)
        ).rstrip("/")
        self.streams_url = (streams_url or re.sub(r"^http", "ws", self.app_url)).rstrip("/")
        # Where the emulator learns of the app's REST updates to a call (POST
        # .../Calls/{CallSid}.json with a Url): given the CallSid, the URL, if one was sent.
        self.call_updates = call_updates

    def new_call_sid(self) -> str:
        """A fresh CallSid: "CA" + 32 lowercase hex."""
        return new_sid("CA")

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
        """Connect a <Start><Stream> to its WebSocket, signed like any webhook; a "track" of
        outbound_track or both_tracks carries the other party's voice too."""
        tracks = {"outbound_track": ("outbound",), "both_tracks": ("inbound", "outbound")}.get(
            stream.get("track", "inbound_track"), ("inbound",)
        )
        url = stream["url"]
        base = self.public_stream_url
        transport = url
        if url == base or url.startswith((base + "/", base + "?")):
            transport = self.streams_url + url[len(base) :]
        start = {
            "accountSid": self.account_sid,
            "callSid": call_sid,
            "customParameters": stream["parameters"],
        }
        signature = self._validator.compute_signature(url, {})
        return MediaStream(
            url=url, transport_url=transport, signature=signature, start=start, tracks=tracks
        )


_Outcome = Step | str | None  # follow this answer | the call ended this way | next verb


@dataclass
class _Call:
    """One call in progress: the remaining script, the log, and a handler per TwiML verb."""

    emulator: TwilioEmulator
    log: CallLog
    params: dict[str, str]  # sent with every voice request
    inputs: deque[Input]
    max_steps: int
    clock: Clock = field(default_factory=InstantClock)
    leg: Leg | None = None  # its place on a Switchboard: queues, phones, other calls

    def __post_init__(self) -> None:
        self.open_streams: dict[str, MediaStream] = {}
        self.stream_tracks: dict[str, str] = {}  # stream name -> its `track` attribute
        self.counted = 0  # requests that count towards max_steps
        self.counted_at = self.clock.now()
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
            "Enqueue": self.enqueue,
            "Leave": self.leave,
        }

    def run(self, voice_path: str) -> CallLog:
        step = self.request(self.emulator.public_url(voice_path), {})
        self.params["CallStatus"] = "in-progress"  # only the first webhook sees "ringing"
        self.play(step)
        self.call_completed()
        return self.log

    def play(self, step: Step) -> str:
        """Follow the TwiML from `step` until the call ends; returns how it ended."""
        try:
            while True:
                outcome = self.walk(step)
                if isinstance(outcome, str):
                    self.log.ended_by = outcome
                    self.log.events.append(f"■ call ended: {outcome}")
                    self.log.status = self.params["CallStatus"] = "completed"
                    return outcome
                step = outcome
        finally:
            for stream in self.open_streams.values():  # a hang-up stops every stream
                stream.stop(self.log.call_sid, self.emulator.account_sid)

    def call_completed(self) -> None:
        """The number's status callback, once the call is over, as Twilio sends it: the final
        CallStatus with CallDuration (here an estimate: what was recorded, and a second a
        step), Timestamp, CallbackSource and SequenceNumber."""
        callback = self.emulator.status_callback
        self.log.status = "completed"
        if not callback:
            return
        recorded = sum(int(r.get("RecordingDuration") or 0) for r in self.log.recordings)
        params = {
            **self.params,
            "CallStatus": "completed",
            "CallDuration": str(recorded + len(self.log.steps)),
            "Timestamp": email.utils.format_datetime(datetime.now(UTC)),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        }
        self.params["CallStatus"] = "completed"
        step = self.emulator.post(self.emulator.public_url(callback), params)
        self.log.status_callbacks.append(step)
        self.log.events.append(f"→ POST {_path(step.url)} CallStatus=completed")
        if not 200 <= step.status_code < 300:
            raise EmulatorError(f"the status callback answered {step.status_code}: {step.body!r}")

    def where(self, url: str) -> str:
        return f"step {len(self.log.steps)} ({_path(url)})"

    def request(
        self,
        url: str,
        extra: dict[str, str],
        *,
        twiml: bool = True,
        base: bool = True,
        counted: bool = True,
    ) -> Step:
        """POST one webhook of this call and log it. `counted` requests count towards
        max_steps (a queue's wait music loops by design, so its requests don't); on a clock
        the count starts again whenever time has passed, so only a loop that takes no time
        (a <Redirect> to itself) trips it."""
        if counted:
            now = self.clock.now()
            if now > self.counted_at:
                self.counted, self.counted_at = 0, now
            self.counted += 1
            if self.counted > self.max_steps:
                raise EmulatorError(f"more than {self.max_steps} requests: is the IVR looping?")
        step = self.emulator.post(url, {**self.params, **extra} if base else extra)
        self.log.steps.append(step)
        shown = "".join(
            f" {name}={value}" for name, value in extra.items() if name not in self.params
        )
        self.log.events.append(f"→ POST {_path(step.url)}{shown}")
        if self.leg is not None:  # the app may have placed calls while it answered
            self.leg.after_request()
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
            if handler is None:  # <Connect>, <Refer>...: the app isn't meant to use them
                raise EmulatorError(f"{self.where(step.url)}: unsupported verb <{verb.tag}>")
            outcome = handler(verb, step.url)
            if outcome is not None:
                return outcome
        return "end-of-twiml"

    def caller_hangs_up(self) -> str:
        self.log.events.append("⏎ hung up (script exhausted)")
        return "caller-hangup"

    def say(self, verb: ET.Element, url: str) -> None:
        spoken = self.heard(verb)
        self.clock.sleep(speech_seconds(spoken.text))

    def heard(self, say: ET.Element) -> Spoken:
        """Log a <Say> as heard by the caller."""
        spoken = _spoken(say)
        self.log.heard.append(spoken)
        language = f"[{spoken.language}]" if spoken.language else ""
        self.log.events.append(f"← Say{language} {spoken.text}")
        return spoken

    def logged(self, verb: ET.Element, url: str) -> None:
        # <Play> and <Pause> change nothing the app can observe; only a clock sleeps the pause
        details = [f"{name}={value}" for name, value in verb.attrib.items()]
        details += [(verb.text or "").strip()] + [child.get("name") or child.tag for child in verb]
        self.log.events.append(" ".join(["←", verb.tag, *filter(None, details)]))
        if verb.tag == "Pause":
            self.clock.sleep(float(verb.get("length") or 1))

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
            self.clock.sleep(float(verb.get("timeout") or _GATHER_TIMEOUT))
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
        # finishOnKey is a set of keys: any one of them ends the recording (and is its Digits).
        finish_keys = verb.get("finishOnKey", _RECORD_FINISH_KEYS)
        if speak.end in _PHONE_KEYS and speak.end not in finish_keys:
            raise EmulatorError(
                f"{self.where(url)}: the caller pressed {speak.end} but finishOnKey is "
                f"{finish_keys!r}"
            )
        if speak.wav is None and speak.end != "hangup":
            self.log.events.append("⏎ stayed silent: nothing recorded")
            return None  # Twilio runs the verbs after <Record> only when nothing was recorded
        params = {"RecordingSid": new_sid("RE"), "RecordingDuration": "0"}
        cut_short = False
        if speak.wav is not None:
            for stream in self.open_streams.values():  # live listeners hear it as it is said
                cut_short = stream.send_audio(
                    speak.wav,
                    speed=self.emulator.stream_speed,
                    drop_halfway=speak.drop_stream,
                    interrupted=self.call_updated,
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
            if not (self.open_streams and self.emulator.stream_speed):  # else already paced
                self.clock.sleep(_duration(speak.wav))
        if cut_short:
            return self.follow_update(verb, url, params)
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

    def call_updated(self) -> bool:
        """Whether the app has redirected this call through the REST API (`call_updates`)."""
        updates = self.emulator.call_updates
        return updates is not None and updates(self.log.call_sid) is not None

    def follow_update(self, verb: ET.Element, url: str, params: dict[str, str]) -> Step:
        """A REST update cut the <Record> short. As Twilio documents it: the new URL is
        fetched at once, the Record's action is never requested, and the recording status
        callback still comes, with what was recorded until then."""
        updates = self.emulator.call_updates
        target = updates(self.log.call_sid) if updates is not None else None
        assert target is not None
        self.log.recordings.append(params)
        self.log.events.append(f"⏎ call updated through the REST API: now {_path(target)}")
        answer = self.request(target, {})
        callback = verb.get("recordingStatusCallback")
        if callback:
            status = {
                "CallSid": self.log.call_sid,
                "AccountSid": self.emulator.account_sid,
                **params,
                "RecordingStatus": "completed",
                "RecordingChannels": "1",
                "RecordingSource": "RecordVerb",
            }
            self.request(urljoin(url, callback), status, twiml=False, base=False)
        return answer

    def redirect(self, verb: ET.Element, url: str) -> Step:
        target = urljoin(url, (verb.text or "").strip())
        self.log.events.append(f"← Redirect {_path(target)}")
        return self.request(target, {})

    def dial(self, verb: ET.Element, url: str) -> _Outcome:
        if verb.find("Queue") is not None:
            if self.leg is None:
                raise EmulatorError(f"{self.where(url)}: <Dial><Queue> needs a Switchboard")
            return self.leg.dial_queue(self, verb, url)
        numbers = [(n.text or "").strip() for n in verb if n.tag in ("Number", "Sip", "Client")]
        if not numbers and (verb.text or "").strip():
            numbers = [(verb.text or "").strip()]
        head = self.inputs[0] if self.inputs else None
        if self.leg is not None and not isinstance(head, DialOutcome):
            return self.leg.dial_numbers(self, verb, url, numbers)
        self.log.dialed.append(numbers)
        self.log.events.append(f"← Dial {', '.join(numbers)}")
        outcome = head if isinstance(head, DialOutcome) else DialOutcome()
        if isinstance(head, DialOutcome):
            self.inputs.popleft()
        self.log.events.append(f"⏎ dial {outcome.status} ({outcome.duration}s)")
        action = verb.get("action")
        if not action:
            return None  # without an action Twilio carries on with the next verb
        params = {"DialCallStatus": outcome.status, "DialCallDuration": str(outcome.duration)}
        if outcome.status == "completed":
            params["DialCallSid"] = new_sid("CA")
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
            track = child.get("track") or "inbound_track"
            # Twilio's default (inbound_track) carries what the caller says, and only that
            opened = {**stream, "track": track} if track != "inbound_track" else stream
            self.open_streams[key] = self.emulator.open_stream(self.log.call_sid, opened)
            self.stream_tracks[key] = track

    def stop(self, verb: ET.Element, url: str) -> None:
        for child in verb:
            stream = self.open_streams.pop(child.get("name", ""), None)
            self.stream_tracks.pop(child.get("name", ""), None)
            self.log.events.append(f"← Stop {child.tag} {child.get('name', '')}")
            if stream is not None:
                stream.stop(self.log.call_sid, self.emulator.account_sid)

    def hangup(self, verb: ET.Element, url: str) -> str:
        self.log.events.append(f"← {verb.tag}")
        return "hangup-verb"

    def enqueue(self, verb: ET.Element, url: str) -> _Outcome:
        if self.leg is None:
            raise EmulatorError(
                f"{self.where(url)}: unsupported verb <Enqueue> outside a Switchboard"
            )
        return self.leg.enqueue(self, verb, url)

    def leave(self, verb: ET.Element, url: str) -> _Outcome:
        # Only a waitUrl's TwiML (played by the Switchboard) can take a caller out of a queue
        raise EmulatorError(f"{self.where(url)}: <Leave> outside a queue's waitUrl")
