"""What the console's templates show, in the staff member's language: labels of statuses,
lights, roles and events, the directory's names, case rows with their lights, the classifier's
suggestion, and an event's details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.access import DISPATCH_DESK, LEADERSHIP, Actor
from cases.clock import display_light
from cases.models import (
    ACTIVE_STATUSES,
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Department,
    Light,
    Role,
    utcnow,
)
from console import forms

# Status filters on case lists: "active" (the default) is what still needs work.
STATUS_FILTERS: dict[str, tuple[CaseStatus, ...] | None] = {
    "active": ACTIVE_STATUSES,
    "all": None,
    **{str(status): (status,) for status in CaseStatus},
}
STATUS_LABELS = {
    CaseStatus.OPEN: _l("Open"),
    CaseStatus.TRIAGE: _l("Triage"),
    CaseStatus.ASSIGNED: _l("Assigned"),
    CaseStatus.ACCEPTED: _l("Accepted"),
    CaseStatus.SENT_BACK: _l("Sent back"),
    CaseStatus.RESOLVED: _l("Resolved"),
    CaseStatus.CLOSED: _l("Closed"),
}
LIGHT_LABELS = {Light.GREEN: _l("On time"), Light.YELLOW: _l("Due soon"), Light.RED: _l("Overdue")}
URGENCY_LABELS = forms.URGENCY_LABELS
ROLE_LABELS = {
    Role.DISPATCHER: _l("Dispatcher"),
    Role.DEPARTMENT: _l("Department staff"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.OPERATOR: _l("Operator"),
    Role.ADMIN: _l("Administrator"),
}
EVENT_LABELS = {
    "opened": _l("Case opened from a call"),
    "recording_stored": _l("Recording stored"),
    "flagged_for_review": _l("Flagged for the desk"),
    "transcribed": _l("Transcribed"),
    "routing_suggested": _l("Routing suggested"),
    "routed": _l("Routed"),
    "emergency_transfer": _l("Put through to emergency services"),
    "copied_to_leadership": _l("Copied to leadership"),
    "accepted": _l("Accepted"),
    "note": _l("Note"),
    "transferred": _l("Transferred"),
    "sent_back": _l("Sent back to the desk"),
    "ruling": _l("Desk ruling"),
    "triaged": _l("Triaged"),
    "opened_at_seat": _l("Written up by the operator who took the call"),
    "resolved": _l("Resolved"),
    "rated": _l("Rated by the caller"),
    "closed": _l("Closed"),
    "reopened": _l("Reopened"),
    "escalated": _l("Escalated to leadership"),
    "supervised": _l("Supervision notice"),
    "light": _l("Deadline light changed"),
    "overdue_reminder": _l("Overdue reminder"),
    "sms_sent": _l("Case number texted to the caller"),
    "sms_logged": _l("Case number text logged"),
    "sms_failed": _l("Case number text failed"),
    "answered_at_once": _l("Answered at once"),
    "article_suggested": _l("Knowledge-base article suggested"),
    "check_skipped": _l("A check in the call could not run"),
}
# What a `check_skipped` event names (ivr/checks.py CHECKS, and the report step's reasons).
CHECK_SKIPPED_WORDS = {
    "emergency": _l("emergency"),
    "knowledge": _l("knowledge-base answer"),
    "live transcript late": _l("the live transcript came too late"),
    "no live transcript": _l("there was no live transcript"),
    "no live model for the locale": _l("no speech model hears this language live"),
    "database error": _l("the database could not be reached"),
    "knowledge base not ready in time": _l("the knowledge base was not ready in time"),
    "knowledge base failed": _l("the knowledge base failed"),
}
DETAIL_LABELS = {
    "reason": _l("Reason"),
    "text": _l("Note"),
    "reply": _l("Reply"),
    "ruling": _l("Ruling"),
    "instruction": _l("Instruction"),
    "department": _l("Department"),
    "from_department": _l("From"),
    "to_department": _l("To"),
    "responsible": _l("First-responsible"),
    "released": _l("Released"),
    "by": _l("By"),
    "sent_back_by": _l("Sent back by"),
    "upheld": _l("Send-back upheld"),
    "category": _l("Category"),
    "suggested": _l("Suggested"),
    "urgency": _l("Urgency"),
    "confidence": _l("Confidence"),
    "score": _l("Rating"),
    "light": _l("Light"),
    "on_time": _l("Resolved on time"),
    "automatic": _l("Automatic"),
    "previous_reply": _l("Previous reply"),
    "source": _l("Source"),
    "service": _l("Service"),
    "number": _l("Number"),
    "duration": _l("Seconds"),
    "duration_seconds": _l("Seconds"),
    "locale": _l("Language"),
    "error": _l("Error"),
    "note": _l("Note"),
    "article": _l("Article"),
    "revision": _l("Revision"),
    "checks": _l("Checks"),
}
DEPARTMENT_KEYS = {
    "department",
    "from_department",
    "to_department",
    "responsible",
    "released",
    "by",
    "sent_back_by",
}
# Event data that is bulky or only for machines; the classification section shows routing.
HIDDEN_DETAILS = {
    "explanation",
    "model_version",
    "call_sid",
    "recording_sid",
    "message_sid",
    "deadline",
    "needs_triage",
    "place",
    "emergency",
    "model",
    "size_bytes",
}


@dataclass
class NamedDirectory:
    """Departments and categories by code, named in the console's language."""

    departments: dict[str, Department]
    categories: dict[str, Category]
    locale: str

    def department_name(self, code: str | None) -> str:
        """A department's name, or a dash."""
        if not code:
            return "—"
        department = self.departments.get(code)
        return department.name(self.locale) if department else code

    def category_name(self, code: str | None) -> str:
        """A category's name, or a dash."""
        if not code:
            return "—"
        category = self.categories.get(code)
        return category.name(self.locale) if category is not None else code

    def handling_departments(self) -> list[tuple[str, str]]:
        """(code, name) of the departments that handle cases: not the desk, not leadership."""
        return [
            (code, self.department_name(code))
            for code in self.departments
            if code not in (DISPATCH_DESK, LEADERSHIP)
        ]

    def category_choices(self) -> list[tuple[str, str]]:
        """(code, name) of every category."""
        return [(code, f"{self.category_name(code)} ({code})") for code in self.categories]

    @classmethod
    def read(cls, session: Session, *, locale: str) -> NamedDirectory:
        """The directory as the database holds it now, named in `locale`."""
        departments = {
            d.code: d for d in session.scalars(select(Department).order_by(Department.code))
        }
        categories = {c.code: c for c in session.scalars(select(Category).order_by(Category.code))}
        return cls(departments=departments, categories=categories, locale=locale)


