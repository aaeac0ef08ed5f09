"""The routing job: classify a case's transcript and route it, once, whatever repeats.

Jobs are given the shell's `Wiring` as their first argument (`hotline.celery_app.WiredTask`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery import shared_task
from sqlalchemy import select

from cases import intake, lifecycle
from cases.models import Case, Category
from routing.router import ClassifierMissingError, routes_from_categories

if TYPE_CHECKING:
    from hotline.wiring import Wiring

log = logging.getLogger("hotline.routing")


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
        case = session.get_one(Case, case_id)
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
