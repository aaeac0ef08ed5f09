"""How well repeat reports are merged (并单): pairwise precision and recall on a labelled set.

Run `python -m routing.merge_eval [--file F] [--classifier PATH]` (or `make eval-merging`) on a
JSON-lines file, one {"id", "cluster", "locale", "text", "minutes", optional "point": [lat, long],
optional "split"} per line; the default is config/merging/labelled.jsonl. The reports are
replayed in time order: the real router gives each its category and place, then `best_match`
puts it into one of the problems opened so far or opens a new one. Two reports form a pair when
they end in one problem; precision is the share of those pairs that the labels put in one cluster
too, recall the share of labelled pairs that end in one problem. Per locale, a pair counts for
each locale among its two reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

from routing.similarity import MergeRules, Report, best_match, load_merge_rules

MERGING_DIR = Path(__file__).resolve().parent.parent / "config" / "merging"
LABELLED_PATH = MERGING_DIR / "labelled.jsonl"
DEFAULT_CLASSIFIER_PATH = Path("instance/classifier.joblib")
# The replay's clock: minute 0 of the set (a Monday; only differences matter).
SET_START = datetime(2024, 5, 6, tzinfo=UTC)

# Text and time → (category, place code), as the router decides them.
Route = Callable[[str, datetime], tuple[str, str | None]]


class LabelledSetError(ValueError):
    """A line of a labelled merging file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class LabelledReport:
    """One report of the set with its truth: the cluster (problem) it belongs to."""

    id: str
    cluster: str
    locale: str
    text: str
    minutes: int
    point: tuple[float, float] | None = None
    split: str = ""


def _point(value: object) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"point must be [lat, long], got {value!r}")
    return float(value[0]), float(value[1])


