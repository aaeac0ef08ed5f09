"""The routing decision: category, department, urgency, place and deadline for one transcript.

How urgency is decided, strongest first:
1. an emergency rule (`routing.emergency.find_emergency`) → `emergency`, naming fire, medical or
   police; only a rule can declare an emergency, because an emergency transfers the call and must
   say to which number and why;
2. an urgent rule (missing manhole cover, someone trapped in a lift, a burst main, ...) → `urgent`;
3. the urgency model, when it gives emergency + urgent at least `URGENT_MODEL_THRESHOLD` and the
   category is confident → `urgent` (a model alone never transfers a call, it only shortens the
   deadline);
4. otherwise `normal`.
Emergency and urgent cases get a 2-hour deadline; others the category's time limit.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cases.access import DISPATCH_DESK
from routing.classifier import Classifier
from routing.deadlines import URGENT_HOURS, WorkingCalendar, compute_deadline
from routing.emergency import find_emergency, find_urgent
from routing.places import Gazetteer, Place, extract_place

DEFAULT_DIRECTORY_PATH = Path(__file__).resolve().parent.parent / "config" / "directory.toml"

# Facilities inside the development zone are the zone's own (the manhole-cover story).
FACILITY_CATEGORIES = frozenset({"streetlight", "road_facility", "sanitation", "water_supply"})
DEV_ZONE_DEPARTMENT = "dev_zone"
TRIAGE_DEPARTMENT = DISPATCH_DESK
# The category whose time limit applies to cases the dispatch desk must triage.
TRIAGE_CATEGORY = "other"
URGENT_MODEL_THRESHOLD = 0.8
DEFAULT_CONFIDENCE_THRESHOLD = 0.35


@dataclass(frozen=True)
class Route:
    """Where a category goes and its time limit (exactly one of hours and working_days)."""

    department: str
    hours: int | None
    working_days: int | None


@dataclass(frozen=True)
class Decision:
    """Everything routing decided about one transcript, with the reasons in `explanation`."""

    category: str
    department: str
    urgency: str
    confidence: float
    place: Place | None
    deadline: datetime
    explanation: dict[str, Any]
    needs_triage: bool
    emergency: str | None = None


def routes_from_file(path: Path = DEFAULT_DIRECTORY_PATH) -> dict[str, Route]:
    """Category → route, read from a directory file such as config/directory.toml (the
    database's copy, which admins edit, is `routing.router.routes_from_categories`)."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    return {
        code: Route(
            department=str(entry["department"]),
            hours=entry.get("hours"),
            working_days=entry.get("working_days"),
        )
        for code, entry in data["categories"].items()
    }


def _limit_text(route: Route) -> str:
    if route.hours is not None:
        return f"{route.hours} h"
    return f"{route.working_days} working days"


def decide(
    text: str,
    *,
    classifier: Classifier,
    directory: Mapping[str, Route],
    gazetteer: Gazetteer,
    calendar: WorkingCalendar,
    emergency_numbers: Mapping[str, str],
    opened_at: datetime,
    confidence_threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
) -> Decision:
    """Classify a transcript and route it: department, urgency, place and deadline (and for an
    emergency, the number from `emergency_numbers` it is put through to)."""
    prediction = classifier.predict(text)
    place = extract_place(text, gazetteer)
    explanation: dict[str, Any] = {
        "top": [[category, round(probability, 4)] for category, probability in prediction.top],
        "threshold": confidence_threshold,
        "place": asdict(place) if place else None,
        "emergency_rule": None,
        "urgent_rule": None,
        "urgency_model": None,
        "override": None,
        "triage": None,
    }

    confident = prediction.confidence >= confidence_threshold
    urgency, emergency_kind = "normal", None
    emergency = find_emergency(text)
    urgent = find_urgent(text) if emergency is None else None
    model = classifier.predict_urgency(text)
    if model is not None:
        explanation["urgency_model"] = {label: round(p, 4) for label, p in model.top}
    if emergency is not None:
        urgency, emergency_kind = "emergency", emergency.kind
        explanation["emergency_rule"] = {
            "rule": emergency.rule,
            "matched": emergency.matched,
            "kind": emergency.kind,
            "number": emergency_numbers[emergency.kind],
        }
    elif urgent is not None:
        urgency = "urgent"
        explanation["urgent_rule"] = {"rule": urgent.rule, "matched": urgent.matched}
    elif model is not None and confident:
        # Text the category model cannot place is no evidence of urgency either.
        pressing = sum(p for label, p in model.top if label in ("emergency", "urgent"))
        if pressing >= URGENT_MODEL_THRESHOLD:
            urgency = "urgent"

    category = prediction.category
    route = directory[category]
    department = route.department
    needs_triage = False
    if not confident:
        route, department, needs_triage = directory[TRIAGE_CATEGORY], TRIAGE_DEPARTMENT, True
        explanation["triage"] = "low confidence"
    elif category == TRIAGE_CATEGORY:
        needs_triage = True
        explanation["triage"] = "category other"
    elif category in FACILITY_CATEGORIES and place is not None and place.kind == "dev_zone":
        department = DEV_ZONE_DEPARTMENT
        explanation["override"] = "dev_zone"

    if urgency == "normal":
        hours, working_days = route.hours, route.working_days
        explanation["deadline_rule"] = _limit_text(route)
    else:
        hours, working_days = URGENT_HOURS, None
        explanation["deadline_rule"] = f"{URGENT_HOURS} h ({urgency})"
    deadline = compute_deadline(
        opened_at=opened_at, hours=hours, working_days=working_days, calendar=calendar
    )
    return Decision(
        category=category,
        department=department,
        urgency=urgency,
        confidence=prediction.confidence,
        place=place,
        deadline=deadline,
        explanation=explanation,
        needs_triage=needs_triage,
        emergency=emergency_kind,
    )
