"""Twilio Media Streams: the caller's audio, live over a WebSocket, into a recognizer.

One socket per call, handled by a gunicorn thread; decoding runs in the stream's own worker
thread, so a slow or failing recognizer never blocks the socket or touches another call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import abort
from simple_websocket import ConnectionClosed
from sqlalchemy.orm import Session

from cases import intake
from cases.errors import UnknownCallError
from cases.models import Transcript as StoredTranscript
from hotline.wiring import Wiring, current_wiring, db
from ivr import tasks
from ivr.signatures import check_twilio_signature, signature_matches
from routing import tasks as routing_tasks
from transcription.models import LoadedModel, ModelUnavailableError
from transcription.recognizer import ThreadedStream, Transcript, TranscriptionError

log = logging.getLogger("hotline.ivr.streams")

STREAM_PATH = "/ivr/stream"
STREAM_NAME = "report"
# Twilio sends a frame every 20 ms while the call is up; this much silence means it's gone.
IDLE_TIMEOUT_SECONDS = 30
FINISH_TIMEOUT_SECONDS = 60


_active = 0
_active_lock = threading.Lock()


def active_streams() -> int:
    """How many calls this process is decoding live now (for capacity and shutdown)."""
    with _active_lock:
        return _active


def _take_decoder_slot(limit: int) -> bool:
    global _active
    with _active_lock:
        if _active >= limit:
            return False
        _active += 1
        return True


def _free_decoder_slot() -> None:
    global _active
    with _active_lock:
        _active -= 1


def stream_token(secret: str, call_sid: str) -> str:
    """The per-call token the TwiML hands the stream, so a socket can't claim another call."""
    return hmac.new(secret.encode(), call_sid.encode(), hashlib.sha256).hexdigest()[:32]


def websocket_base_url(public_base_url: str) -> str:
    """The public base URL with the WebSocket scheme Twilio uses for streams."""
    if public_base_url.startswith("https://"):
        return "wss://" + public_base_url[len("https://") :]
    return "ws://" + public_base_url.removeprefix("http://")


def stream_url(public_base_url: str) -> str:
    """The wss:// URL the TwiML points the stream at."""
    return websocket_base_url(public_base_url) + STREAM_PATH


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

    Past `max_streams` live decodes in one process every stream would fall behind together;
    further calls are left to the batch job. `open_recognizer` starts a call's recognizer on
    its locale's model (tests give it a recognizer of their own).
    """

    url: str
    max_streams: int
    open_recognizer: Callable[[LoadedModel], LiveRecognizer] = ThreadedStream


@dataclass(frozen=True)
class StreamStart:
    """The `start` message: which call, and the parameters our TwiML gave it."""

    call_sid: str
    stream_sid: str
    token: str
    locale: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> StreamStart:
        """Parse a `start` message; KeyError if it lacks what Twilio always sends."""
        start = message["start"]
        parameters = start.get("customParameters") or {}
        return cls(
            call_sid=start["callSid"],
            stream_sid=start.get("streamSid") or message.get("streamSid", ""),
            token=str(parameters.get("token", "")),
            locale=str(parameters.get("locale", "")),
        )


def check_stream_signature() -> None:
    """Refuse the WebSocket upgrade (403, before the handshake) unless Twilio signed it."""
    wiring = current_wiring()
    base = websocket_base_url(wiring.settings.public_base_url)
    if not check_twilio_signature(wiring.twilio_validator, base):
        log.warning("rejected a media stream with a missing or invalid signature")
        abort(403)


def handle_media_stream(ws: Any) -> None:
    """Feed one call's audio to its recognizer; store the transcript when the stream ends."""
    wiring = current_wiring()
    start: StreamStart | None = None
    stream: LiveRecognizer | None = None
    complete = False
    try:
        while True:
            raw = ws.receive(timeout=IDLE_TIMEOUT_SECONDS)
            if raw is None:
                log.warning("media stream went quiet", extra=_extra(start))
                break
            message = json.loads(raw)
            event = message.get("event")
            if event == "start":
                start = StreamStart.from_message(message)
                expected = stream_token(wiring.settings.secret_key, start.call_sid)
                if not signature_matches(expected, start.token):
                    log.warning("media stream with a wrong token", extra=_extra(start))
                    ws.close(reason=1008, message="bad token")
                    return
                stream = _open_stream(wiring, start)
            elif event == "media" and stream is not None:
                stream.put_mulaw(base64.b64decode(message["media"]["payload"]))
            elif event == "stop":
                complete = True
                break
    except ConnectionClosed:
        log.warning("media stream dropped before its stop message", extra=_extra(start))
    except (ValueError, KeyError, binascii.Error):
        log.exception("malformed media stream message", extra=_extra(start))
    finally:
        if start is not None and stream is not None:
            try:
                _finish(wiring, start, stream, complete=complete)
            finally:
                _free_decoder_slot()


def _open_stream(wiring: Wiring, start: StreamStart) -> LiveRecognizer | None:
    live = wiring.live
    try:
        model = wiring.models.get(start.locale)
    except ModelUnavailableError as error:
        # The batch job meets the same gap and sends the case to the desk for listening.
        log.warning("no live transcription: %s", error, extra=_extra(start))
        return None
    if not _take_decoder_slot(live.max_streams):
        log.warning(
            "live transcription at capacity (%d); the batch job will transcribe this call",
            live.max_streams,
            extra=_extra(start),
        )
        return None
    try:
        return live.open_recognizer(model)
    except BaseException:
        _free_decoder_slot()
        raise


def _finish(wiring: Wiring, start: StreamStart, stream: LiveRecognizer, *, complete: bool) -> None:
    try:
        transcript = stream.close(timeout=FINISH_TIMEOUT_SECONDS)
    except TranscriptionError:
        # Only this call's stream failed; the recording is still fetched and transcribed.
        log.exception("live transcription failed; the batch job will do it", extra=_extra(start))
        return
    with db().begin():
        stored = _store(db(), start, transcript, complete=complete)
    log.info(
        ("live transcript stored" if complete else "partial live transcript stored")
        if stored
        else "live transcript not needed: the call already has one",
        extra={**_extra(start), "seconds": round(transcript.duration_seconds, 2)},
    )
    if stored and stored.complete and stored.case_id is not None:
        tasks.enqueue(routing_tasks.route_case, stored.case_id)


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


def _extra(start: StreamStart | None) -> dict[str, str]:
    return {"call_sid": start.call_sid, "stream_sid": start.stream_sid} if start else {}
