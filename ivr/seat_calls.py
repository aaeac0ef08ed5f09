"""The calls the hotline places itself, through Twilio's REST API: ringing a free seat to put
the longest-waiting caller through, a callback (the operator first, then the citizen), and
an operator's one-click transfer to 110/119/120. Each is a job, queued after the request's
commit; `CeleryTelephony` is what the console is given to ask for them (`cases.seats
.SeatTelephony`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from celery import Task, shared_task
from twilio.base.exceptions import TwilioException

from cases import callbacks, seats
from cases.models import CallbackAttempt, CallbackTask
from delivery import tasks as delivery_tasks
from delivery.sms import twilio_client
from ivr.interrupt import EMERGENCY_STEP_PATH
from ivr.prompts import IVROptions

if TYPE_CHECKING:
    from twilio.rest import Client

    from hotline.wiring import Wiring

log = logging.getLogger("hotline.ivr.seats")


def wrap_up_time(options: IVROptions) -> timedelta:
    """How long a seat wraps up after a call before it rings again."""
    return timedelta(seconds=options.wrap_up_seconds)


def _client(wiring: Wiring) -> Client | None:
    """Twilio's REST client, or None without an account or a mock of its API (`make run`)."""
    settings = wiring.settings
    if not settings.sms_enabled:
        return None
    return twilio_client(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token,
        api_base_url=settings.twilio_api_base_url,
    )


def _send(task: Task, *args: object, countdown: float | None = None) -> None:
    # The broker being down must not fail the webhook: the beat's sweep rings seats again.
    try:
        task.apply_async(args=args, countdown=countdown)
    except Exception:
        log.exception("could not queue %s%r; the sweep will", task.name, args)


def enqueue_ring_free_seats(*, after: timedelta | None = None) -> None:
    """Queue the job that offers waiting callers to free seats (after a wrap-up, later)."""
    _send(ring_free_seats, countdown=after.total_seconds() if after else None)


def enqueue_callback_given_up_text(task_id: int) -> None:
    """Queue the text to a citizen the hotline could not reach after its last attempt."""
    _send(send_callback_given_up_text, task_id)


@shared_task(name="ivr.ring_free_seats", acks_late=True)  # type: ignore[untyped-decorator]
def ring_free_seats(wiring: Wiring) -> int:
    """Ring as many free seats as there are callers no seat is ringing for; each answering
    seat takes the longest-waiting caller. Also the beat's sweep: a wrap-up that ended, or a
    job a broker outage lost, rings seats here."""
    with wiring.database.session() as session, session.begin():
        rings = seats.seats_to_ring(session)
    if not rings:
        return 0
    client, flow = _client(wiring), wiring.call_flow
    for ring in rings:
        extra = {"seat_id": ring.seat_id, "offer": ring.offer}
        try:
            if client is None:
                raise TwilioException("no Twilio account or API configured")
            client.calls.create(
                to=ring.address,
                from_=wiring.settings.twilio_from_number,
                url=flow.url("/ivr/seat/answer", seat=ring.seat_id, offer=ring.offer),
                method="POST",
                status_callback=flow.url("/ivr/seat/status", seat=ring.seat_id, offer=ring.offer),
                status_callback_method="POST",
                timeout=flow.options.seat_ring_timeout,
            )
            log.info("seat rung to take a caller", extra=extra)
        except (TwilioException, OSError) as error:
            # The seat is set away (its operator sees why) and another one may take the caller.
            log.error("could not ring a seat: %s", error, extra=extra)
            with wiring.database.session() as session, session.begin():
                seats.seat_call_ended(
                    session,
                    seat_id=ring.seat_id,
                    offer=ring.offer,
                    dial_status="failed",
                    talked_seconds=None,
                    wrap_up=wrap_up_time(flow.options),
                )
    return len(rings)


