"""The menus as pure decisions: which key leads where (DESIGN.md, contract 2)."""

from __future__ import annotations

import enum

LANGUAGE_KEYS = {"1": "zh-CN", "2": "en-US", "3": "ko-KR"}


class MenuChoice(enum.StrEnum):
    """Where the main menu leads."""

    REPORT = "report"
    STATUS = "status"
    OPERATOR = "operator"


MAIN_MENU_KEYS = {"1": MenuChoice.REPORT, "2": MenuChoice.STATUS, "0": MenuChoice.OPERATOR}


def choose_language(digits: str, *, enabled: tuple[str, ...]) -> str | None:
    """The locale a key picks; no key picks Mandarin (or the first enabled); None means invalid."""
    if not digits:
        return "zh-CN" if "zh-CN" in enabled else enabled[0]
    locale = LANGUAGE_KEYS.get(digits)
    return locale if locale in enabled else None


def choose_from_main_menu(digits: str) -> MenuChoice | None:
    """The main-menu choice a key makes, or None for a missing or invalid key."""
    return MAIN_MENU_KEYS.get(digits)


def locale_or_default(value: str | None, *, enabled: tuple[str, ...]) -> str:
    """A locale from a URL parameter, kept only if enabled (URLs can be edited)."""
    return value if value in enabled else enabled[0]


def language_keys(enabled: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (key, locale) pairs the language menu offers, in key order."""
    return [(key, locale) for key, locale in LANGUAGE_KEYS.items() if locale in enabled]
