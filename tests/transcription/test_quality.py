"""Character error rate, the yardstick of the transcription tests and benchmarks."""

from __future__ import annotations

import pytest

from transcription.quality import character_error_rate


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("开发区有个井盖丢了", "开发区有个井盖丢了", 0.0),
        ("开发区有个井盖丢了", "开 发 区 有 个 井 盖 丢 了", 0.0),  # spaces don't count
        ("가로등이 고장났어요", "가로등이 고장 났어요", 0.0),
        ("가로등이 고장났어요", "가로등 고장났어요", 1 / 9),  # one deletion in nine
        ("abcd", "abxd", 0.25),  # one substitution
        ("abcd", "abcdef", 0.5),  # two insertions
        ("abc", "", 1.0),
        ("", "", 0.0),
        ("", "something", 1.0),
    ],
)
def test_character_error_rate(reference: str, hypothesis: str, expected: float) -> None:
    assert character_error_rate(reference, hypothesis) == pytest.approx(expected)
