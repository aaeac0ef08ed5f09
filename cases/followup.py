"""The desk's follow-up of calls that ended without a report (`queries.unreported_calls`):
open a case for one, or mark it handled. Either takes the call off the list, once.

A case opened here goes to the desk's triage queue, as any case the machine could not
classify; the call's recording, if one was kept, goes with it, and the caller is texted the
number when their number is known. Service functions never commit.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cases import numbers, outbox, phones
from cases.access import DISPATCH_DESK, Actor, require
from cases.errors import N_, InvalidInputError
from cases.free_text import PROSE
from cases.models import Call, Case, CaseStatus, FollowUp, SmsStatus, utcnow
from cases.timeline import add_event

NOT_THE_DESK = N_("Only the dispatch desk follows up calls that ended without a report.")
ALREADY_FOLLOWED_UP = N_("Someone at the desk has already followed up this call.")


def _claim(session: Session, *, call_id: int, actor: Actor, follow_up: FollowUp) -> Call:
    """Take the call off the list for this follow-up; refused if another got there first
    (two dispatchers, or a form sent twice) or it already has a case."""
    require(actor.is_desk, NOT_THE_DESK)
    has_case = session.scalars(select(Case.id).where(Case.call_id == call_id)).first()
    claimed = session.execute(
        update(Call)
        .where(Call.id == call_id, Call.follow_up.is_(None), Call.ended_at.is_not(None))
        .values(follow_up=follow_up, followed_up_by=actor.name, followed_up_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if has_case is not None or getattr(claimed, "rowcount", 0) != 1:
        raise InvalidInputError(ALREADY_FOLLOWED_UP)
    return session.get_one(Call, call_id, populate_existing=True)


def mark_handled(session: Session, *, call_id: int, actor: Actor) -> Call:
    """Nothing to open (a wrong number, a caller already called back): off the list."""
    return _claim(session, call_id=call_id, actor=actor, follow_up=FollowUp.HANDLED)


def open_case(
    session: Session, *, call_id: int, actor: Actor, note: str | None, region: str, locale: str
) -> Case:
    """Open a case for the call, at the desk for triage, with the dispatcher's note of what the
    caller wanted; `locale` is used when the caller never chose one."""
    text = PROSE.clean(note, field="note", required=False)
    call = _claim(session, call_id=call_id, actor=actor, follow_up=FollowUp.CASE_OPENED)
    reachable = phones.to_e164(call.reachable_number, region=region)
    while True:
        number = numbers.new_case_number()
        if session.scalars(select(Case.id).where(Case.number == number)).first() is None:
            break
    case = Case(
        number=number,
        call=call,
        locale=call.locale or locale,
        caller_number=reachable,
        # Not the IVR's case-number text (a job of the call): the number goes by the outbox
        # below, whose delivery the case page shows.
        sms_status=SmsStatus.NONE,
        status=CaseStatus.TRIAGE,
        department_code=DISPATCH_DESK,
        needs_review=True,
        review_reason="opened by the desk from a call that ended without a report",
    )
    session.add(case)
    for recording in call.recordings:
        if recording.case_id is None:
            recording.case = case
    session.flush()
    add_event(
        session,
        case=case,
        kind="opened",
        actor=actor.name,
        call_sid=call.call_sid,
        from_unreported_call=True,
        ending=call.ending,
        note=text,
    )
    outbox.text_caller(session, case=case, message="case_opened")
    return case
