"""Whole calls to a person through the emulator's switchboard: callers wait in Twilio's queue,
the app rings seats through the REST API (Prism, behind the proxy whose log the switchboard
reads), the operators' phones answer and <Dial><Queue> puts callers through; a real worker runs
the jobs. The browser's side of it is tests/console/test_seat_browser.py."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from cases import callbacks, seats
from cases.models import Seat, SeatStatus, utcnow
from emulator.switchboard import Caller, Leg, Phone, Switchboard
from hotline.db import Database
from hotline.wiring import Wiring
from tests.conftest import wait_until
from tests.support.calls import Lookups, fresh_mobile_number
from tests.support.flaky_proxy import FlakyProxy
from tests.support.seats import SeatAt, seat_row

pytestmark = pytest.mark.usefixtures("celery_worker", "quiet_queue")


def in_queue(leg: Leg) -> bool:
    return leg.enqueued_at is not None


def placed_to(proxy: FlakyProxy, address: str) -> list[dict[str, Any]]:
    return [
        entry
        for entry in list(proxy.forwarded)
        if entry["path"].endswith("/Calls.json") and entry["form"].get("To") == address
    ]


@pytest.mark.usefixtures("quick_seats")
def test_two_operators_and_five_callers_first_come_first_served_nobody_twice_nobody_lost(
    board: Callable[..., Switchboard],
    operator_seat: Callable[..., SeatAt],
    lookups: Lookups,
    database: Database,
) -> None:
    operators = [operator_seat(), operator_seat()]
    switchboard = board({seat.address: Phone(answer_after=3, talk=20) for seat in operators})

    callers: list[Leg] = []
    for _ in range(5):
        leg = switchboard.call(Caller(inputs=["0"], from_number=fresh_mobile_number()))
        callers.append(leg)
        # Each is in the queue before the next dials: their order is the test's.
        wait_until(functools.partial(in_queue, leg), timeout=20, what="the caller to queue")
    assert switchboard.wait_idle(timeout=1200), "calls still going after twenty clock minutes"

    entries = [lookups.queue_entry(leg.call_sid) for leg in callers]
    assert all(entry is not None for entry in entries)
    # Nobody lost: everyone was put through, once, and heard a person.
    assert [leg.queue_result for leg in callers] == ["bridged"] * 5
    assert all(entry.answered_at is not None for entry in entries if entry)
    assert [entry.result for entry in entries if entry] == ["bridged"] * 5
    # First come, first served: put through in the order they joined.
    answered = [entry.answered_at for entry in entries if entry and entry.answered_at]
    assert len(answered) == 5 and answered == sorted(answered)
    # Nobody connected twice: the seats' calls took five different callers, each once, and
    # both seats worked.
    taken = [leg.bridge.caller_sid for leg in switchboard.outbound() if leg.bridge is not None]
    assert sorted(taken) == sorted(leg.call_sid for leg in callers)
    assert {entry.seat_id for entry in entries if entry} == {seat.id for seat in operators}
    assert lookups.callback_of(callers[0].call_sid) is None
    for seat in operators:
        assert seat_row(database, seat.id).status in (SeatStatus.WRAP_UP, SeatStatus.AVAILABLE)


def test_a_caller_who_hangs_up_in_the_queue_is_called_back_operator_first_then_the_citizen(
    board: Callable[..., Switchboard],
    operator_seat: Callable[..., SeatAt],
    lookups: Lookups,
    twilio_api: FlakyProxy,
    app: Flask,
    wiring: Wiring,
    database: Database,
) -> None:
    # The only seat on duty is writing up its last call for an hour: the caller waits, and
    # gives up after 30 s. The operator who calls back is between calls (busy).
    seat = operator_seat(SeatStatus.BUSY)
    writing_up = operator_seat()
    with database.session() as session, session.begin():
        row = session.get_one(Seat, writing_up.id)
        row.status, row.wrap_up_until = SeatStatus.WRAP_UP, utcnow() + timedelta(hours=1)
    citizen = fresh_mobile_number()
    switchboard = board(
        {
            seat.address: Phone(answer_after=3, talk=10),
            citizen: Phone(answer_after=5, talk=20),
        }
    )
    caller = switchboard.call(Caller(inputs=["0"], from_number=citizen, hang_up_after=30))
    assert switchboard.wait_idle(timeout=1200)  # clock seconds
    assert caller.queue_result == "hangup"
    task = wait_until(
        lambda: lookups.callback_of(caller.call_sid), timeout=10, what="the callback task"
    )
    assert (task.reason, task.caller_number) == ("hung_up_in_queue", citizen)

    # The operator presses "call back" on their seat page (the console's own request).
    with database.session() as session, session.begin():
        attempt = callbacks.start_attempt(
            session,
            task_id=task.id,
            operator=seat.account.username,
            seat=seats.seat_by_id(session, seat_id=seat.id),
        )
        attempt_id = attempt.id
    wiring.telephony.call_back(attempt_id)

    rung = wait_until(
        lambda: placed_to(twilio_api, seat.address), timeout=30, what="the operator to be rung"
    )
    assert "/ivr/callbacks/connect" in rung[0]["form"]["Url"]
    assert placed_to(twilio_api, citizen) == []  # the citizen is dialled from the operator's call
    assert switchboard.wait_idle(timeout=1200)  # clock seconds
    operator_leg = next(leg for leg in switchboard.outbound() if leg.to == seat.address)
    assert operator_leg.log.dialed == [[citizen]]  # operator first, then the citizen
    closed = wait_until(
        lambda: (t := lookups.callback_of(caller.call_sid)) and t.status == "done" and t,
        timeout=10,
        what="the callback to be done",
    )
    assert closed.attempts == 1
