"""Free text that people type: the one rule for what may be stored (`TextRule.clean`), and the
one way to show what is stored already (`readable`, `readable_data`).

What is refused, and why:
- a lone surrogate (U+D800 to U+DFFF): half of a UTF-16 pair, which JSON's `\\ud800` escape can
  carry but no UTF-8 page or answer can; one such note once made a case unreadable for everyone;
- NUL and the other control characters (C0 but tab and newline, DEL, C1): PostgreSQL refuses NUL
  in text, XML and terminals choke on the rest, and no person means to type them;
- U+FFFE and U+FFFF, Unicode noncharacters that XML cannot carry either;
- text over the field's length, and (for a required field) text that is only blanks.

What is changed, so that one text is stored one way: line ends become `\\n` (browsers post a
textarea's lines as CRLF), the text is put in Unicode normal form C (a composed é and e plus
a combining accent read alike and now compare alike), and blanks around it are stripped.

Whatever is already stored (from before this rule, or written by the machine) is shown through
`readable`, which replaces any code point the rule refuses by U+FFFD: a bad row still shows,
with a visible mark where the bad character was, and never breaks a page or an answer.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from cases.errors import InvalidInputError

MAX_TEXT = 4000
REPLACEMENT = "\ufffd"

_SURROGATES = "\ud800-\udfff"
_CONTROLS = "\x00-\x08\x0b-\x1f\x7f-\x9f"  # tab (09) and newline (0a) are text
_NONCHARACTERS = "\ufffe\uffff"
_REFUSED = re.compile(f"[{_SURROGATES}{_CONTROLS}{_NONCHARACTERS}]")
# On the way out, a carriage return is left alone: texts stored before this rule hold CRLFs.
_UNREADABLE = re.compile(f"[{_SURROGATES}\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_NONCHARACTERS}]")
_LINE_ENDS = re.compile(r"\r\n?")

# What `BadTextError.problem` says, for programs: the edges choose their answer by it.
CHARACTER_PROBLEMS = frozenset({"lone_surrogate", "nul", "control_character", "noncharacter"})


class BadTextError(InvalidInputError):
    """A typed text the rule refuses: which field, what is wrong (`problem`), and where."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        problem: str,
        code_point: str | None = None,
        position: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.problem = problem
        self.code_point = code_point
        self.position = position
        self.limit = limit

    @property
    def is_character_problem(self) -> bool:
        """A character that cannot be stored, rather than a text too long or empty."""
        return self.problem in CHARACTER_PROBLEMS


def _problem(char: str) -> str:
    if "\ud800" <= char <= "\udfff":
        return "lone_surrogate"
    if char == "\x00":
        return "nul"
    if unicodedata.category(char) == "Cc":
        return "control_character"
    return "noncharacter"


_PROBLEM_WORDS = {
    "lone_surrogate": "a lone surrogate (half of a UTF-16 pair, not a character)",
    "nul": "a NUL character",
    "control_character": "a control character",
    "noncharacter": "a Unicode noncharacter",
}


def first_refused(value: str) -> tuple[int, str] | None:
    """The position (from 0) and the code point of the first character the rule refuses."""
    match = _REFUSED.search(value)
    return None if match is None else (match.start(), match.group())


@dataclass(frozen=True)
class TextRule:
    """How one kind of field is typed: its longest length, and whether it may hold lines."""

    max_length: int
    multiline: bool = True

    def clean(self, value: str | None, *, field: str, required: bool = True) -> str:
        """The text as it is stored, or BadTextError naming the field and what is wrong."""
        text = _LINE_ENDS.sub("\n", value or "")
        found = first_refused(text)
        if found is None and not self.multiline:
            line_break = re.search(r"[\n\t]", text)
            found = None if line_break is None else (line_break.start(), line_break.group())
        if found is not None:
            position, char = found
            problem = _problem(char) if char not in "\n\t" else "control_character"
            code_point = f"U+{ord(char):04X}"
            raise BadTextError(
                f"the field {field!r} contains {_PROBLEM_WORDS[problem]}, {code_point}, "
                f"at character {position + 1}; send text without it",
                field=field,
                problem=problem,
                code_point=code_point,
                position=position + 1,
            )
        text = unicodedata.normalize("NFC", text).strip()
        if required and not text:
            raise BadTextError(f"{field} is required", field=field, problem="required")
        if len(text) > self.max_length:
            raise BadTextError(
                f"{field} is longer than {self.max_length} characters",
                field=field,
                problem="too_long",
                limit=self.max_length,
            )
        return text


# The kinds of typed fields: a note, reply, reason or ruling; a single line (a name, an
# address); a code from the directory.
PROSE = TextRule(max_length=MAX_TEXT)
LINE = TextRule(max_length=200, multiline=False)
CODE = TextRule(max_length=40, multiline=False)


def readable(value: str) -> str:
    """Stored text made safe to show: each code point the rule refuses becomes U+FFFD."""
    return _UNREADABLE.sub(REPLACEMENT, value)


def readable_data(value: Any) -> Any:
    """`readable` applied to every string in plain data (dicts, lists, keys too)."""
    if isinstance(value, str):
        return readable(value)
    if isinstance(value, dict):
        return {readable_data(key): readable_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [readable_data(item) for item in value]
    return value


def readable_value(value: object) -> object:
    """`readable` for a value a template prints (its `finalize`): strings are made readable, and
    markup stays markup; anything else is left to the template."""
    if not isinstance(value, str):
        return value
    cleaned = readable(value)
    if cleaned == value:
        return value
    # Markup (anything with __html__) is already escaped: keep its type, or it is escaped twice.
    return type(value)(cleaned) if hasattr(value, "__html__") else cleaned
