"""How well the emergency rules catch emergencies and leave everything else alone.

Run `python -m routing.emergency_eval [--file F]` (or `flask --app hotline emergency-eval`) on a
labelled JSON-lines file, one {"text", "locale", "emergency": "fire"|"medical"|"police"|null,
"kind_of_case"} per line. The default file is the held-out set, config/emergency/heldout.jsonl,
which is never used to tune the rules (config/emergency/dev.jsonl is the tuning set).

A borderline verdict makes the call ask the caller whether someone is in danger now, so on a
true emergency it counts as caught, and on anything else as a question asked, not a false alarm.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from routing.emergency import EmergencyVerdict, assess_emergency

EMERGENCY_DIR = Path(__file__).resolve().parent.parent / "config" / "emergency"
HELDOUT_PATH = EMERGENCY_DIR / "heldout.jsonl"
DEVELOPMENT_PATH = EMERGENCY_DIR / "dev.jsonl"

Assess = Callable[[str, str | None], EmergencyVerdict]


class LabelledSetError(ValueError):
    """A line of a labelled emergency file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelledText:
    """One phrasing with the truth: the emergency kind it is, or None for a near miss."""

    text: str
    locale: str
    emergency: str | None
    kind_of_case: str


def load_labelled(path: Path = HELDOUT_PATH) -> list[LabelledText]:
    """The labelled phrasings of a JSON-lines file; blank lines are skipped."""
    examples = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            example = LabelledText(
                text=str(row["text"]),
                locale=str(row["locale"]),
                emergency=row["emergency"],
                kind_of_case=str(row.get("kind_of_case", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise LabelledSetError(f"{path}:{number}: {error}") from error
        if example.emergency not in (None, "fire", "medical", "police"):
            raise LabelledSetError(f"{path}:{number}: unknown emergency {example.emergency!r}")
        examples.append(example)
    return examples


@dataclass(frozen=True)
class Judged:
    """A labelled phrasing and the verdict the rules gave it."""

    example: LabelledText
    verdict: EmergencyVerdict


@dataclass(frozen=True)
class Figures:
    """Counts over a group of phrasings, and the rates the goals are stated in."""

    emergencies: int
    others: int
    clear_right_kind: int
    clear_any_kind: int
    caught: int  # clear or borderline, any kind: the caller is transferred or asked
    false_clear: int  # a non-emergency transferred
    asked: int  # a non-emergency asked "is someone in danger right now?"

    @property
    def recall_clear(self) -> float:
        """Emergencies flagged clear with the right kind."""
        return _share(self.clear_right_kind, self.emergencies)

    @property
    def recall_clear_any_kind(self) -> float:
        """Emergencies flagged clear, whatever the kind."""
        return _share(self.clear_any_kind, self.emergencies)

    @property
    def recall_caught(self) -> float:
        """Emergencies flagged clear or borderline: transferred or asked."""
        return _share(self.caught, self.emergencies)

    @property
    def false_emergency_rate(self) -> float:
        """Non-emergencies flagged clear: a transfer to 110/119/120 that should not happen."""
        return _share(self.false_clear, self.others)

    @property
    def asked_rate(self) -> float:
        """Non-emergencies flagged borderline: the caller is asked one question."""
        return _share(self.asked, self.others)


def _share(count: int, total: int) -> float:
    return count / total if total else 0.0


def _figures(judged: Iterable[Judged]) -> Figures:
    emergencies = others = right = any_kind = caught = false_clear = asked = 0
    for each in judged:
        truth, verdict = each.example.emergency, each.verdict
        if truth is not None:
            emergencies += 1
            if verdict.certainty == "clear":
                any_kind += 1
                right += verdict.kind == truth
            caught += verdict.certainty != "none"
        else:
            others += 1
            false_clear += verdict.certainty == "clear"
            asked += verdict.certainty == "borderline"
    return Figures(emergencies, others, right, any_kind, caught, false_clear, asked)


@dataclass(frozen=True)
class EmergencyReport:
    """Figures overall and per locale, and the phrasings that went wrong."""

    overall: Figures
    per_locale: dict[str, Figures]
    judged: tuple[Judged, ...]

    @property
    def misses(self) -> list[Judged]:
        """Emergencies neither flagged nor asked about."""
        return [j for j in self.judged if j.example.emergency and j.verdict.certainty == "none"]

    @property
    def wrong_kind(self) -> list[Judged]:
        """Emergencies flagged clear but sent to another number."""
        return [
            j
            for j in self.judged
            if j.example.emergency
            and j.verdict.certainty == "clear"
            and j.verdict.kind != j.example.emergency
        ]

    @property
    def false_emergencies(self) -> list[Judged]:
        """Non-emergencies flagged clear."""
        return [
            j for j in self.judged if j.example.emergency is None and j.verdict.certainty == "clear"
        ]

    @property
    def asked(self) -> list[Judged]:
        """Non-emergencies flagged borderline."""
        return [
            j
            for j in self.judged
            if j.example.emergency is None and j.verdict.certainty == "borderline"
        ]


def evaluate_emergencies(
    examples: Sequence[LabelledText], assess: Assess = assess_emergency
) -> EmergencyReport:
    """Judge every phrasing with `assess` and count against the labels."""
    judged = tuple(Judged(example, assess(example.text, example.locale)) for example in examples)
    locales = sorted({each.example.locale for each in judged})
    return EmergencyReport(
        overall=_figures(judged),
        per_locale={
            locale: _figures(j for j in judged if j.example.locale == locale) for locale in locales
        },
        judged=judged,
    )


def _figures_line(name: str, figures: Figures) -> str:
    return (
        f"{name:8}{figures.emergencies:6d}{figures.others:7d}"
        f"{figures.recall_clear:9.3f}{figures.recall_clear_any_kind:9.3f}"
        f"{figures.recall_caught:9.3f}{figures.false_emergency_rate:9.3f}"
        f"{figures.asked_rate:9.3f}"
    )


def _judged_line(each: Judged) -> str:
    verdict = each.verdict
    said = f"{verdict.certainty} {verdict.kind or '-'} {verdict.rule or '-'}"
    truth = each.example.emergency or "none"
    return (
        f"  [{each.example.locale} {truth}/{each.example.kind_of_case}] {said}: {each.example.text}"
    )


def format_emergency_report(report: EmergencyReport) -> str:
    """The report as text: the rates per locale, then every phrasing that went wrong."""
    lines = [
        f"{'':8}{'emerg':>6}{'others':>7}{'recall':>9}{'any kind':>9}{'+border':>9}"
        f"{'false':>9}{'asked':>9}",
        _figures_line("all", report.overall),
    ]
    lines += [_figures_line(locale, each) for locale, each in report.per_locale.items()]
    lines.append(
        "recall: clear with the right kind; any kind: clear; +border: clear or borderline;"
        " false: non-emergencies clear; asked: non-emergencies borderline"
    )
    for title, group in (
        ("misses (emergencies neither flagged nor asked)", report.misses),
        ("wrong kind", report.wrong_kind),
        ("false emergencies", report.false_emergencies),
        ("asked (non-emergencies, borderline)", report.asked),
    ):
        lines.append(f"{title}: {len(group)}")
        lines += [_judged_line(each) for each in group]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the emergency report for a labelled file (the held-out set by default)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=HELDOUT_PATH)
    args = parser.parse_args(argv)
    print(format_emergency_report(evaluate_emergencies(load_labelled(args.file))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
