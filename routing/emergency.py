"""Emergency and urgent rules in Mandarin, English and Korean, guarded against negation.

Kinds decide the number the call is transferred to (`load_emergency_numbers` reads them from
config/ivr.toml's [emergency_numbers] table):
- `fire` → 119: fire, smoke from a building, gas leaks, and rescue of trapped people (in China
  the fire service answers gas leaks and rescues, e.g. a person fallen into a shaft);
- `medical` → 120: someone unconscious, not breathing, collapsed, bleeding heavily, poisoned;
- `police` → 110: violence, weapons, robbery, kidnapping, a threat to jump, and a person in the
  water (110 coordinates water rescue).

The rules are data, in config/emergency/rules.toml (`load_rules`). `assess_emergency` says
"clear" (transfer now), "borderline" (ask the caller whether someone is in danger right now) or
"none"; `find_emergency` keeps only the clear ones. Urgent rules (`find_urgent`) mark cases where
hours matter but nobody is transferred: a missing manhole cover, someone trapped in a lift, a
burst main, live wires down, a sinkhole, a lost child.

Every match is checked against guards in its own clause (clauses are split on punctuation and on
"now/but" words, because ASR text has little punctuation) and within a short window of the match:
negations (没有着火, "no fire", 불이 안), the past (去年, "last month", 지난달), hypotheticals or
advice (万一, 怎么预防, "what if", 만약, 예방), and, over the whole transcript, reported speech
before the match (新闻说, "the news said") and "it is out now" after it. A guarded match is
ignored; another, unguarded match of any rule still fires.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from routing.normalise import normalise

EmergencyKind = Literal["fire", "medical", "police"]

_KINDS: dict[str, EmergencyKind] = {"fire": "fire", "medical": "medical", "police": "police"}
DEFAULT_IVR_PATH = Path(__file__).resolve().parent.parent / "config" / "ivr.toml"
DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "config" / "emergency" / "rules.toml"


class EmergencyNumbersError(ValueError):
    """The emergency numbers are missing or malformed; the message names the file and line."""


def load_emergency_numbers(path: Path = DEFAULT_IVR_PATH) -> dict[str, str]:
    """Kind → the number its calls are put through to, from the [emergency_numbers] table of a
    file such as config/ivr.toml: exactly fire, medical and police, each a string of digits."""
    raw = path.read_text(encoding="utf-8")
    try:
        data: dict[str, Any] = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as error:
        raise EmergencyNumbersError(f"{path}: {error}") from error
    # Where the table is set: its [emergency_numbers] header (or an inline or dotted key).
    table_at = re.search(
        r"^[ \t]*(?:\[[ \t]*emergency_numbers[ \t]*\]|emergency_numbers[ \t]*[.=])", raw, re.M
    )

    def fail(kind: str | None, message: str) -> EmergencyNumbersError:
        # Named at the line of the kind's `key = ` in the table, else at the table's own line.
        found = table_at
        if table_at and kind is not None:
            table_end = re.compile(r"^[ \t]*\[", re.M).search(raw, table_at.end())
            key = re.compile(rf"^[ \t]*{re.escape(kind)}[ \t]*=", re.M)
            end = table_end.start() if table_end else len(raw)
            found = key.search(raw, table_at.end(), end) or table_at
        if found is None:
            return EmergencyNumbersError(f"{path}: {message}")
        line = raw.count("\n", 0, found.start()) + 1
        return EmergencyNumbersError(f"{path}:{line}: {message}")

    table = data.get("emergency_numbers")
    if not isinstance(table, dict):
        raise fail(None, "needs an [emergency_numbers] table: fire, medical and police")
    for kind, number in table.items():
        if kind not in _KINDS:
            raise fail(kind, f"unknown emergency kind {kind!r}: fire, medical or police")
        if not isinstance(number, str) or not re.fullmatch(r"[0-9]+", number):
            raise fail(kind, f"{kind} = {number!r} is not a string of digits")
    missing = [kind for kind in _KINDS if kind not in table]
    if missing:
        raise fail(None, f"[emergency_numbers] lacks {', '.join(missing)}")
    return {kind: table[kind] for kind in _KINDS}


@dataclass(frozen=True)
class EmergencyMatch:
    """An unguarded clear emergency rule match: its kind (the number), the rule and the words."""

    kind: EmergencyKind
    rule: str
    matched: str


@dataclass(frozen=True)
class UrgentMatch:
    """An unguarded urgent rule match: the rule and the words."""

    rule: str
    matched: str


Certainty = Literal["clear", "borderline", "none"]


@dataclass(frozen=True)
class EmergencyVerdict:
    """Is this an emergency: the kind (the number), how sure, and the rule that said so.

    "borderline" means ask the caller whether someone is in danger right now; "none" has no
    kind and no rule.
    """

    kind: EmergencyKind | None
    certainty: Certainty
    rule: str | None
    matched: str = ""


class EmergencyRulesError(ValueError):
    """The rules file is malformed; the message names the file and the rule."""


@dataclass(frozen=True)
class Rule:
    """One rule of the rules file: a pattern, what it means, and what voids it in its clause."""

    name: str
    kind: str  # fire | medical | police | urgent
    certainty: Literal["clear", "borderline"]
    pattern: re.Pattern[str]
    unless: re.Pattern[str] | None = None


@dataclass(frozen=True)
class LanguageGuards:
    """Words that void a match: a negation just before it, context before and after it."""

    negation: re.Pattern[str]
    before: re.Pattern[str]
    after: re.Pattern[str]


@dataclass(frozen=True)
class RuleBook:
    """Every rule of the rules file, and the guards that void their matches."""

    emergency: tuple[Rule, ...]  # clear ones first, then borderline, each in file order
    urgent: tuple[Rule, ...]
    clause_break: re.Pattern[str]
    reported: re.Pattern[str]
    resolved: re.Pattern[str]
    zh: LanguageGuards
    en: LanguageGuards
    ko: LanguageGuards


_FRAGMENT_LEFT = re.compile(r"\$[A-Za-z_]")


def _compile(path: Path, where: str, source: object, fragments: dict[str, str]) -> re.Pattern[str]:
    if not isinstance(source, str) or not source:
        raise EmergencyRulesError(f"{path}: {where} needs a non-empty pattern")
    expanded = string.Template(source).safe_substitute(fragments)
    if _FRAGMENT_LEFT.search(expanded):
        raise EmergencyRulesError(f"{path}: {where} names an unknown $fragment")
    try:
        return re.compile(expanded)
    except re.error as error:
        raise EmergencyRulesError(f"{path}: {where}: {error}") from error


def load_rules(path: Path = DEFAULT_RULES_PATH) -> RuleBook:
    """The rules and guards of a file such as config/emergency/rules.toml."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise EmergencyRulesError(f"{path}: {error}") from error
    fragments = {str(k): str(v) for k, v in data.get("fragments", {}).items()}
    clear: list[Rule] = []
    borderline: list[Rule] = []
    urgent: list[Rule] = []
    for number, raw in enumerate(data.get("rules", []), start=1):
        name = str(raw.get("name") or f"rule {number}")
        kind, certainty = raw.get("kind"), raw.get("certainty", "clear")
        if kind not in ("fire", "medical", "police", "urgent"):
            raise EmergencyRulesError(
                f"{path}: {name}: kind {kind!r} is not fire, medical, police or urgent"
            )
        if certainty not in ("clear", "borderline") or (kind == "urgent" and certainty != "clear"):
            raise EmergencyRulesError(
                f"{path}: {name}: certainty {certainty!r} is not clear or borderline"
            )
        rule = Rule(
            name=name,
            kind=kind,
            certainty=certainty,
            pattern=_compile(path, name, raw.get("pattern"), fragments),
            unless=_compile(path, f"{name} unless", raw["unless"], fragments)
            if "unless" in raw
            else None,
        )
        (urgent if kind == "urgent" else clear if certainty == "clear" else borderline).append(rule)
    guards = data.get("guards")
    if not isinstance(guards, dict):
        raise EmergencyRulesError(f"{path}: needs a [guards] table")

    def guard(table: dict[str, Any], key: str, where: str) -> re.Pattern[str]:
        return _compile(path, f"guards{where}.{key}", table.get(key), fragments)

    def language(code: str) -> LanguageGuards:
        table = guards.get(code)
        if not isinstance(table, dict):
            raise EmergencyRulesError(f"{path}: needs a [guards.{code}] table")
        return LanguageGuards(
            *(guard(table, key, f".{code}") for key in ("negation", "before", "after"))
        )

    return RuleBook(
        emergency=tuple(clear + borderline),
        urgent=tuple(urgent),
        clause_break=guard(guards, "clause_break", ""),
        reported=guard(guards, "reported", ""),
        resolved=guard(guards, "resolved", ""),
        zh=language("zh"),
        en=language("en"),
        ko=language("ko"),
    )


