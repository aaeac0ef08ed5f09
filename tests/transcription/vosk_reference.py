"""Vosk used directly, the way its own examples do, as the reference our code must match."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import wave
from pathlib import Path
from typing import Any

import vosk

from transcription.audio import Samples, pcm16_to_mulaw

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def reseed_dither(seed: int = 1) -> None:
    """Make the next decode repeatable.

    Kaldi dithers its input with noise from the C library's global rand(), so the same audio
    decodes differently depending on how many frames were dithered before it (the n-th decode
    in a process is repeatable, the same audio twice in a row is not). Reseeding rand() before
    two decodes gives both the same noise, so any difference between them is ours.
    """
    _LIBC.srand(seed)


def raw_vosk(model: Any, wav_path: Path, *, frames_per_chunk: int) -> str:
    """Text from a plain KaldiRecognizer fed a WAV's frames, as in vosk's test_simple.py."""
    with wave.open(str(wav_path), "rb") as wav:
        recognizer = vosk.KaldiRecognizer(model, wav.getframerate())
        recognizer.SetWords(True)
        texts = []
        while data := wav.readframes(frames_per_chunk):
            if recognizer.AcceptWaveform(data):
                texts.append(json.loads(recognizer.Result())["text"])
        texts.append(json.loads(recognizer.FinalResult())["text"])
    return " ".join(text for text in texts if text)


def media_stream_frames(samples: Samples) -> list[bytes]:
    """8 kHz audio cut into the 20 ms μ-law frames Twilio Media Streams sends."""
    payload = pcm16_to_mulaw(samples)
    return [payload[offset : offset + 160] for offset in range(0, len(payload), 160)]
