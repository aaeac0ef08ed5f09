"""The queue for a person: the caller's side (join, wait, leave) and the seats' side (the call
that rings an operator and takes the longest-waiting caller off the queue), and callbacks.

Twilio keeps the queue (`<Enqueue>`) and hands each answering seat its head (`<Dial><Queue>`);
`cases.seats` keeps our record of it and decides which seats ring. Every step is a Twilio
webhook, signed, and safe to receive twice.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, time

from flask import Blueprint, Response, request
from sqlalchemy import func, select
from twilio.twiml.voice_response import VoiceResponse

from cases import callbacks, intake, phones, queries, seats
from cases.intake import CallerInfo
from cases.models import CallbackTask, QueueEntry
from hotline.wiring import current_wiring, db
from ivr import menus, seat_calls
from ivr.prompts import CITY_TIMEZONE
from ivr.signatures import twilio_signed
from ivr.steps import caller_from_form, digits_from_form, int_arg, row_id_arg, seconds_param
from ivr.twiml import CallFlow, empty
from ivr.views import TWIML_CONTENT_TYPE, case_from_url

log = logging.getLogger("hotline.ivr.queue")
# Nested in `ivr.views.bp` (by the factory), whose /ivr prefix and error handlers it shares.
bp = Blueprint("queue", __name__)


def _twiml(response: VoiceResponse | str) -> Response:
    return Response(str(response), content_type=TWIML_CONTENT_TYPE)


def _flow() -> CallFlow:
    return current_wiring().call_flow


def _locale() -> str:
    return menus.locale_or_default(request.args.get("lang"), enabled=_flow().locales)


def within_operator_hours(hours: tuple[str, str], now: datetime) -> bool:
    """Whether operators answer at this moment (city time; "24:00" ends the day)."""
    local = now.astimezone(CITY_TIMEZONE).time()
    start, end = (
        time(23, 59, 59, 999999) if value == "24:00" else time.fromisoformat(value)
        for value in hours
    )
    return start <= local <= end


def _person_query(reason: str) -> dict[str, object]:
    """What the later steps need to know: the language, why, and the report if one was kept."""
    query: dict[str, object] = {"lang": _locale(), "why": reason}
    number, sms_follows = case_from_url()
    if number is not None:
        query.update(case=number, sms=int(sms_follows))
    return query


def _reason() -> str:
    reason = request.args.get("why", "asked")
    return reason if reason in seats.WHY_A_PERSON else "asked"


@bp.post("/person")
@twilio_signed
def person() -> Response:
    """The caller asked for a person (or the machine could not help): into the queue when a
    seat is open, else straight to the offer of a callback or a recording."""
    flow, locale, reason = _flow(), _locale(), _reason()
    caller = caller_from_form(request.form)
    region = current_wiring().settings.phone_default_region
    case_number, _ = case_from_url()
    open_now = within_operator_hours(flow.options.operator_hours, datetime.now(CITY_TIMEZONE))
    with db().begin():
        call = intake.record_call(db(), caller=caller)
        number = phones.to_e164(call.reachable_number, region=region)
        case = queries.find_case(db(), number=case_number) if case_number else None
        case_id = case.id if case is not None else None
        if not open_now or seats.staffed_seats(db()) == 0:
            seats.no_seat(
                db(),
                call_sid=caller.call_sid,
                caller_number=number,
                locale=locale,
                reason=reason,
                case_id=case_id,
            )
            # They reached nobody: called back, unless they choose to record a report now
            # (a caller who hangs up at the offer sends no answer at all).
            _owe_callback(caller, number, locale)
            log.info("a person asked for; no seat open", extra={"call_sid": caller.call_sid})
            before = None if open_now else "person_after_hours"
            return _twiml(_offer_or_record(caller.call_sid, number, before=before))
        seats.join_queue(
            db(),
            call_sid=caller.call_sid,
            caller_number=number,
            locale=locale,
            reason=reason,
            case_id=case_id,
        )
    seat_calls.enqueue_ring_free_seats()
    log.info("caller queued for a person", extra={"call_sid": caller.call_sid, "why": reason})
    return _twiml(flow.enqueue(locale, call_sid=caller.call_sid, query=_person_query(reason)))


def _offer_or_record(call_sid: str, number: str | None, *, before: str | None) -> VoiceResponse:
    """Nobody can take the call. With a number to call back: the offer of a callback or a
    recording. Without one: the report already kept is read back, or else the caller is
    recorded at once, since nobody could call them back."""
    flow, locale = _flow(), _locale()
    if number is not None:
        return flow.nobody_free(locale, before=before, query=_person_query(_reason()))
    case_number, sms_follows = case_from_url()
    if case_number is not None:
        return flow.case_opened(
            locale,
            case_number=case_number,
            sms_follows=sms_follows,
            before="operator_unavailable_report_kept",
        )
    return flow.record_report(
        locale, attempt=0, call_sid=call_sid, prompt_key="operator_unavailable"
    )


@bp.post("/person/offer")
@twilio_signed
def person_offer() -> Response:
    """The caller's answer to "no operator is free": 2 records a report now (or reads back
    the one already kept); 1, no key or anything else is a callback."""
    flow, locale = _flow(), _locale()
    caller = caller_from_form(request.form)
    number, sms_follows = case_from_url()
    if digits_from_form(request.form) == "2":
        with db().begin():
            callbacks.withdraw(db(), call_sid=caller.call_sid)
        if number is not None:
            return _twiml(
                flow.case_opened(
                    locale,
                    case_number=number,
                    sms_follows=sms_follows,
                    before="operator_unavailable_report_kept",
                )
            )
        return _twiml(flow.record_report(locale, attempt=0, call_sid=caller.call_sid))
    region = current_wiring().settings.phone_default_region
    with db().begin():
        call = intake.record_call(db(), caller=caller)
        task = _owe_callback(caller, phones.to_e164(call.reachable_number, region=region), locale)
    if task is None:
        return _twiml(_offer_or_record(caller.call_sid, None, before=None))
    return _twiml(flow.goodbye(locale, "queue_callback_confirmed"))


def _owe_callback(caller: CallerInfo, number: str | None, locale: str) -> CallbackTask | None:
    """A callback task for a caller who reached no person (None without their number)."""
    task = callbacks.request_callback(
        db(), call_sid=caller.call_sid, caller_number=number, locale=locale, reason="no_seat"
    )
    if task is not None:
        # On the operators' callback list, so not on the desk's list of lost calls.
        intake.mark_call_served(db(), caller=caller, how="callback")
    return task


def _expected_minutes(position: int) -> int:
    """Expected wait: the callers ahead times the average handling time, shared by the seats
    on duty (at least a minute; a promise of seconds is one we cannot keep)."""
    options = _flow().options
    recent = select(QueueEntry.handled_seconds).where(QueueEntry.handled_seconds.is_not(None))
    average = db().scalar(
        select(func.avg(recent.order_by(QueueEntry.id.desc()).limit(50).subquery().c[0]))
    )
    handling = float(average) if average else float(options.assumed_handling_seconds)
    staffed = max(1, seats.staffed_seats(db()))
    return max(1, math.ceil(position * handling / staffed / 60))


@bp.post("/queue/wait")
@twilio_signed
def queue_wait() -> Response:
    """Twilio's wait URL, every announcement period: the caller's place and expected wait;
    past the wait limit, or with every seat gone, out of the queue to the callback offer."""
    flow, locale = _flow(), _locale()
    caller = caller_from_form(request.form)
    position = int_arg(request.form, "QueuePosition", limit=10_000) or 1
    waited = seconds_param(request.form, "QueueTime") or 0
    with db().begin():
        entry = seats.note_wait(
            db(), call_sid=caller.call_sid, position=position, queue_time=waited
        )
        staffed = seats.staffed_seats(db())
        if waited >= flow.options.queue_wait_limit or staffed == 0:
            seats.ask_to_leave(db(), call_sid=caller.call_sid, why="limit")
            return _twiml(flow.leave_queue(locale, before="queue_waited_too_long"))
        minutes = _expected_minutes(position)
        callback_possible = entry is not None and entry.caller_number is not None
    return _twiml(
        flow.queue_wait(
            locale, position=position, minutes=minutes, callback_possible=callback_possible
        )
    )


@bp.post("/queue/key")
@twilio_signed
def queue_key() -> Response:
    """A key while waiting: 1 asks to be called back (when we have the caller's number)."""
    flow, locale = _flow(), _locale()
    caller = caller_from_form(request.form)
    if digits_from_form(request.form) != "1":
        return _twiml(flow.back_to_waiting(locale))
    with db().begin():
        entry = seats.ask_to_leave(db(), call_sid=caller.call_sid, why="callback")
        reachable = entry is not None and entry.caller_number is not None
    if not reachable:
        return _twiml(flow.back_to_waiting(locale, before="queue_no_number"))
    return _twiml(flow.leave_queue(locale))


@bp.post("/queue/left")
@twilio_signed
def queue_left() -> Response:
    """Twilio's <Enqueue> action: the caller left the queue. After a conversation, goodbye;
    asked for a callback, confirmed; hung up, a callback task (Twilio ignores the answer);
    waited too long or dropped by an error, the offer of a callback or a recording."""
    flow, locale = _flow(), _locale()
    caller = caller_from_form(request.form)
    result = request.form.get("QueueResult", "").strip()[:30] or "error"
    waited = seconds_param(request.form, "QueueTime")
    with db().begin():
        left = seats.leave_queue(db(), call_sid=caller.call_sid, result=result, queue_time=waited)
        entry = left.entry
        number = entry.caller_number if entry is not None else None
        answered = entry is not None and entry.answered_at is not None
        asked_callback = entry is not None and entry.leave_reason == "callback"
        if left.callback is not None:
            # On the operators' callback list, so not on the desk's list of lost calls.
            intake.mark_call_served(db(), caller=caller, how="callback")
    extra = {"call_sid": caller.call_sid, "queue_result": result, "waited": waited}
    log.info("caller left the queue", extra=extra)
    if result in ("bridged", "bridging-in-process") or answered:
        return _twiml(flow.goodbye(locale))
    if result == "hangup":
        return _twiml(empty())
    if asked_callback and left.callback is not None:
        return _twiml(flow.goodbye(locale, "queue_callback_confirmed"))
    return _twiml(_offer_or_record(caller.call_sid, number, before=None))


@bp.post("/queue/connecting")
@twilio_signed
def queue_connecting() -> Response:
    """The <Queue> url, on the caller's side, as a seat takes them off the queue: note who was
    put through to whom (CallSid is the caller's call, DequeingCallSid the seat's)."""
    caller = caller_from_form(request.form)
    seat_call_sid = request.form.get("DequeingCallSid", "").strip()[:64]
    with db().begin():
        entry = seats.put_through(
            db(),
            caller_call_sid=caller.call_sid,
            seat_call_sid=seat_call_sid,
            queue_time=seconds_param(request.form, "QueueTime"),
        )
        if entry is not None and entry.answered_at is not None:
            intake.mark_call_served(db(), caller=caller, how="operator")
    log.info(
        "caller put through to a seat",
        extra={"call_sid": caller.call_sid, "seat_call_sid": seat_call_sid},
    )
    return _twiml(_flow().queue_connecting(_locale()))


def _seat_args() -> tuple[int, int]:
    return row_id_arg(request.args, "seat"), row_id_arg(request.args, "offer")


@bp.post("/seat/answer")
@twilio_signed
def seat_answer() -> Response:
    """The operator answered their seat's phone: take the longest-waiting caller, or say
    that nobody waits any more (another seat was quicker, or the caller hung up)."""
    flow = _flow()
    seat_id, offer = _seat_args()
    seat_call_sid = caller_from_form(request.form).call_sid
    with db().begin():
        someone_waits = seats.seat_answered(
            db(), seat_id=seat_id, offer=offer, seat_call_sid=seat_call_sid
        )
        head = seats.waiting(db())
        caller_locale = head[0].locale if head else flow.locales[0]
    if not someone_waits:
        return _twiml(flow.staff_goodbye("seat_no_caller"))
    return _twiml(flow.seat_takes_caller(seat_id=seat_id, offer=offer, caller_locale=caller_locale))


@bp.post("/seat/done")
@twilio_signed
def seat_done() -> Response:
    """The seat's <Dial><Queue> ended: the seat wraps up (or is free at once if it got no
    caller), and the next caller is offered when it is free again."""
    seat_id, offer = _seat_args()
    wrap_up = seat_calls.wrap_up_time(_flow().options)
    with db().begin():
        seats.seat_call_ended(
            db(),
            seat_id=seat_id,
            offer=offer,
            dial_status=request.form.get("DialCallStatus", "").strip()[:20] or None,
            talked_seconds=seconds_param(request.form, "DialCallDuration"),
            wrap_up=wrap_up,
        )
    seat_calls.enqueue_ring_free_seats(after=wrap_up)
    return _twiml(empty())


@bp.post("/seat/status")
@twilio_signed
def seat_status() -> Response:
    """The seat call's status callback: a phone that never answered leaves the seat away, and
    the caller is offered to another seat."""
    seat_id, offer = _seat_args()
    status = request.form.get("CallStatus", "").strip()[:20]
    if status in intake.FINAL_CALL_STATUSES:
        with db().begin():
            seats.seat_call_ended(
                db(),
                seat_id=seat_id,
                offer=offer,
                dial_status=status,
                talked_seconds=None,
                wrap_up=seat_calls.wrap_up_time(_flow().options),
            )
        seat_calls.enqueue_ring_free_seats()
    return _twiml(empty())


@bp.post("/callbacks/connect")
@twilio_signed
def callback_connect() -> Response:
    """The operator answered the callback's first leg: now ring the citizen."""
    flow = _flow()
    attempt_id = row_id_arg(request.args, "attempt")
    with db().begin():
        citizen = callbacks.citizen_of_attempt(db(), attempt_id=attempt_id)
    if citizen is None:
        return _twiml(flow.staff_goodbye("goodbye"))
    caller_id = current_wiring().settings.twilio_from_number
    return _twiml(flow.callback_dial(attempt_id=attempt_id, citizen=citizen, caller_id=caller_id))


@bp.post("/callbacks/dialled")
@twilio_signed
def callback_dialled() -> Response:
    """The citizen's leg of a callback ended: keep the outcome; the third failure closes the
    task and texts the citizen."""
    attempt_id = row_id_arg(request.args, "attempt")
    outcome = request.form.get("DialCallStatus", "").strip()[:20] or "failed"
    return _finish_attempt(attempt_id, outcome, seconds_param(request.form, "DialCallDuration"))


@bp.post("/callbacks/status")
@twilio_signed
def callback_status() -> Response:
    """The operator's leg's status callback: a phone that never answered fails the attempt
    without counting it against the citizen."""
    attempt_id = row_id_arg(request.args, "attempt")
    status = request.form.get("CallStatus", "").strip()[:20]
    if status in ("no-answer", "busy", "failed", "canceled"):
        _finish_attempt(attempt_id, callbacks.OPERATOR_UNREACHED, None)
    return _twiml(empty())


def _finish_attempt(attempt_id: int, outcome: str, talked: int | None) -> Response:
    with db().begin():
        result = callbacks.finish_attempt(
            db(), attempt_id=attempt_id, outcome=outcome, talked_seconds=talked
        )
        task_id = result.task.id if result is not None else None
        gave_up = result is not None and result.gave_up
    if gave_up and task_id is not None:
        seat_calls.enqueue_callback_given_up_text(task_id)
    log.info("callback attempt ended", extra={"attempt_id": attempt_id, "outcome": outcome})
    if outcome == callbacks.REACHED:
        return _twiml(empty())
    return _twiml(_flow().staff_goodbye("callback_not_reached"))
