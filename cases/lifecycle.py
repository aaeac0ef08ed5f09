"""The case lifecycle after routing: accept, note, transfer, send back, rule, triage, resolve,
rate (and reopen), escalate, supervise; and the desk's review of a case the machine could not
finish.

`TRANSITIONS` is the state machine, written once: for each action, the statuses it is taken
from, who may take it, and the refusal otherwise. The service functions check it first;
`allowed_actions` answers "which buttons" for the console. Every function takes an explicit
session and keyword arguments, writes the audit trail, and queues its messages in the outbox;
none of them commits: the request or job that calls them owns the transaction.

The rules, as the hotline runs them:
- First-responsible (首问负责): the department that accepts a case stays responsible for it
  (`responsible_department_code`) until a department it transfers the case to accepts.
  Once it has accepted, it may transfer but not send back.
- Send-back (退单): a department that does not own the matter returns it unaccepted to the
  dispatch desk, with a reason; the desk rules and assigns it. It never goes straight to another
  department.
- Major and urgent matters are copied to leadership when they are routed.
- The deadline clock (lights, reminders, escalation) is `cases.clock`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import callbacks, outbox
from cases.access import DISPATCH_DESK, LEADERSHIP, Actor, holds_case
from cases.errors import N_, InvalidInputError, InvalidTransitionError, NotAllowedError
from cases.free_text import PROSE
from cases.models import (
    ACTIVE_STATUSES,
    CallbackTask,
    Case,
    CaseAssist,
    CaseStatus,
    Category,
    Department,
    Light,
    Role,
    utcnow,
)
from cases.timeline import add_event

PRESSING_URGENCIES = ("urgent", "emergency")
RATINGS = range(1, 6)
REOPEN_AT_OR_BELOW = 2
REOPEN_FALLBACK_HOURS = 24


def works_case(actor: Actor, case: Case) -> bool:
    """Those working the case: the department holding it, the one still first-responsible for
    it, and the desk. Supervisors read; they do not write on the case."""
    return (
        actor.is_desk
        or holds_case(actor, case)
        or (
            actor.department_code is not None
            and actor.department_code == case.responsible_department_code
        )
    )


def _holds_case_or_desk(actor: Actor, case: Case) -> bool:
    return holds_case(actor, case) or actor.is_desk


def _desk(actor: Actor, case: Case) -> bool:
    return actor.is_desk


def _supervises(actor: Actor, case: Case) -> bool:
    return actor.supervises


def _operator_on_the_call(actor: Actor, case: Case) -> bool:
    return actor.role == Role.OPERATOR and case.owner in (None, actor.name)


def _assist_of(actor: Actor, case: Case) -> CaseAssist | None:
    """The actor's department's part in the case as an assisting department (协办), if any."""
    if actor.role != Role.DEPARTMENT or actor.department_code is None:
        return None
    return next((a for a in case.assists if a.department_code == actor.department_code), None)


def _parts_still_out(case: Case) -> str | None:
    """主办 resolves once every assisting department's part is in."""
    if any(assist.replied_at is None for assist in case.assists):
        return N_(
            "An assisting department has not replied for its part yet: the case is resolved "
            "once every part is in."
        )
    return None


def _written_up_already(case: Case) -> str | None:
    """An operator writes a call's case up once: a second submit (a double click, a reload)
    changes nothing; after that the case is worked like any other."""
    if case.owner is not None:
        return N_("This call's case is written up already.")
    return None


def _always(case: Case) -> bool:
    return True


def _never(case: Case) -> str | None:
    return None


def _first_responsible_holds_it(case: Case) -> str | None:
    """首问负责: a department that has accepted the case stays responsible for it, so it may not
    send it back, even when it is assigned again (a low rating reopened it, or the desk ruled it
    back to them after a later department's send-back). It may still transfer it."""
    if (
        case.responsible_department_code is not None
        and case.responsible_department_code == case.department_code
    ):
        return N_(
            "Your department accepted this case and stays first-responsible for it, "
            "reopened or not: it cannot be sent back. Transfer it if another department "
            "must handle it."
        )
    return None


