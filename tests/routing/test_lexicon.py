"""The lexicon: config/lexicon.toml loads and is checked line by line; topics match as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.lexicon import TOPICS, LexiconError, load_lexicon, topics
from routing.normalise import normalise

GOOD = """\
# Comments explain why a term is here.
[topics]
lamp = [
    "路灯", "street light", # the English phrase, not a bare "light"
    "가로등",
]
dark = ["黑乎乎", "dark"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lexicon.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_loads_in_order(tmp_path: Path) -> None:
    lexicon = load_lexicon(write(tmp_path, GOOD))
    assert lexicon == {"lamp": ("路灯", "street light", "가로등"), "dark": ("黑乎乎", "dark")}
    assert list(lexicon) == ["lamp", "dark"]


def test_the_shipped_file_is_what_the_classifier_uses() -> None:
    assert load_lexicon() == TOPICS
    assert {"lamp", "road", "water", "power", "chatter"} <= set(TOPICS)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[topics]\nlamp = ["路灯"]\n[extra]\nx = 1\n', 3, "unknown key 'extra'"),
        ('version = 2\n[topics]\nlamp = ["路灯"]\n', 1, "unknown key 'version'"),
        ('[topics]\nlamp = ["路灯"]\n\n[[rules]]\nx = 1\n', 4, "unknown key 'rules'"),
        ("topics = 3\n", 1, "needs a [topics] table"),
        ("# nothing yet\n\n[topics]\n", 3, "needs a [topics] table"),
        ('[topics]\nlamp = ["路灯"]\ndark = "黑乎乎"\n', 3, "topic 'dark' is not a list"),
        ('[topics]\nlamp = ["路灯"]\n\ndark = [\n]\n', 4, "topic 'dark' has no terms"),
        ('[topics]\nlamp = [\n    "路灯",\n    "",\n]\n', 4, "'' is not a term"),
        ('[topics]\nlamp = [\n    "路灯", "  ",\n]\n', 3, "'  ' is not a term"),
        ('[topics]\nlamp = [\n    "路灯",\n    # a number\n    3,\n]\n', 5, "3 is not a term"),
        ('[topics]\nlamp = [\n    "路灯",\n    ["a"],\n]\n', 4, "['a'] is not a term"),
        ('[topics]\nlamp = ["路灯", "Street Light"]\n', 2, "'Street Light' has capitals"),
        (
            '[topics]\ndark = ["dark"]\nlamp = [\n    "路灯", "lamp",\n    "bulb", "lamp",\n]\n',
            5,
            "topic 'lamp': 'lamp' is listed twice",
        ),
        # A term may be in two topics, not twice in one; brackets in strings and comments are
        # not the array's.
        (
            '[topics]\nlamp = ["lamp", "dark"]\ndark = [\n  "dark", "[a \\"]\\"", # ]\n  "dark"]\n',
            5,
            "topic 'dark': 'dark' is listed twice",
        ),
    ],
)
def test_a_bad_file_is_named_with_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(LexiconError) as raised:
        load_lexicon(path)
    assert str(raised.value).startswith(f"{path}:{line}: ")
    assert message in str(raised.value)


def test_a_syntax_error_is_named_with_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[topics]\nlamp = ["路灯",\ndark = ["黑"]\n')
    with pytest.raises(LexiconError) as raised:
        load_lexicon(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert "line 3" in str(raised.value)


def test_a_topic_in_dotted_form_is_located_too(tmp_path: Path) -> None:
    path = write(tmp_path, 'topics.lamp = ["路灯"]\ntopics.dark = []\n')
    with pytest.raises(LexiconError, match=rf"^{path}:2: topic 'dark' has no terms"):
        load_lexicon(path)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("开发区春秋路的路灯坏了好几天了 晚上黑乎乎的", ("lamp", "dark")),
        # The longest term wins: 户口迁移 once, not 户口 and then 迁移 again.
        ("办户口迁移要我提供无犯罪记录证明这个在哪开", ("hukou",)),
        ("我们小区停水两天了 水龙头一滴水都没有", ("water", "water")),
        ("There are potholes all over the road and the street light is out", ("lamp", "road")),
        ("another power outage, who pays for the food in our freezer?", ("power",)),
        # Latin terms match from a word start only: "lamp" is not inside "streetlamp".
        ("the streetlamp", ()),
        ("the bus was late", ("vehicle",)),
        ("my neighbour parked his car", ()),
        ("가로등이 고장나서 밤에 너무 어두워요", ("lamp", "dark")),
        ("가로등 불빛이 깜빡거려요", ("lamp", "lamp", "lamp")),
        ("물이 안 나와요 수도관이 터졌어요", ("water", "water")),
    ],
)
def test_topics_in_three_languages(text: str, found: tuple[str, ...]) -> None:
    assert topics(normalise(text)) == found
