"""Twilio Media Streams: the messages of one call's stream, its token, and its transcript.

The sockets are served by their own asyncio process (`ivr.stream_server`, started by
`python -m hotline.streams`), never by a web thread. This module is what that server does with
one socket: check the `start` against the call's token, feed the audio to a recognizer, and
store the transcript when the stream ends. Everything here that may block (Kaldi, the
database) runs off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cases import intake
from cases.errors import UnknownCallError
from cases.models import Transcript as StoredTranscript
from hotline.wiring import Wiring
from ivr import tasks
from ivr.signatures import signature_matches
from ivr.speech import SpeechDetector, SpeechRule
from ivr.stream_decoder import DecodingPool
from routing import tasks as routing_tasks
from transcription.models import LoadedModel, ModelUnavailableError
from transcription.recognizer import Transcript, TranscriptionError

log = logging.getLogger("hotline.ivr.streams")

STREAM_PATH = "/ivr/stream"
STREAM_NAME = "report"
# Twilio sends a frame every 20 ms while the call is up; this much silence means it's gone.
IDLE_TIMEOUT_SECONDS = 30
FINISH_TIMEOUT_SECONDS = 60
# Twilio connects the stream as it runs the <Start> we just answered: a token older than this
# was captured, not given. It is checked once, on `start`; the stream may then last the call.
TOKEN_TTL_SECONDS = 120


_active = 0
_active_lock = threading.Lock()


def active_streams() -> int:
    """How many calls this process is decoding live now (for capacity and shutdown)."""
    with _active_lock:
        return _active


def take_decoder_slot(limit: int) -> bool:
    """Take one of the process's `limit` live decoders; False when all are taken."""
    global _active
    with _active_lock:
        if _active >= limit:
            return False
        _active += 1
        return True


def free_decoder_slot() -> None:
    """Give back a slot `take_decoder_slot` gave."""
    global _active
    with _active_lock:
        _active -= 1


def stream_token(secret: str, call_sid: str, *, expires_at: int) -> str:
    """The token the TwiML hands a call's stream: it names its expiry and is bound to the call."""
    mac = hmac.new(secret.encode(), f"{call_sid}.{expires_at}".encode(), hashlib.sha256)
    return f"{expires_at}.{mac.hexdigest()[:32]}"


def new_stream_token(secret: str, call_sid: str, *, now: float | None = None) -> str:
    """A fresh token for the call's stream, valid for TOKEN_TTL_SECONDS."""
    expires_at = int(time.time() if now is None else now) + TOKEN_TTL_SECONDS
    return stream_token(secret, call_sid, expires_at=expires_at)


def token_refusal(
    secret: str, call_sid: str, token: str, *, now: float | None = None
) -> str | None:
    """Why a `start` with this token is refused (another call's, forged, expired), or None."""
    expires, _, _mac = token.partition(".")
    if not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
        return "a malformed token"
    expected = stream_token(secret, call_sid, expires_at=int(expires))
    if not signature_matches(expected, token):
        return "a wrong token"
    if int(expires) < (time.time() if now is None else now):
        return "an expired token"
    return None


def websocket_base_url(public_base_url: str) -> str:
    """The public base URL with the WebSocket scheme Twilio uses for streams."""
    if public_base_url.startswith("https://"):
        return "wss://" + public_base_url[len("https://") :]
    return "ws://" + public_base_url.removeprefix("http://")


def stream_url(public_stream_url: str) -> str:
    """The ws(s):// URL the TwiML points the stream at (and Twilio signs the upgrade over)."""
    return public_stream_url.rstrip("/") + STREAM_PATH


class LiveRecognizer(Protocol):
    """A call's live recognizer: audio in as it arrives, the transcript out at the end
    (`transcription.recognizer.ThreadedStream`)."""

    def put_mulaw(self, payload: bytes) -> None:
        """Take the next μ-law frame; never blocks the socket."""

    def close(self, timeout: float | None = 60.0) -> Transcript:
        """The transcript of all that was put; TranscriptionError if decoding failed."""


@dataclass
class LiveTranscription:
    """Where live streams connect, and how many this process decodes at once.

    Past `max_streams` live decodes in one process, or while the running ones fall behind
    (`ivr.stream_decoder`), further calls are left to the batch job. `open_recognizer`, when
    set, replaces the pooled decoder (tests give it a recognizer of their own).
    """

    url: str
    max_streams: int
    open_recognizer: Callable[[LoadedModel], LiveRecognizer] | None = None


class BadFrameError(ValueError):
    """A frame that is not what Twilio sends: the socket is closed, nothing raised further."""


