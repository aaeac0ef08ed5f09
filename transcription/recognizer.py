"""Speech to text with Vosk: whole recordings (batch) and live calls (streaming).

Vosk takes 16-bit mono PCM at the model's rate, in chunks of 100-200 ms. A recognizer belongs to
one stream and one thread; the model behind it is shared.

Kaldi dithers the audio with the C library's global rand(), so the same audio can come out
slightly differently from one run to the next, and streams running at once draw from the same
generator. Store a transcript once made; don't expect to remake it byte for byte.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import queue
import re
import threading
import time
import traceback
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from transcription.audio import Audio, Samples, StreamResampler, mulaw_to_pcm16, resample
from transcription.models import LoadedModel
from transcription.pool import Lease

BATCH_CHUNK_SECONDS = 0.2

# Han ideographs (with extensions and compatibility forms), Hiragana and Katakana.
_HAN_KANA = (
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\U00020000-\U0002fa1f"
)
_SPACE_BETWEEN_HAN_KANA = re.compile(rf"(?<=[{_HAN_KANA}])\s+(?=[{_HAN_KANA}])")


class TranscriptionError(Exception):
    """A live stream's transcription failed; it concerns that stream alone."""


@dataclass(frozen=True)
class Word:
    """One recognised word, with its times (seconds from the start) and Vosk's confidence."""

    word: str
    start: float
    end: float
    conf: float

    def to_dict(self) -> dict[str, Any]:
        """The word as JSON-able data."""
        return asdict(self)


@dataclass(frozen=True)
class Transcript:
    """What the recognizer heard, and what made it."""

    text: str
    words: tuple[Word, ...]
    duration_seconds: float
    engine: str
    model: str
    processing_seconds: float

    @property
    def real_time_factor(self) -> float:
        """Processing time over audio time: below 1 keeps up with a live call."""
        return self.processing_seconds / self.duration_seconds if self.duration_seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        """The transcript as JSON-able data."""
        return {
            "text": self.text,
            "words": [word.to_dict() for word in self.words],
            "duration_seconds": self.duration_seconds,
            "engine": self.engine,
            "model": self.model,
            "processing_seconds": self.processing_seconds,
        }


@functools.cache
def engine_name() -> str:
    """The engine and its version, e.g. "vosk 0.3.45", as transcripts record it."""
    return f"vosk {importlib.metadata.version('vosk')}"


def remove_cjk_spaces(text: str) -> str:
    """Remove the spaces Vosk puts between Chinese (or Japanese) words; leave Korean alone."""
    # Only where both neighbours are Han or Kana: Chinese and Japanese are written without
    # spaces, but Korean separates its words (eojeol) with them, so Hangul keeps every space.
    # A space between Han and Latin letters ("在 Main Street") stays too.
    return _SPACE_BETWEEN_HAN_KANA.sub("", text)


def _pcm_bytes(samples: Samples) -> bytes:
    return np.ascontiguousarray(samples, dtype="<i2").tobytes()


def _call_time(seconds: float, offset_seconds: float) -> float:
    # Vosk times a word from the first sample its recognizer ever heard, to the microsecond:
    # less what came before this call. Kept to the millisecond (frames are 10 ms apart), as
    # the microseconds would move with the offset's rounding, and a call decoded by a reused
    # recognizer must get the times a fresh one gives. The nudge keeps a time that falls on a
    # half millisecond from rounding one way here and the other way there.
    return round(seconds - offset_seconds + 2e-6, 3)


def _transcript(
    results: list[str],
    *,
    duration: float,
    model: LoadedModel,
    processing: float,
    offset_seconds: float = 0.0,
) -> Transcript:
    segments: list[str] = []
    words: list[Word] = []
    for result in results:
        parsed = json.loads(result)
        if parsed.get("text"):
            segments.append(parsed["text"])
        words.extend(
            Word(
                word=item["word"],
                start=_call_time(item["start"], offset_seconds),
                end=_call_time(item["end"], offset_seconds),
                conf=item["conf"],
            )
            for item in parsed.get("result", ())
        )
    return Transcript(
        text=remove_cjk_spaces(" ".join(segments)),
        words=tuple(words),
        duration_seconds=duration,
        engine=engine_name(),
        model=model.name,
        processing_seconds=processing,
    )


def transcribe(audio: Audio, model: LoadedModel) -> Transcript:
    """Transcribe a whole recording with the locale's model."""
    started = time.perf_counter()
    samples = resample(audio.samples, audio.sample_rate, model.sample_rate)
    lease = model.recognizers.take(model)
    step = round(model.sample_rate * BATCH_CHUNK_SECONDS)
    results = []
    try:
        for offset in range(0, len(samples), step):
            # True at an endpoint (a pause): that segment's result must be taken now or lost.
            if lease.accept_waveform(_pcm_bytes(samples[offset : offset + step])):
                results.append(lease.recognizer.Result())
        results.append(lease.recognizer.FinalResult())
    finally:
        lease.give_back()
    return _transcript(
        results,
        duration=audio.duration_seconds,
        model=model,
        processing=time.perf_counter() - started,
        offset_seconds=lease.offset_seconds,
    )


