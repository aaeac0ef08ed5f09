"""The routing job: classify a case's transcript and route it, once, whatever repeats.

Jobs are given the shell's `Wiring` as their first argument (`hotline.celery_app.WiredTask`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from celery import shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import intake, lifecycle
from cases.models import Case, Category, Transcript, utcnow
from routing.router import ClassifierMissingError, Router, routes_from_categories

if TYPE_CHECKING:
    from hotline.wiring import Wiring

log = logging.getLogger("hotline.routing")

# What the desk triages has the `other` category's time limit (1 working day by default).
TRIAGE_CATEGORY = "other"


@shared_task(name="routing.route_case", acks_late=True)  # type: ignore[untyped-decorator]
def route_case(wiring: Wiring, case_id: int) -> str:
    """Classify the case's transcript and route it; a case is routed once, whatever repeats."""
    database, router = wiring.database, wiring.router
    with database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        if case.routed_at is not None:
            return "already routed"
        if case.transcript is None or not case.transcript.complete:
            return "no transcript yet"  # the transcript's arrival queues this job again
        text, opened_at, case_number = case.transcript.text, case.opened_at, case.number
        # The time limits admins set in the console, not the shipped file's.
        directory = routes_from_categories(session.scalars(select(Category)))
    extra = {"case_id": case_id, "case_number": case_number}
    try:
        outcome = router.outcome(text, opened_at=opened_at, directory=directory or None)
    except ClassifierMissingError as error:
        with database.session() as session, session.begin():
            lifecycle.flag_for_review(
                session, case=session.get_one(Case, case_id), reason=str(error)
            )
        log.error("cannot route: %s", error, extra=extra)
        return "flagged"
    with database.session() as session, session.begin():
        # Locked: a re-driven run beside a slow one waits here, then finds the case routed
        # (without the lock both would route it, on PostgreSQL, and push it twice).
        case = session.get_one(Case, case_id, with_for_update=True)
        routed = intake.route_case(session, case=case, outcome=outcome)
        # The push to the department (and leadership's copy) leaves after this commits.
        lifecycle.deliver_routed_case(session, case=case)
    log.info(
        "case routed to %s (%s, %s, confidence %.2f)",
        outcome.department,
        outcome.category,
        outcome.urgency,
        outcome.confidence,
        extra=extra,
    )
    return "routed" if routed else "already routed"


@shared_task(name="routing.requeue_unrouted_cases")  # type: ignore[untyped-decorator]
def requeue_unrouted_cases(wiring: Wiring) -> int:
    """Beat job: route again the cases whose routing job was lost (a broker outage, a dead
    worker): a complete transcript unrouted for a while. Routing twice routes once."""
    lost_before = utcnow() - timedelta(seconds=wiring.settings.jobs_lost_after_seconds)
    with wiring.database.session() as session, session.begin():
        unrouted = session.scalars(
            select(Case.id)
            .join(Transcript, Transcript.case_id == Case.id)
            .where(
                Case.routed_at.is_(None),
                ~Case.needs_review,
                Transcript.complete,
                Transcript.updated_at < lost_before,
            )
        ).all()
    for case_id in unrouted:
        enqueue_routing(case_id)
    if unrouted:
        log.warning("re-queued %d unrouted cases", len(unrouted))
    return len(unrouted)


def enqueue_routing(case_id: int) -> None:
    """Queue `route_case`; with the broker down the caller goes on and the beat job re-queues."""
    try:
        route_case.delay(case_id)
    except Exception:
        log.exception("could not enqueue routing of case %s; the sweep will retry", case_id)


def give_triage_deadline(session: Session, *, case: Case, router: Router) -> None:
    """A case the desk must listen to before anything can route it (no speech model for its
    language, unreadable audio) gets the triage time limit, as the directory sets it for
    `other`; one that has a deadline keeps it."""
    if case.deadline_at is not None:
        return
    category = session.get(Category, TRIAGE_CATEGORY)
    if category is None:  # a directory without `other`: nothing says how long triage takes
        return
    case.deadline_at = router.deadline_for(
        category=category, urgency="normal", start=case.opened_at
    )
