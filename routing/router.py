"""The router: the trained classifier and the directory, gazetteer and calendar it routes with.

Loaded once per process, lazily, like the speech models: the classifier is an artefact made
by `flask --app hotline train` (and by `init` when it is missing).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from cases.intake import RoutingOutcome
from cases.models import Category
from routing.classifier import Classifier, train
from routing.corpus import load_category_examples, load_urgency_examples
from routing.deadlines import URGENT_HOURS, WorkingCalendar, compute_deadline, load_calendar
from routing.decide import DEFAULT_CONFIDENCE_THRESHOLD, Decision, Route, decide, routes_from_file
from routing.emergency import load_emergency_numbers
from routing.places import Gazetteer, load_gazetteer


class ClassifierMissingError(RuntimeError):
    """No trained classifier where the settings say it is."""


def train_and_save(path: Path) -> Classifier:
    """Train on the shipped corpus and save the artefact atomically."""
    classifier = train(load_category_examples(), urgency_examples=load_urgency_examples())
    path.parent.mkdir(parents=True, exist_ok=True)
    # A partial file of its own: workers on several machines may train onto one shared path.
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".part")
    os.close(handle)
    partial = Path(name)
    try:
        classifier.save(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return classifier


def ensure_classifier(path: Path) -> bool:
    """Train and save the classifier unless `path` holds one; True if it was trained now.

    `flask init` trains only on the machine it runs on; a worker on another machine, with a
    disk of its own, would otherwise send every case to the desk. Training is deterministic
    (the shipped corpus, fixed seeds), so every machine's classifier decides alike.
    """
    if path.exists():
        return False
    train_and_save(path)
    return True


def model_version(classifier: Classifier) -> str:
    """What identifies the model that made a decision: its corpus and its training time."""
    header = classifier.header
    return f"{header.corpus_sha256[:12]}@{header.trained_at}"


def as_outcome(decision: Decision, *, version: str) -> RoutingOutcome:
    """A decision as the plain data a case keeps."""
    return RoutingOutcome(
        category=decision.category,
        department=decision.department,
        urgency=decision.urgency,
        confidence=decision.confidence,
        place_code=decision.place.code if decision.place else None,
        deadline=decision.deadline,
        needs_triage=decision.needs_triage,
        emergency=decision.emergency,
        explanation={
            **decision.explanation,
            "place": asdict(decision.place) if decision.place else None,
        },
        model_version=version,
    )


class Router:
    """Routes transcripts; the classifier loads on first use, once per process."""

    def __init__(
        self, *, classifier_path: Path, confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
    ) -> None:
        self.classifier_path = classifier_path
        self.confidence_threshold = confidence_threshold
        self.directory: dict[str, Route] = routes_from_file()
        self.gazetteer: Gazetteer = load_gazetteer()
        self.calendar: WorkingCalendar = load_calendar()
        self.emergency_numbers: dict[str, str] = load_emergency_numbers()
        self._classifier: Classifier | None = None
        self._lock = threading.Lock()

    @property
    def classifier(self) -> Classifier:
        """The trained classifier, loaded on first use."""
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    if not self.classifier_path.exists():
                        raise ClassifierMissingError(
                            f"no classifier at {self.classifier_path}: "
                            "run `flask --app hotline train` (or `init`)"
                        )
                    self._classifier = Classifier.load(self.classifier_path)
        return self._classifier

    def decide(
        self, text: str, *, opened_at: datetime, directory: Mapping[str, Route] | None = None
    ) -> Decision:
        """The routing decision for one transcript (time limits from `directory` if given: the
        database's, which admins edit, rather than the shipped file's)."""
        return decide(
            text,
            classifier=self.classifier,
            directory=directory or self.directory,
            gazetteer=self.gazetteer,
            calendar=self.calendar,
            emergency_numbers=self.emergency_numbers,
            opened_at=opened_at,
            confidence_threshold=self.confidence_threshold,
        )

    def outcome(
        self, text: str, *, opened_at: datetime, directory: Mapping[str, Route] | None = None
    ) -> RoutingOutcome:
        """The decision as the plain data a case keeps."""
        return as_outcome(
            self.decide(text, opened_at=opened_at, directory=directory),
            version=model_version(self.classifier),
        )

    def deadline_for(self, *, category: Category, urgency: str, start: datetime) -> datetime:
        """The deadline a person's routing gives (triage, a ruling, a reopened case)."""
        hours: int | None
        working_days: int | None
        if urgency != "normal":
            hours, working_days = URGENT_HOURS, None
        else:
            hours, working_days = category.time_limit_hours, category.time_limit_working_days
        return compute_deadline(
            opened_at=start, hours=hours, working_days=working_days, calendar=self.calendar
        )

    def extended_deadline(self, deadline: datetime, *, working_days: int) -> datetime:
        """A deadline moved on by whole working days (延期), on the working calendar."""
        return compute_deadline(
            opened_at=deadline, hours=None, working_days=working_days, calendar=self.calendar
        )


def routes_from_categories(categories: Iterable[Category]) -> dict[str, Route]:
    """The directory as the database holds it, with the time limits admins have set."""
    return {
        category.code: Route(
            department=category.department_code,
            hours=category.time_limit_hours,
            working_days=category.time_limit_working_days,
        )
        for category in categories
    }
