"""The pure parts of what follows a report: the energy check for speech, and the order of the
checks on a live transcript."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from hotline.config import CONFIG_DIR
from ivr.checks import Next, SuggestionLike, decide
from ivr.prompts import load_options
from ivr.speech import SpeechDetector, SpeechRule, has_speech
from routing.emergency import EmergencyVerdict
from tests.conftest import AUDIO
from transcription.audio import decode_wav, pcm16_to_mulaw

OPTIONS = load_options(CONFIG_DIR / "ivr.toml")
RULE = SpeechRule(OPTIONS.speech_threshold_dbfs, OPTIONS.speech_min_seconds)
SPOKEN = ["zh_manhole", "en_pothole", "ko_streetlight", "ko_water", "ko_garbage"]


@pytest.mark.parametrize("name", SPOKEN)
def test_every_spoken_fixture_holds_speech(name: str) -> None:
    audio = decode_wav((AUDIO / f"{name}.wav").read_bytes())
    assert has_speech(audio.samples, audio.sample_rate, RULE)


def test_a_quiet_line_with_a_click_holds_no_speech() -> None:
    audio = decode_wav((AUDIO / "silence.wav").read_bytes())
    assert not has_speech(audio.samples, audio.sample_rate, RULE)


@pytest.mark.parametrize(("name", "heard"), [("ko_streetlight", True), ("silence", False)])
def test_the_stream_detector_agrees_on_twilios_mulaw_frames(name: str, heard: bool) -> None:
    audio = decode_wav((AUDIO / f"{name}.wav").read_bytes())
    mulaw = pcm16_to_mulaw(audio.samples)
    detector = SpeechDetector(RULE)
    turned = [detector.feed_mulaw(mulaw[i : i + 160]) for i in range(0, len(mulaw), 160)]
    assert detector.heard is heard
    assert turned.count(True) == int(heard)  # noted once, at the frame that made it speech


VERDICT = {
    "none": EmergencyVerdict(kind=None, certainty="none", rule=None),
    "clear": EmergencyVerdict(kind="fire", certainty="clear", rule="fire"),
    "borderline": EmergencyVerdict(kind="medical", certainty="borderline", rule="collapse"),
}
SUGGESTION = cast(SuggestionLike, SimpleNamespace(article=SimpleNamespace(id="a"), confidence=0.9))


@pytest.mark.parametrize(
    ("emergency", "suggestion", "confident", "expected"),
    [
        ("clear", SUGGESTION, True, Next.EMERGENCY),
        ("borderline", SUGGESTION, True, Next.ASK_DANGER),
        ("none", SUGGESTION, True, Next.ANSWER),
        ("none", SUGGESTION, False, Next.CASE),
        ("none", None, False, Next.CASE),
    ],
)
def test_an_emergency_comes_before_an_answer_and_a_doubt_is_asked(
    emergency: str, suggestion: SuggestionLike | None, confident: bool, expected: Next
) -> None:
    assert decide(VERDICT[emergency], suggestion, confident=confident).next is expected
