"""The case lifecycle after routing: accept, note, transfer, send back, rule, resolve, rate,
reopen, escalate, supervise, and the deadline sweep.

Every function takes an explicit session and keyword arguments, checks who acts (cases.access)
and what state the case is in, writes the audit trail, and queues its messages in the outbox.
None of them commits: the request or job that calls them owns the transaction.

The rules, as the hotline runs them:
- First-responsible (首问负责): the department that accepts a case stays responsible for it
  (`responsible_department_code`) until a department it transfers the case to accepts.
  Once it has accepted, it may transfer but not send back.
- Send-back (退单): a department that does not own the matter returns it unaccepted to the
  dispatch desk, with a reason; the desk rules and assigns it. It never goes straight to another
  department.
- Deadlines: yellow from 75% of the time limit, red when overdue; red sends one reminder, and
  after a grace period the case is escalated to leadership (督办).
- Major and urgent matters are copied to leadership when they are routed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import outbox
from cases.access import DISPATCH_DESK, LEADERSHIP, Actor, holds_case, require
from cases.errors import InvalidInputError, InvalidTransitionError
from cases.models import (
    ACTIVE_STATUSES,
    Case,
    CaseStatus,
    Category,
    Department,
    Light,
    utcnow,
)
from cases.services import add_event

YELLOW_AT = 0.75
MAX_TEXT = 4000
PRESSING_URGENCIES = ("urgent", "emergency")
RATINGS = range(1, 6)
REOPEN_AT_OR_BELOW = 2
REOPEN_FALLBACK_HOURS = 24


def _text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInputError(f"{what} is required")
    if len(text) > MAX_TEXT:
        raise InvalidInputError(f"{what} is longer than {MAX_TEXT} characters")
    return text


def _department(session: Session, code: str | None, *, what: str = "department") -> Department:
    department = session.get(Department, code) if code else None
    if department is None:
        raise InvalidInputError(f"unknown {what} {code!r}")
    return department


def _expect(case: Case, action: str, *statuses: CaseStatus) -> None:
    if case.status not in statuses:
        raise InvalidTransitionError(action, str(case.status))


def _assign(
    session: Session,
    *,
    case: Case,
    department_code: str,
    deadline_at: datetime | None,
    topic: str = "assigned",
    **extra: object,
) -> None:
    """Put the case in a department's inbox with a fresh deadline clock and push it there."""
    now = utcnow()
    case.department_code = department_code
    # The desk triages what has no category yet; a consultation it answers itself, like any
    # department.
    to_triage = department_code == DISPATCH_DESK and case.category_code in (None, "other")
    case.status = CaseStatus.TRIAGE if to_triage else CaseStatus.ASSIGNED
    case.assigned_at = now
    if deadline_at is not None:
        case.deadline_at = deadline_at
    case.light = Light.GREEN
    case.reminded_at = None
    case.sent_back_by_code = None
    outbox.push_case(session, case=case, department_code=department_code, topic=topic, **extra)


def deliver_routed_case(session: Session, *, case: Case) -> None:
    """After routing: push the case to its department (or the desk) and copy pressing matters
    to leadership. Safe to call twice: the outbox topics make a repeat a no-op."""
    if case.department_code is None or case.assigned_at is not None:
        return
    case.assigned_at = utcnow()
    outbox.push_case(session, case=case, department_code=case.department_code, topic="assigned")
    if case.urgency in PRESSING_URGENCIES and not case.major:
        case.major = True
        add_event(session, case=case, kind="copied_to_leadership", urgency=case.urgency)
        outbox.push_case(session, case=case, department_code=LEADERSHIP, topic="copy")


def accept(session: Session, *, case: Case, actor: Actor) -> Case:
    """The department in charge takes the case and becomes first-responsible for it."""
    require(holds_case(actor, case), "only the department holding the case can accept it")
    if case.status == CaseStatus.ACCEPTED:
        return case  # a repeated accept (a retried API call) changes nothing
    _expect(case, "accept", CaseStatus.ASSIGNED)
    previous = case.responsible_department_code
    case.status = CaseStatus.ACCEPTED
    case.accepted_at = case.accepted_at or utcnow()
    case.responsible_department_code = case.department_code
    add_event(
        session,
        case=case,
        kind="accepted",
        actor=actor.name,
        department=case.department_code,
        released=previous if previous != case.department_code else None,
    )
    if not any(d.topic.startswith("accepted") for d in case.deliveries):
        outbox.text_caller(session, case=case, message="accepted")
    return case


def add_note(session: Session, *, case: Case, actor: Actor, text: str) -> Case:
    """Add a working note to the case's timeline (those working the case only)."""
    require(
        actor.is_desk
        or holds_case(actor, case)
        or (
            actor.department_code is not None
            and actor.department_code == case.responsible_department_code
        ),
        "only the department working the case, or the desk, adds notes",
    )
    add_event(session, case=case, kind="note", actor=actor.name, text=_text(text, "note"))
    return case


