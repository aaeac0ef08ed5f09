"""WAV inspection and decoding, G.711 and resampling: real telephone audio in, 16-bit mono out;
anything else gets a reason a person can read."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest

from tests.transcription.conftest import AUDIO
from transcription.audio import (
    ALAW,
    EXTENSIBLE,
    IEEE_FLOAT,
    MULAW,
    PCM,
    AudioError,
    StreamResampler,
    decode_wav,
    inspect_wav,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    resample,
)

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
    # mypy thinks a tuple holding pytest.approx(...) can never equal one holding a float.
    assert (info.channels, info.duration_seconds) == (  # type: ignore[comparison-overlap]
        2,
        pytest.approx(1.0),
    )


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


# --- decoding ----------------------------------------------------------------------------------

PCM_SAMPLES = np.frombuffer(SPEECH[44:], dtype="<i2")  # the fixture's header is the plain 44 bytes


def riff(fmt: bytes, data: bytes) -> bytes:
    """A WAV file from a format chunk's body and the audio bytes."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt_chunk(tag: int, *, channels: int = 1, rate: int = 8000, bits: int = 16) -> bytes:
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)


def extensible_fmt(subformat: int, *, channels: int = 1, rate: int = 8000, bits: int = 16) -> bytes:
    guid = struct.pack("<H", subformat) + bytes.fromhex("000000001000800000aa00389b71")
    extension = struct.pack("<HHI", 22, bits, 0) + guid
    return fmt_chunk(EXTENSIBLE, channels=channels, rate=rate, bits=bits) + extension


def snr_db(reference: np.ndarray, decoded: np.ndarray) -> float:
    error = decoded.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(reference.astype(np.float64) ** 2) / np.sum(error**2)))


def test_telephone_pcm_decodes_to_its_own_samples() -> None:
    audio = decode_wav(SPEECH)
    assert audio.sample_rate == 8000 and audio.samples.dtype == np.int16
    assert np.array_equal(audio.samples, PCM_SAMPLES)
    assert audio.duration_seconds == pytest.approx(4.72, abs=0.01)


@pytest.mark.parametrize(
    ("name", "encoding", "min_snr_db"),
    [
        ("s24", PCM, None),  # sox writes 24-bit as WAVE_FORMAT_EXTENSIBLE around PCM
        ("f32", IEEE_FLOAT, None),
        ("u8", PCM, 30),
        ("mulaw", MULAW, 35),
        ("alaw", ALAW, 35),
    ],
)
def test_other_encodings_made_by_sox_decode_to_the_same_speech(
    name: str, encoding: int, min_snr_db: float | None
) -> None:
    data = (AUDIO / f"ko_streetlight_{name}.wav").read_bytes()
    assert inspect_wav(data).encoding == encoding
    audio = decode_wav(data)
    assert audio.sample_rate == 8000 and len(audio.samples) == len(PCM_SAMPLES)
    if min_snr_db is None:  # lossless: exactly the 16-bit samples sox started from
        assert np.array_equal(audio.samples, PCM_SAMPLES)
    else:
        assert snr_db(PCM_SAMPLES, audio.samples) > min_snr_db


def test_stereo_at_44k_is_mixed_to_mono_without_overflow() -> None:
    left = np.array([32767, -32768, 1000, 3], dtype=np.int16)
    right = np.array([32767, -32768, -1000, 0], dtype=np.int16)
    frames = np.stack([left, right], axis=1).astype("<i2").tobytes()
    audio = decode_wav(riff(fmt_chunk(PCM, channels=2, rate=44100), frames))
    assert audio.sample_rate == 44100
    assert audio.samples.tolist() == [32767, -32768, 0, 2]  # 1.5 rounds to even


def test_extensible_float_and_multichannel_decode() -> None:
    values = np.array([[0.5, -0.5, 0.25], [1.5, float("nan"), -1.0]], dtype="<f4")
    data = riff(extensible_fmt(IEEE_FLOAT, channels=3, rate=16000, bits=32), values.tobytes())
    audio = decode_wav(data)
    # Averages of (0.5, -0.5, 0.25) and (clipped 1.5, NaN as silence, -1.0) on the 16-bit scale.
    assert audio.samples.tolist() == [round(0.25 * 32768 / 3), round((32767 - 32768) / 3)]


