"""Operator seats and the queue for a person: who is free, who waits, who is put through.

The queue itself is Twilio's (`<Enqueue>`): Twilio keeps its order and hands the
longest-waiting caller to whichever seat dials it (`<Dial><Queue>`). These rows are our own
record of it, written from Twilio's webhooks, and the one place that decides which seat rings:

- a caller joins (`join_queue`) or a seat becomes free: `seats_to_ring` pairs free seats with
  waiting callers, never ringing more seats than there are callers nobody is ringing for, and
  rings the seat that has been free longest first;
- the seat answers (`seat_answered`), Twilio dequeues the head of the queue and tells us who it
  was (`put_through`), they talk, the seat's Dial ends (`seat_call_ended`) and the seat wraps
  up for the configured time before it rings again;
- a caller who leaves without a person (`leave_queue`) gets an automatic wrap-up code and,
  when they hung up or asked for it, a callback task (`cases.callbacks`).

Every function is safe to call twice for the same webhook: Twilio retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases import callbacks, phones
from cases.access import Actor
from cases.errors import N_, InvalidInputError, NotAllowedError
from cases.models import (
    Case,
    QueueEntry,
    Role,
    Seat,
    SeatStatus,
    User,
    WrapUpCode,
    utcnow,
)

# Why a call wants a person: the keys stored on the entry (shown to the operator).
WHY_A_PERSON = (
    "asked",  # 0 at the greeting
    "report_then_person",  # 0 during the recording: the report is kept
    "menu_misses",  # keys that meant nothing, three times
    "not_emergency",  # said an emergency was not one
    "status_lookup",  # asked for a person while hearing a case's status
)
# What an operator may set their seat to; the queue moves it through the others.
OPERATOR_CHOICES = (
    SeatStatus.AVAILABLE,
    SeatStatus.BUSY,
    SeatStatus.ON_BREAK,
    SeatStatus.SIGNED_OUT,
)
# A seat in these states will take a call soon: a caller is worth queueing.
STAFFED = (SeatStatus.AVAILABLE, SeatStatus.OFFERED, SeatStatus.ON_CALL, SeatStatus.WRAP_UP)
# Wrap-up codes the operator picks (the others are the queue's own).
OPERATOR_WRAP_UPS = (
    WrapUpCode.ANSWERED,
    WrapUpCode.CASE_OPENED,
    WrapUpCode.TRANSFERRED,
    WrapUpCode.CALLBACK_NEEDED,
    WrapUpCode.NUISANCE,
    WrapUpCode.SILENT,
)
# Twilio's QueueResult values (its <Enqueue> action).
QUEUE_RESULTS = (
    "bridged",
    "bridging-in-process",
    "queue-full",
    "error",
    "hangup",
    "leave",
    "redirected",
    "system-error",
)


class SeatTelephony(Protocol):
    """What the console asks of the phone system after its transaction commits. The shell
    wires the IVR's implementation (`ivr.seat_calls`); each call only queues a job."""

    def ring_free_seats(self) -> None:
        """Offer waiting callers to free seats (after a seat became available)."""

    def call_back(self, attempt_id: int) -> None:
        """Place a callback attempt's call: the operator's phone first, then the citizen."""

    def text_case_number(self, case_id: int) -> None:
        """Text the caller the number of the case an operator opened."""

    def text_callback_given_up(self, task_id: int) -> None:
        """Tell a citizen the hotline could not reach them after its last attempt."""

    def transfer_to_emergency(self, *, call_sid: str, kind: str, locale: str) -> None:
        """Put the caller through to 110/119/120 (the operator's one-click transfer)."""


@dataclass(frozen=True)
class SeatRing:
    """A seat to ring now: which, the offer's number (so a late webhook of an older offer
    changes nothing), and the address Twilio dials."""

    seat_id: int
    offer: int
    address: str


def seat_of(session: Session, *, user_id: int) -> Seat | None:
    """The operator's seat, if they have taken one."""
    return session.scalars(select(Seat).where(Seat.user_id == user_id)).one_or_none()


def _address(raw: str, *, region: str) -> str:
    text = raw.strip()
    if text.lower().startswith("sip:"):
        if len(text) > 120 or " " in text or "@" not in text:
            raise InvalidInputError(N_("Give a SIP address such as sip:seat1@pbx.example.cn"))
        return text
    number = phones.to_e164(text, region=region)
    if number is None:
        raise InvalidInputError(N_("Give a phone number or a SIP address that rings you"))
    return number


