"""The greeting's keys as pure decisions, and a single-locale greeting that offers no languages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hotline.config import CONFIG_DIR
from ivr import menus
from ivr.menus import Choice, GreetingChoice
from ivr.prompts import Prompts, load_options
from ivr.twiml import CallFlow

ALL = ("zh-CN", "en-US", "ko-KR")


def test_greeting_keys_in_mandarin() -> None:
    def choose(key: str) -> Choice | None:
        return menus.choose_at_greeting(key, locale="zh-CN", enabled=ALL)

    assert choose("") == Choice(GreetingChoice.REPORT, "zh-CN")  # no key: speak at once
    assert choose("1") == Choice(GreetingChoice.REPORT, "zh-CN")
    assert choose("2") == Choice(GreetingChoice.LANGUAGE, "en-US")
    assert choose("3") == Choice(GreetingChoice.LANGUAGE, "ko-KR")
    assert choose("9") == Choice(GreetingChoice.STATUS, "zh-CN")
    assert choose("0") == Choice(GreetingChoice.OPERATOR, "zh-CN")
    assert all(choose(key) is None for key in ["4", "5", "7", "8", "11", "*"])


def test_a_second_greeting_keeps_its_language_and_offers_no_languages() -> None:
    def choose(key: str) -> Choice | None:
        return menus.choose_at_greeting(key, locale="ko-KR", enabled=ALL)

    assert choose("") == Choice(GreetingChoice.REPORT, "ko-KR")
    assert choose("1") == Choice(GreetingChoice.REPORT, "ko-KR")
    assert choose("9") == Choice(GreetingChoice.STATUS, "ko-KR")
    assert choose("0") == Choice(GreetingChoice.OPERATOR, "ko-KR")
    assert choose("2") is None and choose("3") is None


def test_only_enabled_languages_have_keys() -> None:
    assert menus.language_keys(ALL) == {"2": "en-US", "3": "ko-KR"}
    assert menus.language_keys(("zh-CN", "en-US")) == {"2": "en-US"}
    assert menus.language_keys(("zh-CN",)) == {}
    assert menus.choose_at_greeting("3", locale="zh-CN", enabled=("zh-CN", "en-US")) is None


def test_the_recording_ends_on_pound_or_zero_and_zero_asks_for_a_person() -> None:
    assert set(menus.RECORD_FINISH_KEYS) == {"#", "0"}
    assert menus.went_to_operator("0")
    assert not menus.went_to_operator("#") and not menus.went_to_operator("hangup")


def test_with_one_locale_the_greeting_offers_no_language_keys(
    prompts: dict[str, Prompts],
) -> None:
    flow = CallFlow(
        prompts={"en-US": prompts["en-US"]},
        options=load_options(CONFIG_DIR / "ivr.toml"),
        locales=("en-US",),
        public_base_url="https://hotline.example.test",
    )
    root = ET.fromstring(str(flow.welcome()))
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    said = [say.text for say in gather.iter("Say")]
    assert said == [prompts["en-US"].text("greeting"), prompts["en-US"].text("greeting_keys")]
    assert gather.get("action", "").startswith("https://hotline.example.test/ivr/greeting/choice")
    # No key: the report is recorded straight after the greeting, in English.
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == (
        "https://hotline.example.test/ivr/report/start?lang=en-US"
    )


def test_digits_are_read_one_by_one_in_each_locale(prompts: dict[str, Prompts]) -> None:
    assert prompts["zh-CN"].digits("107") == "幺，零，七"
    assert prompts["en-US"].digits("107") == "one, zero, seven"
    assert prompts["ko-KR"].digits("107") == "일, 공, 칠"
