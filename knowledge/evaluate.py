"""Evaluation of retrieval on the held-out questions (`config/knowledge/heldout.jsonl`).

The held-out set is never indexed and never used to fit or tune anything: it was written from
the topic list before the articles' own questions were read. Each line: `text`, `locale`,
`article` (the id that answers it, or null), `kind` ("question" or "complaint"). Complaints are
reports of a problem and must never be answered with an article.

Run `flask --app hotline knowledge-eval` (or `python -m knowledge.evaluate`) for the report.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from knowledge.articles import load_articles
from knowledge.retrieval import (
    ANSWER_CONFIDENCE,
    SUGGEST_CONFIDENCE,
    Retriever,
    is_confident,
    threshold_for,
)

HELDOUT_PATH = Path(__file__).resolve().parent.parent / "config" / "knowledge" / "heldout.jsonl"
# The goals of issue 13.
ACCURACY_GOAL = 0.90
COMPLAINTS_ANSWERED_GOAL = 0.02
KINDS = ("question", "complaint")


@dataclass(frozen=True)
class HeldOutQuestion:
    """One held-out line: what the caller said and the article that answers it, if any."""

    text: str
    locale: str
    article: str | None
    kind: str


def load_heldout(path: Path = HELDOUT_PATH) -> list[HeldOutQuestion]:
    """The held-out lines of `path`; ValueError names a bad line."""
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = HeldOutQuestion(
                text=row["text"], locale=row["locale"], article=row["article"], kind=row["kind"]
            )
        except (ValueError, KeyError) as error:
            raise ValueError(f"{path}:{number}: not a held-out line: {error}") from error
        if question.kind not in KINDS or (question.kind == "complaint" and question.article):
            raise ValueError(f"{path}:{number}: kind must be question or complaint (no article)")
        questions.append(question)
    return questions


@dataclass
class LocaleFigures:
    """Counts for one locale (or for all)."""

    covered: int = 0
    top1_correct: int = 0
    answered_correct: int = 0
    answered_wrong: int = 0
    complaints: int = 0
    complaints_answered: int = 0
    complaints_suggested: int = 0
    uncovered: int = 0
    uncovered_answered: int = 0

    @property
    def top1_accuracy(self) -> float:
        """Share of covered questions whose best-ranked article is the right one."""
        return self.top1_correct / self.covered if self.covered else 0.0

    @property
    def answered_accuracy(self) -> float:
        """Share of covered questions answered in the call with the right article."""
        return self.answered_correct / self.covered if self.covered else 0.0

    @property
    def complaints_answered_rate(self) -> float:
        """Share of complaints that would have been answered with an article."""
        return self.complaints_answered / self.complaints if self.complaints else 0.0

    @property
    def uncovered_answered_rate(self) -> float:
        """Share of questions no article covers that were answered anyway."""
        return self.uncovered_answered / self.uncovered if self.uncovered else 0.0


@dataclass
class KnowledgeReport:
    """The evaluation's figures: overall, per locale, confusions and timings."""

    overall: LocaleFigures
    per_locale: dict[str, LocaleFigures]
    # (expected article, ranked first instead) → how often, over covered questions.
    confusions: Counter[tuple[str, str]]
    # Complaints answered: (text, article).
    complaints_answered: list[tuple[str, str]]
    milliseconds: list[float]
    # Held-out lines naming an article the knowledge base does not have (counted as uncovered).
    missing_articles: set[str] = field(default_factory=set)

    @property
    def p50_ms(self) -> float:
        """Median time to answer one question."""
        return float(np.percentile(self.milliseconds, 50)) if self.milliseconds else 0.0

    @property
    def p95_ms(self) -> float:
        """95th percentile of the time to answer one question."""
        return float(np.percentile(self.milliseconds, 95)) if self.milliseconds else 0.0

    def meets_goals(self) -> bool:
        """Top-1 accuracy and complaints answered within the issue's goals."""
        return (
            self.overall.top1_accuracy >= ACCURACY_GOAL
            and self.overall.complaints_answered_rate <= COMPLAINTS_ANSWERED_GOAL
        )


