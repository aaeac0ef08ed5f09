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

from cases import intake, lifecycle, merging
from cases.models import WRITTEN_INTAKES, Case, CaseStatus, Category, Transcript, utcnow
from routing.router import ClassifierMissingError, Router, routes_from_categories
from routing.similarity import MergeRules, Report, best_match

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
        words = intake.report_words(case)
        if words is None:
            return "no transcript yet"  # the transcript's arrival queues this job again
        text, opened_at, case_number = words, case.opened_at, case.number
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
        # The category first (并单, `_join_if_repeat`), then the case: always in this order,
        # or two jobs each holding their own case and waiting for the category's lock, while
        # the one holding it waits for the other's case, would deadlock.
        merging.lock_category(session, category=outcome.category)
        # Locked: a re-driven run beside a slow one waits here, then finds the case routed
        # (without the lock both would route it, on PostgreSQL, and push it twice).
        case = session.get_one(Case, case_id, with_for_update=True)
        routed = intake.route_case(session, case=case, outcome=outcome)
        if routed:
            _join_if_repeat(session, case=case, rules=wiring.merge_rules)
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


def _as_report(case: Case) -> Report:
    return Report(
        text=intake.report_words(case) or "",
        category=case.category_code or "",
        place_code=case.place_code,
        opened_at=case.opened_at,
        point=(case.lat, case.long) if case.lat is not None and case.long is not None else None,
    )


def _join_if_repeat(session: Session, *, case: Case, rules: MergeRules) -> None:
    """并单: a routed report that repeats an open case joins it as a co-reporter (and is then
    not pushed). Only what the machine routed with confidence: a report for the desk to triage
    or review is looked at by a person, who can merge it by hand."""
    if case.category_code is None or case.needs_review or case.status != CaseStatus.ASSIGNED:
        return
    # The category's lock is held already (route_case takes it first).
    window = rules.window_for(case.category_code)
    since = case.opened_at - window
    problems = merging.open_problems(session, case=case, since=since)
    match = best_match(
        _as_report(case),
        [(problem.id, [_as_report(report) for report in reports]) for problem, reports in problems],
        rules,
    )
    if match is None:
        return
    # Read again under its lock: the department may have resolved it since it was listed.
    into = session.get_one(Case, match, with_for_update=True, populate_existing=True)
    if into.status not in merging.JOINABLE_STATUSES or into.merged_into_id is not None:
        return
    merging.join(session, case=case, into=into, actor="system", how="similar")
    log.info("report joined case %s (并单)", into.number, extra={"case_number": case.number})


@shared_task(name="routing.requeue_unrouted_cases")  # type: ignore[untyped-decorator]
def requeue_unrouted_cases(wiring: Wiring) -> int:
    """Beat job: route again the cases whose routing job was lost (a broker outage, a dead
    worker): a complete transcript, or a written report, unrouted for a while. Routing twice
    routes once."""
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
            # A case whose row a transaction holds is being worked on: not lost (see below).
            .with_for_update(of=Case, skip_locked=True)
        ).all()
        unrouted_written = session.scalars(
            select(Case.id)
            .where(
                Case.routed_at.is_(None),
                ~Case.needs_review,
                Case.intake.in_(WRITTEN_INTAKES),
                Case.opened_at < lost_before,
            )
            .with_for_update(of=Case, skip_locked=True)
        ).all()
        unrouted = [*unrouted, *unrouted_written]
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