def parse_frame(raw: str | bytes) -> dict[str, Any]:
    """A Media Streams message: a JSON object in a text frame, with a string `event`."""
    if not isinstance(raw, str):
        raise BadFrameError(f"a binary frame of {len(raw)} bytes")
    try:
        message = json.loads(raw)
    except ValueError as error:  # JSONDecodeError, and recursion or number limits
        raise BadFrameError(f"not JSON ({error.__class__.__name__})") from None
    except RecursionError:
        raise BadFrameError("JSON nested too deep") from None
    if not isinstance(message, dict):
        raise BadFrameError(f"a JSON {type(message).__name__}, not an object")
    if not isinstance(message.get("event"), str):
        raise BadFrameError("no event name")
    return message


def _text(value: object, what: str, *, limit: int = 200) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise BadFrameError(f"{what} is not a short string")
    return value


@dataclass(frozen=True)
class StreamStart:
    """The `start` message: which call, and the parameters our TwiML gave it."""

    call_sid: str
    stream_sid: str
    token: str
    locale: str
    # What the stream is for: "" for a report, "conversation" for a caller put through to a
    # person (its words go to the operator's page, `ivr.conversation`).
    purpose: str = ""

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> StreamStart:
        """Parse a `start` message; BadFrameError if it lacks what Twilio always sends."""
        start = message.get("start")
        if not isinstance(start, dict):
            raise BadFrameError("a start without its `start` object")
        parameters = start.get("customParameters") or {}
        if not isinstance(parameters, dict):
            raise BadFrameError("customParameters is not an object")
        return cls(
            call_sid=_text(start.get("callSid"), "callSid"),
            stream_sid=_text(start.get("streamSid") or message.get("streamSid") or "", "streamSid"),
            token=_text(parameters.get("token", ""), "the token"),
            locale=_text(parameters.get("locale", ""), "the locale"),
            purpose=_text(parameters.get("purpose", ""), "the purpose"),
        )


def media_payload(message: dict[str, Any]) -> bytes:
    """The μ-law bytes of a `media` message."""
    media = message.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        raise BadFrameError("a media message without a payload")
    try:
        return base64.b64decode(media["payload"], validate=True)
    except (binascii.Error, ValueError):
        raise BadFrameError("a payload that is not base64") from None


class CallStream:
    """One socket's call: at most one `start`, at most one decoder slot, always given back.

    The server calls `begin` (off the event loop: it may load a model), `feed` for each frame
    (it only queues) and `finish` exactly once at the end (off the loop: it waits for the
    decode and writes the database), whatever happened on the socket.
    """

    def __init__(self, wiring: Wiring, decoding: DecodingPool) -> None:
        self.wiring = wiring
        self.decoding = decoding
        self.start: StreamStart | None = None
        self.recognizer: LiveRecognizer | None = None
        self._holds_slot = False
        # Whether the caller said anything: heard on the socket's frames, model or not, so
        # the Record action can tell a silent recording from a report (`ivr.speech`).
        self.speech: SpeechDetector | None = None
        # Told the words so far while the caller speaks (`ivr.interrupt.EmergencyWatch`).
        self.on_heard: Callable[[str], None] | None = None
        # When `stop` came, and how far behind the caller the decode was then: the log line
        # that says the transcript was stored shows where the seconds after a hang-up went.
        self.stopped_at: float | None = None
        self.behind_at_stop: float | None = None

    def refusal(self, start: StreamStart) -> str | None:
        """Why this `start` may not begin a stream on this socket (checked on the loop)."""
        if self.start is not None:
            return "a second start on one stream"
        self.start = start
        return token_refusal(self.wiring.settings.secret_key, start.call_sid, start.token)

    def begin(self) -> None:
        """Take a decoder slot and open the recognizer, or leave the call to the batch job."""
        start, live = self.start, self.wiring.live
        assert start is not None and not self._holds_slot
        options = self.wiring.call_flow.options
        self.speech = SpeechDetector(
            SpeechRule(options.speech_threshold_dbfs, options.speech_min_seconds)
        )
        try:
            model = self.wiring.models.get(start.locale)
        except ModelUnavailableError as error:
            # The batch job meets the same gap and sends the case to the desk for listening.
            log.warning("no live transcription: %s", error, extra=log_extra(start))
            return
        if not take_decoder_slot(live.max_streams):
            log.warning(
                "live transcription at capacity (%d); the batch job will transcribe this call",
                live.max_streams,
                extra=log_extra(start),
            )
            return
        if not self.decoding.admits():
            free_decoder_slot()
            log.warning(
                "live decodes are %.1f s behind their callers; the batch job will transcribe "
                "this call",
                self.decoding.most_behind(),
                extra=log_extra(start),
            )
            return
        self._holds_slot = True
        if live.open_recognizer is not None:
            self.recognizer = live.open_recognizer(model)
        else:
            self.recognizer = self.decoding.open(model, on_heard=self.on_heard)
        self._note_live_decoding(True)

    def note_stop(self) -> None:
        """The caller hung up (`stop`): note when, and how far behind the decode was."""
        self.stopped_at = time.monotonic()
        behind = getattr(self.recognizer, "behind_seconds", None)
        self.behind_at_stop = behind() if callable(behind) else None

    def feed(self, payload: bytes) -> None:
        """Queue a frame of the caller's audio (frames before a begun stream are dropped)."""
        if self.speech is not None and self.speech.feed_mulaw(payload):
            # Once per call, and off the socket's loop: the Record action may be waiting on it.
            threading.Thread(
                target=self._note_speech_heard, args=(True,), name="speech-heard", daemon=True
            ).start()
        if self.recognizer is not None:
            self.recognizer.put_mulaw(payload)

    def finish(self, *, complete: bool) -> None:
        """Store what was heard (complete only after `stop`); frees the slot whatever happens."""
        try:
            if self.speech is not None and not self.speech.heard and self.speech.frames:
                self._note_speech_heard(False)  # a whole stream with no speech in it
            if self.recognizer is not None and self.start is not None:
                _finish(self.wiring, self.start, self.recognizer, complete=complete, call=self)
        finally:
            if self.recognizer is not None:
                # Stored or not, nothing more will come: the report step stops waiting.
                self._note_live_decoding(False)
                self.decoding.forget(self.recognizer)
            self.recognizer = None
            if self._holds_slot:
                self._holds_slot = False
                free_decoder_slot()

    def _note_speech_heard(self, heard: bool) -> None:
        assert self.start is not None
        try:
            with self.wiring.database.session() as session, session.begin():
                intake.mark_speech_heard(session, call_sid=self.start.call_sid, heard=heard)
            log.info("speech heard" if heard else "no speech heard", extra=log_extra(self.start))
        except SQLAlchemyError:
            # Without a verdict the Record action listens to the recording itself.
            log.exception("could not note whether speech was heard", extra=log_extra(self.start))

    def _note_live_decoding(self, decoding: bool) -> None:
        assert self.start is not None
        try:
            with self.wiring.database.session() as session, session.begin():
                intake.mark_live_decoding(session, call_sid=self.start.call_sid, decoding=decoding)
        except SQLAlchemyError:
            # Only the report step's short wait depends on it; the decode goes on.
            log.exception("could not note the live decode", extra=log_extra(self.start))


