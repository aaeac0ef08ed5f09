"""The case's own clock: deadline lights, overdue reminders and escalation (督办).

`sweep_deadlines` is the body of the beat job the shell runs every minute (the shell registers
it with Celery, which the domain does not import).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import outbox
from cases.access import LEADERSHIP
from cases.models import Case, CaseStatus, Light
from cases.timeline import add_event

YELLOW_AT = 0.75
# Cases whose department is still working on them; a resolved case's clock has stopped.
SWEPT_STATUSES = (CaseStatus.TRIAGE, CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.SENT_BACK)


@dataclass
class SweepResult:
    """What one pass of the deadline sweep changed, by case number."""

    yellow: list[str] = field(default_factory=list)
    red: list[str] = field(default_factory=list)
    escalated: list[str] = field(default_factory=list)


def light_for(case: Case, *, now: datetime) -> Light:
    """The light a case should show now: yellow from 75% of its time, red once overdue."""
    if case.deadline_at is None:
        return Light.GREEN
    if now >= case.deadline_at:
        return Light.RED
    start = case.assigned_at or case.opened_at
    total = (case.deadline_at - start).total_seconds()
    if total <= 0 or (now - start).total_seconds() >= YELLOW_AT * total:
        return Light.YELLOW
    return Light.GREEN


def display_light(case: Case, *, now: datetime) -> Light:
    """The light as of now for a case still being worked (right between sweeps), else the
    light it ended with."""
    if case.status in SWEPT_STATUSES:
        return light_for(case, now=now)
    return Light(case.light)


def sweep_deadlines(session: Session, *, now: datetime, escalation_grace: timedelta) -> SweepResult:
    """Set each working case's light; remind on red; escalate after the grace period.

    Runs every minute from beat. It only moves lights forward and acts once per case and
    deadline, so overlapping runs or a run after downtime do no harm.
    """
    result = SweepResult()
    cases = session.scalars(
        select(Case)
        .where(Case.status.in_(SWEPT_STATUSES), Case.deadline_at.is_not(None))
        .where((Case.light != Light.RED) | Case.escalated_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    for case in cases:
        light = light_for(case, now=now)
        if light == Light.YELLOW and case.light == Light.GREEN:
            case.light = Light.YELLOW
            add_event(session, case=case, kind="light", light="yellow")
            result.yellow.append(case.number)
        if light == Light.RED and case.light != Light.RED:
            case.light = Light.RED
            case.reminded_at = now
            add_event(session, case=case, kind="light", light="red")
            add_event(session, case=case, kind="overdue_reminder", department=case.department_code)
            if case.department_code:
                outbox.push_case(
                    session, case=case, department_code=case.department_code, topic="overdue"
                )
            result.red.append(case.number)
        assert case.deadline_at is not None
        if (
            case.light == Light.RED
            and case.escalated_at is None
            and now >= case.deadline_at + escalation_grace
        ):
            case.escalated_at = now
            add_event(
                session,
                case=case,
                kind="escalated",
                reason=f"overdue by more than {escalation_grace}",
                automatic=True,
            )
            outbox.push_case(
                session, case=case, department_code=LEADERSHIP, topic="escalated", automatic=True
            )
            result.escalated.append(case.number)
    return result
