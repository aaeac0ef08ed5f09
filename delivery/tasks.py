"""Delivery jobs: send each outbox row, re-send what was lost, text the caller their number.

One outbox row at a time (`delivery.deliver`):
1. claim the row in a short transaction: a conditional UPDATE that bumps `attempts` only if no
   one else has since the job read it, so two workers never both send the same try;
2. send, outside any transaction (a slow receiver must not hold the database);
3. record the outcome in a second transaction: delivered; or a failed try, retried with
   exponential backoff until the row's retry window ends; or failed for good, which flags the
   case for the dispatch desk and pushes the desk an alert.

Jobs are given the shell's `Wiring` as their first argument (`hotline.celery_app.WiredTask`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from celery import Task, shared_task
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import intake, texts
from cases.models import Case, Channel, DeliveryStatus, SmsStatus, utcnow
from cases.privacy import hide_phone_numbers, mask_number
from delivery.channels import Senders, send
from delivery.messages import DeliveryConfig, DeliveryError, next_attempt_at
from delivery.services import (
    claim_delivery,
    give_up_delivery,
    outgoing_for,
    record_delivered,
    record_failed_try,
    stalled_deliveries,
)

if TYPE_CHECKING:
    from hotline.wiring import Wiring

log = logging.getLogger("hotline.delivery")

Sessions = Callable[[], Session]
"""Opens a session (the database's sessionmaker): jobs own their transactions."""


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


@dataclass(frozen=True)
class AttemptResult:
    """What one try did: "delivered", "retry" (in `retry_in` seconds), "failed", or "skipped"
    (settled already, not due, or taken by another job)."""

    outcome: str
    attempt: int = 0
    retry_in: float | None = None
    error: str | None = None


def attempt_delivery(
    sessions: Sessions,
    senders: Senders,
    delivery_row_id: int,
    *,
    after_attempt: int | None = None,
) -> AttemptResult:
    """Claim, send and record one try of an outbox row (the body of `delivery.deliver`)."""
    config = senders.config
    claimed_at = utcnow()
    with sessions() as session, session.begin():
        delivery = claim_delivery(
            session,
            delivery_row_id=delivery_row_id,
            now=claimed_at,
            config=config,
            after_attempt=after_attempt,
        )
        if delivery is None:
            return AttemptResult("skipped")
        if delivery.channel == Channel.CALLER_SMS and texts.opted_out(
            session, number=delivery.address
        ):
            # Texted STOP after this was queued: it is not sent (the carrier would refuse it).
            delivery.status = DeliveryStatus.WITHDRAWN
            delivery.last_error = "the caller texted STOP"
            return AttemptResult("withdrawn")
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
        receipt = send(outgoing, senders=senders)
    except Exception as exc:
        # A bug in a sender must not lose the message either: it is retried like a busy
        # receiver, and after the window the desk hears of it.
        if isinstance(exc, DeliveryError):
            error = exc
        else:
            log.exception("sender crashed", extra=extra)
            error = DeliveryError(f"{type(exc).__name__}: {exc}")
        return _after_failure(
            sessions, config, delivery_row_id, error, created_at, claimed_at, extra
        )

    with sessions() as session, session.begin():
        recorded = record_delivered(
            session, delivery_row_id=delivery_row_id, receipt=receipt, now=utcnow()
        )
    log.info("delivered (%s)" if recorded else "delivered again (%s)", receipt, extra=extra)
    return AttemptResult("delivered", attempt=outgoing.attempt)


def _after_failure(
    sessions: Sessions,
    config: DeliveryConfig,
    delivery_row_id: int,
    error: DeliveryError,
    created_at: datetime,
    claimed_at: datetime,
    extra: dict[str, Any],
) -> AttemptResult:
    attempt = int(extra["attempt"])
    failed_at = utcnow()
    final = error.permanent or failed_at >= created_at + config.retry_window
    # Department staff read the error on the case: a provider's message may quote the number.
    reason = hide_phone_numbers(str(error))
    with sessions() as session, session.begin():
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


@shared_task(bind=True, name="delivery.deliver", max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def deliver(
    self: Task, wiring: Wiring, delivery_row_id: int, after_attempt: int | None = None
) -> str:
    """Send one outbox row; retried with exponential backoff until its window ends."""
    result = attempt_delivery(
        wiring.database.sessions, wiring.senders, delivery_row_id, after_attempt=after_attempt
    )
    if result.retry_in is not None:
        # The retry carries the try it follows, so it is recognised as this chain's own.
        raise self.retry(countdown=result.retry_in, kwargs={"after_attempt": result.attempt})
    return result.outcome


@shared_task(name="delivery.resend_pending_deliveries")  # type: ignore[untyped-decorator]
def resend_pending_deliveries(wiring: Wiring) -> int:
    """Beat job: queue again the deliveries, and the callers' texts, that a broker outage or a
    dead worker left behind (the pending rows are the jobs' outbox)."""
    settings, now = wiring.settings, utcnow()
    with wiring.database.session() as session, session.begin():
        stalled = stalled_deliveries(
            session,
            now=now,
            config=wiring.senders.config,
            lost_after=timedelta(seconds=settings.jobs_lost_after_seconds),
        )
        # A text's retry chain is not claimed: wait until its longest chain would be over, so a
        # re-send never runs beside a live one and texts the caller twice.
        chain = _sms_chain_length(backoff=settings.sms_backoff, retries=settings.sms_retries)
        texts_before = now - chain - timedelta(seconds=settings.jobs_lost_after_seconds)
        untexted = session.scalars(
            select(Case.id).where(
                Case.sms_status == SmsStatus.PENDING,
                Case.caller_number.is_not(None),
                Case.opened_at < texts_before,
            )
        ).all()
    for delivery_row_id in stalled:
        enqueue_delivery(delivery_row_id)
    for case_id in untexted:
        try:
            send_case_number_text.delay(case_id)
        except Exception:
            log.exception("could not enqueue the text for case %s", case_id)
    if stalled or untexted:
        log.warning("re-sent %d stalled deliveries and %d texts", len(stalled), len(untexted))
    return len(stalled) + len(untexted)


def _sms_chain_length(*, backoff: float, retries: int) -> timedelta:
    """The longest a caller's text can take with all its retries (`send_case_number_text`),
    each try given half a minute."""
    waits = (min(backoff * 2**retry, 600.0) for retry in range(retries))
    return timedelta(seconds=sum(waits) + retries * 30.0)


@shared_task(bind=True, name="delivery.send_case_number_text", max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def send_case_number_text(self: Task, wiring: Wiring, case_id: int) -> str:
    """Text the caller their case number; a failure is retried and never touches the call."""
    settings, senders = wiring.settings, wiring.senders
    with wiring.database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        if case.sms_status != SmsStatus.PENDING or not case.caller_number:
            return str(case.sms_status)
        opted_out = texts.opted_out(session, number=case.caller_number)
        to, number = case.caller_number, case.number
        body = senders.render_caller_text(case.locale, "case_opened", {"number": number})

    if opted_out:
        log.info("the caller texted STOP: case number not texted", extra={"case_number": number})
        _record_text(wiring, case_id, SmsStatus.OPTED_OUT)
        return SmsStatus.OPTED_OUT
    if senders.send_sms is None:
        log.info(
            "SMS not configured; would send to %s: %s", to, body, extra={"case_number": number}
        )
        _record_text(wiring, case_id, SmsStatus.LOGGED)
        return SmsStatus.LOGGED
    try:
        message_sid = senders.send_sms(to, body)
    except DeliveryError as error:
        if error.permanent or self.request.retries >= settings.sms_retries:
            _record_text(wiring, case_id, SmsStatus.FAILED, error=hide_phone_numbers(str(error)))
            return SmsStatus.FAILED
        log.warning("SMS failed (%s); retrying", error, extra={"case_number": number})
        countdown = min(settings.sms_backoff * 2**self.request.retries, 600.0)
        raise self.retry(countdown=countdown) from error
    _record_text(wiring, case_id, SmsStatus.SENT, message_sid=message_sid)
    log.info("SMS sent", extra={"case_number": number, "message_sid": message_sid})
    return SmsStatus.SENT


def _record_text(
    wiring: Wiring,
    case_id: int,
    status: SmsStatus,
    *,
    message_sid: str | None = None,
    error: str | None = None,
) -> None:
    with wiring.database.session() as session, session.begin():
        case = session.get_one(Case, case_id)
        intake.record_sms_result(
            session, case=case, status=status, message_sid=message_sid, error=error
        )


@shared_task(bind=True, name="delivery.send_caller_text", max_retries=None, acks_late=True)  # type: ignore[untyped-decorator]
def send_caller_text(self: Task, wiring: Wiring, to: str, locale: str, message: str) -> str:
    """Text a caller one of the prompts' `sms_<message>` texts that belongs to no case (the
    callback given up); a failure is retried as the case-number text's is."""
    settings, senders = wiring.settings, wiring.senders
    body = senders.render_caller_text(locale, message, {})
    if senders.send_sms is None:
        log.info("SMS not configured; would text %s: %s", mask_number(to), body)
        return SmsStatus.LOGGED
    try:
        message_sid = senders.send_sms(to, body)
    except DeliveryError as error:
        if error.permanent or self.request.retries >= settings.sms_retries:
            log.error("caller text failed: %s", hide_phone_numbers(str(error)))
            return SmsStatus.FAILED
        countdown = min(settings.sms_backoff * 2**self.request.retries, 600.0)
        raise self.retry(countdown=countdown) from error
    log.info("caller text sent", extra={"message_sid": message_sid})
    return SmsStatus.SENT