def test_mulaw_and_alaw_tables_hold_the_g711_values() -> None:
    mulaw = mulaw_to_pcm16(bytes([0x00, 0x80, 0x7F, 0xFF, 0x70]))
    assert mulaw.tolist() == [-32124, 32124, 0, 0, -120]
    alaw = decode_wav(riff(fmt_chunk(ALAW, bits=8), bytes([0xD5, 0x55, 0xAA, 0x2A]))).samples
    assert alaw.tolist() == [8, -8, 32256, -32256]


def test_mulaw_round_trip_loses_little() -> None:
    decoded = mulaw_to_pcm16(pcm16_to_mulaw(PCM_SAMPLES))
    assert snr_db(PCM_SAMPLES, decoded) > 35
    # Every code but μ-law's "negative zero" (0x7F) survives decode then encode unchanged.
    codes = bytes(range(256))
    changed = [
        c for c, back in zip(codes, pcm16_to_mulaw(mulaw_to_pcm16(codes)), strict=True) if c != back
    ]
    assert changed == [0x7F]


def test_mulaw_encoder_clips_the_extremes() -> None:
    extremes = np.array([32767, -32768], dtype=np.int16)
    assert mulaw_to_pcm16(pcm16_to_mulaw(extremes)).tolist() == [32124, -32124]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"ID3\x04\x00\x00" + bytes(400), "not a WAV"),
        (b"Hello, this is a text file.\n", "not a WAV"),
        (SPEECH[: len(SPEECH) // 2], "truncated"),
        (riff(fmt_chunk(0x55, bits=16), bytes(400)), "MP3"),
        (riff(fmt_chunk(PCM, channels=0), bytes(400)), "channel count"),
        (riff(fmt_chunk(MULAW, bits=16), bytes(400)), "8 bits"),
        (riff(fmt_chunk(PCM, channels=2), b"\x01\x00"), "less than one sample"),
        (riff(extensible_fmt(PCM)[:30], bytes(400)), "extensible format chunk is cut short"),
        (riff(extensible_fmt(0x55), bytes(400)), "MP3"),
    ],
    ids=[
        "empty",
        "mp3-id3",
        "text",
        "truncated",
        "mp3-in-wav",
        "no-channels",
        "16-bit-mulaw",
        "half-a-frame",
        "short-extensible",
        "extensible-mp3",
    ],
)
def test_undecodable_audio_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(AudioError, match=reason):
        decode_wav(data)


def test_audio_longer_than_the_limit_is_rejected() -> None:
    with pytest.raises(AudioError, match=r"too long: 4\.7 s, the limit is 2 s"):
        decode_wav(SPEECH, max_seconds=2)
    assert decode_wav(SPEECH, max_seconds=5).duration_seconds < 5


# --- resampling --------------------------------------------------------------------------------


def test_resample_is_the_identity_at_the_same_rate() -> None:
    assert resample(PCM_SAMPLES, 8000, 8000) is PCM_SAMPLES


def test_resample_keeps_the_duration() -> None:
    upsampled = resample(PCM_SAMPLES, 8000, 16000)
    assert upsampled.dtype == np.int16 and len(upsampled) == 2 * len(PCM_SAMPLES)
    # Back down again, what remains is the speech itself (all of it lies below 4 kHz).
    assert snr_db(PCM_SAMPLES, resample(upsampled, 16000, 8000)) > 30


def test_stream_resampler_in_20ms_chunks_matches_one_shot() -> None:
    stream = StreamResampler(8000, 16000)
    pieces = [stream.process(PCM_SAMPLES[i : i + 160]) for i in range(0, len(PCM_SAMPLES), 160)]
    streamed = np.concatenate([*pieces, stream.flush()])
    whole = resample(PCM_SAMPLES, 8000, 16000)
    assert streamed.dtype == np.int16
    assert abs(len(streamed) - len(whole)) <= 2
    length = min(len(streamed), len(whole))
    assert np.corrcoef(streamed[:length], whole[:length])[0, 1] > 0.999


def test_stream_resampler_at_the_same_rate_passes_samples_through() -> None:
    stream = StreamResampler(16000, 16000)
    assert stream.process(PCM_SAMPLES) is PCM_SAMPLES
    assert len(stream.flush()) == 0
