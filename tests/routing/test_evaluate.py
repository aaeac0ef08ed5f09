"""Cross-validation and the confusion-matrix picture, on a small corpus so the test stays fast."""

from __future__ import annotations

from pathlib import Path

from routing.corpus import CATEGORIES, load_category_examples
from routing.evaluate import cross_validate, save_confusion_matrix_png


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