@dataclass(frozen=True)
class Transition:
    """One action on a case.

    `verb` names it in refusals ("cannot send back a case that is accepted"); `who` decides who
    may take it (None: not a staff action; the caller takes it by text); `refusal` is the
    message otherwise, marked for translation where it is shown; `refusals_by_status` gives a
    clearer refusal than the generic one for a status it is not taken from; `needed` says
    whether taking it now would change anything (an escalated case is not escalated again);
    `barred` gives the refusal when a rule other than the status forbids it in this case's
    history (a reopened case may not be sent back by the department that accepted it).
    """

    verb: str
    statuses: frozenset[CaseStatus]
    who: Callable[[Actor, Case], bool] | None
    refusal: str = ""
    refusals_by_status: Mapping[CaseStatus, str] = field(default_factory=dict)
    needed: Callable[[Case], bool] = _always
    barred: Callable[[Case], str | None] = _never
    # False for an action taken from a page of its own (the operator's seat), never a button
    # on the case page.
    on_case_page: bool = True


TRANSITIONS: dict[str, Transition] = {
    "accept": Transition(
        "accept",
        frozenset({CaseStatus.ASSIGNED}),
        holds_case,
        N_("Only the department holding the case can accept it"),
    ),
    "note": Transition(
        "add a note to",
        frozenset(CaseStatus),
        works_case,
        N_("Only those working the case add notes to it"),
    ),
    "transfer": Transition(
        "transfer",
        frozenset({CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.TRIAGE}),
        _holds_case_or_desk,
        N_("Only the department holding the case or the desk can transfer it"),
    ),
    "send_back": Transition(
        "send back",
        frozenset({CaseStatus.ASSIGNED}),
        holds_case,
        N_("Only the department holding the case can send it back"),
        refusals_by_status={
            CaseStatus.ACCEPTED: N_(
                "An accepted case cannot be sent back: transfer it, "
                "as you are first-responsible for it."
            )
        },
        barred=_first_responsible_holds_it,
    ),
    "resolve": Transition(
        "resolve",
        frozenset({CaseStatus.ASSIGNED, CaseStatus.ACCEPTED}),
        holds_case,
        N_("Only the department holding the case can resolve it"),
        barred=_parts_still_out,
    ),
    "triage": Transition(
        "triage",
        frozenset({CaseStatus.TRIAGE, CaseStatus.OPEN}),
        _desk,
        N_("Only the dispatch desk triages cases"),
    ),
    # The operator's write-up of the call they took; a report the caller made before asking
    # for a person may have been routed by the machine meanwhile (assigned, not yet accepted):
    # the operator, who has heard the caller, decides where it goes.
    "route_at_seat": Transition(
        "open",
        frozenset({CaseStatus.OPEN, CaseStatus.TRIAGE, CaseStatus.ASSIGNED}),
        _operator_on_the_call,
        N_("Only the operator who took the call opens its case"),
        barred=_written_up_already,
        on_case_page=False,
    ),
    "ruling": Transition(
        "rule on",
        frozenset({CaseStatus.SENT_BACK}),
        _desk,
        N_("Only the dispatch desk rules on send-backs"),
    ),
    "escalate": Transition(
        "escalate",
        frozenset(ACTIVE_STATUSES),
        _supervises,
        N_("Only the desk or a supervisor escalates"),
        needed=lambda case: case.escalated_at is None,
    ),
    "supervise": Transition(
        "supervise",
        frozenset(ACTIVE_STATUSES),
        _supervises,
        N_("Only the desk or a supervisor issues supervision notices"),
    ),
    "rate": Transition("rate", frozenset({CaseStatus.RESOLVED}), None),
    # 并单 by hand (cases.merging): the desk joins a case to another about the same problem, or
    # undoes a join the machine (or the desk) got wrong.
    "merge": Transition(
        "merge",
        frozenset(ACTIVE_STATUSES) - {CaseStatus.OPEN},
        _desk,
        N_("Only the dispatch desk merges cases"),
    ),
    "split": Transition(
        "split",
        frozenset({CaseStatus.MERGED}),
        _desk,
        N_("Only the dispatch desk splits a merged report off"),
    ),
    # 诉求内容: the desk writes the problem up (or corrects it) while listening to the call,
    # for as long as anyone still works the case.
    "work_order": Transition(
        "write the work order of",
        frozenset({*ACTIVE_STATUSES, CaseStatus.RESOLVED}),
        _desk,
        N_("Only the dispatch desk writes a case's work order"),
    ),
    # 延期申请: the holding department asks for a later deadline, once at a time; the desk
    # approves or refuses it.
    "request_extension": Transition(
        "ask for more time on",
        frozenset({CaseStatus.ASSIGNED, CaseStatus.ACCEPTED}),
        holds_case,
        N_("Only the department holding the case asks for more time"),
        needed=lambda case: case.extension_until is None and case.deadline_at is not None,
    ),
    "decide_extension": Transition(
        "rule on the request for more time on",
        frozenset({CaseStatus.ASSIGNED, CaseStatus.ACCEPTED}),
        _desk,
        N_("Only the dispatch desk rules on a request for more time"),
        needed=lambda case: case.extension_until is not None,
    ),
    # 直接答复: a question the desk answers itself in its own words (no article needed), while
    # the case is still with it: resolved, the caller texted the answer and asked to rate it.
    "answer_by_desk": Transition(
        "answer",
        frozenset({CaseStatus.OPEN, CaseStatus.TRIAGE}),
        _desk,
        N_("Only the dispatch desk answers a case itself"),
    ),
    # 主办/协办: the desk asks another department to assist the holder with its own part; each
    # assisting department replies for its part; the holder resolves once every part is in.
    "add_assist": Transition(
        "ask a department to assist with",
        frozenset({CaseStatus.ASSIGNED, CaseStatus.ACCEPTED}),
        _desk,
        N_("Only the dispatch desk asks a department to assist with a case"),
    ),
    "assist_reply": Transition(
        "reply for an assisting department's part of",
        frozenset({CaseStatus.ASSIGNED, CaseStatus.ACCEPTED}),
        lambda actor, case: _assist_of(actor, case) is not None,
        N_("Only a department asked to assist with the case replies for its part"),
        needed=lambda case: any(assist.replied_at is None for assist in case.assists),
    ),
    # 回拨: the desk asks for the caller to be called back about the case (cases.callbacks), at
    # any point of its life (a question before dispatch, a follow-up after the reply). One
    # task per number, which an operator takes from their seat.
    "call_back": Transition(
        "ask for a call back about",
        frozenset(CaseStatus),
        _supervises,
        N_("Only the desk or a supervisor asks for a call back"),
        needed=lambda case: bool(case.caller_number),
    ),
    # 当即解答: a consultation answered from the knowledge base, in the call (by the system) or
    # by the desk, is closed at once (cases.knowledge_links). Offered as a button only once an
    # article is attached to the case: that is the answer it would give.
    "answer_at_once": Transition(
        "answer at once",
        frozenset({CaseStatus.OPEN, CaseStatus.TRIAGE, CaseStatus.ASSIGNED}),
        _desk,
        N_("Only the dispatch desk answers a case at once"),
        needed=lambda case: case.article_id is not None,
    ),
}


