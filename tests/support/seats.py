"""Operators at seats, for tests of the queue for a person.

A seat left available would put every later test's caller who presses 0 in the queue: each
fixture signs its seats out (and ends their calls) when its test ends, whatever happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import update

from cases import seats
from cases.models import QueueEntry, Seat, SeatStatus, User, utcnow
from hotline.db import Database
from tests.support.calls import fresh_mobile_number
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
