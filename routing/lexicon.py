"""The trilingual topics of hotline reports: shared features of the classifier.

The terms live in config/lexicon.toml, whose header says how they match and how to choose them.
`topics` is the classifier's feature analyzer; trained models pickle a reference to it by name.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Any, NoReturn

DEFAULT_LEXICON_PATH = Path(__file__).resolve().parent.parent / "config" / "lexicon.toml"

# TOML tokens, enough to find where each element of an array starts (tomllib keeps no positions).
_TOKEN = re.compile(
    r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\''
    r"|#[^\n]*|[\[\]{},]|[^\s\[\]{},#]+"
)


class LexiconError(ValueError):
    """The lexicon file is malformed; the message names the file and the line."""


def _line(raw: str, position: int) -> int:
    return raw.count("\n", 0, position) + 1


def _quoted(key: str) -> str:
    return f"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"


def _top_level_key(raw: str, key: str) -> re.Match[str] | None:
    """Where a top-level key is set: its [table] header, or `key = ` before the first table."""
    header = re.search(rf"^[ \t]*\[\[?[ \t]*{_quoted(key)}[ \t]*[\].]", raw, re.M)
    first_table = re.search(r"^[ \t]*\[", raw, re.M)
    preamble = raw[: first_table.start()] if first_table else raw
    return header or re.search(rf"^[ \t]*{_quoted(key)}[ \t]*[.=]", preamble, re.M)


def _topic_key(raw: str, topic: str) -> re.Match[str] | None:
    """Where a topic is set: `topic = ` under [topics] (or dotted, `topics.topic = `)."""
    table = re.search(r"^[ \t]*\[[ \t]*topics[ \t]*\]", raw, re.M)
    pattern = rf"^[ \t]*(?:topics[ \t]*\.[ \t]*)?{_quoted(topic)}[ \t]*="
    return re.compile(pattern, re.M).search(raw, table.end() if table else 0)


def _element_starts(raw: str, start: int) -> list[int]:
    """Where each element of the array that begins after `start` starts."""
    starts: list[int] = []
    depth, expecting = 0, False
    for token in _TOKEN.finditer(raw, start):
        text = token.group()
        if text.startswith("#"):
            continue
        if depth == 0 and text != "[":
            break
        if depth == 1 and expecting and text not in (",", "]"):
            starts.append(token.start())
            expecting = False
        if text in ("[", "{"):
            depth += 1
            expecting = depth == 1
        elif text in ("]", "}"):
            depth -= 1
            if depth == 0:
                break
        elif text == "," and depth == 1:
            expecting = True
    return starts


def load_lexicon(path: Path = DEFAULT_LEXICON_PATH) -> dict[str, tuple[str, ...]]:
    """Topic → terms, from a file such as config/lexicon.toml, checked entry by entry."""
    raw = path.read_text(encoding="utf-8")

    def fail(position: int | None, message: str) -> NoReturn:
        where = f"{path}:{_line(raw, position)}" if position is not None else str(path)
        raise LexiconError(f"{where}: {message}")

    try:
        data: dict[str, Any] = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as error:
        raise LexiconError(f"{path}: {error}") from error
    for name in data:
        if name != "topics":
            found = _top_level_key(raw, name)
            fail(found.start() if found else None, f"unknown key {name!r}: only [topics] is read")
    table = data.get("topics")
    if not isinstance(table, dict) or not table:
        found = _top_level_key(raw, "topics")
        fail(found.start() if found else None, "needs a [topics] table of `topic = [terms]`")
    lexicon: dict[str, tuple[str, ...]] = {}
    for topic, terms in table.items():
        key = _topic_key(raw, topic)
        key_start = key.start() if key else None
        if not isinstance(terms, list):
            fail(key_start, f"topic {topic!r} is not a list of terms")
        if not terms:
            fail(key_start, f"topic {topic!r} has no terms")
        starts = _element_starts(raw, key.end()) if key else []
        seen: set[str] = set()
        for number, term in enumerate(terms):
            start = starts[number] if number < len(starts) else key_start
            if not isinstance(term, str) or not term.strip():
                fail(start, f"topic {topic!r}: {term!r} is not a term (a non-empty string)")
            if term != term.lower():
                fail(start, f"topic {topic!r}: {term!r} has capitals; text is matched lower-cased")
            if term in seen:
                fail(start, f"topic {topic!r}: {term!r} is listed twice")
            seen.add(term)
        lexicon[topic] = tuple(terms)
    return lexicon


def _compile(terms: tuple[str, ...]) -> re.Pattern[str]:
    parts = [rf"\b{re.escape(term)}" if term.isascii() else re.escape(term) for term in terms]
    return re.compile("|".join(sorted(parts, key=len, reverse=True)))


TOPICS: dict[str, tuple[str, ...]] = load_lexicon()
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (topic, _compile(terms)) for topic, terms in TOPICS.items()
)


@functools.lru_cache(maxsize=4096)
def topics(text: str) -> tuple[str, ...]:
    """The topics a normalised text mentions, once per mention (a feature analyzer)."""
    # Cached: the category and urgency models both analyse the same normalised text, and
    # these scans are most of a prediction's cost.
    found: list[str] = []
    for topic, pattern in _PATTERNS:
        found.extend(topic for _ in pattern.finditer(text))
    return tuple(found)
