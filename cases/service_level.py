"""The measured service level of the queue for a person, per hour or day of the hotline's clock.

GB/T 33358 (政府热线服务规范) asks that a call be answered within 15 seconds and that at least 95%
of the calls in any 24 hours get through to a person. The figures come from the queue's own
records (`QueueEntry`, one per call that asked for a person) and the callback tasks:

- **offered:** every entry, whether queued, refused for want of a seat ("no_seat") or still
  waiting; **answered:** put through to a seat (`answered_at` set); **answered in time:** answered
  after at most `ANSWER_WITHIN_SECONDS` of waiting, as Twilio counted it (QueueTime);
- **service level** = answered in time / offered; **answer rate** = answered / offered;
- **waits:** every entry's `wait_seconds`, answered or not (a caller still waiting has none yet);
- **abandoned:** hung up while waiting (QueueResult "hangup") and never answered;
- **callbacks made:** tasks with at least one attempt, and the minutes from the task's creation
  to its first attempt; **handling time:** `handled_seconds` of the answered entries.

An entry counts in the hour or day it joined the queue, a callback task in the one it was made,
both on the hotline's local clock (`WorkingCalendar.timezone`, as the disclosure figures are).
A rate or an average with nothing to divide by is None ("no figure"), never 0.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.access import Actor
from cases.errors import N_
from cases.models import CallbackAttempt, CallbackTask, QueueEntry

# GB/T 33358: a call is answered within 15 s, and at least 95% of calls get through.
ANSWER_WITHIN_SECONDS = 15
ANSWER_RATE_TARGET = 0.95
# The standard wants every call answered within 15 s; supervisors read the service level
# against the same 95% line as the answer rate.
SERVICE_LEVEL_TARGET = 0.95
WAIT_PERCENTILE = 95
# QueueResult of a caller who hung up while waiting.
HUNG_UP = "hangup"
NOT_A_SUPERVISOR = N_(
    "Only supervisors, the dispatch desk and administrators see the service level."
)


class Resolution(StrEnum):
    """How long one bucket of the figures is."""

    HOUR = "hour"
    DAY = "day"


@dataclass(frozen=True)
class Figures:
    """The service level of one bucket (an hour, a day, or any sum of them); `start` is the
    bucket's first moment on the local clock."""

    start: datetime | None = None
    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    # Kept whole, not averaged, so that sums of buckets have exact medians and percentiles.
    waits: tuple[int, ...] = field(default=(), repr=False)
    handled: tuple[int, ...] = field(default=(), repr=False)
    callback_delays: tuple[float, ...] = field(default=(), repr=False)

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            start=min((s for s in (self.start, other.start) if s is not None), default=None),
            **{
                item.name: getattr(self, item.name) + getattr(other, item.name)
                for item in fields(self)
                if item.name != "start"
            },
        )

    @property
    def service_level(self) -> float | None:
        """Share of the offered calls answered within ANSWER_WITHIN_SECONDS."""
        return _share(self.answered_in_time, self.offered)

    @property
    def answer_rate(self) -> float | None:
        """Share of the offered calls answered by a person at all."""
        return _share(self.answered, self.offered)

    @property
    def average_wait(self) -> float | None:
        """Mean seconds waited, answered or not."""
        return statistics.fmean(self.waits) if self.waits else None

    @property
    def wait_95th(self) -> int | None:
        """The 95th-percentile wait in seconds, by the nearest-rank method: the smallest wait
        that at least 95% of the waits are no longer than (always a wait that happened)."""
        return nearest_rank(self.waits, WAIT_PERCENTILE)

    @property
    def callbacks_made(self) -> int:
        """Callback tasks with at least one attempt."""
        return len(self.callback_delays)

    @property
    def median_callback_minutes(self) -> float | None:
        """Median minutes from a task's creation to its first attempt (the mean of the two
        middle ones for an even count)."""
        return statistics.median(self.callback_delays) if self.callback_delays else None

    @property
    def average_callback_minutes(self) -> float | None:
        """Mean minutes from a task's creation to its first attempt."""
        return statistics.fmean(self.callback_delays) if self.callback_delays else None

    @property
    def average_handling_seconds(self) -> float | None:
        """Mean seconds an operator talked with an answered caller."""
        return statistics.fmean(self.handled) if self.handled else None


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def nearest_rank(values: Iterable[int], percentile: float) -> int | None:
    """The nearest-rank percentile of `values`: the value at rank ceil(p/100 * n) in
    ascending order; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(percentile / 100 * len(ordered)))
    return ordered[rank - 1]


def total(buckets: Iterable[Figures]) -> Figures:
    """The sum of several buckets' figures."""
    result = Figures()
    for bucket in buckets:
        result += bucket
    return result


def may_see(actor: Actor) -> bool:
    """The desk, supervisors and admins watch the service level; departments and operators
    do not (an operator's own figures are not a league table)."""
    return actor.supervises


