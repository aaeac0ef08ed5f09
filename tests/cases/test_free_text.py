"""The free-text rule (`cases.free_text`): pure, so checked over any string hypothesis can make,
surrogates and control characters included."""

from __future__ import annotations

import json
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cases.free_text import (
    CODE,
    LINE,
    PROSE,
    REPLACEMENT,
    BadTextError,
    first_refused,
    readable,
    readable_data,
    readable_value,
)

# Any code point; hypothesis leaves out lone surrogates and seldom tries controls, so both are
# drawn on purpose.
ANY_TEXT = st.text(
    st.one_of(
        st.characters(),
        st.integers(0xD800, 0xDFFF).map(chr),
        st.integers(0x00, 0x9F).map(chr),
        st.sampled_from("\ufffe\uffff\r\n\t \u0301"),
    )
)


@given(ANY_TEXT)
def test_what_the_rule_keeps_can_go_anywhere(value: str) -> None:
    try:
        kept = PROSE.clean(value, field="text", required=False)
    except BadTextError as error:
        assert error.field == "text" and error.problem
        return
    kept.encode("utf-8")  # no surrogate
    assert "\x00" not in kept and "\r" not in kept and first_refused(kept) is None
    assert kept == unicodedata.normalize("NFC", kept) == kept.strip()
    assert PROSE.clean(kept, field="text", required=False) == kept  # cleaning twice is once


@given(ANY_TEXT)
def test_anything_stored_reads_as_valid_utf8_json(value: str) -> None:
    shown = readable(value)
    json.loads(json.dumps({"text": shown}, ensure_ascii=False).encode("utf-8"))
    assert len(shown) == len(value)
    assert first_refused(shown.replace("\r", "")) is None


@pytest.mark.parametrize(
    ("value", "problem", "code_point", "position"),
    [
        ("\ud800", "lone_surrogate", "U+D800", 1),
        ("维修\udfff班组", "lone_surrogate", "U+DFFF", 3),
        ("已处理\x00", "nul", "U+0000", 4),
        ("\x1b[31m", "control_character", "U+001B", 1),
        ("ok\x7f", "control_character", "U+007F", 3),
        ("ok\x85", "control_character", "U+0085", 3),
        ("ok\uffff", "noncharacter", "U+FFFF", 3),
    ],
)
def test_a_refusal_names_the_field_the_character_and_where_it_is(
    value: str, problem: str, code_point: str, position: int
) -> None:
    with pytest.raises(BadTextError) as refused:
        PROSE.clean(value, field="reply")
    error = refused.value
    assert (error.field, error.problem, error.code_point, error.position) == (
        "reply",
        problem,
        code_point,
        position,
    )
    assert error.is_character_problem
    assert "'reply'" in str(error) and code_point in str(error)


def test_lengths_and_blanks_are_per_field() -> None:
    assert PROSE.clean("修" * 4000, field="text") == "修" * 4000
    for rule, longest in ((PROSE, 4000), (LINE, 200), (CODE, 40)):
        with pytest.raises(BadTextError) as refused:
            rule.clean("x" * (longest + 1), field="f")
        assert refused.value.problem == "too_long" and not refused.value.is_character_problem
    with pytest.raises(BadTextError, match="note is required"):
        PROSE.clean(" \r\n\t ", field="note")
    assert PROSE.clean(None, field="note", required=False) == ""


def test_text_keeps_its_lines_and_a_single_line_field_does_not() -> None:
    assert PROSE.clean("第一行\r\n第二行\r第三行\t完", field="text") == "第一行\n第二行\n第三行\t完"
    for value in ("water\n", "wa\tter", "wa\r\nter"):
        with pytest.raises(BadTextError, match="control character"):
            CODE.clean(value, field="department")


def test_reading_replaces_only_what_cannot_be_shown() -> None:
    assert readable("旧笔记\r\n第二行\t完") == "旧笔记\r\n第二行\t完"
    assert (
        readable("a\ud800b\x00c\x1bd\ufffe")
        == f"a{REPLACEMENT}b{REPLACEMENT}c{REPLACEMENT}d{REPLACEMENT}"
    )
    assert readable_data({"k\x00": ["\ud800", 3, None, {"x": "\x07"}]}) == {
        f"k{REPLACEMENT}": [REPLACEMENT, 3, None, {"x": REPLACEMENT}]
    }


def test_a_template_value_keeps_its_type() -> None:
    class Markup(str):
        def __html__(self) -> str:
            return str(self)

    marked = readable_value(Markup("<b>\x00</b>"))
    assert isinstance(marked, Markup) and marked == f"<b>{REPLACEMENT}</b>"
    clean = Markup("<b>ok</b>")
    assert readable_value(clean) is clean
    assert readable_value(42) == 42 and readable_value(None) is None
