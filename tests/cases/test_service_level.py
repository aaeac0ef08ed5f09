"""The measured service level (cases.service_level): exact figures from crafted queue entries and
callback tasks, bucketed on Beijing's clock, and the pure rules.

Each database test makes its rows in one transaction, in a day of 2003 that no other test uses,
and rolls back: the figures are exact because nothing else falls into those hours.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from cases import service_level
from cases.access import Actor
from cases.models import CallbackAttempt, CallbackTask, QueueEntry, Role
from cases.service_level import Figures, Resolution
from hotline.db import Database

BEIJING = ZoneInfo("Asia/Shanghai")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March 2003 on Beijing's clock, as aware UTC."""
    return datetime(2003, 3, day, hour, minute, tzinfo=BEIJING).astimezone(UTC)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end: the crafted days stay empty."""
    with database.session() as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


def entry(
    session: Session,
    at: datetime,
    *,
    result: str | None,
    wait: int | None,
    answered: bool = False,
    handled: int | None = None,
) -> QueueEntry:
    row = QueueEntry(
        call_sid=f"CA{uuid.uuid4().hex}",
        caller_number="+8613800000001",
        locale="zh-CN",
        reason="asked",
        enqueued_at=at,
        result=result,
        wait_seconds=wait,
        answered_at=at + timedelta(seconds=wait or 0) if answered else None,
        handled_seconds=handled,
    )
    session.add(row)
    return row


def task(session: Session, at: datetime, *, attempts_after_minutes: list[float]) -> CallbackTask:
    row = CallbackTask(
        caller_number=f"+86138{uuid.uuid4().int % 10**8:08d}",
        locale="zh-CN",
        reason="hung_up_in_queue",
        created_at=at,
        attempts=len(attempts_after_minutes),
    )
    session.add(row)
    session.flush()
    for number, minutes in enumerate(attempts_after_minutes, start=1):
        session.add(
            CallbackAttempt(
                task_id=row.id,
                number=number,
                operator="op-test",
                started_at=at + timedelta(minutes=minutes),
                outcome="no-answer",
            )
        )
    return row


def crafted_day(session: Session) -> None:
    """5 March 2003: the calls and callbacks the tests below count."""
    nine = local(5, 9)
    # 09:00-10:00: seven calls offered.
    entry(session, nine, result="bridged", wait=5, answered=True, handled=120)
    entry(
        session, nine + timedelta(minutes=5), result="bridged", wait=15, answered=True, handled=60
    )
    entry(
        session, nine + timedelta(minutes=10), result="bridged", wait=16, answered=True, handled=300
    )
    entry(session, nine + timedelta(minutes=20), result="hangup", wait=40)  # abandoned
    entry(session, nine + timedelta(minutes=30), result="no_seat", wait=0)  # never queued
    entry(session, nine + timedelta(minutes=40), result=None, wait=None)  # still waiting
    entry(session, nine + timedelta(minutes=59), result="leave", wait=30)  # pressed 1
    # 10:00-11:00: answered in time and still talking; answered, then the caller hung up.
    entry(session, local(5, 10), result=None, wait=3, answered=True)
    entry(session, local(5, 10, 30), result="hangup", wait=12, answered=True, handled=45)
    # Just after local midnight (still 4 March in UTC) and just after 7:00 on the 6th.
    entry(session, local(5, 0, 30), result="bridged", wait=20, answered=True, handled=90)
    entry(session, local(6, 7), result="hangup", wait=8)
    # Callbacks made in the 09:00 hour: first attempts after 1, 10 and 30 minutes; one not
    # yet tried. One at 10:00, tried after 6 minutes.
    task(session, nine + timedelta(minutes=5), attempts_after_minutes=[1])
    task(session, nine + timedelta(minutes=10), attempts_after_minutes=[10, 40])
    task(session, nine + timedelta(minutes=40), attempts_after_minutes=[30])
    task(session, nine + timedelta(minutes=45), attempts_after_minutes=[])
    task(session, local(5, 10), attempts_after_minutes=[6])
    session.flush()


def test_an_hour_of_calls_gives_exact_figures(session: Session) -> None:
    crafted_day(session)

    hours = service_level.today_by_hour(session, now=local(5, 10, 45), zone=BEIJING)

    assert [hour.start for hour in hours] == [
        datetime(2003, 3, 5, h, tzinfo=BEIJING) for h in range(11)
    ]
    nine = hours[9]
    assert (nine.offered, nine.answered, nine.answered_in_time, nine.abandoned) == (7, 3, 2, 1)
    assert nine.service_level == pytest.approx(2 / 7)
    assert nine.answer_rate == pytest.approx(3 / 7)
    # Every wait counts, answered or not; the caller still waiting has none yet.
    assert sorted(nine.waits) == [0, 5, 15, 16, 30, 40]
    assert nine.average_wait == pytest.approx(106 / 6)
    assert nine.wait_95th == 40  # nearest rank: ceil(0.95 * 6) = 6th of 6
    assert nine.average_handling_seconds == pytest.approx(160)
    assert nine.callbacks_made == 3
    assert nine.median_callback_minutes == pytest.approx(10)
    assert nine.average_callback_minutes == pytest.approx(41 / 3)

    ten = hours[10]
    assert (ten.offered, ten.answered, ten.answered_in_time, ten.abandoned) == (2, 2, 2, 0)
    assert ten.service_level == 1.0
    assert ten.wait_95th == 12
    assert ten.average_handling_seconds == pytest.approx(45)  # the call still on has no time yet
    assert ten.callbacks_made == 1 and ten.median_callback_minutes == pytest.approx(6)

    midnight = hours[0]
    assert (midnight.offered, midnight.answered_in_time, midnight.wait_95th) == (1, 0, 20)

    quiet = hours[3]
    assert quiet == Figures(start=datetime(2003, 3, 5, 3, tzinfo=BEIJING))
    assert quiet.service_level is None and quiet.answer_rate is None
    assert quiet.average_wait is None and quiet.wait_95th is None
    assert quiet.median_callback_minutes is None and quiet.average_handling_seconds is None


def test_days_follow_the_local_clock_not_utc(session: Session) -> None:
    crafted_day(session)

    days = service_level.last_days(session, now=local(6, 12), zone=BEIJING, days=3)

    assert [day.start for day in days] == [datetime(2003, 3, d, tzinfo=BEIJING) for d in (4, 5, 6)]
    before, fifth, sixth = days
    assert before.offered == 0  # 00:30 on the 5th is the 4th in UTC, but counts on the 5th
    assert (fifth.offered, fifth.answered, fifth.answered_in_time, fifth.abandoned) == (
        10,
        6,
        4,
        1,
    )
    assert fifth.service_level == pytest.approx(4 / 10)
    assert fifth.answer_rate == pytest.approx(6 / 10)
    assert fifth.callbacks_made == 4
    assert fifth.median_callback_minutes == pytest.approx(8)  # of 1, 6, 10, 30
    assert fifth.average_callback_minutes == pytest.approx(47 / 4)
    # 07:00 on the 6th is 23:00 on the 5th in UTC.
    assert (sixth.offered, sixth.abandoned, sixth.answer_rate) == (1, 1, 0.0)

    whole = service_level.total(days)
    assert (whole.offered, whole.answered, whole.answered_in_time) == (11, 6, 4)
    assert whole.start == datetime(2003, 3, 4, tzinfo=BEIJING)
    assert whole.average_handling_seconds == pytest.approx((120 + 60 + 300 + 45 + 90) / 5)


def test_a_range_outside_the_rows_counts_nothing(session: Session) -> None:
    crafted_day(session)

    (day,) = service_level.service_level(
        session,
        start=local(7, 0),
        end=local(8, 0),
        zone=BEIJING,
        resolution=Resolution.DAY,
    )

    assert day == Figures(start=datetime(2003, 3, 7, tzinfo=BEIJING))


def test_naive_times_are_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        service_level.service_level(
            session,
            start=datetime(2003, 3, 5),
            end=datetime(2003, 3, 6),
            zone=BEIJING,
            resolution=Resolution.DAY,
        )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([7], 7),
        (list(range(1, 21)), 19),
        (list(range(100, 0, -1)), 95),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 60], 0),
        ([0] * 19 + [60] * 2, 60),
    ],
)
def test_the_95th_percentile_is_the_nearest_rank(values: list[int], expected: int | None) -> None:
    assert service_level.nearest_rank(values, 95) == expected


def test_an_empty_hour_is_counted_as_no_figure_not_as_zero() -> None:
    assert Figures().service_level is None
    assert Figures(offered=2).service_level == 0.0


def test_buckets_across_a_change_of_the_clocks() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spring = datetime(2003, 3, 30, tzinfo=berlin)
    hours = service_level.bucket_starts(
        spring.astimezone(UTC),
        (spring + timedelta(days=1)).astimezone(UTC),
        zone=berlin,
        resolution=Resolution.HOUR,
    )
    assert len(hours) == 23 and all(hour.hour != 2 for hour in hours)
    autumn = datetime(2003, 10, 26, tzinfo=berlin)
    hours = service_level.bucket_starts(
        autumn.astimezone(UTC),
        datetime(2003, 10, 27, tzinfo=berlin).astimezone(UTC),
        zone=berlin,
        resolution=Resolution.HOUR,
    )
    assert [hour.hour for hour in hours] == list(range(24))  # the repeated 02:00 is one bucket
    kolkata = ZoneInfo("Asia/Kolkata")
    start = datetime(2003, 3, 5, 9, 0, tzinfo=kolkata)
    hours = service_level.bucket_starts(
        start.astimezone(UTC),
        (start + timedelta(hours=3)).astimezone(UTC),
        zone=kolkata,
        resolution=Resolution.HOUR,
    )
    assert [(hour.hour, hour.minute) for hour in hours] == [(9, 0), (10, 0), (11, 0)]
    days = service_level.bucket_starts(
        spring.astimezone(UTC),
        datetime(2003, 4, 2, 12, tzinfo=berlin).astimezone(UTC),
        zone=berlin,
        resolution=Resolution.DAY,
    )
    assert [day.day for day in days] == [30, 31, 1, 2]


@pytest.mark.parametrize(
    ("actor", "sees"),
    [
        (Actor(name="s", role=Role.SUPERVISOR), True),
        (Actor(name="d", role=Role.DISPATCHER), True),
        (Actor(name="a", role=Role.ADMIN), True),
        (Actor(name="h", role=Role.DEPARTMENT, department_code="hotline_office"), True),
        (Actor(name="w", role=Role.DEPARTMENT, department_code="water"), False),
        (Actor(name="o", role=Role.OPERATOR), False),
    ],
)
def test_who_watches_the_service_level(actor: Actor, sees: bool) -> None:
    assert service_level.may_see(actor) is sees
