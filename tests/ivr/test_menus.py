"""The menus as pure decisions, and the single-locale flow that skips the language menu."""

from __future__ import annotations

from hotline.config import CONFIG_DIR
from ivr import menus
from ivr.menus import MenuChoice
from ivr.prompts import Prompts, load_options
from ivr.twiml import CallFlow

ALL = ("zh-CN", "en-US", "ko-KR")


def test_language_keys() -> None:
    assert [menus.choose_language(key, enabled=ALL) for key in "123"] == list(ALL)
    assert menus.choose_language("", enabled=ALL) == "zh-CN"
    assert menus.choose_language("4", enabled=ALL) is None
    assert menus.choose_language("3", enabled=("zh-CN", "en-US")) is None


def test_main_menu_keys() -> None:
    assert menus.choose_from_main_menu("1") is MenuChoice.REPORT
    assert menus.choose_from_main_menu("2") is MenuChoice.STATUS
    assert menus.choose_from_main_menu("0") is MenuChoice.OPERATOR
    assert all(menus.choose_from_main_menu(key) is None for key in ["", "3", "9", "11"])


def test_with_one_locale_the_language_menu_is_skipped(prompts: dict[str, Prompts]) -> None:
    flow = CallFlow(
        prompts={"en-US": prompts["en-US"]},
        options=load_options(CONFIG_DIR / "ivr.toml"),
        locales=("en-US",),
        public_base_url="https://hotline.example.test",
    )
    twiml = str(flow.welcome())
    assert prompts["en-US"].text("greeting") in twiml
    assert prompts["en-US"].text("main_menu") in twiml
    assert "/ivr/language" not in twiml and "/ivr/menu/choice?lang=en-US" in twiml


def test_digits_are_read_one_by_one_in_each_locale(prompts: dict[str, Prompts]) -> None:
    assert prompts["zh-CN"].digits("107") == "幺，零，七"
    assert prompts["en-US"].digits("107") == "one, zero, seven"
    assert prompts["ko-KR"].digits("107") == "일, 공, 칠"
