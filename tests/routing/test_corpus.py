"""The shipped corpus: enough examples per category and locale, known labels, no repeats."""

from __future__ import annotations

from routing.corpus import (
    CATEGORIES,
    URGENCIES,
    find_duplicates,
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
