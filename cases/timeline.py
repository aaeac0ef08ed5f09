"""The case's audit trail: every change to a case adds an event, never edits one."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from cases.models import Case, CaseEvent


def add_event(
    session: Session, *, case: Case, kind: str, actor: str = "system", **data: Any
) -> CaseEvent:
    """Append an entry to the case's audit trail."""
    event = CaseEvent(case=case, kind=kind, actor=actor, data=data)
    session.add(event)
    return event


def last_event(case: Case, kind: str) -> CaseEvent | None:
    """The case's latest event of a kind."""
    return next((event for event in reversed(case.events) if event.kind == kind), None)
