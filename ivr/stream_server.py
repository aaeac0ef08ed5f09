"""The Media Streams server: many sockets on one asyncio loop, decoding beside it in threads.

A call's socket lasts as long as its report (up to three minutes). Served by the web process,
each one held a gunicorn thread, and sixteen callers recording at once left none for the
webhooks. Here a socket costs a coroutine: the loop only parses frames and queues audio.
What blocks runs in threads the loop never waits on: the decoding pool (`ivr.stream_decoder`:
at most `LIVE_STREAM_LIMIT` calls, and only while they keep up; others are left to the batch
job), a small pool for opening a model and for finishing a stream (waiting for its
decode, writing the transcript to the database), and another for interrupting a call in
which an emergency is heard (`ivr.interrupt`: a REST request to Twilio).

`python -m hotline.streams` runs it as the Procfile's `streams` process; `StreamsServer` runs
it on a thread for the tests and `simulate-call`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from cases import intake
from hotline.wiring import Wiring
from ivr.conversation import ConversationListener
from ivr.interrupt import EMERGENCY_STEP_PATH, CallRedirect, EmergencyWatch, twilio_call_redirect
from ivr.signatures import signature_matches
from ivr.stream_decoder import DecodingPool
from ivr.streams import (
    IDLE_TIMEOUT_SECONDS,
    STREAM_PATH,
    BadFrameError,
    CallStream,
    StreamStart,
    log_extra,
    media_payload,
    parse_frame,
)
from ivr.twiml import CONVERSATION_STREAM
from transcription.models import LoadedModel
from transcription.recognizer import StreamingTranscriber

log = logging.getLogger("hotline.ivr.streams")

# websockets logs every connection opened and closed; ours says what matters, once per call.
_websockets_log = logging.getLogger("hotline.ivr.streams.websockets")
_websockets_log.setLevel(logging.WARNING)
# A media frame is about 300 bytes of JSON; anything near this is not from Twilio.
MAX_FRAME_BYTES = 64 * 1024
# WebSocket close codes (RFC 6455): the peer broke our rules, or sent what we can't read.
POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003
NORMAL_CLOSURE = 1000
INTERNAL_ERROR = 1011
MESSAGE_TOO_BIG = 1009


Transcriber = Callable[[LoadedModel], StreamingTranscriber]


class MediaStreams:
    """The handlers `websockets.serve` calls: the signed upgrade, then each socket's frames.

    `transcriber` makes each call's recogniser (tests give one that hears set words);
    `redirect` moves a live call to another step (Twilio's REST API, by default)."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        transcriber: Transcriber = StreamingTranscriber,
        redirect: CallRedirect | None = None,
    ) -> None:
        self.wiring = wiring
        self.decoding = DecodingPool(wiring.live.max_streams, transcriber=transcriber)
        # Opening a model (seconds, once per locale) and finishing a stream (waiting for its
        # decode, then the database) block; each admitted call needs one of these at a time.
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, wiring.live.max_streams) + 2, thread_name_prefix="stream-finish"
        )
        # Emergencies are rare: two threads keep one slow REST request from holding another.
        # The words of conversations with operators are written on threads of their own: a
        # slow database must never delay an emergency interrupt.
        self.conversations = concurrent.futures.ThreadPoolExecutor(
            max_workers=4, thread_name_prefix="conversation-words"
        )
        self.interrupts = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="emergency-interrupt"
        )
        settings = wiring.settings
        # Without a Twilio account or a mock of its API (sms_enabled) there is no call to
        # redirect: an emergency is left to the check after the recording.
        self.redirect = redirect
        if redirect is None and settings.sms_enabled:
            self.redirect = twilio_call_redirect(
                account_sid=settings.twilio_account_sid,
                auth_token=settings.twilio_auth_token,
                api_base_url=settings.twilio_api_base_url,
            )

    def listener(self, start: StreamStart) -> Callable[[str], None]:
        """Who is told the words so far: the operator's page during a conversation with a
        person, else the watch that interrupts a report for an emergency."""
        if start.purpose == CONVERSATION_STREAM:
            return ConversationListener(
                call_sid=start.call_sid,
                session=self.wiring.database.session,
                emergency_numbers=self.wiring.call_flow.options.emergency_numbers,
                executor=self.conversations,
            ).heard
        return self.watch(start).heard

    def watch(self, start: StreamStart) -> EmergencyWatch:
        """The call's watch for an emergency heard while its caller speaks."""
        flow = self.wiring.call_flow
        return EmergencyWatch(
            call_sid=start.call_sid,
            locale=start.locale,
            step_url=lambda locale, kind: flow.url(EMERGENCY_STEP_PATH, lang=locale, kind=kind),
            redirect=self.redirect,
            report_ended=self._report_ended,
            executor=self.interrupts,
        )

    def _report_ended(self, call_sid: str) -> bool:
        # The Record action opens the case: once it has, the caller is past the recording.
        with self.wiring.database.session() as session:
            return intake.case_number_of_call(session, call_sid=call_sid) is not None

    def check_upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the upgrade (403, before the handshake) unless Twilio signed the URL it was
        given; any other path is 404."""
        path = request.path.split("?", 1)[0]
        if path != STREAM_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "Not found\n")
        signature = request.headers.get("X-Twilio-Signature", "")
        # Twilio signs the URL from the TwiML: our public stream base plus the path it asked.
        url = self.wiring.settings.public_stream_url + request.path
        validator = self.wiring.twilio_validator
        if not signature or not (
            signature_matches(validator.compute_signature(url, {}), signature)
            or validator.validate(url, {}, signature)
        ):
            log.warning("rejected a media stream with a missing or invalid signature")
            return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
        return None

    async def handle(self, websocket: ServerConnection) -> None:
        """One call's stream, from its `start` to its `stop` (or a drop, or a bad frame)."""
        loop = asyncio.get_running_loop()
        call = CallStream(self.wiring, self.decoding)
        complete = False
        try:
            while True:
                try:
                    async with asyncio.timeout(IDLE_TIMEOUT_SECONDS):
                        raw = await websocket.recv()
                except TimeoutError:
                    log.warning("media stream went quiet", extra=log_extra(call.start))
                    await websocket.close(NORMAL_CLOSURE, "idle")
                    break
                message = parse_frame(raw)
                event = message["event"]
                if event == "start":
                    start = StreamStart.from_message(message)
                    refusal = call.refusal(start)
                    if refusal is not None:
                        log.warning("media stream refused: %s", refusal, extra=log_extra(start))
                        await websocket.close(POLICY_VIOLATION, refusal)
                        break
                    call.on_heard = self.listener(start)
                    await loop.run_in_executor(self.pool, call.begin)
                elif event == "media":
                    call.feed(media_payload(message))
                elif event == "stop":
                    call.note_stop()
                    complete = True
                    break
                # "connected", "mark" and "dtmf" carry nothing we need.
        except BadFrameError as error:
            log.warning(
                "media stream closed: malformed frame (%s)", error, extra=log_extra(call.start)
            )
            await websocket.close(UNSUPPORTED_DATA, "malformed frame")
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == MESSAGE_TOO_BIG:
                log.warning(
                    "media stream closed: a frame over %d bytes",
                    MAX_FRAME_BYTES,
                    extra=log_extra(call.start),
                )
            else:
                log.warning(
                    "media stream dropped before its stop message (%s)",
                    closed,
                    extra=log_extra(call.start),
                )
        except Exception:  # this call's stream only: the server and the other calls go on
            log.exception("media stream failed", extra=log_extra(call.start))
            await websocket.close(INTERNAL_ERROR, "internal error")
        finally:
            # Submitted, not merely awaited: if the server is stopping and this coroutine is
            # cancelled, the transcript is still stored and the slot still freed.
            finished = self.pool.submit(call.finish, complete=complete)
            await asyncio.wrap_future(finished)

    def close(self) -> None:
        """Wait for the streams being finished (Kaldi aborts a process torn down mid-decode)."""
        self.pool.shutdown(wait=True)
        self.decoding.shutdown()
        self.interrupts.shutdown(wait=True)
        self.conversations.shutdown(wait=True)


