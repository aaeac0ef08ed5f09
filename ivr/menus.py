"""The greeting's keys as pure decisions: which key leads where (DESIGN.md, contract 2).

There is one menu, the greeting itself, and no key is an answer too: the caller is recorded
straight after it. GB/T 33358 asks that phone intake not put callers through voice menus.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The languages the Mandarin greeting offers (1 is "report now", so Mandarin has no key).
LANGUAGE_KEYS = {"2": "en-US", "3": "ko-KR"}

# Keys that end the report's <Record>: # ends it, 0 ends it and goes to a person (the report
# is kept). Twilio's finishOnKey is a set of keys; the action's `Digits` says which one it was.
RECORD_FINISH_KEYS = "#0"
OPERATOR_KEY = "0"


class GreetingChoice(enum.StrEnum):
    """Where a key at the greeting leads."""

    REPORT = "report"
    LANGUAGE = "language"
    STATUS = "status"
    OPERATOR = "operator"


GREETING_KEYS = {
    "1": GreetingChoice.REPORT,
    "9": GreetingChoice.STATUS,
    "0": GreetingChoice.OPERATOR,
}


@dataclass(frozen=True)
class Choice:
    """A key's decision at the greeting, and the language the call goes on in."""

    action: GreetingChoice
    locale: str


def choose_at_greeting(digits: str, *, locale: str, enabled: tuple[str, ...]) -> Choice | None:
    """What a key at the greeting in `locale` chooses; None for a key that means nothing there.

    No key is a report in the current language. The language keys work only at the first
    greeting (the default locale's), and only for locales that are enabled.
    """
    if not digits:
        return Choice(GreetingChoice.REPORT, locale)
    if digits in GREETING_KEYS:
        return Choice(GREETING_KEYS[digits], locale)
    if locale == enabled[0] and digits in language_keys(enabled):
        return Choice(GreetingChoice.LANGUAGE, LANGUAGE_KEYS[digits])
    return None


def locale_or_default(value: str | None, *, enabled: tuple[str, ...]) -> str:
    """A locale from a URL parameter, kept only if enabled (URLs can be edited)."""
    return value if value in enabled else enabled[0]


def language_keys(enabled: tuple[str, ...]) -> dict[str, str]:
    """The keys the first greeting offers for other languages, in key order; none with one
    locale enabled, and never the greeting's own language."""
    if len(enabled) < 2:
        return {}
    return {
        key: locale
        for key, locale in LANGUAGE_KEYS.items()
        if locale in enabled and locale != enabled[0]
    }


def went_to_operator(digits: str) -> bool:
    """Whether the key that ended the recording asks for a person."""
    return digits == OPERATOR_KEY
