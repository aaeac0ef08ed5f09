"""Audio in: WAV inspection and decoding, G.711 μ-law/A-law, and resampling to a model's rate.

Everything leaves here as 16-bit mono samples (`np.int16`), the one form Vosk accepts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

# WAVE format tags we can decode: PCM, IEEE float, A-law, mu-law, and the extensible wrapper.
PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
SUPPORTED_FORMATS = {PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE}
_SAMPLE_ENCODINGS = SUPPORTED_FORMATS - {EXTENSIBLE}  # what the extensible wrapper may hold

# A few tags people actually send us, so the error names the format instead of a number.
_FORMAT_NAMES = {2: "Microsoft ADPCM", 0x11: "IMA ADPCM", 0x31: "GSM 6.10", 0x55: "MP3"}
# WAVE_FORMAT_EXTENSIBLE names its real encoding with a GUID whose last 14 bytes are fixed.
_KSDATAFORMAT_SUFFIX = bytes.fromhex("000000001000800000aa00389b71")

Samples = npt.NDArray[np.int16]


class AudioError(ValueError):
    """The bytes are not audio we can use; the message says why, for a person to read."""


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says about its audio."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    data_offset: int
    data_size: int
    # For WAVE_FORMAT_EXTENSIBLE, the tag of the encoding it wraps (PCM, IEEE_FLOAT, ...).
    subformat_tag: int | None = None

    @property
    def encoding(self) -> int:
        """The format tag of the samples themselves, looking through the extensible wrapper."""
        return self.subformat_tag if self.subformat_tag is not None else self.format_tag

    @property
    def duration_seconds(self) -> float:
        """Length of the audio in seconds."""
        bytes_per_second = self.sample_rate * self.channels * max(self.bits_per_sample // 8, 1)
        return self.data_size / bytes_per_second


@dataclass(frozen=True, eq=False)  # eq=False: arrays don't compare to a single bool
class Audio:
    """Decoded audio: 16-bit mono samples and their rate."""

    samples: Samples
    sample_rate: int

    @property
    def duration_seconds(self) -> float:
        """Length of the audio in seconds."""
        return len(self.samples) / self.sample_rate


def inspect_wav(data: bytes) -> WavInfo:
    """Parse and check a WAV file's header; raise AudioError for anything unusable."""
    if not data:
        raise AudioError("the file is empty")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    offset, fmt, subformat = 12, None, None
    while offset + 8 <= len(data):
        chunk_id, chunk_size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16 or body + 16 > len(data):
                raise AudioError("truncated WAV: the format chunk is cut short")
            fmt = struct.unpack_from("<HHIIHH", data, body)
            if fmt[0] == EXTENSIBLE:
                subformat = _extensible_subformat(data, body, chunk_size)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("malformed WAV: audio data comes before its format")
            format_tag, channels, sample_rate, _byte_rate, _align, bits = fmt
            available = len(data) - body
            # Streaming writers leave the size at 0 or 0xFFFFFFFF; trust what is there then.
            size = available if chunk_size in (0, 0xFFFFFFFF) else chunk_size
            if size > available:
                raise AudioError(
                    f"truncated WAV: the header promises {size} bytes of audio, "
                    f"the file holds {available}"
                )
            info = WavInfo(format_tag, channels, sample_rate, bits, body, size, subformat)
            _check(info)
            return info
        offset = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    if fmt is None:
        raise AudioError("malformed WAV: no format chunk")
    raise AudioError("truncated WAV: no audio data chunk")


def _extensible_subformat(data: bytes, body: int, chunk_size: int) -> int:
    # cbSize, valid bits and channel mask (8 bytes) come first, then the 16-byte SubFormat GUID.
    if chunk_size < 40 or body + 40 > len(data):
        raise AudioError("truncated WAV: the extensible format chunk is cut short")
    guid = data[body + 24 : body + 40]
    if guid[2:] != _KSDATAFORMAT_SUFFIX:
        raise AudioError("unsupported WAV encoding (an extensible format with an unknown GUID)")
    return int.from_bytes(guid[:2], "little")


def _check(info: WavInfo) -> None:
    if info.encoding not in _SAMPLE_ENCODINGS:
        name = _FORMAT_NAMES.get(info.encoding)
        label = f"{name}, format tag {info.encoding}" if name else f"format tag {info.encoding}"
        raise AudioError(f"unsupported WAV encoding ({label})")
    if not 1 <= info.channels <= 8:
        raise AudioError(f"implausible channel count {info.channels}")
    if not 4000 <= info.sample_rate <= 192000:
        raise AudioError(f"implausible sample rate {info.sample_rate} Hz")
    if info.bits_per_sample not in (8, 16, 24, 32):
        raise AudioError(f"unsupported sample size {info.bits_per_sample} bits")
    if info.encoding in (MULAW, ALAW) and info.bits_per_sample != 8:
        raise AudioError(f"G.711 audio must be 8 bits a sample, not {info.bits_per_sample}")
    if info.encoding == IEEE_FLOAT and info.bits_per_sample != 32:
        raise AudioError(f"unsupported float sample size {info.bits_per_sample} bits")
    if info.data_size == 0:
        raise AudioError("the recording holds no audio (zero-length data)")