async def run_streams(
    wiring: Wiring,
    host: str,
    port: int,
    *,
    stop: asyncio.Event,
    on_ready: Callable[[int], None] | None = None,
    transcriber: Transcriber = StreamingTranscriber,
    redirect: CallRedirect | None = None,
) -> None:
    """Serve until `stop` is set; then close every socket and finish their streams.
    `on_ready` is given the port once the server listens."""
    streams = MediaStreams(wiring, transcriber=transcriber, redirect=redirect)
    try:
        async with serve(
            streams.handle,
            host,
            port,
            process_request=streams.check_upgrade,
            max_size=MAX_FRAME_BYTES,
            # Twilio's frames are small and plain: compressing them buys nothing.
            compression=None,
            logger=_websockets_log,
        ) as server:
            bound = int(next(iter(server.sockets)).getsockname()[1])
            log.info("media streams listening on %s:%d", host, bound)
            if on_ready is not None:
                on_ready(bound)
            await stop.wait()
            server.close()
            await server.wait_closed()
    finally:
        await asyncio.to_thread(streams.close)


class StreamsServer:
    """The streams server on a thread of this process, on a free port (tests, simulate-call)."""

    def __init__(
        self,
        wiring: Wiring,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        transcriber: Transcriber = StreamingTranscriber,
        redirect: CallRedirect | None = None,
    ) -> None:
        self.wiring = wiring
        self.host = host
        self.port = port
        self.transcriber = transcriber
        self.redirect = redirect
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="media-streams", daemon=True)
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Where to connect: ws://host:port."""
        return f"ws://{self.host}:{self.port}"

    def __enter__(self) -> StreamsServer:
        return self.start()

    def start(self) -> StreamsServer:
        """Start serving; returns once the server listens."""
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Close the sockets, let their streams finish, and end the thread."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=90)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as error:  # reported by __enter__ if it happens at start-up
            self._error = error
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        await run_streams(
            self.wiring,
            self.host,
            self.port,
            stop=self._stop,
            on_ready=self._listening,
            transcriber=self.transcriber,
            redirect=self.redirect,
        )

    def _listening(self, port: int) -> None:
        self.port = port
        self._ready.set()
