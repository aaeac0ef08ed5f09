"""The emergency goals on the held-out set, so a regression in the rules fails CI.

The held-out set (config/emergency/heldout.jsonl) is never used to tune the rules; tune on
config/emergency/dev.jsonl and the corpora, then look at the held-out figures.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotline.cli import emergency_eval_command
from routing.emergency_eval import (
    DEVELOPMENT_PATH,
    HELDOUT_PATH,
    LabelledSetError,
    evaluate_emergencies,
    load_labelled,
    main,
)


def test_the_heldout_set_is_big_varied_and_apart_from_the_tuning_set() -> None:
    heldout = load_labelled(HELDOUT_PATH)
    locales = Counter(each.locale for each in heldout)
    near_misses = [each for each in heldout if each.emergency is None]
    assert len(heldout) >= 300
    assert set(locales) == {"zh-CN", "en-US", "ko-KR"}
    assert 0.55 <= locales["zh-CN"] / len(heldout) <= 0.65
    assert len(near_misses) / len(heldout) >= 0.40
    assert {each.emergency for each in heldout} == {"fire", "medical", "police", None}
    texts = [each.text for each in heldout]
    assert len(set(texts)) == len(texts)
    assert not set(texts) & {each.text for each in load_labelled(DEVELOPMENT_PATH)}


def test_emergencies_are_never_missed_and_rarely_invented() -> None:
    report = evaluate_emergencies(load_labelled(HELDOUT_PATH))
    # Clear or borderline (the caller is asked), every emergency is caught, in every language.
    for locale, figures in report.per_locale.items():
        assert figures.recall_caught == 1.0, (locale, report.misses)
    # Fewer than 1% of non-emergencies are transferred to 110/119/120.
    assert report.overall.false_emergency_rate < 0.01, report.false_emergencies
    # Most are transferred at once, to the right number; a slide here is a regression too.
    assert report.overall.recall_clear >= 0.95, report.wrong_kind


def test_the_evaluation_prints_rates_and_misses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"text": "楼下着火了", "locale": "zh-CN", "emergency": "fire", "kind_of_case": "fire"},
        {"text": "我的邻居很安静", "locale": "zh-CN", "emergency": "police", "kind_of_case": "x"},
        {"text": "燃气费在哪交", "locale": "zh-CN", "emergency": None, "kind_of_case": "bill"},
        {"text": "外面好像有人打架", "locale": "zh-CN", "emergency": None, "kind_of_case": "x"},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), "utf-8")
    assert main(["--file", str(path)]) == 0
    printed = capsys.readouterr().out
    # One of two emergencies caught; one of two others asked, none transferred.
    assert "zh-CN        2      2    0.500    0.500    0.500    0.000    0.500" in printed
    assert "misses (emergencies neither flagged nor asked): 1\n" in printed
    assert "我的邻居很安静" in printed
    assert "asked (non-emergencies, borderline): 1\n" in printed


def test_the_flask_command_reads_the_heldout_set_by_default() -> None:
    result = CliRunner().invoke(emergency_eval_command, [])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(" " * 8 + " emerg")
    assert "en-US" in result.output and "ko-KR" in result.output


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "x", "locale": "zh-CN", "emergency": "flood"}\n', "utf-8")
    with pytest.raises(LabelledSetError, match=r"bad.jsonl:1: unknown emergency 'flood'"):
        load_labelled(path)
