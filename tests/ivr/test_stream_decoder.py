"""Live decodes on the shared pool (`ivr.stream_decoder`): they keep up, or they stop, so that
the calls that can be heard live are (issue 12, defect 11)."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

import pytest
from flask import Flask

from hotline.wiring import wiring_of
from ivr.stream_decoder import DecodingPool, LiveDecoder
from tests.conftest import AUDIO
from transcription.audio import decode_wav, pcm16_to_mulaw, resample
from transcription.models import LoadedModel
from transcription.recognizer import StreamingTranscriber, TranscriptionError

FRAME = 160  # 20 ms of μ-law


@pytest.fixture(scope="module")
def korean(app: Flask) -> LoadedModel:
    return wiring_of(app).models.get("ko-KR")


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def frames(name: str, *, repeat: int = 1) -> list[bytes]:
    audio = decode_wav((AUDIO / f"{name}.wav").read_bytes())
    mulaw = pcm16_to_mulaw(resample(audio.samples, audio.sample_rate, 8000)) * repeat
    return [mulaw[i : i + FRAME] for i in range(0, len(mulaw), FRAME)]


class CallerClock:
    """The caller's clock: 20 ms pass with every frame sent, as when Twilio streams a call."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def send(self, decoder: LiveDecoder, frames: list[bytes]) -> None:
        for frame in frames:
            decoder.put_mulaw(frame)
            self.now += len(frame) / 8000


class OverloadedTranscriber(StreamingTranscriber):
    """A real transcriber on a CPU shared by more decodes than it can run in real time: each
    call into it takes a quarter of a second, whatever it is given."""

    calls = 0

    def feed_mulaw(self, payload: bytes) -> None:
        OverloadedTranscriber.calls += 1
        time.sleep(0.25)


class StalledTranscriber(StreamingTranscriber):
    """A transcriber stalled for two seconds on its first chunk. (It used to stall on every
    chunk, so the test's pool took a minute to drain after it.)"""

    stalled = False

    def feed_mulaw(self, payload: bytes) -> None:
        if not self.stalled:
            self.stalled = True
            time.sleep(2)


def test_a_live_decode_on_the_pool_hears_the_whole_call(
    korean: LoadedModel, pool: concurrent.futures.Executor
) -> None:
    decoder = LiveDecoder(korean, pool)
    for frame in frames("ko_streetlight"):
        decoder.put_mulaw(frame)
    transcript = decoder.close(timeout=60)
    assert transcript.text
    assert transcript.duration_seconds == pytest.approx(4.72, abs=0.05)


def test_a_live_decode_that_falls_far_behind_its_caller_stops_at_once_and_frees_its_cpu(
    korean: LoadedModel, pool: concurrent.futures.Executor
) -> None:
    clock = CallerClock()
    decoder = LiveDecoder(korean, pool, transcriber=OverloadedTranscriber, clock=clock)
    OverloadedTranscriber.calls = 0
    clock.send(decoder, frames("ko_streetlight", repeat=3))  # 14 s, faster than it decodes
    assert decoder.gave_up

    started = time.monotonic()
    with pytest.raises(TranscriptionError, match="behind the caller"):
        decoder.close(timeout=60)
    # It didn't wait for the backlog (about 14 s of audio at a quarter second a frame)...
    assert time.monotonic() - started < 1.0
    # ...and decodes nothing more: the CPU is left to the calls that can still be heard live.
    calls = OverloadedTranscriber.calls
    time.sleep(0.6)
    assert OverloadedTranscriber.calls == calls


def test_no_new_call_is_decoded_live_while_the_running_decodes_are_behind(
    korean: LoadedModel,
) -> None:
    clock = CallerClock()
    decoding = DecodingPool(max_streams=4, transcriber=OverloadedTranscriber, clock=clock)
    try:
        assert decoding.admits()
        lagging = decoding.open(korean)
        clock.send(lagging, frames("ko_water", repeat=2)[:300])  # 6 s, faster than decoded
        assert not lagging.gave_up and decoding.most_behind() > 1.5
        assert not decoding.admits()
        clock.send(lagging, frames("ko_water", repeat=2))  # now far behind: it gives up...
        assert lagging.gave_up
        assert decoding.admits()  # ...and no longer holds back the next caller
        decoding.forget(lagging)
    finally:
        decoding.shutdown()


def test_audio_sent_faster_than_spoken_is_not_a_decode_falling_behind(
    korean: LoadedModel, pool: concurrent.futures.Executor
) -> None:
    # The emulator streams flat out: the whole report arrives at once, yet nobody waits.
    clock = CallerClock()
    decoder = LiveDecoder(korean, pool, transcriber=StalledTranscriber, clock=clock)
    for frame in frames("ko_streetlight", repeat=3):
        decoder.put_mulaw(frame)
    assert decoder.behind_seconds() == 0.0 and not decoder.gave_up
    clock.now += 3.0  # three seconds of the caller's speech, and only one chunk decoded
    assert decoder.behind_seconds() > 1.5


def test_a_burst_of_callers_the_cpu_cannot_keep_up_with_loses_the_newest_not_everyone(
    korean: LoadedModel,
) -> None:
    # Admitted together, before any had fallen behind: the audit's twelve callers at once.
    clock = CallerClock()
    decoding = DecodingPool(max_streams=4, transcriber=OverloadedTranscriber, clock=clock)
    try:
        first, second = decoding.open(korean), decoding.open(korean)
        for frame in frames("ko_water", repeat=2)[:250]:  # 5 s each, faster than decoded
            first.put_mulaw(frame)
            second.put_mulaw(frame)
            clock.now += 0.02
        assert second.gave_up  # the newest makes room...
        assert not first.gave_up  # ...so that the first can still be heard live
    finally:
        decoding.shutdown()


class ThreadNoting(StreamingTranscriber):
    """A real transcriber that notes the thread each chunk of its call was decoded on."""

    made: ClassVar[list[ThreadNoting]] = []

    def __init__(self, model: LoadedModel) -> None:
        super().__init__(model)
        self.threads: set[str] = set()
        ThreadNoting.made.append(self)

    def feed_mulaw(self, payload: bytes) -> None:
        self.threads.add(threading.current_thread().name)
        super().feed_mulaw(payload)


def test_calls_one_after_another_are_decoded_on_one_lane_by_its_one_recognizer(
    korean: LoadedModel,
) -> None:
    decoding = DecodingPool(max_streams=4, transcriber=ThreadNoting)
    try:
        texts, threads = [], []
        for _ in range(2):
            decoder = decoding.open(korean)
            transcriber = ThreadNoting.made[-1]
            for frame in frames("ko_streetlight"):
                decoder.put_mulaw(frame)
            texts.append(decoder.close(timeout=60).text)
            decoding.forget(decoder)
            threads.append(transcriber.threads)
        # Each call stays on one thread from its first chunk to its transcript, and the next
        # call takes the same lane, whose recognizer was made there and is now warm.
        assert len(threads[0]) == 1 and threads[0] == threads[1]
        lane = decoding._lanes[0]
        reused = lane.submit(korean.recognizers.take, korean).result()
        assert reused.kept and reused.offset_seconds > 2 * 4.5  # it heard both calls
        lane.submit(reused.give_back).result()
        assert texts[0] and texts[1]
    finally:
        decoding.shutdown()