@dataclass(frozen=True)
class CaseRow:
    """One line of a case list."""

    case: Case
    light: Light


def case_rows(cases: list[Case]) -> list[CaseRow]:
    """Cases with the light each shows now."""
    now = utcnow()
    return [CaseRow(case=case, light=display_light(case, now=now)) for case in cases]


def suggestion(case: Case) -> dict[str, Any]:
    """What the classifier said about the case, in the shape the templates show."""
    routing = case.routing or {}
    explanation = routing.get("explanation") or {}
    rule = None
    if explanation.get("emergency_rule"):
        rule = explanation["emergency_rule"]
    elif explanation.get("urgent_rule"):
        rule = explanation["urgent_rule"]
    return {
        "category": routing.get("category"),
        "department": routing.get("department"),
        "urgency": routing.get("urgency"),
        "confidence": routing.get("confidence"),
        "top": [(item[0], item[1]) for item in explanation.get("top") or [] if len(item) == 2],
        "rule": rule,
        "override": explanation.get("override"),
        "triage": explanation.get("triage"),
        "threshold": explanation.get("threshold"),
        "place": explanation.get("place"),
        "deadline_rule": explanation.get("deadline_rule"),
        "model_version": routing.get("model_version"),
    }


def event_details(event: CaseEvent, directory: NamedDirectory) -> list[tuple[str, str]]:
    """An event's data as (label, value) lines, department codes as names."""
    details = []
    for key, value in (event.data or {}).items():
        if key in HIDDEN_DETAILS or value is None or value == "":
            continue
        if key in DEPARTMENT_KEYS and isinstance(value, str):
            shown = directory.department_name(value)
        elif key in ("category", "suggested") and isinstance(value, str):
            shown = directory.category_name(value)
        elif isinstance(value, bool):
            shown = _("yes") if value else _("no")
        elif key == "urgency" and isinstance(value, str):
            shown = str(URGENCY_LABELS.get(value, value))
        elif key == "confidence" and isinstance(value, int | float):
            shown = f"{value:.0%}"
        elif event.kind == "check_skipped" and key in ("checks", "reason"):
            words = value if isinstance(value, list) else [value]
            shown = "、".join(str(CHECK_SKIPPED_WORDS.get(str(w), w)) for w in words)
        else:
            shown = str(value)
        details.append((str(DETAIL_LABELS.get(key, key)), shown))
    return details


def shows_full_number(who: Actor) -> bool:
    """Dispatchers and admins may call the citizen back; everyone else sees a masked number."""
    return who.role in (Role.DISPATCHER, Role.ADMIN)