def load_labelled(path: Path = LABELLED_PATH) -> list[LabelledReport]:
    """The labelled reports of a JSON-lines file, in time order; blank lines are skipped."""
    reports = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            report = LabelledReport(
                id=str(row["id"]),
                cluster=str(row["cluster"]),
                locale=str(row["locale"]),
                text=str(row["text"]),
                minutes=int(row["minutes"]),
                point=_point(row.get("point")),
                split=str(row.get("split", "")),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise LabelledSetError(f"{path}:{number}: {error}") from error
        if report.locale not in ("zh-CN", "en-US", "ko-KR"):
            raise LabelledSetError(f"{path}:{number}: unknown locale {report.locale!r}")
        reports.append(report)
    ids = Counter(report.id for report in reports)
    if repeated := [each for each, count in ids.items() if count > 1]:
        raise LabelledSetError(f"{path}: ids repeated: {repeated}")
    return sorted(reports, key=lambda report: (report.minutes, report.id))


@dataclass(frozen=True)
class Replayed:
    """A labelled report, what the router made of it, and the problem it ended in."""

    labelled: LabelledReport
    report: Report
    problem: int


def replay(labelled: Sequence[LabelledReport], route: Route, rules: MergeRules) -> list[Replayed]:
    """Feed the reports in time order: each joins the problem `best_match` names, or opens one."""
    problems: list[list[Report]] = []
    replayed = []
    for each in sorted(labelled, key=lambda report: (report.minutes, report.id)):
        opened_at = SET_START + timedelta(minutes=each.minutes)
        category, place_code = route(each.text, opened_at)
        report = Report(each.text, category, place_code, opened_at, each.point)
        match = best_match(report, list(enumerate(problems)), rules)
        if match is None:
            problems.append([report])
            match = len(problems) - 1
        else:
            problems[match].append(report)
        replayed.append(Replayed(each, report, match))
    return replayed


@dataclass(frozen=True)
class Figures:
    """Pair counts and the rates the goals are stated in."""

    reports: int
    clusters: int
    predicted_pairs: int
    labelled_pairs: int
    right_pairs: int

    @property
    def precision(self) -> float:
        """Pairs put in one problem that are one problem."""
        return self.right_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        """Pairs that are one problem and were put in one problem."""
        return self.right_pairs / self.labelled_pairs if self.labelled_pairs else 1.0


def _figures(
    replayed: Sequence[Replayed], member: Callable[[Replayed], bool] = lambda each: True
) -> Figures:
    """Pairs with at least one member report; reports and clusters of the members."""
    predicted = labelled = right = 0
    for first, second in combinations(replayed, 2):
        if not (member(first) or member(second)):
            continue
        same_problem = first.problem == second.problem
        same_cluster = first.labelled.cluster == second.labelled.cluster
        predicted += same_problem
        labelled += same_cluster
        right += same_problem and same_cluster
    touched = [each for each in replayed if member(each)]
    return Figures(
        reports=len(touched),
        clusters=len({each.labelled.cluster for each in touched}),
        predicted_pairs=predicted,
        labelled_pairs=labelled,
        right_pairs=right,
    )


@dataclass(frozen=True)
class MergeReport:
    """Figures overall, per locale and per split, and the pairs that went wrong."""

    overall: Figures
    per_locale: dict[str, Figures]
    per_split: dict[str, Figures]
    replayed: tuple[Replayed, ...]

    @property
    def wrong_merges(self) -> list[tuple[Replayed, Replayed]]:
        """Pairs put in one problem that the labels keep apart."""
        return [
            (a, b)
            for a, b in combinations(self.replayed, 2)
            if a.problem == b.problem and a.labelled.cluster != b.labelled.cluster
        ]

    @property
    def missed(self) -> list[tuple[Replayed, Replayed]]:
        """Pairs of one labelled problem left in different problems."""
        return [
            (a, b)
            for a, b in combinations(self.replayed, 2)
            if a.problem != b.problem and a.labelled.cluster == b.labelled.cluster
        ]


def _in_locale(locale: str) -> Callable[[Replayed], bool]:
    return lambda each: each.labelled.locale == locale


def evaluate_merging(
    labelled: Sequence[LabelledReport], route: Route, rules: MergeRules | None = None
) -> MergeReport:
    """Replay the set and count pairs against the labels."""
    replayed = tuple(replay(labelled, route, rules or load_merge_rules()))
    locales = sorted({each.labelled.locale for each in replayed})
    splits = sorted({each.labelled.split for each in replayed} - {""})
    return MergeReport(
        overall=_figures(replayed),
        per_locale={locale: _figures(replayed, _in_locale(locale)) for locale in locales},
        per_split={
            split: _figures([each for each in replayed if each.labelled.split == split])
            for split in splits
        },
        replayed=replayed,
    )


def _line(name: str, figures: Figures) -> str:
    return (
        f"{name:9}{figures.reports:8d}{figures.clusters:9d}{figures.labelled_pairs:8d}"
        f"{figures.predicted_pairs:8d}{figures.precision:11.3f}{figures.recall:8.3f}"
    )


def _pair_line(pair: tuple[Replayed, Replayed]) -> str:
    return "  " + " | ".join(
        f"{each.labelled.id} {each.labelled.cluster} [{each.report.category}"
        f" {each.report.place_code or '-'}] {each.labelled.text}"
        for each in pair
    )


def format_merge_report(report: MergeReport, *, limit: int = 40) -> str:
    """The report as text: pairwise precision and recall, then the pairs that went wrong."""
    lines = [
        f"{'':9}{'reports':>8}{'clusters':>9}{'pairs':>8}{'merged':>8}{'precision':>11}"
        f"{'recall':>8}",
        _line("all", report.overall),
    ]
    lines += [_line(locale, each) for locale, each in report.per_locale.items()]
    lines += [_line(split, each) for split, each in report.per_split.items()]
    lines.append(
        "pairs: labelled as one problem; merged: put in one problem; a locale's row counts"
        " the pairs with a report in that locale"
    )
    for title, group in (("wrong merges", report.wrong_merges), ("missed", report.missed)):
        lines.append(f"{title}: {len(group)}")
        lines += [_pair_line(pair) for pair in group[:limit]]
    return "\n".join(lines)


def router_route(classifier_path: Path) -> Route:
    """The real router's category and place for a text."""
    from routing.router import Router

    router = Router(classifier_path=classifier_path)

    def route(text: str, opened_at: datetime) -> tuple[str, str | None]:
        decision = router.decide(text, opened_at=opened_at)
        return decision.category, decision.place.code if decision.place else None

    return route


def main(argv: Sequence[str] | None = None) -> int:
    """Print the merging report for a labelled file (config/merging/labelled.jsonl by default)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", type=Path, default=LABELLED_PATH)
    parser.add_argument(
        "--classifier",
        type=Path,
        default=DEFAULT_CLASSIFIER_PATH,
        help="a trained classifier (trained from the shipped corpus when missing)",
    )
    args = parser.parse_args(argv)
    labelled = load_labelled(args.file)
    with tempfile.TemporaryDirectory() as scratch:
        path: Path = args.classifier
        if not path.exists():
            from routing.router import train_and_save

            path = Path(scratch) / "classifier.joblib"
            train_and_save(path)
        print(format_merge_report(evaluate_merging(labelled, router_route(path))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
