"""Cross-validation and the confusion-matrix picture, on a small corpus so the test stays fast."""

from __future__ import annotations

from pathlib import Path

from routing.corpus import CATEGORIES, Example, load_category_examples
from routing.evaluate import (
    Report,
    cross_validate,
    expected_calibration_error,
    format_reliability,
    locale_accuracy,
    reliability,
    save_confusion_matrix_png,
)


def test_cross_validate_and_picture(tmp_path: Path) -> None:
    wanted = set(CATEGORIES[:4])
    examples = [e for e in load_category_examples() if e.label in wanted]
    report = cross_validate(examples, folds=3)
    assert set(report.labels) == wanted
    assert len(report.confusion) == 4
    assert sum(map(sum, report.confusion)) == len(examples)
    assert 0.0 <= report.macro_f1 <= report.accuracy + 1.0
    assert report.accuracy > 0.7
    assert report.worst(1)[0].f1 == min(row.f1 for row in report.rows)
    path = tmp_path / "confusion.png"
    save_confusion_matrix_png(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_reliability_bins_cover_every_prediction() -> None:
    examples = [
        Example("a", "x", "zh-CN"),
        Example("b", "x", "zh-CN"),
        Example("c", "y", "en-US"),
        Example("d", "y", "en-US"),
    ]
    report = Report(
        accuracy=0.75,
        macro_f1=0.73,
        rows=(),
        labels=("x", "y"),
        confusion=((2, 0), (1, 1)),
        predicted=("x", "x", "x", "y"),
        confidence=(1.0, 0.92, 0.35, 0.55),
    )
    bins = reliability(report, examples)
    assert sum(each.count for each in bins) == 4
    top = bins[-1]
    assert (top.low, top.high, top.count, top.accuracy) == (0.95, 1.0, 1, 1.0)
    assert [each.accuracy for each in bins] == [0.0, 1.0, 1.0, 1.0]
    assert 0.0 <= expected_calibration_error(bins) <= 1.0
    assert locale_accuracy(report, examples) == {"zh-CN": 1.0, "en-US": 0.5}
    assert "expected calibration error" in format_reliability(bins)
