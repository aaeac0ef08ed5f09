"""WAV inspection: enough of the RIFF format to tell real telephone audio from anything else."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# WAVE format tags we can decode: PCM, IEEE float, A-law, mu-law, and the extensible wrapper.
PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
SUPPORTED_FORMATS = {PCM, IEEE_FLOAT, ALAW, MULAW, EXTENSIBLE}


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

    @property
    def duration_seconds(self) -> float:
        """Length of the audio in seconds."""
        bytes_per_second = self.sample_rate * self.channels * max(self.bits_per_sample // 8, 1)
        return self.data_size / bytes_per_second


def inspect_wav(data: bytes) -> WavInfo:
    """Parse and check a WAV file's header; raise AudioError for anything unusable."""
    if not data:
        raise AudioError("the file is empty")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a WAV file (no RIFF/WAVE header)")
    offset, fmt = 12, None
    while offset + 8 <= len(data):
        chunk_id, chunk_size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"fmt ":
            if chunk_size < 16 or body + 16 > len(data):
                raise AudioError("truncated WAV: the format chunk is cut short")
            fmt = struct.unpack_from("<HHIIHH", data, body)
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
            info = WavInfo(format_tag, channels, sample_rate, bits, body, size)
            _check(info)
            return info
        offset = body + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    if fmt is None:
        raise AudioError("malformed WAV: no format chunk")
    raise AudioError("truncated WAV: no audio data chunk")


def _check(info: WavInfo) -> None:
    if info.format_tag not in SUPPORTED_FORMATS:
        raise AudioError(f"unsupported WAV encoding (format tag {info.format_tag})")
    if not 1 <= info.channels <= 8:
        raise AudioError(f"implausible channel count {info.channels}")
    if not 4000 <= info.sample_rate <= 192000:
        raise AudioError(f"implausible sample rate {info.sample_rate} Hz")
    if info.bits_per_sample not in (8, 16, 24, 32):
        raise AudioError(f"unsupported sample size {info.bits_per_sample} bits")
    if info.data_size == 0:
        raise AudioError("the recording holds no audio (zero-length data)")