def transfer(
    session: Session, *, case: Case, actor: Actor, department_code: str, reason: str
) -> Case:
    """Hand the case to another department; the first-responsible one stays so until it
    accepts."""
    require(
        holds_case(actor, case) or actor.is_desk,
        "only the department holding the case or the desk can transfer it",
    )
    _expect(case, "transfer", CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.TRIAGE)
    reason = _text(reason, "reason")
    target = _department(session, department_code)
    if target.code in (DISPATCH_DESK, LEADERSHIP):
        raise InvalidInputError("send a case back to the desk instead of transferring it there")
    if target.code == case.department_code:
        raise InvalidInputError("the case is already with that department")
    add_event(
        session,
        case=case,
        kind="transferred",
        actor=actor.name,
        reason=reason,
        from_department=case.department_code,
        to_department=target.code,
        responsible=case.responsible_department_code,
    )
    # The deadline belongs to the citizen's matter: a transfer does not restart it.
    deadline_at, assigned_at = case.deadline_at, case.assigned_at
    _assign(session, case=case, department_code=target.code, deadline_at=deadline_at)
    case.assigned_at = assigned_at or case.assigned_at
    return case


def send_back(session: Session, *, case: Case, actor: Actor, reason: str) -> Case:
    """Return an unaccepted case to the dispatch desk (退单) with the reason it is not ours."""
    require(holds_case(actor, case), "only the department holding the case can send it back")
    if case.status == CaseStatus.ACCEPTED:
        raise InvalidTransitionError(
            "send back (transfer it: you are first-responsible)", "accepted"
        )
    _expect(case, "send back", CaseStatus.ASSIGNED)
    reason = _text(reason, "reason")
    sent_by = case.department_code
    add_event(session, case=case, kind="sent_back", actor=actor.name, reason=reason, by=sent_by)
    case.status = CaseStatus.SENT_BACK
    case.department_code = DISPATCH_DESK
    case.sent_back_by_code = sent_by
    outbox.push_case(
        session, case=case, department_code=DISPATCH_DESK, topic="sent_back", reason=reason
    )
    return case


def rule_on_send_back(
    session: Session,
    *,
    case: Case,
    actor: Actor,
    department_code: str,
    ruling: str,
    deadline_at: datetime | None = None,
    category_code: str | None = None,
) -> Case:
    """The desk's ruling on a send-back: assign the case to the right department (which may be
    the one that sent it back, if its reason did not hold)."""
    require(actor.is_desk, "only the dispatch desk rules on send-backs")
    _expect(case, "rule on", CaseStatus.SENT_BACK)
    ruling = _text(ruling, "ruling")
    target = _department(session, department_code)
    if target.code in (DISPATCH_DESK, LEADERSHIP):
        raise InvalidInputError("a ruling assigns the case to a handling department")
    if category_code is not None:
        _category(session, category_code)
        case.category_code = category_code
    sent_by = case.sent_back_by_code
    add_event(
        session,
        case=case,
        kind="ruling",
        actor=actor.name,
        ruling=ruling,
        sent_back_by=sent_by,
        upheld=target.code != sent_by,
        to_department=target.code,
        category=case.category_code,
    )
    _assign(session, case=case, department_code=target.code, deadline_at=deadline_at)
    return case


def _category(session: Session, code: str) -> Category:
    category = session.get(Category, code)
    if category is None:
        raise InvalidInputError(f"unknown category {code!r}")
    return category


def triage(
    session: Session,
    *,
    case: Case,
    actor: Actor,
    category_code: str,
    department_code: str,
    urgency: str,
    deadline_at: datetime,
    note: str | None = None,
) -> Case:
    """A dispatcher classifies a case the machine could not, and assigns it."""
    require(actor.is_desk, "only the dispatch desk triages cases")
    _expect(case, "triage", CaseStatus.TRIAGE, CaseStatus.OPEN)
    _category(session, category_code)
    target = _department(session, department_code)
    if urgency not in ("normal", *PRESSING_URGENCIES):
        raise InvalidInputError(f"unknown urgency {urgency!r}")
    if target.code == LEADERSHIP:
        raise InvalidInputError("leadership supervises cases; it does not handle them")
    case.category_code = category_code
    case.urgency = urgency
    case.needs_review = False
    # A person has routed it: a transcript that arrives later must not route it again.
    case.routed_at = case.routed_at or utcnow()
    add_event(
        session,
        case=case,
        kind="triaged",
        actor=actor.name,
        category=category_code,
        department=target.code,
        urgency=urgency,
        suggested=(case.routing or {}).get("category"),
        note=(note or "").strip() or None,
    )
    _assign(session, case=case, department_code=target.code, deadline_at=deadline_at)
    if urgency in PRESSING_URGENCIES and not case.major:
        case.major = True
        outbox.push_case(session, case=case, department_code=LEADERSHIP, topic="copy")
    return case


