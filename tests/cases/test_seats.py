"""Which seats ring for which callers (cases.seats), on the real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from cases import callbacks, lifecycle, seats
from cases.access import Actor
from cases.errors import InvalidInputError, InvalidTransitionError, NotAllowedError
from cases.models import CaseStatus, Role, Seat, SeatStatus, WrapUpCode, utcnow
from emulator.protocol import new_sid
from hotline.db import Database
from tests.support.calls import fresh_mobile_number
from tests.support.factories import make_case
from tests.support.seats import SeatAt, seat_row


def queue_callers(database: Database, count: int) -> list[str]:
    """Put `count` callers in the queue, in order; their CallSids."""
    sids = [new_sid("CA") for _ in range(count)]
    for sid in sids:
        with database.session() as session, session.begin():
            seats.join_queue(
                session,
                call_sid=sid,
                caller_number=fresh_mobile_number(),
                locale="zh-CN",
                reason="asked",
            )
    return sids


def ring(database: Database) -> list[seats.SeatRing]:
    with database.session() as session, session.begin():
        return seats.seats_to_ring(session)


@pytest.mark.usefixtures("quiet_queue")
def test_never_more_seats_ring_than_callers_wait_and_the_longest_free_rings_first(
    database: Database, operator_seat: Callable[..., SeatAt]
) -> None:
    first, second, third = operator_seat(), operator_seat(), operator_seat()
    queue_callers(database, 2)

    rings = ring(database)
    assert [r.seat_id for r in rings] == [first.id, second.id]  # free longest, first
    assert ring(database) == []  # both callers have a seat ringing for them
    assert seat_row(database, third.id).status == SeatStatus.AVAILABLE
    queue_callers(database, 1)
    assert [r.seat_id for r in ring(database)] == [third.id]


def test_a_seat_that_answers_after_its_caller_left_is_free_again(
    database: Database, operator_seat: Callable[..., SeatAt]
) -> None:
    seat = operator_seat()
    (caller,) = queue_callers(database, 1)
    (offer,) = ring(database)
    with database.session() as session, session.begin():
        seats.leave_queue(session, call_sid=caller, result="hangup", queue_time=3)
    with database.session() as session, session.begin():
        assert not seats.seat_answered(
            session, seat_id=seat.id, offer=offer.offer, seat_call_sid=new_sid("CA")
        )
    assert seat_row(database, seat.id).status == SeatStatus.AVAILABLE


def test_wrap_up_ends_with_the_operators_code_or_when_its_time_is_over(
    database: Database, operator_seat: Callable[..., SeatAt]
) -> None:
    seat = operator_seat()
    (caller,) = queue_callers(database, 1)
    (offer,) = ring(database)
    seat_call = new_sid("CA")
    with database.session() as session, session.begin():
        assert seats.seat_answered(
            session, seat_id=seat.id, offer=offer.offer, seat_call_sid=seat_call
        )
        seats.put_through(session, caller_call_sid=caller, seat_call_sid=seat_call, queue_time=2)
    with database.session() as session, session.begin():
        seats.seat_call_ended(
            session,
            seat_id=seat.id,
            offer=offer.offer,
            dial_status="completed",
            talked_seconds=60,
            wrap_up=timedelta(seconds=30),
        )
    assert seat_row(database, seat.id).status == SeatStatus.WRAP_UP
    with database.session() as session, session.begin():
        assert seats.release_wrap_ups(session, now=utcnow()) == []
        assert seat.id in seats.release_wrap_ups(session, now=utcnow() + timedelta(seconds=31))

    operator = Actor(name=seat.account.username, role=Role.OPERATOR)
    someone_else = Actor(name="someone-else", role=Role.OPERATOR)
    with database.session() as session, session.begin():
        entry = seats.current_entry(session, seat=session.get_one(Seat, seat.id))
        assert entry is not None and entry.call_sid == caller
        with pytest.raises(NotAllowedError):
            seats.wrap_up(session, entry=entry, actor=someone_else, code=WrapUpCode.ANSWERED)
        with pytest.raises(InvalidInputError):
            seats.wrap_up(session, entry=entry, actor=operator, code=WrapUpCode.ABANDONED)
        seats.wrap_up(session, entry=entry, actor=operator, code=WrapUpCode.CALLBACK_NEEDED)
        assert callbacks.request_callback(
            session, call_sid=caller, caller_number="x", locale="zh-CN", reason="operator"
        )  # the wrap-up made it; asking again finds the same task
        assert entry.wrap_up == WrapUpCode.CALLBACK_NEEDED


def test_an_operator_cannot_leave_a_call_by_setting_a_status(
    database: Database, operator_seat: Callable[..., SeatAt]
) -> None:
    seat = operator_seat()
    queue_callers(database, 1)
    ring(database)
    with database.session() as session, session.begin():
        row = session.get_one(Seat, seat.id)
        with pytest.raises(NotAllowedError):
            seats.set_seat_status(session, seat=row, status=SeatStatus.ON_BREAK)
        with pytest.raises(InvalidInputError):
            seats.set_seat_status(session, seat=row, status=SeatStatus.ON_CALL)


def test_one_open_callback_per_number_and_the_third_miss_closes_it(
    database: Database, operator_seat: Callable[..., SeatAt]
) -> None:
    seat = operator_seat(SeatStatus.BUSY)
    number = fresh_mobile_number()
    with database.session() as session, session.begin():
        first = callbacks.request_callback(
            session, call_sid=new_sid("CA"), caller_number=number, locale="zh-CN", reason="asked"
        )
        again = callbacks.request_callback(
            session, call_sid=new_sid("CA"), caller_number=number, locale="zh-CN", reason="asked"
        )
        assert first is not None and again is not None and again.id == first.id
        task_id = first.id
    outcomes = ["busy", callbacks.OPERATOR_UNREACHED, "no-answer", "failed"]
    results = []
    for outcome in outcomes:
        with database.session() as session, session.begin():
            attempt = callbacks.start_attempt(
                session, task_id=task_id, operator=seat.account.username, seat=None
            )
            with pytest.raises(NotAllowedError):  # one attempt at a time
                callbacks.start_attempt(session, task_id=task_id, operator="other", seat=None)
            result = callbacks.finish_attempt(
                session, attempt_id=attempt.id, outcome=outcome, talked_seconds=None
            )
            assert result is not None
            results.append((result.task.status, result.gave_up))
    # The operator's own phone not answering does not count against the citizen.
    assert results == [("open", False), ("open", False), ("open", False), ("failed", True)]


def test_the_operator_rewrites_a_report_the_machine_routed_while_they_talked(
    database: Database,
) -> None:
    operator = Actor(name="op-rewrites", role=Role.OPERATOR)
    with database.session() as session, session.begin():
        # The caller's report, routed to water by its live transcript before 0 reached a person.
        report = make_case(session, department_code="water", category_code="water_supply")
        assert report.status == CaseStatus.ASSIGNED
        lifecycle.route_at_seat(
            session,
            case=report,
            actor=operator,
            summary="路灯不亮，不是停水",
            category_code="streetlight",
            department_code="urban_mgmt",
            urgency="normal",
            deadline_at=utcnow() + timedelta(days=3),
            place_code=None,
        )
        assert (report.owner, report.department_code) == ("op-rewrites", "urban_mgmt")
        assert report.status == CaseStatus.ASSIGNED and report.category_code == "streetlight"
        assert [event.kind for event in report.events][-1] == "opened_at_seat"
        with pytest.raises(InvalidTransitionError, match="written up already"):
            lifecycle.route_at_seat(
                session,
                case=report,
                actor=operator,
                summary="再提交一次",
                category_code="streetlight",
                department_code="water",
                urgency="normal",
                deadline_at=utcnow() + timedelta(days=3),
                place_code=None,
            )