def _finish(
    wiring: Wiring,
    start: StreamStart,
    stream: LiveRecognizer,
    *,
    complete: bool,
    call: CallStream,
) -> None:
    ended = time.monotonic()
    try:
        transcript = stream.close(timeout=FINISH_TIMEOUT_SECONDS)
    except TranscriptionError as error:
        # Only this call's stream failed (or fell behind); the recording is still fetched and
        # transcribed.
        log.warning("no live transcript: %s", error, extra=log_extra(start))
        return
    decoded = time.monotonic()
    with wiring.database.session() as session, session.begin():
        stored = _store(session, start, transcript, complete=complete)
        case_id = stored.case_id if stored and stored.complete else None
    written = time.monotonic()
    timings = {
        # From `stop` to this thread taking the stream up (the loop, then the finishing pool).
        "handoff_seconds": call.stopped_at and round(ended - call.stopped_at, 3),
        "behind_at_stop_seconds": call.behind_at_stop and round(call.behind_at_stop, 2),
        # Decoding what was left, then the final result.
        "wait_seconds": round(decoded - ended, 3),
        "write_seconds": round(written - decoded, 3),
    }
    log.info(
        ("live transcript stored" if complete else "partial live transcript stored")
        if stored
        else "live transcript not needed: the call already has one",
        extra={
            **log_extra(start),
            "seconds": round(transcript.duration_seconds, 2),
            "decode_seconds": round(transcript.processing_seconds, 2),
            # How far the decode was behind the caller when the stream ended: past a few
            # seconds, the batch job can get there first.
            "finish_seconds": round(written - ended, 2),
            **{key: value for key, value in timings.items() if value is not None},
        },
    )
    if case_id is not None:
        tasks.enqueue(routing_tasks.route_case, case_id)


def _store(
    session: Session, start: StreamStart, transcript: Transcript, *, complete: bool
) -> StoredTranscript | None:
    try:
        call = intake.get_call(session, call_sid=start.call_sid)
    except UnknownCallError:
        return None
    return intake.store_transcript(
        session,
        call=call,
        source="live",
        complete=complete,
        result=tasks.transcript_text(transcript),
    )


def log_extra(start: StreamStart | None) -> dict[str, str]:
    """The call's identifiers for a log line, once the stream has said which call it is."""
    return {"call_sid": start.call_sid, "stream_sid": start.stream_sid} if start else {}