def decode_wav(data: bytes, *, max_seconds: float = 600) -> Audio:
    """Decode a WAV file to 16-bit mono; raise AudioError for anything unusable or too long."""
    info = inspect_wav(data)
    if info.duration_seconds > max_seconds:
        raise AudioError(
            f"the recording is too long: {info.duration_seconds:.1f} s, "
            f"the limit is {max_seconds:g} s"
        )
    width = info.bits_per_sample // 8
    frame_size = width * info.channels
    # A writer cut off mid-frame leaves a few stray bytes at the end: drop them, keep the rest.
    usable = info.data_size - info.data_size % frame_size
    if usable == 0:
        raise AudioError("the recording holds no audio (less than one sample)")
    raw = data[info.data_offset : info.data_offset + usable]
    # Each branch yields samples on the 16-bit scale, widened so mixing channels can't overflow.
    wide: npt.NDArray[np.int32]
    if info.encoding == MULAW:
        wide = _MULAW_TABLE[np.frombuffer(raw, dtype=np.uint8)].astype(np.int32)
    elif info.encoding == ALAW:
        wide = _ALAW_TABLE[np.frombuffer(raw, dtype=np.uint8)].astype(np.int32)
    elif info.encoding == IEEE_FLOAT:
        floats = np.nan_to_num(np.frombuffer(raw, dtype="<f4"), nan=0.0, posinf=1.0, neginf=-1.0)
        wide = np.clip(np.round(floats * 32768.0), -32768, 32767).astype(np.int32)
    elif width == 1:  # 8-bit PCM is unsigned, centred on 128
        wide = (np.frombuffer(raw, dtype=np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        wide = np.frombuffer(raw, dtype="<i2").astype(np.int32)
    elif width == 3:
        octets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        # The top octet carries the sign: shift it in as signed, drop the lowest 8 bits.
        wide = (octets[:, 2].astype(np.int8).astype(np.int32) << 8) | octets[:, 1]
    else:
        wide = np.frombuffer(raw, dtype="<i4") >> 16
    if info.channels > 1:
        frames = wide.reshape(-1, info.channels)
        mono = np.round(frames.sum(axis=1) / info.channels)
        return Audio(mono.astype(np.int16), info.sample_rate)
    return Audio(wide.astype(np.int16), info.sample_rate)


def _mulaw_decode_table() -> Samples:
    # ITU-T G.711: bits are stored inverted; 3 exponent bits, 4 mantissa bits, bias 0x84.
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = ((((codes & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> Samples:
    # ITU-T G.711: even bits are inverted (0x55); the sign bit set means positive.
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


def _mulaw_encode_table() -> npt.NDArray[np.uint8]:
    # One entry per 16-bit value, indexed by sample + 32768: encoding becomes a single lookup.
    samples = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), 32635) + 0x84  # clip, then add G.711's bias
    exponent = sum((magnitude >= (0x80 << step)).astype(np.int32) for step in range(1, 8))
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


_MULAW_TABLE = _mulaw_decode_table()
_ALAW_TABLE = _alaw_decode_table()
_MULAW_ENCODE_TABLE = _mulaw_encode_table()


def mulaw_to_pcm16(payload: bytes) -> Samples:
    """Decode G.711 μ-law bytes (as in Twilio Media Streams) to 16-bit samples."""
    return _MULAW_TABLE[np.frombuffer(payload, dtype=np.uint8)]


def pcm16_to_mulaw(samples: npt.ArrayLike) -> bytes:
    """Encode 16-bit samples as G.711 μ-law bytes."""
    values = np.asarray(samples, dtype=np.int16).astype(np.int32)
    return _MULAW_ENCODE_TABLE[values + 32768].tobytes()


def _to_int16(resampled: npt.NDArray[np.float32]) -> Samples:
    return np.clip(np.round(resampled), -32768, 32767).astype(np.int16)


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """Resample 16-bit mono audio with soxr; the same array back when the rates are equal."""
    if from_rate == to_rate:
        return samples
    # soxr dithers int16 output; resampling in float and rounding here keeps results exact
    # and repeatable, and the same whether the audio comes at once or in a stream.
    floats = soxr.resample(samples.astype(np.float32), from_rate, to_rate)
    return _to_int16(floats)


class StreamResampler:
    """Resamples one stream chunk by chunk, keeping the filter's state between chunks."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream = None if from_rate == to_rate else soxr.ResampleStream(from_rate, to_rate, 1)

    def process(self, samples: Samples) -> Samples:
        """Resample the next chunk; the filter's delay means output lags input a little."""
        if self._stream is None:
            return samples
        return _to_int16(self._stream.resample_chunk(samples.astype(np.float32)))

    def flush(self) -> Samples:
        """Resample what the filter still holds, at the end of the stream."""
        if self._stream is None:
            return np.zeros(0, dtype=np.int16)
        return _to_int16(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