def allowed_actions(actor: Actor, case: Case) -> frozenset[str]:
    """The actions the actor may take on the case now: the case page's buttons."""
    return frozenset(
        name
        for name, transition in TRANSITIONS.items()
        if transition.who is not None
        and transition.on_case_page
        and transition.who(actor, case)
        and case.status in transition.statuses
        and transition.needed(case)
        and transition.barred(case) is None
    )


def check_actor(action: str, *, actor: Actor, case: Case) -> None:
    """NotAllowedError, with the action's refusal, unless the actor may take it on the case."""
    who = TRANSITIONS[action].who
    if who is None or not who(actor, case):
        raise NotAllowedError(TRANSITIONS[action].refusal or f"staff cannot {action} a case")


def check_status(action: str, *, case: Case) -> None:
    """InvalidTransitionError unless the case is in a status the action is taken from, and no
    rule of its history bars the action."""
    transition = TRANSITIONS[action]
    if case.status not in transition.statuses:
        raise InvalidTransitionError(
            transition.verb,
            str(case.status),
            reason=transition.refusals_by_status.get(CaseStatus(case.status)),
        )
    barred = transition.barred(case)
    if barred is not None:
        raise InvalidTransitionError(transition.verb, str(case.status), reason=barred)


def _text(value: str | None, what: str) -> str:
    # Whatever edge the text came in by, nothing the free-text rule refuses is stored.
    return PROSE.clean(value, field=what)


def _department(session: Session, code: str | None, *, what: str = "department") -> Department:
    department = session.get(Department, code) if code else None
    if department is None:
        raise InvalidInputError(f"unknown {what} {code!r}")
    return department