def take_seat(session: Session, *, user: User, address: str, region: str) -> Seat:
    """Sit an operator at a seat with the phone that rings them (or change that phone)."""
    if user.role != Role.OPERATOR:
        raise NotAllowedError(N_("Only operators take a seat"))
    seat = seat_of(session, user_id=user.id)
    value = _address(address, region=region)
    if seat is None:
        seat = Seat(user=user, address=value, status=SeatStatus.SIGNED_OUT, status_since=utcnow())
        session.add(seat)
        session.flush()
    else:
        seat.address = value
    return seat


def _move(seat: Seat, status: SeatStatus, *, now: datetime | None = None) -> None:
    if seat.status != status:
        seat.status = status
        seat.status_since = now or utcnow()


def set_seat_status(session: Session, *, seat: Seat, status: SeatStatus) -> Seat:
    """The operator sets themselves available, busy, on a break or signed out. A seat that is
    ringing or on a call keeps that until the call ends."""
    if status not in OPERATOR_CHOICES:
        raise InvalidInputError(f"not a status an operator sets: {status!r}")
    if seat.status in (SeatStatus.OFFERED, SeatStatus.ON_CALL):
        raise NotAllowedError(N_("The seat is on a call: set your status when it ends"))
    if seat.status == SeatStatus.WRAP_UP and status == SeatStatus.AVAILABLE:
        seat.wrap_up_until = None
    _move(seat, status)
    return seat


def staffed_seats(session: Session) -> int:
    """How many seats will take a call soon (free, ringing, talking or wrapping up)."""
    return session.scalar(select(func.count(Seat.id)).where(Seat.status.in_(STAFFED))) or 0


def _entry(session: Session, call_sid: str) -> QueueEntry | None:
    return session.scalars(select(QueueEntry).where(QueueEntry.call_sid == call_sid)).one_or_none()


def join_queue(
    session: Session,
    *,
    call_sid: str,
    caller_number: str | None,
    locale: str,
    reason: str,
    case_id: int | None = None,
) -> QueueEntry:
    """Note a caller joining the queue for a person; a retried webhook finds the same entry."""
    if reason not in WHY_A_PERSON:
        raise InvalidInputError(f"unknown reason for a person: {reason!r}")
    entry = _entry(session, call_sid)
    if entry is None:
        entry = QueueEntry(
            call_sid=call_sid,
            caller_number=caller_number,
            locale=locale,
            reason=reason,
            case_id=case_id,
            enqueued_at=utcnow(),
        )
        session.add(entry)
        session.flush()
    return entry


def no_seat(
    session: Session,
    *,
    call_sid: str,
    caller_number: str | None,
    locale: str,
    reason: str,
    case_id: int | None = None,
) -> QueueEntry:
    """A caller who asked for a person when no seat was open (or after hours): counted as
    offered and not answered, never put in the queue."""
    entry = join_queue(
        session,
        call_sid=call_sid,
        caller_number=caller_number,
        locale=locale,
        reason=reason,
        case_id=case_id,
    )
    if entry.result is None:
        entry.result = "no_seat"
        entry.left_at = utcnow()
        entry.wait_seconds = 0
        entry.wrap_up = WrapUpCode.NO_OPERATOR
        entry.wrap_up_by = "queue"
        entry.wrap_up_at = entry.left_at
    return entry


def note_wait(
    session: Session, *, call_sid: str, position: int | None, queue_time: int | None
) -> QueueEntry | None:
    """Twilio asked the wait URL: remember the caller's place (for `queue show`)."""
    entry = _entry(session, call_sid)
    if entry is not None and entry.result is None and position is not None:
        entry.last_position = position
    return entry


def ask_to_leave(session: Session, *, call_sid: str, why: str) -> QueueEntry | None:
    """The caller is about to leave the queue for a reason only we know ("callback": they
    pressed 1; "limit": they waited too long): Twilio's QueueResult will only say `leave`."""
    entry = _entry(session, call_sid)
    if entry is not None and entry.result is None and entry.leave_reason is None:
        entry.leave_reason = why
    return entry


@dataclass(frozen=True)
class LeftQueue:
    """What leaving the queue meant for the caller: their entry, and whether they are to be
    called back (their task, when it was made now or before)."""

    entry: QueueEntry | None
    callback: callbacks.CallbackTaskLike | None


