"""The recognizer pool with the real Korean model: each thread keeps one recognizer, reused
from call to call and reset between them, and a reset one hears what a fresh one hears."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import vosk

from tests.transcription.conftest import AUDIO
from tests.transcription.vosk_reference import media_stream_frames, reseed_dither
from transcription.audio import decode_wav
from transcription.models import LoadedModel
from transcription.recognizer import StreamingTranscriber, transcribe

CHUNK = 3200  # 0.2 s at 16 kHz, as `transcribe` feeds it


def fresh_vosk_words(model: LoadedModel, name: str) -> list[tuple[str, float, float]]:
    """A 16 kHz fixture through a new, plain KaldiRecognizer, in `transcribe`'s chunks."""
    samples = decode_wav((AUDIO / f"{name}_16k.wav").read_bytes()).samples
    pcm = np.ascontiguousarray(samples, dtype="<i2").tobytes()
    recognizer = vosk.KaldiRecognizer(model.model, model.sample_rate)
    recognizer.SetWords(True)
    results = []
    for offset in range(0, len(pcm), CHUNK * 2):
        if recognizer.AcceptWaveform(pcm[offset : offset + CHUNK * 2]):
            results.append(recognizer.Result())
    results.append(recognizer.FinalResult())
    return [
        (item["word"], item["start"], item["end"])
        for result in results
        for item in json.loads(result).get("result", ())
    ]


def test_a_thread_gets_back_its_own_recognizer_call_after_call(korean: LoadedModel) -> None:
    first = korean.recognizers.take(korean)
    recognizer = first.recognizer
    first.give_back()
    second = korean.recognizers.take(korean)
    assert second.recognizer is recognizer and second.kept
    second.give_back()


def test_each_thread_keeps_a_recognizer_of_its_own(korean: LoadedModel) -> None:
    both_hold_one = threading.Barrier(2)

    def two_calls() -> tuple[Any, Any]:
        lease = korean.recognizers.take(korean)
        both_hold_one.wait(timeout=30)  # taken at the same time, on two threads
        first = lease.recognizer
        lease.give_back()
        again = korean.recognizers.take(korean)
        again.give_back()
        return first, again.recognizer

    with ThreadPoolExecutor(2) as threads:
        (a_first, a_again), (b_first, b_again) = threads.map(lambda _: two_calls(), range(2))
    assert a_first is a_again and b_first is b_again  # each thread reuses its own...
    assert a_first is not b_first  # ...and no thread has another's


def test_a_second_call_on_a_busy_thread_gets_a_spare_that_is_not_kept(
    korean: LoadedModel,
) -> None:
    held = korean.recognizers.take(korean)
    spare = korean.recognizers.take(korean)
    assert spare.recognizer is not held.recognizer and held.kept and not spare.kept
    spare.give_back()
    held.give_back()
    again = korean.recognizers.take(korean)
    assert again.recognizer is held.recognizer
    again.give_back()


def test_a_recognizer_given_back_on_another_thread_is_not_used_again(
    korean: LoadedModel,
) -> None:
    with ThreadPoolExecutor(1) as owner:
        lease = owner.submit(korean.recognizers.take, korean).result()
        lease.give_back()  # here, not on the owner's thread
        after = owner.submit(korean.recognizers.take, korean).result()
        assert after.recognizer is not lease.recognizer and after.kept
        owner.submit(after.give_back).result()


def test_a_reset_recognizer_hears_what_a_fresh_one_hears(korean: LoadedModel) -> None:
    transcribe(decode_wav((AUDIO / "ko_garbage_16k.wav").read_bytes()), korean)
    for name in ("ko_streetlight", "ko_water", "ko_noise"):
        lease = korean.recognizers.take(korean)
        reused, heard_before = lease.recognizer, lease.offset_seconds
        lease.give_back()
        assert heard_before > 0  # this thread's recognizer has decoded other calls

        reseed_dither()
        fresh = fresh_vosk_words(korean, name)
        reseed_dither()
        transcript = transcribe(decode_wav((AUDIO / f"{name}_16k.wav").read_bytes()), korean)

        again = korean.recognizers.take(korean)
        assert again.recognizer is reused  # the call above was decoded by it
        again.give_back()
        assert fresh, name
        # The same words at the same times: Vosk's microseconds, counted from the recognizer's
        # first call, made the call's own and kept to the millisecond.
        assert [(word.word, word.start, word.end) for word in transcript.words] == [
            (word, round(start + 2e-6, 3), round(end + 2e-6, 3)) for word, start, end in fresh
        ], name


def test_streams_one_after_another_on_a_thread_reuse_its_recognizer(
    korean: LoadedModel,
) -> None:
    frames = media_stream_frames(decode_wav((AUDIO / "ko_road.wav").read_bytes()).samples)
    transcripts = []
    for _ in range(2):
        before = korean.recognizers.take(korean)
        recognizer, heard = before.recognizer, before.offset_seconds
        before.give_back()
        reseed_dither()
        stream = StreamingTranscriber(korean)
        for frame in frames:
            stream.feed_mulaw(frame)
        transcripts.append(stream.finish())
        after = korean.recognizers.take(korean)
        # The stream decoded with this thread's recognizer: it heard the call's audio.
        assert after.recognizer is recognizer
        assert after.offset_seconds - heard == pytest.approx(
            transcripts[-1].duration_seconds, abs=0.01
        )
        after.give_back()
    assert transcripts[0].text and transcripts[0].words == transcripts[1].words