def assign_case(
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


def flag_for_review(session: Session, *, case: Case, reason: str) -> None:
    """Send the case to the dispatch desk for a person to look at; it is never dropped."""
    case.needs_review = True
    case.review_reason = reason if not case.review_reason else f"{case.review_reason}; {reason}"
    if case.status == CaseStatus.OPEN:
        case.status = CaseStatus.TRIAGE
        case.department_code = DISPATCH_DESK
    add_event(session, case=case, kind="flagged_for_review", reason=reason)


def deliver_routed_case(session: Session, *, case: Case) -> None:
    """After routing: push the case to its department (or the desk) and copy pressing matters
    to leadership. Safe to call twice: the outbox topics make a repeat a no-op."""
    if (
        case.department_code is None
        or case.assigned_at is not None
        or case.status == CaseStatus.MERGED  # its department has the case it joined
    ):
        return
    case.assigned_at = utcnow()
    outbox.push_case(session, case=case, department_code=case.department_code, topic="assigned")
    if case.urgency in PRESSING_URGENCIES and not case.major:
        case.major = True
        add_event(session, case=case, kind="copied_to_leadership", urgency=case.urgency)
        outbox.push_case(session, case=case, department_code=LEADERSHIP, topic="copy")


def accept(session: Session, *, case: Case, actor: Actor) -> Case:
    """The department in charge takes the case and becomes first-responsible for it."""
    check_actor("accept", actor=actor, case=case)
    if case.status == CaseStatus.ACCEPTED:
        return case  # a repeated accept (a retried API call) changes nothing
    check_status("accept", case=case)
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


def write_work_order(session: Session, *, case: Case, actor: Actor, text: str) -> Case:
    """The desk writes the case's work order (诉求内容), or corrects it: the timeline keeps
    what it said before. The same text again changes nothing (a resubmitted form)."""
    check_actor("work_order", actor=actor, case=case)
    check_status("work_order", case=case)
    written = _text(text, "work_order")
    if written == case.work_order:
        return case
    add_event(
        session,
        case=case,
        kind="work_order_written",
        actor=actor.name,
        work_order=written,
        before=case.work_order,
    )
    case.work_order = written
    return case


def request_extension(
    session: Session, *, case: Case, actor: Actor, until: datetime, reason: str
) -> Case:
    """延期申请: the holding department asks for the deadline to move to `until`, saying why.
    The deadline stands until the desk approves; one request waits at a time."""
    check_actor("request_extension", actor=actor, case=case)
    check_status("request_extension", case=case)
    if case.extension_until is not None:
        raise InvalidInputError(N_("A request for more time is already waiting for the desk."))
    if case.deadline_at is None or until <= case.deadline_at:
        raise InvalidInputError(N_("The new deadline must be later than the current one."))
    case.extension_until, case.extension_reason = until, _text(reason, "reason")
    add_event(
        session,
        case=case,
        kind="extension_requested",
        actor=actor.name,
        department=case.department_code,
        until=until.isoformat(),
        previous_deadline=case.deadline_at.isoformat(),
        reason=case.extension_reason,
    )
    return case


def decide_extension(
    session: Session, *, case: Case, actor: Actor, approve: bool, note: str | None
) -> Case:
    """The desk's ruling on a request for more time: approved, the deadline moves and the
    light starts green again; refused, the deadline stands. Either way the request is done."""
    check_actor("decide_extension", actor=actor, case=case)
    check_status("decide_extension", case=case)
    until = case.extension_until
    if until is None:
        raise InvalidInputError(N_("No request for more time is waiting."))
    note_text = PROSE.clean(note, field="note", required=False)
    add_event(
        session,
        case=case,
        kind="extension_approved" if approve else "extension_refused",
        actor=actor.name,
        department=case.department_code,
        until=until.isoformat(),
        previous_deadline=case.deadline_at.isoformat() if case.deadline_at else None,
        note=note_text or None,
    )
    if approve:
        case.deadline_at = until
        case.light = Light.GREEN
        case.reminded_at = None
    case.extension_until = case.extension_reason = None
    return case


def add_note(session: Session, *, case: Case, actor: Actor, text: str) -> Case:
    """Add a working note to the case's timeline (those working the case only)."""
    check_actor("note", actor=actor, case=case)
    add_event(session, case=case, kind="note", actor=actor.name, text=_text(text, "note"))
    return case


def transfer(
    session: Session, *, case: Case, actor: Actor, department_code: str, reason: str
) -> Case:
    """Hand the case to another department; the first-responsible one stays so until it
    accepts."""
    check_actor("transfer", actor=actor, case=case)
    check_status("transfer", case=case)
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
    assign_case(session, case=case, department_code=target.code, deadline_at=deadline_at)
    case.assigned_at = assigned_at or case.assigned_at
    return case


def send_back(session: Session, *, case: Case, actor: Actor, reason: str) -> Case:
    """Return an unaccepted case to the dispatch desk (退单) with the reason it is not ours."""
    check_actor("send_back", actor=actor, case=case)
    check_status("send_back", case=case)
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
    check_actor("ruling", actor=actor, case=case)
    check_status("ruling", case=case)
    ruling = _text(ruling, "ruling")
    target = _department(session, department_code)
    if target.code in (DISPATCH_DESK, LEADERSHIP):
        raise InvalidInputError("a ruling assigns the case to a handling department")
    if category_code is not None:
        get_category(session, category_code)
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
    assign_case(session, case=case, department_code=target.code, deadline_at=deadline_at)
    return case


def get_category(session: Session, code: str | None) -> Category:
    """The category with this code, or InvalidInputError."""
    category = session.get(Category, code) if code else None
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
    check_actor("triage", actor=actor, case=case)
    check_status("triage", case=case)
    note_text = PROSE.clean(note, field="note", required=False)
    target = _check_decision(
        session, category_code=category_code, department_code=department_code, urgency=urgency
    )
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
        note=note_text or None,
    )
    assign_case(session, case=case, department_code=target.code, deadline_at=deadline_at)
    _copy_pressing_to_leadership(session, case=case)
    return case


