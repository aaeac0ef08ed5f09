"""Jobs of the routing package: deliver outbox messages, re-send lost ones, sweep deadlines.

Delivery, one outbox row at a time (`routing.deliver`):
1. claim the row in a short transaction: a conditional UPDATE that bumps `attempts` only if no
   one else has since the job read it, so two workers never both send the same try;
2. send, outside any transaction (a slow receiver must not hold the database);
3. record the outcome in a second transaction: delivered; or a failed try, retried with
   exponential backoff until the row's retry window ends; or failed for good, which flags the
   case for the dispatch desk and pushes the desk an alert.

The beat jobs re-send rows a broker outage or a dead worker left pending, and run the deadline
sweep every minute.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Task, shared_task
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from cases import lifecycle, outbox, services
from cases.access import DISPATCH_DESK
from cases.database import Database
from cases.models import Category, Channel, Delivery, DeliveryStatus, Department, utcnow
from routing.delivery import (
    CallerTextRenderer,
    DeliveryConfig,
    DeliveryError,
    Outgoing,
    SmsSender,
    next_attempt_at,
    send,
)

log = logging.getLogger("hotline.delivery")

# A row queued this long ago and never tried lost its job (a broker outage at the commit).
NEVER_STARTED_AFTER = timedelta(minutes=2)
# A row whose next try is this overdue lost its retry (a worker died holding it).
STALLED_GRACE = timedelta(minutes=2)


@dataclass(frozen=True)
class DeliveryContext:
    """What the delivery jobs need, wired by the shell in each process that runs or sends them."""

    database: Database
    config: DeliveryConfig
    escalation_grace: timedelta
    render_caller_text: CallerTextRenderer
    # None when Twilio is not configured: texts are then written to the log.
    send_sms: SmsSender | None = None


_context: DeliveryContext | None = None


def configure(context: DeliveryContext) -> None:
    """Give the jobs their database, settings and senders (called by hotline at start-up)."""
    global _context
    _context = context


def current_context() -> DeliveryContext:
    """The wired context; jobs cannot run before the shell configured them."""
    if _context is None:
        raise RuntimeError("routing.tasks.configure() was not called: start through hotline")
    return _context


def enqueue_delivery(delivery_row_id: int) -> None:
    """Queue the send of an outbox row; with the broker down the caller goes on, and the
    re-send beat job picks the row up later."""
    try:
        deliver.delay(delivery_row_id)
    except Exception:
        log.exception(
            "could not enqueue delivery %s; the re-send job will retry",
            delivery_row_id,
            extra={"delivery_row_id": delivery_row_id},
        )


# --- Service functions on the outbox (explicit session, no commits) --------------------------


def _due_at(delivery: Delivery, config: DeliveryConfig) -> datetime:
    return next_attempt_at(
        attempts=delivery.attempts,
        last_attempt_at=delivery.last_attempt_at,
        created_at=delivery.created_at,
        backoff=config.backoff,
        retry_window=config.retry_window,
    )


def claim_delivery(
    session: Session,
    *,
    delivery_row_id: int,
    now: datetime,
    config: DeliveryConfig,
    after_attempt: int | None = None,
) -> Delivery | None:
    """Take the next try of a pending delivery; None if it is settled, not due, or another job
    took it first.

    `after_attempt` is the try the calling job chain made last: its scheduled retry goes ahead
    whatever the clock says. Any other message (the after-commit send, the re-send job, a
    broker's redelivery) goes ahead only once the try is due, so a stray duplicate cannot send
    while the chain's own try is in flight.
    """
    delivery = session.get(Delivery, delivery_row_id, populate_existing=True)
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return None
    scheduled_retry = after_attempt is not None and after_attempt == delivery.attempts
    if not scheduled_retry and now < _due_at(delivery, config):
        return None
    values: dict[str, Any] = {"attempts": Delivery.attempts + 1, "last_attempt_at": now}
    # An admin who corrects a department's wrong address rescues its pending deliveries.
    if delivery.recipient != outbox.CALLER:
        department = session.get(Department, delivery.recipient)
        current = department.channels().get(delivery.channel) if department else None
        if current and current != delivery.address:
            values["address"] = current
    claimed = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_row_id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.attempts == delivery.attempts,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        return None
    session.refresh(delivery)
    return delivery


def outgoing_for(session: Session, *, delivery: Delivery) -> Outgoing:
    """The claimed row as plain data for a sender, with the department's secret and the
    category's name looked up."""
    department = (
        session.get(Department, delivery.recipient) if delivery.recipient != outbox.CALLER else None
    )
    category = (
        session.get(Category, delivery.case.category_code) if delivery.case.category_code else None
    )
    category_name = None
    if category is not None:
        category_name = str(category.names.get("zh-CN") or category.code)
    return Outgoing(
        delivery_id=delivery.delivery_id,
        channel=Channel(delivery.channel),
        recipient=delivery.recipient,
        address=delivery.address,
        payload=dict(delivery.payload),
        attempt=delivery.attempts,
        webhook_secret=department.webhook_secret if department else None,
        category_name=category_name,
    )


def _settle(session: Session, *, delivery_row_id: int, **values: Any) -> Delivery | None:
    """Move a pending row on; None if it was not pending (another run settled it)."""
    result = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_row_id, Delivery.status == DeliveryStatus.PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    return session.get_one(Delivery, delivery_row_id, populate_existing=True)


def record_delivered(
    session: Session, *, delivery_row_id: int, receipt: str, now: datetime
) -> bool:
    """Mark the row delivered and note it on the case's timeline; False if already settled."""
    delivery = _settle(
        session,
        delivery_row_id=delivery_row_id,
        status=DeliveryStatus.DELIVERED,
        receipt=receipt,
        delivered_at=now,
        last_error=None,
    )
    if delivery is None:
        return False
    services.add_event(
        session,
        case=delivery.case,
        kind="delivered",
        delivery_id=delivery.delivery_id,
        recipient=delivery.recipient,
        channel=str(delivery.channel),
        topic=delivery.topic,
        attempts=delivery.attempts,
        receipt=receipt,
    )
    return True


def record_failed_try(session: Session, *, delivery_row_id: int, error: str) -> bool:
    """Keep the error of a try that will be retried; False if the row is settled."""
    return _settle(session, delivery_row_id=delivery_row_id, last_error=error) is not None


def give_up_delivery(session: Session, *, delivery_row_id: int, error: str) -> bool:
    """Fail the row for good: the case is flagged for the dispatch desk, and the desk gets a
    push about it (unless the failed push was the desk's own). False if already settled."""
    delivery = _settle(
        session, delivery_row_id=delivery_row_id, status=DeliveryStatus.FAILED, last_error=error
    )
    if delivery is None:
        return False
    case = delivery.case
    failed: dict[str, Any] = {
        "delivery_id": delivery.delivery_id,
        "recipient": delivery.recipient,
        "channel": str(delivery.channel),
        "topic": delivery.topic,
        "attempts": delivery.attempts,
        "error": error,
    }
    services.add_event(session, case=case, kind="delivery_failed", **failed)
    services.flag_for_review(
        session,
        case=case,
        reason=(
            f"{delivery.channel} delivery to {delivery.recipient} ({delivery.topic}) failed "
            f"after {delivery.attempts} tries: {error}"
        ),
    )
    if delivery.recipient != DISPATCH_DESK:
        outbox.push_case(
            session,
            case=case,
            department_code=DISPATCH_DESK,
            topic="delivery_failed",
            failed_delivery=failed,
        )
    return True


def stalled_deliveries(session: Session, *, now: datetime, config: DeliveryConfig) -> list[int]:
    """Pending rows whose job was lost: never tried a while after queueing, or well past the
    time of their next try."""
    rows = session.execute(
        select(Delivery.id, Delivery.attempts, Delivery.last_attempt_at, Delivery.created_at).where(
            Delivery.status == DeliveryStatus.PENDING,
            or_(
                and_(
                    Delivery.last_attempt_at.is_(None),
                    Delivery.created_at < now - NEVER_STARTED_AFTER,
                ),
                Delivery.last_attempt_at < now - STALLED_GRACE,
            ),
        )
    ).all()
    # The backoff is an exponential the databases cannot all compute: filter here.
    return [
        row.id
        for row in rows
        if next_attempt_at(
            attempts=row.attempts,
            last_attempt_at=row.last_attempt_at,
            created_at=row.created_at,
            backoff=config.backoff,
            retry_window=config.retry_window,
        )
        <= now - STALLED_GRACE
    ]


# --- One try ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    """What one try did: "delivered", "retry" (in `retry_in` seconds), "failed", or "skipped"
    (settled already, not due, or taken by another job)."""

    outcome: str
    attempt: int = 0
    retry_in: float | None = None
    error: str | None = None


def attempt_delivery(
    delivery_row_id: int,
    *,
    context: DeliveryContext | None = None,
    after_attempt: int | None = None,
) -> AttemptResult:
    """Claim, send and record one try of an outbox row (the body of `routing.deliver`)."""
    ctx = context or current_context()
    config = ctx.config
    claimed_at = utcnow()
    with ctx.database.session() as session, session.begin():
        delivery = claim_delivery(
            session,
            delivery_row_id=delivery_row_id,
            now=claimed_at,
            config=config,
            after_attempt=after_attempt,
        )
        if delivery is None:
            return AttemptResult("skipped")
        outgoing = outgoing_for(session, delivery=delivery)
        created_at = delivery.created_at
    extra = {
        "case_number": outgoing.case_number,
        "delivery_id": outgoing.delivery_id,
        "channel": str(outgoing.channel),
        "recipient": outgoing.recipient,
        "attempt": outgoing.attempt,
    }

    try:
        receipt = send(
            outgoing,
            config=config,
            render_caller_text=ctx.render_caller_text,
            send_sms=ctx.send_sms,
        )
    except Exception as exc:
        # A bug in a sender must not lose the message either: it is retried like a busy
        # receiver, and after the window the desk hears of it.
        if isinstance(exc, DeliveryError):
            error = exc
        else:
            log.exception("sender crashed", extra=extra)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
        return _after_failure(ctx, delivery_row_id, error, created_at, claimed_at, extra)

    with ctx.database.session() as session, session.begin():
        recorded = record_delivered(
            session, delivery_row_id=delivery_row_id, receipt=receipt, now=utcnow()
        )
    log.info("delivered (%s)" if recorded else "delivered again (%s)", receipt, extra=extra)
    return AttemptResult("delivered", attempt=outgoing.attempt)


def _after_failure(
    ctx: DeliveryContext,
    delivery_row_id: int,
    error: DeliveryError,
    created_at: datetime,
    claimed_at: datetime,
    extra: dict[str, Any],
) -> AttemptResult:
    config = ctx.config
    attempt = int(extra["attempt"])
    failed_at = utcnow()
    final = error.permanent or failed_at >= created_at + config.retry_window
    # Department staff read the error on the case: a provider's message may quote the number.
    reason = outbox.hide_phone_numbers(str(error))
    with ctx.database.session() as session, session.begin():
        if final:
            give_up_delivery(session, delivery_row_id=delivery_row_id, error=reason)
        else:
            record_failed_try(session, delivery_row_id=delivery_row_id, error=reason)
    if final:
        log.error(
            "delivery failed for good (%s); the dispatch desk is alerted",
            error,
            extra={**extra, "permanent": error.permanent},
        )
        return AttemptResult("failed", attempt=attempt, error=reason)
    retry_at = next_attempt_at(
        attempts=attempt,
        last_attempt_at=claimed_at,
        created_at=created_at,
        backoff=config.backoff,
        retry_window=config.retry_window,
    )
    retry_in = max((retry_at - failed_at).total_seconds(), 0.0)
    log.warning("delivery failed (%s); retrying in %.1f s", error, retry_in, extra=extra)
    return AttemptResult("retry", attempt=attempt, retry_in=retry_in, error=reason)


# --- Jobs --------------------------------------------------------------------------------------


@shared_task(bind=True, name="routing.deliver", max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def deliver(self: Task, delivery_row_id: int, after_attempt: int | None = None) -> str:
    """Send one outbox row; retried with exponential backoff until its window ends."""
    result = attempt_delivery(delivery_row_id, after_attempt=after_attempt)
    if result.retry_in is not None:
        # The retry carries the try it follows, so it is recognised as this chain's own.
        raise self.retry(countdown=result.retry_in, kwargs={"after_attempt": result.attempt})
    return result.outcome


@shared_task(name="routing.resend_pending_deliveries")  # type: ignore[untyped-decorator]
def resend_pending_deliveries() -> int:
    """Beat job: queue again the deliveries a broker outage or a dead worker left behind."""
    ctx = current_context()
    with ctx.database.session() as session, session.begin():
        stalled = stalled_deliveries(session, now=utcnow(), config=ctx.config)
    for delivery_row_id in stalled:
        enqueue_delivery(delivery_row_id)
    if stalled:
        log.warning("re-sent %d stalled deliveries", len(stalled))
    return len(stalled)


@shared_task(name="routing.sweep_deadlines")  # type: ignore[untyped-decorator]
def sweep_deadlines() -> dict[str, list[str]]:
    """Beat job, every minute: lights, overdue reminders and escalations to leadership."""
    ctx = current_context()
    with ctx.database.session() as session, session.begin():
        result = lifecycle.sweep_deadlines(
            session, now=utcnow(), escalation_grace=ctx.escalation_grace
        )
    for kind, numbers in asdict(result).items():
        for number in numbers:
            log.info("deadline sweep: %s", kind, extra={"case_number": number})
    return asdict(result)