RULES = load_rules()
EMERGENCY_RULES = RULES.emergency
URGENT_RULES = RULES.urgent

_HAN = re.compile(r"[\u3400-\u9fff]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _clause_bounds(book: RuleBook, text: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for found in book.clause_break.finditer(text, 0, start):
        left = found.end()
    after = book.clause_break.search(text, end)
    return left, after.start() if after else len(text)


def _last_tokens(text: str, count: int) -> str:
    return " ".join(text.split()[-count:]) if count else ""


def _first_tokens(text: str, count: int) -> str:
    return " ".join(text.split()[:count])


def _guard(book: RuleBook, text: str, start: int, end: int) -> str | None:
    """The guard that voids the match at text[start:end], or None when it stands."""
    # Someone else's story or a fire already out holds for the whole call, not one clause.
    if book.reported.search(text, 0, start):
        return "reported"
    if book.resolved.search(text, end):
        return "resolved"
    left, right = _clause_bounds(book, text, start, end)
    before, after = text[left:start], text[end:right]
    matched = text[start:end]
    # Windows: Chinese in characters, English and Korean in words; Korean puts negation, tense
    # and condition after the word, so its after-window matters most.
    if _HAN.search(matched):
        windows = (book.zh, before[-4:], before[-12:], after[:6])
    elif _HANGUL.search(matched):
        windows = (
            book.ko,
            _last_tokens(before, 1),
            _last_tokens(before, 6),
            _first_tokens(after, 2),
        )
    else:
        windows = (
            book.en,
            _last_tokens(before, 4),
            _last_tokens(before, 10),
            _first_tokens(after, 6),
        )
    guards, negation_window, before_window, after_window = windows
    if guards.negation.search(negation_window):
        return "negation"
    if guards.before.search(before_window) or guards.after.search(after_window):
        return "context"
    return None


def _first_unguarded(book: RuleBook, text: str, rules: tuple[Rule, ...]) -> tuple[Rule, str] | None:
    for rule in rules:
        for found in rule.pattern.finditer(text):
            left, right = _clause_bounds(book, text, found.start(), found.end())
            if rule.unless and rule.unless.search(text[left:right]):
                continue
            if _guard(book, text, found.start(), found.end()) is None:
                return rule, found.group(0)
    return None


def assess_emergency(
    text: str, locale: str | None = None, *, rules: RuleBook | None = None
) -> EmergencyVerdict:
    """Clear, borderline or no emergency in a transcript.

    `locale` is the caller's language as the IVR knows it; the rules of all three languages run
    whatever it is (the script of the words decides the guards), so it changes nothing today.
    """
    book = rules or RULES
    hit = _first_unguarded(book, normalise(text), book.emergency)
    if hit is None:
        return EmergencyVerdict(kind=None, certainty="none", rule=None)
    rule, matched = hit
    return EmergencyVerdict(
        kind=_KINDS[rule.kind], certainty=rule.certainty, rule=rule.name, matched=matched
    )


def find_emergency(text: str) -> EmergencyMatch | None:
    """The first unguarded clear emergency rule match in a transcript, or None."""
    verdict = assess_emergency(text)
    if verdict.certainty != "clear" or verdict.kind is None or verdict.rule is None:
        return None
    return EmergencyMatch(kind=verdict.kind, rule=verdict.rule, matched=verdict.matched)


def find_urgent(text: str) -> UrgentMatch | None:
    """The first unguarded urgent rule match (missing manhole cover, lift, burst main), or None."""
    hit = _first_unguarded(RULES, normalise(text), RULES.urgent)
    if hit is None:
        return None
    rule, matched = hit
    return UrgentMatch(rule=rule.name, matched=matched)
