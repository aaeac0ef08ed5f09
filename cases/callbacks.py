"""Callbacks: a caller who asked for a person and reached none is called back (12345's rule).

A task is made when a caller hangs up in the queue, presses 1 to be called back, finds no seat
open, when an operator's wrap-up says a callback is needed, or when the desk asks for one from a
case's page (the task then keeps the case, for the operator to read). One open task per number: a
caller who tries three times is called back once. An operator's "call back" rings the operator
first, then the citizen; each attempt is kept with its outcome, and after the third failed one
the task is closed and the citizen is sent a text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from cases.errors import N_, NotAllowedError
from cases.models import CallbackAttempt, CallbackTask, SeatStatus, utcnow

if TYPE_CHECKING:
    from cases.models import Case, QueueEntry, Seat

MAX_ATTEMPTS = 3
# Why a callback is owed (shown to operators, translated by the console).
CALLBACK_REASONS = (
    "hung_up_in_queue",
    "asked",
    "no_seat",
    "queue_error",
    "operator",
    "case",
)
# The citizen's DialCallStatus that counts as reached.
REACHED = "completed"
# The operator's own phone did not answer: not the citizen's failure, so it does not count.
OPERATOR_UNREACHED = "operator-unreached"


class CallbackTaskLike(Protocol):
    """What a caller of `leave_queue` reads of a task."""

    id: int
    caller_number: str


def request_callback(
    session: Session,
    *,
    call_sid: str | None,
    caller_number: str | None,
    locale: str,
    reason: str,
    entry: QueueEntry | None = None,
) -> CallbackTask | None:
    """A callback task for this caller: the open one for their number if there is one (a
    caller who tries three times is called back once), else a new one. None without a number
    to call (a withheld caller ID)."""
    if not caller_number:
        return None
    if call_sid is not None:
        same_call = session.scalars(
            select(CallbackTask).where(CallbackTask.call_sid == call_sid)
        ).one_or_none()
        if same_call is not None:
            return same_call  # a retried webhook
    open_task = open_task_for(session, caller_number)
    if open_task is not None:
        return open_task
    task = CallbackTask(
        caller_number=caller_number,
        locale=locale,
        reason=reason if reason in CALLBACK_REASONS else "asked",
        call_sid=call_sid,
        entry_id=entry.id if entry is not None else None,
        created_at=utcnow(),
    )
    session.add(task)
    session.flush()
    return task


def open_task_for(session: Session, caller_number: str) -> CallbackTask | None:
    """The number's open callback task, if it has one (it has at most one)."""
    return session.scalars(
        select(CallbackTask).where(
            CallbackTask.caller_number == caller_number, CallbackTask.status == "open"
        )
    ).first()


def request_for_case(session: Session, *, case: Case) -> tuple[CallbackTask, bool]:
    """A callback to the case's caller, about the case: the number's open task if it has one
    (the operator calls once, and reads this case on it unless it is about another), else a new
    one. Whether the case was newly put on a task: asking twice changes nothing."""
    if not case.caller_number:
        raise NotAllowedError(N_("This case has no phone number to call back"))
    task = open_task_for(session, case.caller_number)
    if task is None:
        task = CallbackTask(
            caller_number=case.caller_number,
            locale=case.locale,
            reason="case",
            case_id=case.id,
            created_at=utcnow(),
        )
        session.add(task)
        session.flush()
        return task, True
    if task.case_id is not None:
        return task, False
    task.case_id = case.id
    return task, True


def task_of_case(session: Session, *, case: Case) -> CallbackTask | None:
    """The callback the case page shows: its caller's open task, else the last task made
    about the case (done, given up or withdrawn), else None."""
    if case.caller_number:
        open_task = open_task_for(session, case.caller_number)
        if open_task is not None:
            return open_task
    return session.scalars(
        select(CallbackTask)
        .where(CallbackTask.case_id == case.id)
        .order_by(CallbackTask.id.desc())
        .limit(1)
    ).first()


def withdraw(session: Session, *, call_sid: str) -> None:
    """The caller chose to record a report instead of waiting for a callback: the task this
    call made, not yet tried, is withdrawn (the report is the follow-up now)."""
    task = session.scalars(
        select(CallbackTask).where(CallbackTask.call_sid == call_sid)
    ).one_or_none()
    if task is not None and task.status == "open" and task.attempts == 0:
        task.status, task.closed_at = "withdrawn", utcnow()


def open_callbacks(session: Session) -> list[CallbackTask]:
    """Open callback tasks, oldest first."""
    return list(
        session.scalars(
            select(CallbackTask)
            .where(CallbackTask.status == "open")
            .order_by(CallbackTask.created_at, CallbackTask.id)
            .options(selectinload(CallbackTask.case))
        )
    )


def attempt_under_way(task: CallbackTask) -> CallbackAttempt | None:
    """The attempt still ringing or talking, if any."""
    return next((a for a in task.attempt_rows if a.outcome is None), None)


def start_attempt(
    session: Session, *, task_id: int, operator: str, seat: Seat | None
) -> CallbackAttempt:
    """An operator calls the citizen back: a new attempt (the call is placed after commit)."""
    task = session.get(CallbackTask, task_id, with_for_update=True)
    if task is None or task.status != "open":
        raise NotAllowedError(N_("This callback is already done"))
    if seat is not None:
        if seat.status in (SeatStatus.OFFERED, SeatStatus.ON_CALL):
            raise NotAllowedError(N_("Finish the call you are on before calling back"))
        if seat.status == SeatStatus.AVAILABLE:
            # Calling back, the operator takes no queued caller: busy until they are free.
            seat.status, seat.status_since = SeatStatus.BUSY, utcnow()
    if attempt_under_way(task) is not None:
        raise NotAllowedError(N_("Someone is calling this citizen back already"))
    task.attempts += 1
    attempt = CallbackAttempt(
        task=task, number=task.attempts, operator=operator, seat_id=seat.id if seat else None
    )
    session.add(attempt)
    session.flush()
    return attempt


def failed_attempts(task: CallbackTask) -> int:
    """Attempts that rang the citizen and did not reach them."""
    return sum(
        1
        for attempt in task.attempt_rows
        if attempt.outcome not in (None, REACHED, OPERATOR_UNREACHED)
    )


@dataclass(frozen=True)
class AttemptResult:
    """How an attempt ended for its task: done, given up (text the citizen), or still open."""

    task: CallbackTask
    attempt: CallbackAttempt
    gave_up: bool


def finish_attempt(
    session: Session, *, attempt_id: int, outcome: str, talked_seconds: int | None
) -> AttemptResult | None:
    """The attempt's outcome: reached closes the task; the third failure closes it too and
    asks for the citizen to be texted (`gave_up`). A repeat changes nothing."""
    attempt = session.get(CallbackAttempt, attempt_id, with_for_update=True)
    if attempt is None:
        return None
    task = attempt.task
    if attempt.outcome is not None:
        return AttemptResult(task=task, attempt=attempt, gave_up=False)
    now = utcnow()
    attempt.outcome, attempt.ended_at = outcome[:30], now
    attempt.talked_seconds = talked_seconds
    gave_up = False
    if outcome == REACHED:
        task.status, task.closed_at = "done", now
    elif failed_attempts(task) >= MAX_ATTEMPTS and task.status == "open":
        task.status, task.closed_at = "failed", now
        gave_up = True
    return AttemptResult(task=task, attempt=attempt, gave_up=gave_up)


def citizen_of_attempt(session: Session, *, attempt_id: int) -> str | None:
    """The number an attempt under way calls back; None once it has ended."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None or attempt.outcome is not None:
        return None
    return attempt.task.caller_number
