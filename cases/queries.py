"""Domain queries: a case by its number, and the lists people work from (the desk's queues,
the overdue and escalated lists, inboxes), each limited to what the actor may see."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from cases import numbers
from cases.access import Actor, visible_cases
from cases.clock import SWEPT_STATUSES
from cases.errors import UnknownCaseError
from cases.models import ACTIVE_STATUSES, Call, Case, CaseStatus, Light


def get_case(session: Session, *, number: str) -> Case:
    """The case with this number, or UnknownCaseError."""
    if not numbers.could_be_a_case_number(number):
        raise UnknownCaseError(number)
    case = session.scalars(select(Case).where(Case.number == number)).one_or_none()
    if case is None:
        raise UnknownCaseError(number)
    return case


def find_case(session: Session, *, number: str) -> Case | None:
    """The case with this number, if any (well-formedness is checked first, cheaply)."""
    if not numbers.is_well_formed(number):
        return None
    return session.scalars(select(Case).where(Case.number == number)).one_or_none()


def case_awaiting_rating(session: Session, *, caller_number: str) -> Case | None:
    """The caller's most recently resolved case, which a rating text refers to."""
    return session.scalars(
        select(Case)
        .where(Case.caller_number == caller_number, Case.status == CaseStatus.RESOLVED)
        .order_by(Case.resolved_at.desc(), Case.id.desc())
        .limit(1)
    ).first()


def by_deadline(query: Select[Case]) -> Select[Case]:
    """Soonest deadline first; cases without one last (portable: no NULLS LAST needed)."""
    return query.order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id)


def inbox(
    actor: Actor, *, statuses: Sequence[CaseStatus] | None, department_code: str | None = None
) -> Select[Case]:
    """The cases the actor may see, soonest deadline first, in these statuses (any if None),
    of one department if given."""
    query = visible_cases(actor)
    if statuses is not None:
        query = query.where(Case.status.in_(statuses))
    if department_code is not None:
        query = query.where(Case.department_code == department_code)
    return by_deadline(query)


def triage_queue(actor: Actor) -> Select[Case]:
    """The desk's triage queue: cases the machine could not place, and cases flagged for a
    person. Those waiting for a category come first: a flagged case already with a department
    (a failed delivery, say) is worth a look but must not push them off the page."""
    query = visible_cases(actor).where(
        or_(
            Case.status.in_((CaseStatus.TRIAGE, CaseStatus.OPEN)),
            and_(Case.needs_review, Case.status.in_(ACTIVE_STATUSES)),
        )
    )
    waiting_first = Case.status.not_in((CaseStatus.TRIAGE, CaseStatus.OPEN))
    return by_deadline(query.order_by(waiting_first))


def sent_back_queue(actor: Actor) -> Select[Case]:
    """Send-backs (退单) awaiting the desk's ruling, soonest deadline first."""
    return by_deadline(visible_cases(actor).where(Case.status == CaseStatus.SENT_BACK))


def extension_requests(actor: Actor) -> Select[Case]:
    """Requests for more time (延期申请) waiting for the desk's ruling, soonest deadline first."""
    return by_deadline(visible_cases(actor).where(Case.extension_until.is_not(None)))


def overdue(actor: Actor, *, now: datetime) -> Select[Case]:
    """Cases still being worked that are past their deadline (red), most overdue first."""
    query = (
        visible_cases(actor)
        .where(Case.status.in_(SWEPT_STATUSES))
        .where(or_(Case.light == Light.RED, Case.deadline_at <= now))
    )
    return by_deadline(query)


def escalated(actor: Actor) -> Select[Case]:
    """Cases escalated to leadership (督办), most recent first."""
    return (
        visible_cases(actor)
        .where(Case.escalated_at.is_not(None))
        .order_by(Case.escalated_at.desc(), Case.id.desc())
    )


def unreported_calls(actor: Actor) -> Select[Call]:
    """Calls that ended without a report, for the desk to follow up (most recent first): the
    call is over (its status callback came), it opened no case, the caller was not served
    otherwise (a status heard, an operator reached), and nobody at the desk has acted on it.
    Only the desk sees them."""
    query = (
        select(Call)
        .where(
            Call.ended_at.is_not(None),
            Call.served.is_(None),
            Call.follow_up.is_(None),
            ~exists().where(Case.call_id == Call.id),
        )
        .order_by(Call.ended_at.desc(), Call.id.desc())
    )
    return query if actor.is_desk else query.where(false())
