"""Normalisation: width, case, CJK spacing and fillers, conservatively."""

from __future__ import annotations

import pytest

from routing.normalise import normalise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # Vosk's Mandarin output is spaced word by word.
        ("静轩路 上 的 路灯 不 亮 了", "静轩路上的路灯不亮了"),
        ("嗯 那个 静轩路 上 的 路灯 不 亮 了 啊", "静轩路上的路灯不亮了"),
        ("那个那个井盖丢了", "井盖丢了"),
        ("嗯嗯然后呢我们小区没水了", "我们小区没水了"),
        ("就是说我们村停电了", "我们村停电了"),
        # "那个" in the middle of a sentence is the demonstrative "that": kept.
        ("就是那个路口的灯坏了", "就是那个路口的灯坏了"),
        # 额 inside a word (金额, the amount) is not a filler.
        ("金额 不 对", "金额不对"),
        # Full-width Latin, digits and punctuation become half-width; Han stays.
        ("ＡＢＣ１２３，路灯坏了！", "abc123,路灯坏了!"),
        ("Um, the street light, like, is out", "the street light, is out"),
        ("uh the lamp is broken", "the lamp is broken"),
        # "like" and "you know" as ordinary words stay.
        ("I would like to report a pothole", "i would like to report a pothole"),
        ("It looks like a pothole", "it looks like a pothole"),
        ("Do you know where to get an ID card", "do you know where to get an id card"),
        ("We have no water, you know, since Monday", "we have no water, since monday"),
        # Korean keeps its spaces; hesitations go only as whole words.
        ("음 가로등이 안 켜져요", "가로등이 안 켜져요"),
        ("어... 저기요 물이 안 나와요", "물이 안 나와요"),
        ("그... 음 가로등이요", "가로등이요"),
        # "그" before a noun is the determiner "that": kept.
        ("그 가로등이 고장났어요", "그 가로등이 고장났어요"),
        ("음식이 상했어요", "음식이 상했어요"),
        ("  多余   的   空格  ", "多余的空格"),
    ],
)
def test_normalise(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_mixed_scripts_keep_spaces_between_latin_and_han() -> None:
    assert normalise("我 在 dev zone 上班") == "我在 dev zone 上班"