def _bucket_key(moment: datetime, *, zone: ZoneInfo, resolution: Resolution) -> datetime:
    """The local wall-clock start of the bucket a moment falls in (naive: a key, not a time)."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if resolution == Resolution.HOUR:
        return local.replace(minute=0, second=0, microsecond=0)
    return datetime.combine(local.date(), time(0))


def bucket_starts(
    start: datetime, end: datetime, *, zone: ZoneInfo, resolution: Resolution
) -> list[datetime]:
    """The local starts of the hours or days that overlap [start, end), in order."""
    if end <= start:
        return []
    # Walking in UTC hours meets every local hour, even across a change of the clocks (the
    # repeated hour is one bucket) or in a zone half an hour off UTC.
    step = timedelta(hours=1) if resolution == Resolution.HOUR else timedelta(days=1)
    first = _bucket_key(start, zone=zone, resolution=resolution).replace(tzinfo=zone)
    moment = first.astimezone(UTC)
    keys: list[datetime] = []
    while moment < end:
        key = _bucket_key(moment, zone=zone, resolution=resolution)
        if not keys or keys[-1] != key:
            keys.append(key)
        moment = (
            moment + step
            if resolution == Resolution.HOUR
            else (key + step).replace(tzinfo=zone).astimezone(UTC)
        )
    return [key.replace(tzinfo=zone) for key in keys]


@dataclass
class _Tally:
    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    waits: list[int] = field(default_factory=list)
    handled: list[int] = field(default_factory=list)
    callback_delays: list[float] = field(default_factory=list)

    def figures(self, start: datetime) -> Figures:
        return Figures(
            start=start,
            offered=self.offered,
            answered=self.answered,
            answered_in_time=self.answered_in_time,
            abandoned=self.abandoned,
            waits=tuple(self.waits),
            handled=tuple(self.handled),
            callback_delays=tuple(self.callback_delays),
        )


def service_level(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    resolution: Resolution,
) -> list[Figures]:
    """The figures for each local hour or day of [start, end), empty buckets included, for the
    calls that joined the queue and the callback tasks made in that range."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    starts = bucket_starts(start, end, zone=zone, resolution=resolution)
    tallies = {moment.replace(tzinfo=None): _Tally() for moment in starts}

    def tally_of(moment: datetime) -> _Tally:
        return tallies[_bucket_key(moment, zone=zone, resolution=resolution)]

    entries = session.execute(
        select(
            QueueEntry.enqueued_at,
            QueueEntry.result,
            QueueEntry.wait_seconds,
            QueueEntry.answered_at,
            QueueEntry.handled_seconds,
        ).where(QueueEntry.enqueued_at >= start, QueueEntry.enqueued_at < end)
    )
    for enqueued_at, result, wait_seconds, answered_at, handled_seconds in entries:
        tally = tally_of(enqueued_at)
        tally.offered += 1
        if wait_seconds is not None:
            tally.waits.append(wait_seconds)
        if answered_at is not None:
            tally.answered += 1
            if wait_seconds is not None and wait_seconds <= ANSWER_WITHIN_SECONDS:
                tally.answered_in_time += 1
            if handled_seconds is not None:
                tally.handled.append(handled_seconds)
        elif result == HUNG_UP:
            tally.abandoned += 1

    first_attempt = (
        select(
            CallbackAttempt.task_id, func.min(CallbackAttempt.started_at).label("first_started_at")
        )
        .group_by(CallbackAttempt.task_id)
        .subquery()
    )
    callbacks = session.execute(
        select(CallbackTask.created_at, first_attempt.c.first_started_at)
        .join(first_attempt, first_attempt.c.task_id == CallbackTask.id)
        .where(CallbackTask.created_at >= start, CallbackTask.created_at < end)
    )
    for created_at, first_started_at in callbacks:
        delay = (first_started_at - created_at).total_seconds() / 60
        tally_of(created_at).callback_delays.append(delay)

    return [tallies[moment.replace(tzinfo=None)].figures(moment) for moment in starts]


def local_midnight(moment: datetime, *, zone: ZoneInfo, days_before: int = 0) -> datetime:
    """The start (local midnight, as aware UTC) of the local day `days_before` days before
    the one `moment` falls in."""
    day: date = moment.astimezone(zone).date() - timedelta(days=days_before)
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def today_by_hour(session: Session, *, now: datetime, zone: ZoneInfo) -> list[Figures]:
    """Today's figures, local midnight to now, by hour (the hours to come are not shown)."""
    return service_level(
        session,
        start=local_midnight(now, zone=zone),
        end=now,
        zone=zone,
        resolution=Resolution.HOUR,
    )


def last_days(session: Session, *, now: datetime, zone: ZoneInfo, days: int) -> list[Figures]:
    """The figures of the last `days` local days, today (so far) included, by day."""
    if days < 1:
        raise ValueError("days must be at least 1")
    return service_level(
        session,
        start=local_midnight(now, zone=zone, days_before=days - 1),
        end=now,
        zone=zone,
        resolution=Resolution.DAY,
    )