def evaluate(
    retriever: Retriever,
    questions: Sequence[HeldOutQuestion],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> KnowledgeReport:
    """Ask `retriever` every held-out question and count what it got right and wrong."""
    known = {article.id for article in retriever.articles}
    ids = [article.id for article in retriever.articles]
    overall = LocaleFigures()
    per_locale: dict[str, LocaleFigures] = {}
    confusions: Counter[tuple[str, str]] = Counter()
    complaints_answered: list[tuple[str, str]] = []
    milliseconds: list[float] = []
    missing: set[str] = set()
    for done, question in enumerate(questions, start=1):
        started = time.perf_counter()
        suggestion = retriever.ask(question.text, question.locale)
        milliseconds.append((time.perf_counter() - started) * 1000)
        scores, _ = retriever.rank(question.text)
        top = ids[int(np.argmax(scores))] if scores.max() > 0 else None
        answered = suggestion.article.id if is_confident(suggestion) and suggestion else None
        suggested = suggestion.article.id if suggestion else None
        for figures in (overall, per_locale.setdefault(question.locale, LocaleFigures())):
            if question.kind == "complaint":
                figures.complaints += 1
                figures.complaints_answered += answered is not None
                figures.complaints_suggested += suggested is not None
            elif question.article in known:
                figures.covered += 1
                figures.top1_correct += top == question.article
                figures.answered_correct += answered == question.article
                figures.answered_wrong += answered is not None and answered != question.article
            else:
                figures.uncovered += 1
                figures.uncovered_answered += answered is not None
        if question.kind == "complaint" and answered:
            complaints_answered.append((question.text, answered))
        if question.kind == "question" and question.article is not None:
            if question.article not in known:
                missing.add(question.article)
            elif top != question.article:
                confusions[(question.article, top or "-")] += 1
        if progress is not None:
            progress(done, len(questions))
    return KnowledgeReport(
        overall=overall,
        per_locale=per_locale,
        confusions=confusions,
        complaints_answered=complaints_answered,
        milliseconds=milliseconds,
        missing_articles=missing,
    )


def _figures_line(name: str, figures: LocaleFigures) -> str:
    return (
        f"{name:<7} covered {figures.covered:>3}  top-1 {figures.top1_accuracy:.3f}  "
        f"answered right {figures.answered_accuracy:.3f}  answered wrong "
        f"{figures.answered_wrong:>2}  complaints answered {figures.complaints_answered}/"
        f"{figures.complaints} ({figures.complaints_answered_rate:.1%})  uncovered answered "
        f"{figures.uncovered_answered}/{figures.uncovered}"
    )


def format_report(report: KnowledgeReport) -> str:
    """The report as text: figures overall and per locale, the confusions, the timings."""
    lines = [
        _figures_line("all", report.overall),
        *(_figures_line(locale, report.per_locale[locale]) for locale in sorted(report.per_locale)),
        f"complaints given a suggestion for the desk: {report.overall.complaints_suggested}/"
        f"{report.overall.complaints}",
        f"ms per question: p50 {report.p50_ms:.2f}  p95 {report.p95_ms:.2f}",
        f"thresholds: answer {ANSWER_CONFIDENCE:.2f}, suggest {SUGGEST_CONFIDENCE:.2f}",
        f"goals (top-1 >= {ACCURACY_GOAL:.2f}, complaints answered <= "
        f"{COMPLAINTS_ANSWERED_GOAL:.0%}): {'met' if report.meets_goals() else 'NOT met'}",
    ]
    if report.confusions:
        lines.append("confusions (expected -> ranked first):")
        lines.extend(
            f"  {expected} -> {predicted}: {count}"
            for (expected, predicted), count in report.confusions.most_common()
        )
    if report.complaints_answered:
        lines.append("complaints answered:")
        lines.extend(f"  {text} -> {article}" for text, article in report.complaints_answered)
    if report.missing_articles:
        lines.append(
            "held-out lines name articles the knowledge base lacks (counted as uncovered): "
            + ", ".join(sorted(report.missing_articles))
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class CalibrationFigures:
    """How the thresholds fare on the training set, and the thresholds it implies."""

    reports: int
    reports_answered: float
    reports_suggested: float
    questions_answered: float
    answer_threshold: float
    suggest_threshold: float


def calibration_figures(retriever: Retriever) -> CalibrationFigures:
    """The training set's reports answered and suggested at the current thresholds, and the
    thresholds that keep them to 1% (half the goal) and 5%: how ANSWER_CONFIDENCE and
    SUGGEST_CONFIDENCE were chosen."""
    training = retriever.training
    confidences = retriever.calibrator_confidences()
    reports = confidences[training.kinds == "report"]
    questions = confidences[training.kinds == "question"]
    return CalibrationFigures(
        reports=len(reports),
        reports_answered=float((reports >= ANSWER_CONFIDENCE).mean()),
        reports_suggested=float((reports >= SUGGEST_CONFIDENCE).mean()),
        questions_answered=float((questions >= ANSWER_CONFIDENCE).mean()),
        answer_threshold=threshold_for(reports, share=COMPLAINTS_ANSWERED_GOAL / 2),
        suggest_threshold=threshold_for(reports, share=0.05),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Print the held-out report: python -m knowledge.evaluate."""
    retriever = Retriever.build(load_articles())
    report = evaluate(retriever, load_heldout())
    print(format_report(report))
    calibration = calibration_figures(retriever)
    print(calibration)
    return 0 if report.meets_goals() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
