"""并单: repeat reports of one problem become one case with several reporters.

Ten people reporting one dark street light make one case for the department, with ten
reporters, not ten cases. A report that repeats an open case joins it as a co-reporter:

- it keeps its own number, which leads to the case it joined (`followed_case`), so its reporter
  can follow the problem with the number they were given;
- its status is `merged`; the case it joined counts it in `reporters`, and its department is
  not pushed a second time;
- when the case it joined is resolved, every co-reporter is told the outcome and asked to rate,
  as its first reporter is (`lifecycle.resolve`); ratings stay each reporter's own, so the
  disclosure counts contacts (every report) and problems (cases not merged) apart.

The routing job decides whether a new report repeats an open case (`routing.similarity`, which
sees only words, category, place, time and points); this module finds the candidates and does
the joining. The desk can undo a wrong join (`split`) and join two cases by hand
(`merge_by_hand`); both go on the timelines of both cases.

Service functions take keyword arguments and an explicit session, and never commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from cases import outbox
from cases.access import DISPATCH_DESK, Actor
from cases.errors import N_, InvalidInputError
from cases.lifecycle import assign_case, check_actor, check_status
from cases.models import ACTIVE_STATUSES, Case, CaseStatus, Category, utcnow
from cases.timeline import add_event

# A new report may join a case that is still being worked on, not one already answered: a
# problem back after its reply is a new case (or a reopening, by the reporter's rating).
JOINABLE_STATUSES = (
    CaseStatus.TRIAGE,
    CaseStatus.ASSIGNED,
    CaseStatus.ACCEPTED,
    CaseStatus.SENT_BACK,
)


def followed_case(case: Case) -> Case:
    """The case a reporter's number leads to: the one their report joined, or its own."""
    return case.merged_into if case.merged_into is not None else case


def lock_category(session: Session, *, category: str) -> None:
    """Take the category's lock for a merging decision: two reports of one problem routed at
    the same moment would each find the other not yet routed and both open a case. Held until
    the routing job's transaction ends."""
    session.scalars(select(Category.code).where(Category.code == category).with_for_update()).all()


def open_problems(
    session: Session, *, case: Case, since: datetime
) -> list[tuple[Case, list[Case]]]:
    """The open cases `case` could repeat: same category, still worked on, not joined to
    another, with a report since `since`. Each comes with its reports, itself first, then its
    co-reporters in the order they came."""
    recent_reports = (
        select(func.coalesce(Case.merged_into_id, Case.id))
        .where(Case.category_code == case.category_code, Case.opened_at >= since)
        .scalar_subquery()
    )
    problems = session.scalars(
        select(Case)
        .where(
            Case.id.in_(recent_reports),
            Case.id != case.id,
            Case.merged_into_id.is_(None),
            Case.status.in_(JOINABLE_STATUSES),
        )
        .order_by(Case.opened_at, Case.id)
        # Every report's words are compared: loaded together, not one query per report.
        .options(
            selectinload(Case.transcript),
            selectinload(Case.co_reporters).selectinload(Case.transcript),
        )
    ).all()
    return [(problem, [problem, *problem.co_reporters]) for problem in problems]


def join(session: Session, *, case: Case, into: Case, actor: str, how: str, **why: object) -> None:
    """`case`'s reporters become co-reporters of `into`: `case` is merged, `into` counts them.

    A case that had co-reporters of its own hands them over, so a merged case never has any.
    `into` must be locked by the caller (its count is read and written).
    """
    now = utcnow()
    moved = [case, *case.co_reporters]
    for report in case.co_reporters:
        report.merged_into = into
    into.reporters += case.reporters
    case.reporters = 1
    case.status = CaseStatus.MERGED
    case.merged_into = into
    case.merged_at = now
    add_event(session, case=case, kind="merged_into", actor=actor, into=into.number, how=how, **why)
    add_event(
        session,
        case=into,
        kind="reporter_joined",
        actor=actor,
        reports=[report.number for report in moved],
        reporters=into.reporters,
        how=how,
    )
    if case.assigned_at is not None and case.department_code not in (None, DISPATCH_DESK):
        # Its department had it in its inbox: tell it the case now lives on in another.
        outbox.push_case(session, case=case, department_code=case.department_code, topic="merged")


def _locked(session: Session, query: Select[Case]) -> Case | None:
    """The case the query finds, locked and read afresh: its `reporters` count is about to be
    rewritten from what is read, and another request may have changed it meanwhile."""
    return session.scalars(
        query.with_for_update().execution_options(populate_existing=True)
    ).one_or_none()


def merge_by_hand(session: Session, *, case: Case, into_number: str, actor: Actor) -> Case:
    """The desk joins `case` to the case numbered `into_number` (the one kept); the case it
    names, if merged itself, stands for the case it joined."""
    check_actor("merge", actor=actor, case=case)
    check_status("merge", case=case)
    into = _locked(session, select(Case).where(Case.number == into_number.strip()))
    if into is not None and into.merged_into_id is not None:
        into = _locked(session, select(Case).where(Case.id == into.merged_into_id))
    if into is None:
        raise InvalidInputError(N_("No case has that number"))
    if into.id == case.id:
        raise InvalidInputError(N_("A case cannot be merged into itself"))
    if into.status not in ACTIVE_STATUSES:
        raise InvalidInputError(N_("A case can only be merged into one still being worked on"))
    join(session, case=case, into=into, actor=actor.name, how="desk")
    return case


def split(session: Session, *, case: Case, actor: Actor) -> Case:
    """The desk undoes a wrong join: the report becomes a case of its own again, counted no
    more in the case it had joined, and goes to its own department (or the desk) at once."""
    check_actor("split", actor=actor, case=case)
    check_status("split", case=case)
    into = _locked(session, select(Case).where(Case.id == case.merged_into_id))
    assert into is not None  # a foreign key
    into.reporters = max(1, into.reporters - 1)
    case.merged_into = None
    case.merged_at = None
    add_event(session, case=case, kind="split_from", actor=actor.name, case_number=into.number)
    add_event(
        session,
        case=into,
        kind="reporter_split",
        actor=actor.name,
        report=case.number,
        reporters=into.reporters,
    )
    assign_case(
        session,
        case=case,
        department_code=case.department_code or DISPATCH_DESK,
        deadline_at=None,
        topic="assigned-after-split",
    )
    return case