def leave_queue(
    session: Session, *, call_sid: str, result: str, queue_time: int | None
) -> LeftQueue:
    """Twilio's <Enqueue> action: the caller left the queue. A caller who hung up, asked for a
    callback, or was dropped by an error becomes a callback task; a repeat changes nothing."""
    entry = _entry(session, call_sid)
    if entry is None:
        return LeftQueue(entry=None, callback=None)
    if entry.result is None:
        now = utcnow()
        entry.result = result if result in QUEUE_RESULTS else "error"
        entry.left_at = now
        if queue_time is not None and entry.wait_seconds is None:
            entry.wait_seconds = queue_time
        if entry.answered_at is None:
            entry.wrap_up_by, entry.wrap_up_at = "queue", now
            if entry.result == "hangup":
                entry.wrap_up = WrapUpCode.ABANDONED
            elif entry.result == "leave" and entry.leave_reason == "callback":
                entry.wrap_up = WrapUpCode.CALLBACK_REQUESTED
            else:
                entry.wrap_up = WrapUpCode.NO_OPERATOR
    task = None
    if entry.answered_at is None and (
        entry.result in ("hangup", "queue-full", "error", "system-error")
        or entry.leave_reason == "callback"
    ):
        reason = {"hangup": "hung_up_in_queue"}.get(entry.result or "", "asked")
        if entry.result in ("queue-full", "error", "system-error"):
            reason = "queue_error"
        task = callbacks.request_callback(
            session,
            call_sid=call_sid,
            caller_number=entry.caller_number,
            locale=entry.locale,
            reason=reason,
            entry=entry,
        )
    return LeftQueue(entry=entry, callback=task)


def waiting(session: Session) -> list[QueueEntry]:
    """The callers waiting for a person now, longest-waiting first."""
    return list(
        session.scalars(
            select(QueueEntry)
            .where(QueueEntry.result.is_(None), QueueEntry.answered_at.is_(None))
            .order_by(QueueEntry.enqueued_at, QueueEntry.id)
        )
    )


def release_wrap_ups(session: Session, *, now: datetime) -> list[int]:
    """Seats whose wrap-up time is over are free again; their ids."""
    due = session.scalars(
        select(Seat).where(Seat.status == SeatStatus.WRAP_UP, Seat.wrap_up_until <= now)
    ).all()
    for seat in due:
        seat.wrap_up_until = None
        _move(seat, SeatStatus.AVAILABLE, now=now)
    return [seat.id for seat in due]


def seats_to_ring(session: Session, *, now: datetime | None = None) -> list[SeatRing]:
    """Pair free seats with waiting callers: the seats to ring now, marked as ringing.

    Twilio gives each answering seat the longest-waiting caller; we only decide how many seats
    to ring (never more than the callers no seat is already ringing for) and which: the one
    free longest. The seat rows are locked first, so two of these at once take turns.
    """
    now = now or utcnow()
    seats = session.scalars(select(Seat).order_by(Seat.id).with_for_update()).all()
    release_wrap_ups(session, now=now)
    waiting_count = len(waiting(session))
    ringing = sum(1 for seat in seats if seat.status == SeatStatus.OFFERED)
    free = sorted(
        (seat for seat in seats if seat.status == SeatStatus.AVAILABLE),
        key=lambda seat: (seat.status_since, seat.id),
    )
    rings = []
    for seat in free[: max(0, waiting_count - ringing)]:
        seat.offer += 1
        seat.seat_call_sid = None
        _move(seat, SeatStatus.OFFERED, now=now)
        rings.append(SeatRing(seat_id=seat.id, offer=seat.offer, address=seat.address))
    return rings


def _offered_seat(session: Session, seat_id: int, offer: int) -> Seat | None:
    seat = session.get(Seat, seat_id, with_for_update=True)
    return seat if seat is not None and seat.offer == offer else None


def seat_answered(session: Session, *, seat_id: int, offer: int, seat_call_sid: str) -> bool:
    """The seat's phone answered: whether a caller still waits for it (else the seat is free
    again and the call ends)."""
    seat = _offered_seat(session, seat_id, offer)
    if seat is None or seat.status != SeatStatus.OFFERED:
        return False
    seat.seat_call_sid = seat_call_sid
    if not waiting(session):
        _move(seat, SeatStatus.AVAILABLE)
        return False
    return True


def put_through(
    session: Session, *, caller_call_sid: str, seat_call_sid: str, queue_time: int | None
) -> QueueEntry | None:
    """Twilio took this caller off the queue for the seat whose call dequeued them (the
    <Queue> url request): the two are talking now."""
    entry = _entry(session, caller_call_sid)
    seat = session.scalars(
        select(Seat).where(Seat.seat_call_sid == seat_call_sid).with_for_update()
    ).one_or_none()
    if entry is None or seat is None:
        return entry
    if entry.answered_at is None:
        entry.answered_at = utcnow()
        entry.seat_id = seat.id
        entry.operator = seat.user.username
        if queue_time is not None:
            entry.wait_seconds = queue_time
    if seat.status == SeatStatus.OFFERED:
        seat.entry_id = entry.id
        _move(seat, SeatStatus.ON_CALL)
    return entry


