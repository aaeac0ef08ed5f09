"""Honest evaluation: stratified cross-validation with the whole pipeline fitted inside each fold.

Run `python -m routing.evaluate [--png PATH]` for the report on the shipped corpus.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support as prf
from sklearn.model_selection import StratifiedKFold

from routing.classifier import DEFAULT_C, URGENCY_C, ModelKind, build_pipeline
from routing.corpus import Example, load_category_examples, load_urgency_examples
from routing.normalise import normalise


@dataclass(frozen=True)
class ClassRow:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """Cross-validated accuracy, macro-F1, per-class rows and the confusion matrix."""

    accuracy: float
    macro_f1: float
    rows: tuple[ClassRow, ...]
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    # Per example, in corpus order: the out-of-fold prediction and its probability.
    predicted: tuple[str, ...]
    confidence: tuple[float, ...]

    def worst(self, count: int = 3) -> list[ClassRow]:
        """The classes with the lowest F1."""
        return sorted(self.rows, key=lambda row: row.f1)[:count]


def cross_validate(
    examples: Sequence[Example],
    folds: int = 5,
    *,
    seed: int = 0,
    c: float = DEFAULT_C,
    model: ModelKind = "svm",
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Stratified k-fold predictions: every text is predicted by a model that never saw it.

    `model` and `c` pick the model as `routing.classifier.build_pipeline` does (the category
    model by default). `progress(done, folds)` is called after each fold, for a progress bar.
    """
    texts = [normalise(example.text) for example in examples]
    truth = np.array([example.label for example in examples])
    labels = tuple(sorted(set(truth.tolist())))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    probabilities = np.zeros((len(texts), len(labels)))
    for done, (train, test) in enumerate(splitter.split(texts, truth), start=1):
        # The vectorisers live inside the pipeline, so each fold fits its own vocabulary and idf.
        fitted = build_pipeline(c=c, model=model).fit([texts[i] for i in train], truth[train])
        columns = [labels.index(label) for label in fitted.classes_]
        probabilities[np.ix_(test, columns)] = fitted.predict_proba([texts[i] for i in test])
        if progress is not None:
            progress(done, folds)
    predicted = np.array(labels)[probabilities.argmax(axis=1)]
    precision, recall, f1, support = prf(truth, predicted, labels=list(labels), zero_division=0)
    rows = tuple(
        ClassRow(label, float(p), float(r), float(f), int(s))
        for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)
    )
    matrix = confusion_matrix(truth, predicted, labels=list(labels))
    return Report(
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, average="macro")),
        rows=rows,
        labels=labels,
        confusion=tuple(tuple(int(n) for n in row) for row in matrix),
        predicted=tuple(str(label) for label in predicted),
        confidence=tuple(float(p) for p in probabilities.max(axis=1)),
    )


@dataclass(frozen=True)
class ReliabilityBin:
    """Out-of-fold predictions whose confidence fell in [low, high): how sure, how often right."""

    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float


RELIABILITY_EDGES: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def reliability(
    report: Report, examples: Sequence[Example], edges: Sequence[float] = RELIABILITY_EDGES
) -> list[ReliabilityBin]:
    """The reliability table of a report: per confidence bin, mean confidence against accuracy."""
    confidence = np.array(report.confidence)
    correct = np.array(report.predicted) == np.array([example.label for example in examples])
    bins = []
    for low, high in pairwise(edges):
        # The last bin is closed so a confidence of exactly 1.0 is counted.
        inside = (confidence >= low) & ((confidence < high) | (high == edges[-1]))
        if inside.any():
            bins.append(
                ReliabilityBin(
                    low=low,
                    high=high,
                    count=int(inside.sum()),
                    mean_confidence=float(confidence[inside].mean()),
                    accuracy=float(correct[inside].mean()),
                )
            )
    return bins


def expected_calibration_error(bins: Sequence[ReliabilityBin]) -> float:
    """The count-weighted mean gap between confidence and accuracy over the bins."""
    total = sum(each.count for each in bins)
    return sum(each.count * abs(each.mean_confidence - each.accuracy) for each in bins) / total


def format_reliability(bins: Sequence[ReliabilityBin]) -> str:
    """The reliability table as text, with the expected calibration error."""
    lines = [f"{'confidence':14}{'count':>8}{'mean conf':>11}{'accuracy':>10}"]
    for each in bins:
        lines.append(
            f"[{each.low:.2f}, {each.high:.2f}) {each.count:7d}"
            f"{each.mean_confidence:11.3f}{each.accuracy:10.3f}"
        )
    lines.append(f"expected calibration error {expected_calibration_error(bins):.3f}")
    return "\n".join(lines)


def locale_accuracy(report: Report, examples: Sequence[Example]) -> dict[str, float]:
    """Out-of-fold accuracy per locale: the English and Korean corpora are much smaller."""
    hits: dict[str, list[bool]] = {}
    for example, predicted in zip(examples, report.predicted, strict=True):
        hits.setdefault(example.locale, []).append(example.label == predicted)
    return {locale: sum(each) / len(each) for locale, each in hits.items()}


def save_confusion_matrix_png(report: Report, path: Path) -> None:
    """Draw the confusion matrix (rows: truth, columns: prediction) into a PNG file."""
    # The figure is built without pyplot, so no global backend is chosen for the process.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    size = len(report.labels)
    figure = Figure(figsize=(2 + 0.55 * size, 1.5 + 0.55 * size), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    matrix = np.array(report.confusion)
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(size), report.labels, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(size), report.labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"accuracy {report.accuracy:.3f}, macro-F1 {report.macro_f1:.3f}")
    for row in range(size):
        for column in range(size):
            if matrix[row, column]:
                colour = "white" if matrix[row, column] > matrix.max() / 2 else "black"
                axes.text(
                    column,
                    row,
                    str(matrix[row, column]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=colour,
                )
    figure.tight_layout()
    figure.savefig(path)


def format_report(report: Report) -> str:
    """The report as a text table."""
    lines = [f"accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}", ""]
    lines.append(f"{'label':24}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for row in report.rows:
        lines.append(
            f"{row.label:24}{row.precision:10.3f}{row.recall:10.3f}{row.f1:10.3f}{row.support:9d}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the cross-validated report for the shipped corpora; optionally save the picture."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--png", type=Path, help="write the category confusion matrix here")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    examples = load_category_examples()
    report = cross_validate(examples, folds=args.folds)
    print("categories:", format_report(report), sep="\n")
    by_locale = locale_accuracy(report, examples)
    print("accuracy per locale:", "  ".join(f"{k} {v:.3f}" for k, v in by_locale.items()))
    print(
        "", "reliability (categories):", format_reliability(reliability(report, examples)), sep="\n"
    )
    urgency = cross_validate(
        load_urgency_examples(), folds=args.folds, model="logistic", c=URGENCY_C
    )
    print("", "urgency:", format_report(urgency), sep="\n")
    if args.png:
        save_confusion_matrix_png(report, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