@shared_task(name="ivr.place_callback", acks_late=True)  # type: ignore[untyped-decorator]
def place_callback(wiring: Wiring, attempt_id: int) -> str:
    """Ring the operator's seat; when they answer, `/ivr/callbacks/connect` dials the citizen."""
    with wiring.database.session() as session, session.begin():
        attempt = session.get(CallbackAttempt, attempt_id)
        if attempt is None or attempt.outcome is not None or attempt.seat_id is None:
            return "nothing to place"
        seat = seats.seat_by_id(session, seat_id=attempt.seat_id)
        address = seat.address if seat is not None else None
    client, flow = _client(wiring), wiring.call_flow
    try:
        if client is None or address is None:
            raise TwilioException("no Twilio account or API configured, or no seat phone")
        client.calls.create(
            to=address,
            from_=wiring.settings.twilio_from_number,
            url=flow.url("/ivr/callbacks/connect", attempt=attempt_id),
            method="POST",
            status_callback=flow.url("/ivr/callbacks/status", attempt=attempt_id),
            status_callback_method="POST",
            timeout=flow.options.seat_ring_timeout,
        )
    except (TwilioException, OSError) as error:
        log.error("could not place a callback: %s", error, extra={"attempt_id": attempt_id})
        with wiring.database.session() as session, session.begin():
            callbacks.finish_attempt(
                session,
                attempt_id=attempt_id,
                outcome=callbacks.OPERATOR_UNREACHED,
                talked_seconds=None,
            )
        return "failed"
    log.info("callback placed: ringing the operator", extra={"attempt_id": attempt_id})
    return "placed"


@shared_task(name="ivr.send_callback_given_up_text", acks_late=True)  # type: ignore[untyped-decorator]
def send_callback_given_up_text(wiring: Wiring, task_id: int) -> str:
    """Tell a citizen the hotline tried three times and could not reach them."""
    with wiring.database.session() as session, session.begin():
        task = session.get(CallbackTask, task_id)
        if task is None or task.status != "failed":
            return "nothing to send"
        to, locale = task.caller_number, task.locale
    _send(delivery_tasks.send_caller_text, to, locale, "callback_given_up")
    return "queued"


@shared_task(name="ivr.transfer_to_emergency", acks_late=True)  # type: ignore[untyped-decorator]
def transfer_to_emergency(wiring: Wiring, call_sid: str, kind: str, locale: str) -> str:
    """Take the caller out of the conversation to the emergency step, which puts them through
    to 110/119/120 and keeps their case (as when the emergency is heard during a report)."""
    client, flow = _client(wiring), wiring.call_flow
    if client is None or kind not in flow.options.emergency_numbers:
        log.error("cannot transfer to an emergency service", extra={"call_sid": call_sid})
        return "not transferred"
    url = flow.url(EMERGENCY_STEP_PATH, lang=locale, kind=kind)
    client.calls(call_sid).update(url=url, method="POST")
    log.warning("operator transferred the caller to %s", kind, extra={"call_sid": call_sid})
    return "transferred"


class CeleryTelephony:
    """`cases.seats.SeatTelephony` by Celery jobs: what the console asks after its commit."""

    def ring_free_seats(self) -> None:
        """Offer waiting callers to free seats."""
        enqueue_ring_free_seats()

    def call_back(self, attempt_id: int) -> None:
        """Place a callback attempt's call."""
        _send(place_callback, attempt_id)

    def text_case_number(self, case_id: int) -> None:
        """Text the caller the number of the case an operator opened."""
        _send(delivery_tasks.send_case_number_text, case_id)

    def text_callback_given_up(self, task_id: int) -> None:
        """Tell a citizen the hotline could not reach them."""
        enqueue_callback_given_up_text(task_id)

    def transfer_to_emergency(self, *, call_sid: str, kind: str, locale: str) -> None:
        """Put the caller through to 110/119/120."""
        _send(transfer_to_emergency, call_sid, kind, locale)
