"""A call's live decode on its own lane (a thread that keeps a warm recognizer from call to
call), and how far behind the caller it is.

A new call is decoded live only while the decodes running keep up with their callers
(`DecodingPool.admits`); one that falls `GIVE_UP_BEHIND_SECONDS` behind stops at once, as it
can no longer beat the batch job, and its CPU goes to the calls that can. When the CPU is
short, the newest decode is dropped first, so that the older ones still win their races.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from transcription.models import LoadedModel
from transcription.recognizer import StreamingTranscriber, Transcript, TranscriptionError

MULAW_BYTES_PER_SECOND = 8000
# A new call is decoded live only while every running decode is less than this far behind.
ADMIT_BEHIND_SECONDS = 1.5
# Further behind than this, a decode can't beat the batch job: it is dropped, CPU and all.
GIVE_UP_BEHIND_SECONDS = 8.0
# When any decode is this far behind, the CPU is short: the newest decode is dropped (one at a
# time, SHED_INTERVAL_SECONDS apart), so that the older ones catch up and win their races.
SHED_BEHIND_SECONDS = 3.0
SHED_INTERVAL_SECONDS = 1.0
# A decode that is behind catches up in chunks of this much audio (not frame by frame), and
# its progress is seen after each.
CHUNK_BYTES = MULAW_BYTES_PER_SECOND // 2
# A decode keeping up is woken when this much audio waits (Vosk takes 160 ms at a time anyway),
# not for every 20 ms frame: a handoff between threads costs more than the frame's decoding.
WAKE_BYTES = 1280

log = logging.getLogger("hotline.ivr.streams")


class LiveDecoder:
    """A call's StreamingTranscriber, fed on its lane (`pool`: an executor of one thread).

    `put_mulaw` (on the event loop) only appends; at most one pool task per call drains what
    has arrived, in one piece (so a decode that is behind catches up in large chunks, not
    frame by frame). `close` waits for the rest and returns the transcript. `on_heard`, if
    given, is told the words so far whenever they change (on the pool's thread, after each
    chunk), while the caller still speaks.
    """

    def __init__(
        self,
        model: LoadedModel,
        pool: concurrent.futures.Executor,
        *,
        transcriber: Callable[[LoadedModel], StreamingTranscriber] = StreamingTranscriber,
        clock: Callable[[], float] = time.monotonic,
        on_frame: Callable[[], None] | None = None,
        on_heard: Callable[[str], None] | None = None,
    ) -> None:
        self._transcriber = transcriber(model)
        self._clock = clock
        self._on_frame = on_frame
        self._on_heard = on_heard
        self._heard = ""
        self._first_frame_at: float | None = None
        self._pool = pool
        self._lock = threading.Lock()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        # Audio received and audio decoded: the difference is how far behind the caller it is.
        self._received_bytes = 0
        self._decoded_bytes = 0
        self._draining = False
        self._closed = False
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._transcript: Transcript | None = None

    def put_mulaw(self, payload: bytes) -> None:
        """Queue a μ-law frame; never blocks. A decode that has given up drops it."""
        with self._lock:
            if self._closed or self._error is not None:
                return
            if self._first_frame_at is None:
                self._first_frame_at = self._clock()
            self._pending.append(payload)
            self._pending_bytes += len(payload)
            self._received_bytes += len(payload)
            if self.behind_seconds() > GIVE_UP_BEHIND_SECONDS:
                self._give_up()
                return
            if self._pending_bytes >= WAKE_BYTES:
                self._schedule()
        if self._on_frame is not None:
            self._on_frame()

    def behind_seconds(self) -> float:
        """Seconds of the caller's speech not decoded yet.

        A caller speaks in real time, and so Twilio sends; audio that arrives faster (the
        emulator's streams, flat out) counts as said only as the clock reaches it."""
        if self._first_frame_at is None:
            return 0.0
        spoken = (self._clock() - self._first_frame_at) * MULAW_BYTES_PER_SECOND
        return max(0.0, min(self._received_bytes, spoken) - self._decoded_bytes) / (
            MULAW_BYTES_PER_SECOND
        )

    @property
    def gave_up(self) -> bool:
        """Whether the decode fell too far behind and stopped."""
        return self._error is not None

    def close(self, timeout: float | None = 60.0) -> Transcript:
        """End the stream, wait for the decode to finish, and return the transcript."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._schedule()
        if not self._done.wait(timeout):
            raise TranscriptionError(f"decoding did not finish within {timeout} s")
        if self._error is not None:
            raise TranscriptionError(f"live transcription failed: {self._error}")
        assert self._transcript is not None
        return self._transcript

    def give_up(self, reason: str) -> None:
        """Stop decoding this call (the batch job will transcribe it)."""
        with self._lock:
            if self._error is None:
                self._give_up(reason)

    def _give_up(self, reason: str | None = None) -> None:  # with the lock held
        self._error = TranscriptionError(
            reason
            or f"fell {self.behind_seconds():.0f} s behind the caller; the batch job will do it"
        )
        self._pending, self._pending_bytes = [], 0
        if not self._draining:
            self._done.set()
            # The recognizer goes back to the pool on the thread that took it.
            self._pool.submit(self._transcriber.abandon)

    def _schedule(self) -> None:  # with the lock held
        if self._draining:
            return  # the running drain takes what arrives, and finishes if closed
        if self._error is not None:
            self._done.set()
            return
        self._draining = True
        self._pool.submit(self._drain)

    def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    joined = b"".join(self._pending)
                    chunk, rest = joined[:CHUNK_BYTES], joined[CHUNK_BYTES:]
                    self._pending = [rest] if rest else []
                    self._pending_bytes = len(rest)
                    if not chunk:
                        if self._closed and self._error is None:
                            self._transcript = self._transcriber.finish()
                        if self._error is not None:
                            self._transcriber.abandon()
                        if self._closed or self._error is not None:
                            self._done.set()
                        self._draining = False
                        return
                if self._error is not None:
                    continue  # given up meanwhile: what is left was dropped
                self._transcriber.feed_mulaw(chunk)
                with self._lock:
                    self._decoded_bytes += len(chunk)
                if self._on_heard is not None:
                    self._tell_heard()
        except Exception as error:  # reported by close(), to the one call it concerns
            self._transcriber.abandon()
            with self._lock:
                self._error = error
                self._draining = False
                self._done.set()

    def _tell_heard(self) -> None:  # on the pool's thread, between two chunks
        heard = self._transcriber.heard_so_far()
        if heard == self._heard or self._on_heard is None:
            return
        self._heard = heard
        try:
            self._on_heard(heard)
        except Exception:  # a listener's failure must not cost the call its transcript
            log.exception("a live transcript listener failed")


class DecodingPool:
    """The process's live decodes: one thread per call admitted at once (a lane), and the
    admission of new calls only while the decodes running keep up with their callers.

    A call is decoded on one lane from its first frame to its transcript, so its recognizer
    (`transcription.pool`) is made, used and reset on that lane's thread alone, and is
    reused by the lane's next call. A new call takes the free lane used most recently, whose
    recognizer is the warmest."""

    def __init__(
        self,
        max_streams: int,
        *,
        transcriber: Callable[[LoadedModel], StreamingTranscriber] = StreamingTranscriber,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transcriber = transcriber
        self._clock = clock
        self._lanes = [
            concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"live-decode-{index}"
            )
            for index in range(max(1, max_streams))
        ]
        self._lock = threading.Lock()
        self._decoders: list[LiveDecoder] = []  # in the order they were admitted
        self._lane_of: dict[int, int] = {}  # id of an open decoder -> its lane
        self._last_used = [0.0] * len(self._lanes)
        self._last_shed = float("-inf")

    def open(
        self, model: LoadedModel, *, on_heard: Callable[[str], None] | None = None
    ) -> LiveDecoder:
        """A decoder for one call, counted until `forget`; `on_heard` hears its words so far."""
        with self._lock:
            lane = self._free_lane()
            self._last_used[lane] = self._clock()
            decoder = LiveDecoder(
                model,
                self._lanes[lane],
                transcriber=self._transcriber,
                clock=self._clock,
                on_frame=self._shed_if_short,
                on_heard=on_heard,
            )
            self._decoders.append(decoder)
            self._lane_of[id(decoder)] = lane
        return decoder

    def _free_lane(self) -> int:  # with the lock held
        # Past the admission limit (tests only) two calls share the least busy lane.
        busy = [0] * len(self._lanes)
        for lane in self._lane_of.values():
            busy[lane] += 1
        return min(range(len(self._lanes)), key=lambda lane: (busy[lane], -self._last_used[lane]))

    def forget(self, decoder: object) -> None:
        """The decoder's stream ended (anything else is not counted here)."""
        with self._lock:
            self._decoders = [known for known in self._decoders if known is not decoder]
            self._lane_of.pop(id(decoder), None)

    def _running(self) -> list[LiveDecoder]:
        with self._lock:
            return [decoder for decoder in self._decoders if not decoder.gave_up]

    def most_behind(self) -> float:
        """How far behind its caller the furthest-behind running decode is, in seconds."""
        return max((decoder.behind_seconds() for decoder in self._running()), default=0.0)

    def _shed_if_short(self) -> None:
        # A burst of callers is admitted at once, before any decode has fallen behind; if the
        # CPU can't run them all in real time, all would lose. Drop the newest, one at a time.
        now = self._clock()
        if now - self._last_shed < SHED_INTERVAL_SECONDS:
            return
        running = self._running()
        behind = max((decoder.behind_seconds() for decoder in running), default=0.0)
        if len(running) > 1 and behind > SHED_BEHIND_SECONDS:
            self._last_shed = now
            running[-1].give_up(
                f"dropped: the live decodes were {behind:.1f} s behind their callers; "
                "the batch job will do it"
            )

    def admits(self) -> bool:
        """Whether the decodes running now keep up, so that one more may start."""
        return self.most_behind() < ADMIT_BEHIND_SECONDS

    def shutdown(self) -> None:
        """Let the decodes under way finish (Kaldi aborts a process torn down mid-decode)."""
        for lane in self._lanes:
            lane.shutdown(wait=True)