def _check_decision(
    session: Session, *, category_code: str, department_code: str, urgency: str
) -> Department:
    """A person's routing decision checked: a known category and urgency, and a department
    that handles cases (not leadership, not the desk itself)."""
    get_category(session, category_code)
    target = _department(session, department_code)
    if urgency not in ("normal", *PRESSING_URGENCIES):
        raise InvalidInputError(f"unknown urgency {urgency!r}")
    if target.code == LEADERSHIP:
        raise InvalidInputError("leadership supervises cases; it does not handle them")
    if target.code == DISPATCH_DESK:
        # Assigning to the desk would file the case as triage again (`_assign`): it would look
        # triaged and not be.
        raise InvalidInputError(
            N_(
                "The desk cannot triage a case to itself: "
                "choose the department that will handle it."
            )
        )
    return target


def _copy_pressing_to_leadership(session: Session, *, case: Case) -> None:
    if case.urgency in PRESSING_URGENCIES and not case.major:
        case.major = True
        outbox.push_case(session, case=case, department_code=LEADERSHIP, topic="copy")


def route_at_seat(
    session: Session,
    *,
    case: Case,
    actor: Actor,
    summary: str,
    category_code: str,
    department_code: str,
    urgency: str,
    deadline_at: datetime,
    place_code: str | None,
    suggestion: dict[str, object] | None = None,
) -> Case:
    """The operator who took the call writes the case up and sends it to its department; they
    are its owner, first-responsible for what the caller was told (首问负责)."""
    check_actor("route_at_seat", actor=actor, case=case)
    check_status("route_at_seat", case=case)
    summary_text = PROSE.clean(summary, field="summary")
    target = _check_decision(
        session, category_code=category_code, department_code=department_code, urgency=urgency
    )
    case.owner = actor.name
    case.work_order = summary_text
    case.category_code = category_code
    case.urgency = urgency
    case.place_code = place_code
    case.needs_review = False
    case.routed_at = case.routed_at or utcnow()
    add_event(
        session,
        case=case,
        kind="opened_at_seat",
        actor=actor.name,
        summary=summary_text,
        category=category_code,
        department=target.code,
        urgency=urgency,
        place=place_code,
        suggested=(suggestion or {}).get("category"),
    )
    assign_case(session, case=case, department_code=target.code, deadline_at=deadline_at)
    _copy_pressing_to_leadership(session, case=case)
    return case


def add_assist(
    session: Session, *, case: Case, actor: Actor, department_code: str, task: str
) -> CaseAssist:
    """协办: the desk asks another department to assist the holder (主办) with its own part,
    saying what; it is sent the case and sees it until the case is resolved."""
    check_actor("add_assist", actor=actor, case=case)
    check_status("add_assist", case=case)
    department = _department(session, department_code)
    if department.code in (case.department_code, DISPATCH_DESK, LEADERSHIP):
        raise InvalidInputError(N_("Choose a department other than the one holding the case."))
    if any(assist.department_code == department.code for assist in case.assists):
        raise InvalidInputError(N_("That department is already assisting with this case."))
    assist = CaseAssist(case=case, department_code=department.code, task=_text(task, "task"))
    session.add(assist)
    add_event(
        session,
        case=case,
        kind="assist_asked",
        actor=actor.name,
        department=department.code,
        task=assist.task,
    )
    outbox.push_case(session, case=case, department_code=department.code, topic="assist")
    return assist