def resolve(session: Session, *, case: Case, actor: Actor, reply: str) -> Case:
    """The department's answer: the case is resolved and the caller is told and asked to rate."""
    require(holds_case(actor, case), "only the department holding the case can resolve it")
    _expect(case, "resolve", CaseStatus.ASSIGNED, CaseStatus.ACCEPTED)
    reply = _text(reply, "reply")
    if case.status == CaseStatus.ASSIGNED:
        accept(session, case=case, actor=actor)
    case.status = CaseStatus.RESOLVED
    case.resolution = reply
    case.resolved_at = utcnow()
    add_event(
        session,
        case=case,
        kind="resolved",
        actor=actor.name,
        department=case.department_code,
        reply=reply,
        on_time=case.deadline_at is None or case.resolved_at <= case.deadline_at,
    )
    outbox.text_caller(session, case=case, message="resolved", reply=reply)
    return case


def case_awaiting_rating(session: Session, *, caller_number: str) -> Case | None:
    """The caller's most recently resolved case, which a rating text refers to."""
    return session.scalars(
        select(Case)
        .where(Case.caller_number == caller_number, Case.status == CaseStatus.RESOLVED)
        .order_by(Case.resolved_at.desc(), Case.id.desc())
        .limit(1)
    ).first()


@dataclass(frozen=True)
class RatingOutcome:
    """What a rating did to its case."""

    case: Case
    reopened: bool


def rate(
    session: Session,
    *,
    case: Case,
    score: int,
    message_sid: str | None,
    reopen_deadline_at: datetime | None = None,
) -> RatingOutcome:
    """The caller's rating, 1 to 5. Two or less reopens the case to the department responsible,
    with the rating attached; otherwise the case is closed."""
    if score not in RATINGS:
        raise InvalidInputError("a rating is a number from 1 to 5")
    _expect(case, "rate", CaseStatus.RESOLVED)
    now = utcnow()
    case.rating, case.rated_at = score, now
    add_event(
        session, case=case, kind="rated", actor="caller", score=score, message_sid=message_sid
    )
    if score > REOPEN_AT_OR_BELOW:
        case.status = CaseStatus.CLOSED
        case.closed_at = now
        add_event(session, case=case, kind="closed", actor="caller")
        outbox.text_caller(session, case=case, message="rating_thanks")
        return RatingOutcome(case=case, reopened=False)

    department_code = case.responsible_department_code or case.department_code or DISPATCH_DESK
    case.reopen_count += 1
    # A new round: overdue again later means escalated again.
    case.escalated_at = None
    if reopen_deadline_at is None:
        # No category to take a time limit from: the shortest one, rather than the old
        # deadline, which has passed and would turn the case red at once.
        reopen_deadline_at = now + timedelta(hours=REOPEN_FALLBACK_HOURS)
    add_event(
        session,
        case=case,
        kind="reopened",
        actor="caller",
        score=score,
        department=department_code,
        previous_reply=case.resolution,
    )
    _assign(
        session,
        case=case,
        department_code=department_code,
        deadline_at=reopen_deadline_at,
        topic="reopened",
        # The department sees why it has the case again.
        rating=score,
        previous_reply=case.resolution,
    )
    case.resolved_at = None
    outbox.text_caller(session, case=case, message="reopened")
    return RatingOutcome(case=case, reopened=True)


def escalate(session: Session, *, case: Case, actor: Actor, reason: str) -> Case:
    """Escalate a case to leadership (督办): overdue, or a major matter."""
    require(actor.supervises, "only the desk or a supervisor escalates")
    _expect(case, "escalate", *ACTIVE_STATUSES)
    reason = _text(reason, "reason")
    if case.escalated_at is not None:
        return case
    case.escalated_at = utcnow()
    case.major = True
    add_event(session, case=case, kind="escalated", actor=actor.name, reason=reason)
    outbox.push_case(
        session, case=case, department_code=LEADERSHIP, topic="escalated", reason=reason
    )
    return case


def supervise(session: Session, *, case: Case, actor: Actor, instruction: str) -> Case:
    """A supervision notice (督办) to the department holding the case."""
    require(actor.supervises, "only the desk or a supervisor issues supervision notices")
    _expect(case, "supervise", *ACTIVE_STATUSES)
    instruction = _text(instruction, "instruction")
    add_event(session, case=case, kind="supervised", actor=actor.name, instruction=instruction)
    if case.department_code:
        outbox.push_case(
            session,
            case=case,
            department_code=case.department_code,
            topic="supervision",
            instruction=instruction,
        )
    return case


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


# Cases whose department is still working on them; a resolved case's clock has stopped.
SWEPT_STATUSES = (CaseStatus.TRIAGE, CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.SENT_BACK)


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
