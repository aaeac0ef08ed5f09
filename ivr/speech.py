"""Whether a recording holds speech at all: an energy check over 20 ms frames, before any case
is opened (issue 13, "silence is not a case").

A frame counts as voiced when its RMS level is above a threshold in dBFS; a recording holds
speech when enough of its frames are voiced, in all (not necessarily in a row, so a pause
between words does not matter, and a click or two does not make speech). The threshold and the
amount are in config/ivr.toml, with the reasons for their values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ivr import recordings
from transcription.audio import AudioError, decode_wav, mulaw_to_pcm16

FRAME_SECONDS = 0.02  # Twilio's Media Streams frame, and a usual speech-analysis frame
FULL_SCALE = 32768.0


@dataclass(frozen=True)
class SpeechRule:
    """When audio counts as speech: frames louder than `threshold_dbfs`, `min_seconds` of them."""

    threshold_dbfs: float
    min_seconds: float

    @property
    def min_frames(self) -> int:
        """How many voiced 20 ms frames make speech."""
        return max(1, round(self.min_seconds / FRAME_SECONDS))


def frame_levels(samples: npt.ArrayLike, sample_rate: int) -> npt.NDArray[np.float64]:
    """The RMS level of each whole 20 ms frame, in dBFS (digital silence is -inf)."""
    audio = np.asarray(samples, dtype=np.float64)
    size = max(1, round(sample_rate * FRAME_SECONDS))
    whole = len(audio) - len(audio) % size
    if whole == 0:
        return np.empty(0)
    frames = audio[:whole].reshape(-1, size)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    with np.errstate(divide="ignore"):
        return np.asarray(20 * np.log10(rms / FULL_SCALE), dtype=np.float64)


def voiced_frames(samples: npt.ArrayLike, sample_rate: int, rule: SpeechRule) -> int:
    """How many 20 ms frames of the audio are louder than the rule's threshold."""
    return int(np.count_nonzero(frame_levels(samples, sample_rate) > rule.threshold_dbfs))


def has_speech(samples: npt.ArrayLike, sample_rate: int, rule: SpeechRule) -> bool:
    """Whether the audio holds speech by the rule."""
    return voiced_frames(samples, sample_rate, rule) >= rule.min_frames


class SpeechDetector:
    """The same check on a live stream's μ-law frames, as they arrive: cheap enough for the
    socket's own loop (a few microseconds a frame), and done once speech is heard."""

    SAMPLE_RATE = 8000  # Twilio streams 8 kHz μ-law

    def __init__(self, rule: SpeechRule) -> None:
        self.rule = rule
        self.voiced = 0
        self.frames = 0

    @property
    def heard(self) -> bool:
        """Whether speech has been heard so far."""
        return self.voiced >= self.rule.min_frames

    def feed_mulaw(self, payload: bytes) -> bool:
        """Take one frame; True exactly when this frame makes the stream count as speech."""
        if self.heard:
            return False
        self.frames += 1
        self.voiced += voiced_frames(mulaw_to_pcm16(payload), self.SAMPLE_RATE, self.rule)
        return self.heard


def recording_has_speech(
    url: str, *, auth: tuple[str, str], max_bytes: int, rule: SpeechRule, wait: float
) -> bool | None:
    """Listen to a recording Twilio holds, within `wait` seconds: whether it holds speech, or
    None when it could not be fetched and read in time (the caller of this opens the case)."""
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            fetched = recordings.download(
                url, auth=auth, max_bytes=max_bytes, timeout=max(left, 0.1)
            )
            audio = decode_wav(fetched.data)
        except recordings.RecordingNotReadyError as error:
            # Twilio may take a moment to serve a recording that has just ended (404); any
            # other failure is no verdict at once.
            if error.status != NOT_FOUND or time.monotonic() + RETRY_SECONDS >= deadline:
                return None
            time.sleep(RETRY_SECONDS)
            continue
        except (recordings.RecordingRejectedError, AudioError):
            return None
        return has_speech(audio.samples, audio.sample_rate, rule)


RETRY_SECONDS = 0.25
NOT_FOUND = 404
