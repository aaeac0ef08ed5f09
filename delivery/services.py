"""The outbox rows' side of delivery: claim a try, look up what a sender needs, record the
outcome, and find rows whose job was lost. Explicit session, no commits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from cases import outbox
from cases.access import DISPATCH_DESK
from cases.lifecycle import flag_for_review
from cases.models import Category, Channel, Delivery, DeliveryStatus, Department
from cases.timeline import add_event
from delivery.messages import DeliveryConfig, Outgoing, next_attempt_at

# A row queued this long ago and never tried lost its job (a broker outage at the commit); one
# whose next try is this overdue lost its retry (a worker died holding it). The re-send job
# passes the configured figure (`JOBS_LOST_AFTER_SECONDS`).
NEVER_STARTED_AFTER = timedelta(minutes=2)


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
    # Departments read in Chinese (the e-mail and SMS are for people in the city).
    category_name = category.name("zh-CN") if category is not None else None
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
    add_event(
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
    add_event(session, case=case, kind="delivery_failed", **failed)
    flag_for_review(
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


def stalled_deliveries(
    session: Session,
    *,
    now: datetime,
    config: DeliveryConfig,
    lost_after: timedelta = NEVER_STARTED_AFTER,
) -> list[int]:
    """Pending rows whose job was lost: never tried `lost_after` after queueing, or that long
    past the time of their next try."""
    rows = session.execute(
        select(Delivery.id, Delivery.attempts, Delivery.last_attempt_at, Delivery.created_at).where(
            Delivery.status == DeliveryStatus.PENDING,
            or_(
                and_(
                    Delivery.last_attempt_at.is_(None),
                    Delivery.created_at < now - lost_after,
                ),
                Delivery.last_attempt_at < now - lost_after,
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
        <= now - lost_after
    ]