class StreamingTranscriber:
    """Transcribes one live call as its audio arrives.

    Not thread-safe, by design: one per stream, fed from one thread. Its Vosk recognizer is
    taken from the model's pool on the thread that first feeds it (that thread's own, reused
    from call to call) and given back by `finish`, or by `abandon` if the call is dropped;
    both on that thread.
    """

    def __init__(
        self, model: LoadedModel, *, input_rate: int = 8000, chunk_seconds: float = 0.16
    ) -> None:
        self._model = model
        self._input_rate = input_rate
        self._resampler = StreamResampler(input_rate, model.sample_rate)
        # Twilio sends 20 ms frames; Vosk wants 100-200 ms at a time, as each call into it costs.
        self._chunk_samples = max(1, round(model.sample_rate * chunk_seconds))
        self._pending: list[Samples] = []
        self._pending_samples = 0
        self._lease: Lease | None = None
        self._recognizer: Any = None
        self._results: list[str] = []
        self._input_samples = 0
        self._processing_seconds = 0.0  # time spent decoding, not the length of the call
        self._finished = False

    def feed_mulaw(self, payload: bytes) -> None:
        """Add G.711 μ-law audio at the input rate (a Media Streams frame, base64-decoded)."""
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise TypeError(f"μ-law audio must be bytes, not {type(payload).__name__}")
        self.feed_pcm16(mulaw_to_pcm16(payload))

    def feed_pcm16(self, samples: npt.ArrayLike) -> None:
        """Add 16-bit mono samples at the input rate."""
        if self._finished:
            raise TranscriptionError("this stream is already finished")
        started = time.perf_counter()
        chunk = np.asarray(samples)
        if chunk.dtype != np.int16 or chunk.ndim != 1:
            raise TypeError(f"expected 1-D int16 samples, got {chunk.ndim}-D {chunk.dtype}")
        self._input_samples += len(chunk)
        self._buffer(self._resampler.process(chunk))
        if self._pending_samples >= self._chunk_samples:
            self._accept()
        self._processing_seconds += time.perf_counter() - started

    def finish(self) -> Transcript:
        """Decode what is left and return the call's transcript."""
        if self._finished:
            raise TranscriptionError("this stream is already finished")
        started = time.perf_counter()
        self._finished = True
        self._buffer(self._resampler.flush())
        if self._pending_samples:
            self._accept()
        offset_seconds = self._lease.offset_seconds if self._lease is not None else 0.0
        if self._recognizer is not None:
            self._results.append(self._recognizer.FinalResult())
        self.abandon()
        self._processing_seconds += time.perf_counter() - started
        return _transcript(
            self._results,
            duration=self._input_samples / self._input_rate,
            model=self._model,
            processing=self._processing_seconds,
            offset_seconds=offset_seconds,
        )

    def abandon(self) -> None:
        """Give the recognizer back to the pool, reset, without a transcript (or after one)."""
        self._finished = True
        lease, self._lease, self._recognizer = self._lease, None, None
        if lease is not None:
            lease.give_back()

    def heard_so_far(self) -> str:
        """The words up to now, before the stream ends: the segments closed at pauses, then
        the one under way (Vosk's partial result), for acting while the caller still speaks."""
        texts = [json.loads(result).get("text", "") for result in self._results]
        if self._recognizer is not None:
            texts.append(json.loads(self._recognizer.PartialResult()).get("partial", ""))
        return remove_cjk_spaces(" ".join(text for text in texts if text))

    def _buffer(self, samples: Samples) -> None:
        if len(samples):
            self._pending.append(samples)
            self._pending_samples += len(samples)

    def _accept(self) -> None:
        if self._lease is None:
            self._lease = self._model.recognizers.take(self._model)
            self._recognizer = self._lease.recognizer
        chunk = np.concatenate(self._pending)
        self._pending, self._pending_samples = [], 0
        if self._lease.accept_waveform(_pcm_bytes(chunk)):
            self._results.append(self._recognizer.Result())


class ThreadedStream:
    """A StreamingTranscriber on its own thread, so whoever feeds it never waits on decoding.

    `put_mulaw` only queues; whatever goes wrong in decoding surfaces from `close`, as a
    TranscriptionError, and touches no other stream.
    """

    def __init__(
        self, model: LoadedModel, *, input_rate: int = 8000, chunk_seconds: float = 0.16
    ) -> None:
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()  # None ends it
        self._transcript: Transcript | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(
            target=self._run,
            args=(model, input_rate, chunk_seconds),
            name=f"transcribe-{model.locale}",
            daemon=True,  # a decode stuck in Kaldi must not keep the process from exiting
        )
        self._thread.start()

    def put_mulaw(self, payload: bytes) -> None:
        """Queue a μ-law frame for decoding; never blocks."""
        # Unbounded on purpose: even when decoding falls behind, a call backs up 8 KB a second.
        if self._closed:
            raise TranscriptionError("this stream is already closed")
        if self._error is None:  # after a failure nothing reads the queue: don't let it grow
            self._queue.put(payload)

    def close(self, timeout: float | None = 60.0) -> Transcript:
        """End the stream, wait for decoding to finish, and return the transcript."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TranscriptionError(f"decoding did not finish within {timeout} s")
        if self._error is not None:
            raise TranscriptionError(f"live transcription failed: {self._error!r}") from self._error
        if self._transcript is None:  # only if the thread was stopped by a BaseException
            raise TranscriptionError("decoding ended without a transcript")
        return self._transcript

    def _run(self, model: LoadedModel, input_rate: int, chunk_seconds: float) -> None:
        try:
            self._transcript = self._decode(model, input_rate, chunk_seconds)
        except Exception as error:  # reported by close(), to the one caller it concerns
            # The traceback would keep the recognizer (100+ MB) alive: keep its lines only.
            traceback.clear_frames(error.__traceback__)
            self._error = error

    def _decode(self, model: LoadedModel, input_rate: int, chunk_seconds: float) -> Transcript:
        # Created here, so the recognizer is born in the thread that uses it.
        transcriber = StreamingTranscriber(
            model, input_rate=input_rate, chunk_seconds=chunk_seconds
        )
        try:
            while (payload := self._queue.get()) is not None:
                transcriber.feed_mulaw(payload)
            return transcriber.finish()
        finally:
            transcriber.abandon()  # after a failure too, on the thread that took it