def reply_for_assist(session: Session, *, case: Case, actor: Actor, reply: str) -> Case:
    """An assisting department's reply for its part (协办答复); once every part is in, the
    holder may resolve the case. Its part is replied once."""
    check_actor("assist_reply", actor=actor, case=case)
    check_status("assist_reply", case=case)
    assist = _assist_of(actor, case)
    assert assist is not None  # check_actor found it
    if assist.replied_at is not None:
        raise InvalidInputError(N_("Your department has replied for its part already."))
    assist.reply, assist.replied_at = _text(reply, "reply"), utcnow()
    add_event(
        session,
        case=case,
        kind="assist_replied",
        actor=actor.name,
        department=assist.department_code,
        reply=assist.reply,
    )
    return case


def answer_by_desk(session: Session, *, case: Case, actor: Actor, reply: str) -> Case:
    """The desk answers the case itself (a question it can answer, 直接答复) without sending it
    to a department: resolved by the desk, the caller is texted the answer and asked to rate
    it, as after any department's reply."""
    check_actor("answer_by_desk", actor=actor, case=case)
    check_status("answer_by_desk", case=case)
    reply = _text(reply, "reply")
    now = utcnow()
    case.status = CaseStatus.RESOLVED
    case.department_code = DISPATCH_DESK
    case.resolution = reply
    case.resolved_at = now
    case.needs_review = False
    # Answered: a transcript or a routing job that arrives later must not route it again.
    case.routed_at = case.routed_at or now
    add_event(
        session,
        case=case,
        kind="answered_by_desk",
        actor=actor.name,
        department=DISPATCH_DESK,
        reply=reply,
    )
    outbox.text_caller(session, case=case, message="resolved", reply=reply)
    tell_co_reporters(session, case=case, reply=reply)
    return case


def ask_for_call_back(session: Session, *, case: Case, actor: Actor) -> CallbackTask:
    """Have the case's caller called back about it (回拨): the task an operator takes from
    their seat. The timeline says so once, however often it is asked."""
    check_actor("call_back", actor=actor, case=case)
    check_status("call_back", case=case)
    task, added = callbacks.request_for_case(session, case=case)
    if added:
        add_event(
            session, case=case, kind="callback_requested", actor=actor.name, callback_task=task.id
        )
    return task


def resolve(session: Session, *, case: Case, actor: Actor, reply: str) -> Case:
    """The department's answer: the case is resolved and the caller is told and asked to rate."""
    check_actor("resolve", actor=actor, case=case)
    check_status("resolve", case=case)
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
    tell_co_reporters(session, case=case, reply=reply)
    return case


def tell_co_reporters(session: Session, *, case: Case, reply: str) -> None:
    """并单: each report merged into the case is resolved with it, and its reporter is told the
    outcome and asked to rate, as the case's first reporter is."""
    for report in case.co_reporters:
        if report.status != CaseStatus.MERGED:
            continue
        report.status = CaseStatus.RESOLVED
        report.resolution = reply
        report.resolved_at = case.resolved_at
        add_event(session, case=report, kind="resolved", actor="system", with_case=case.number)
        outbox.text_caller(session, case=report, message="resolved", reply=reply)


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
    check_status("rate", case=case)
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

    if case.merged_into is not None:
        _split_off_by_rating(session, case=case, score=score)
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
    assign_case(
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


def _split_off_by_rating(session: Session, *, case: Case, score: int) -> None:
    """A co-reporter (并单) who says the problem is not solved: their report leaves the case it
    joined and is reopened as a case of its own, to the department answerable for that case."""
    # Locked and read afresh: its count is rewritten from what is read.
    kept = session.scalars(
        select(Case)
        .where(Case.id == case.merged_into_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    kept.reporters = max(1, kept.reporters - 1)
    case.responsible_department_code = kept.responsible_department_code
    case.department_code = kept.department_code or case.department_code
    case.merged_into = None
    case.merged_at = None
    add_event(session, case=case, kind="split_from", actor="caller", case_number=kept.number)
    add_event(
        session,
        case=kept,
        kind="reporter_split",
        actor="caller",
        report=case.number,
        reporters=kept.reporters,
        score=score,
    )


def escalate(session: Session, *, case: Case, actor: Actor, reason: str) -> Case:
    """Escalate a case to leadership (督办): overdue, or a major matter."""
    check_actor("escalate", actor=actor, case=case)
    check_status("escalate", case=case)
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
    check_actor("supervise", actor=actor, case=case)
    check_status("supervise", case=case)
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
