"""WAV inspection: real telephone audio passes; anything else gets a reason a person can read."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from tests.conftest import AUDIO
from transcription.audio import MULAW, AudioError, inspect_wav

SPEECH = (AUDIO / "ko_streetlight.wav").read_bytes()


def wav_bytes(*, rate: int = 8000, channels: int = 1, frames: int = 800) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x01\x00" * frames * channels)
    return buffer.getvalue()


def test_telephone_audio_is_described() -> None:
    info = inspect_wav(SPEECH)
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (8000, 1, 16)
    assert info.duration_seconds == pytest.approx(4.72, abs=0.01)


def test_stereo_at_another_rate_is_accepted() -> None:
    info = inspect_wav(wav_bytes(rate=44100, channels=2, frames=44100))
    assert (info.channels, info.duration_seconds) == (2, pytest.approx(1.0))


def test_mulaw_is_accepted() -> None:
    data = bytes(800)
    fmt = struct.pack("<HHIIHH", MULAW, 1, 8000, 8000, 1, 8)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 800) + data
    info = inspect_wav(b"RIFF" + struct.pack("<I", len(riff)) + riff)
    assert info.format_tag == MULAW and info.duration_seconds == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"ID3\x04" + bytes(400), "not a WAV"),
        (SPEECH[:30], "format chunk is cut short"),
        (SPEECH[: len(SPEECH) // 2], "truncated"),
        (SPEECH[:36], "no audio data chunk"),
        (wav_bytes(frames=0), "zero-length"),
        (wav_bytes().replace(b"fmt ", b"junk", 1), "audio data comes before its format"),
    ],
    ids=["empty", "mp3", "cut-header", "truncated", "no-data", "zero-length", "no-format"],
)
def test_unusable_audio_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AudioError, match=reason):
        inspect_wav(data)


def test_an_implausible_sample_rate_is_rejected() -> None:
    with pytest.raises(AudioError, match="sample rate"):
        inspect_wav(wav_bytes(rate=1000))