def seat_call_ended(
    session: Session,
    *,
    seat_id: int,
    offer: int,
    dial_status: str | None,
    talked_seconds: int | None,
    wrap_up: timedelta,
) -> Seat | None:
    """The seat's call or its Dial ended. After a conversation the seat wraps up for the
    configured time; a seat that never got a caller is free again; one that did not answer
    rings nothing until its operator is back (`away`)."""
    seat = _offered_seat(session, seat_id, offer)
    if seat is None:
        return None
    now = utcnow()
    if seat.status == SeatStatus.ON_CALL:
        entry = seat.entry
        if entry is not None and entry.handled_seconds is None:
            entry.handled_seconds = talked_seconds or 0
        # An operator who picked the wrap-up code during the call is ready at once.
        if wrap_up > timedelta(0) and (entry is None or entry.wrap_up is None):
            seat.wrap_up_until = now + wrap_up
            _move(seat, SeatStatus.WRAP_UP, now=now)
        else:
            _move(seat, SeatStatus.AVAILABLE, now=now)
    elif seat.status == SeatStatus.OFFERED:
        unreached = dial_status in ("no-answer", "busy", "failed", "canceled")
        if unreached and seat.seat_call_sid is None:
            _move(seat, SeatStatus.AWAY, now=now)  # the operator's phone never answered
        else:
            _move(seat, SeatStatus.AVAILABLE, now=now)
    return seat


def current_entry(session: Session, *, seat: Seat) -> QueueEntry | None:
    """The call the seat is on, or the last one it took (to wrap up and open its case)."""
    if seat.entry_id is None:
        return None
    return session.get(QueueEntry, seat.entry_id)


def operator_entry(session: Session, *, actor: Actor, entry_id: int) -> QueueEntry:
    """An entry the operator took; anyone else's is refused as if it did not exist."""
    entry = session.get(QueueEntry, entry_id)
    if entry is None or entry.operator != actor.name:
        raise NotAllowedError(N_("That call was not put through to you"))
    return entry


def wrap_up(session: Session, *, entry: QueueEntry, actor: Actor, code: WrapUpCode) -> QueueEntry:
    """The operator's wrap-up code for the call they took; it ends their wrap-up time, and
    "callback needed" makes a callback task."""
    if code not in OPERATOR_WRAP_UPS:
        raise InvalidInputError(f"not an operator's wrap-up code: {code!r}")
    if entry.operator != actor.name:
        raise NotAllowedError(N_("That call was not put through to you"))
    entry.wrap_up, entry.wrap_up_by, entry.wrap_up_at = code, actor.name, utcnow()
    if code == WrapUpCode.CALLBACK_NEEDED:
        callbacks.request_callback(
            session,
            call_sid=entry.call_sid,
            caller_number=entry.caller_number,
            locale=entry.locale,
            reason="operator",
            entry=entry,
        )
    seat = entry.seat
    if seat is not None and seat.status == SeatStatus.WRAP_UP and seat.entry_id == entry.id:
        seat.wrap_up_until = None
        _move(seat, SeatStatus.AVAILABLE)
    return entry


def hear_live(
    session: Session, *, call_sid: str, text: str, emergency: dict[str, str] | None
) -> bool:
    """The words heard so far in a call put through to a person (the streams process writes
    them a few times a second); False if the call is not in the queue's records."""
    entry = _entry(session, call_sid)
    if entry is None:
        return False
    entry.live_text = text
    entry.live_updated_at = utcnow()
    if emergency is not None and entry.emergency is None:
        entry.emergency = emergency
    return True


def earlier_cases(session: Session, *, number: str | None, limit: int = 5) -> list[Case]:
    """The caller's earlier cases from the same number, newest first."""
    if not number:
        return []
    return list(
        session.scalars(
            select(Case)
            .where(Case.caller_number == number)
            .order_by(Case.opened_at.desc(), Case.id.desc())
            .limit(limit)
        )
    )


def seat_by_id(session: Session, *, seat_id: int) -> Seat | None:
    """A seat by its id."""
    return session.get(Seat, seat_id)


def leave_seat(session: Session, *, user_id: int) -> None:
    """An operator signing out of the console leaves their seat: it rings no more calls. A
    seat ringing or on a call is left to finish it (the operator is still on the phone)."""
    seat = seat_of(session, user_id=user_id)
    if seat is not None and seat.status not in (SeatStatus.OFFERED, SeatStatus.ON_CALL):
        seat.wrap_up_until = None
        _move(seat, SeatStatus.SIGNED_OUT)
