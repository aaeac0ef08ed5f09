"""Operators at seats, for tests of the queue for a person.

A seat left available would put every later test's caller who presses 0 in the queue: each
fixture signs its seats out (and ends their calls) when its test ends, whatever happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from cases import seats
from cases.models import QueueEntry, Seat, SeatStatus, User, utcnow
from emulator import TwilioEmulator
from emulator.clock import RealClock
from emulator.switchboard import Phone, Switchboard
from hotline.db import Database
from hotline.wiring import Wiring
from tests.support.calls import fresh_mobile_number
from tests.support.flaky_proxy import FlakyProxy
from tests.support.staff import Account


@dataclass(frozen=True)
class SeatAt:
    """An operator's seat made for one test: its id, the phone that rings it, the account."""

    id: int
    address: str
    account: Account


@pytest.fixture
def operator_seat(
    database: Database, make_account: Callable[..., Account]
) -> Iterator[Callable[..., SeatAt]]:
    """Make operators with seats in a given status (available by default)."""

    def make(status: SeatStatus = SeatStatus.AVAILABLE) -> SeatAt:
        account = make_account("operator")
        address = fresh_mobile_number()
        with database.session() as session, session.begin():
            user = session.get_one(User, account.id)
            seat = seats.take_seat(session, user=user, address=address, region="CN")
            if status != SeatStatus.SIGNED_OUT:
                seats.set_seat_status(session, seat=seat, status=status)
            seat_id = seat.id
        return SeatAt(id=seat_id, address=address, account=account)

    yield make
    # make_account signs the seats out; a caller left waiting is ours to end.
    with database.session() as session, session.begin():
        # A caller the test left waiting would be offered to the next test's seats.
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.result.is_(None), QueueEntry.answered_at.is_(None))
            .values(result="system-error", left_at=utcnow())
        )


def seat_row(database: Database, seat_id: int) -> Seat:
    """The seat as the database has it now."""
    with database.session() as session:
        return session.get_one(Seat, seat_id)


@pytest.fixture
def quiet_queue(database: Database) -> None:
    """No seat on duty and nobody waiting, for a test that counts rings or callers: what an
    earlier test left behind must not be offered to this one's seats."""
    with database.session() as session, session.begin():
        session.execute(
            update(Seat)
            .where(Seat.status != SeatStatus.SIGNED_OUT)
            .values(status=SeatStatus.SIGNED_OUT, entry_id=None, wrap_up_until=None)
        )
        session.execute(
            update(QueueEntry)
            .where(QueueEntry.result.is_(None), QueueEntry.answered_at.is_(None))
            .values(result="system-error", left_at=utcnow())
        )


# The switchboard's clock runs this many times faster than the wall's: a caller hears the whole
# greeting and every announcement, in a tenth of the time.
SPEED = 10.0


@pytest.fixture
def quick_seats(wiring: Wiring, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second of wrap-up (not thirty), and no wait limit within a test's time."""
    options = dataclasses.replace(
        wiring.call_flow.options, wrap_up_seconds=1, queue_wait_limit=3600
    )
    monkeypatch.setattr(wiring.call_flow, "options", options)


@pytest.fixture
def board(emulator: TwilioEmulator, twilio_api: FlakyProxy) -> Iterator[Callable[..., Switchboard]]:
    """A switchboard (at `SPEED`) that learns of the calls the app places from this test on,
    from the log of the proxy in front of Prism."""
    boards: list[Switchboard] = []
    seen = len(twilio_api.forwarded)

    def make(phones: dict[str, Phone]) -> Switchboard:
        switchboard = Switchboard(
            emulator,
            clock=RealClock(speed=SPEED),
            phones=phones,
            rest_requests=lambda: list(twilio_api.forwarded)[seen:],
            poll_interval=0.2,
        ).start()
        boards.append(switchboard)
        return switchboard

    yield make
    for switchboard in boards:
        switchboard.stop()
