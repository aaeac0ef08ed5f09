"""The shipped corpus: enough examples per category and locale, known labels, no repeats."""

from __future__ import annotations

from routing.corpus import (
    CATEGORIES,
    URGENCIES,
    Example,
    find_duplicates,
    find_near_duplicates,
    load_category_examples,
    load_urgency_examples,
    shortfalls,
)


def test_category_corpus_is_complete() -> None:
    examples = load_category_examples()
    assert shortfalls(examples, labels=CATEGORIES) == []
    assert {e.label for e in examples} == set(CATEGORIES)
    assert find_duplicates(examples) == []


def test_urgency_corpus_is_complete() -> None:
    examples = load_urgency_examples()
    assert shortfalls(examples, labels=URGENCIES, locales=("zh-CN",)) == []
    assert {e.label for e in examples} == set(URGENCIES)
    assert {e.locale for e in examples} == {"zh-CN", "en-US", "ko-KR"}
    assert find_duplicates(examples) == []


def test_category_corpus_has_no_near_duplicates() -> None:
    # A reworded copy of one report lands in both sides of a CV split and flatters the score.
    assert find_near_duplicates(load_category_examples()) == []


def test_near_duplicates_are_found_within_a_locale() -> None:
    examples = [
        Example("我们小区门口的路灯坏了好几天了", "streetlight", "zh-CN"),
        Example("喂 我们小区门口的路灯坏了好几天了 晚上很黑", "streetlight", "zh-CN"),
        Example("停水了 一滴水都没有", "water_supply", "zh-CN"),
        Example("The street light outside is broken.", "streetlight", "en-US"),
    ]
    pairs = find_near_duplicates(examples, threshold=0.6)
    assert [(first.text, again.text) for first, again, _ in pairs] == [
        (examples[0].text, examples[1].text)
    ]
