"""Deadlines: hours on the clock, or working days on China's working-day calendar."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar

DEFAULT_HOLIDAYS_PATH = Path(__file__).resolve().parent.parent / "config" / "holidays.toml"

URGENT_HOURS = 2


@dataclass(frozen=True)
class WorkingCalendar:
    """The national calendar plus the city's own days off and extra working days."""

    timezone: str = "Asia/Shanghai"
    day_ends_at: time = time(18, 0)
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    extra_workdays: frozenset[date] = field(default_factory=frozenset)


def _dates(entries: list[Any]) -> frozenset[date]:
    # Entries are TOML dates, or tables {date = ..., name = "..."} that say why.
    days = (entry["date"] if isinstance(entry, dict) else entry for entry in entries)
    return frozenset(day if isinstance(day, date) else date.fromisoformat(str(day)) for day in days)


def load_calendar(path: Path = DEFAULT_HOLIDAYS_PATH) -> WorkingCalendar:
    """Read the working-day calendar from a TOML file such as config/holidays.toml."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    ends_at = data.get("day_ends_at", "18:00")
    return WorkingCalendar(
        timezone=str(data.get("timezone", "Asia/Shanghai")),
        day_ends_at=ends_at if isinstance(ends_at, time) else time.fromisoformat(str(ends_at)),
        extra_holidays=_dates(data.get("extra_holidays", [])),
        extra_workdays=_dates(data.get("extra_workdays", [])),
    )


def is_working_day(day: date, *, calendar: WorkingCalendar) -> bool:
    """Whether a local date is a working day.

    The city's extra days off and extra working days come first; then chinesecalendar's national
    calendar, which knows the public holidays and the 调休 weekends worked in exchange. Outside the
    years that package covers (it raises NotImplementedError), Monday to Friday are working days.
    """
    if day in calendar.extra_holidays:
        return False
    if day in calendar.extra_workdays:
        return True
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def compute_deadline(
    *,
    opened_at: datetime,
    hours: int | None,
    working_days: int | None,
    calendar: WorkingCalendar,
) -> datetime:
    """The deadline (aware UTC) for a case opened at `opened_at` (aware) with one time limit.

    - `hours`: on the clock, whatever the day: opened_at + hours.
    - `working_days` = N ≥ 1: `calendar.day_ends_at` (18:00) local time on the Nth working day
      after the local day of opening. The day of opening never counts, whether it is a working
      day or not and whatever the hour, so a case opened late on Friday loses no time.
      Local time is `calendar.timezone` (Asia/Shanghai).
    Exactly one of the two must be given.
    """
    if opened_at.tzinfo is None or opened_at.utcoffset() is None:
        raise ValueError("opened_at must be timezone-aware")
    if (hours is None) == (working_days is None):
        raise ValueError("give exactly one of hours and working_days")
    if hours is not None:
        if hours < 0:
            raise ValueError("hours must not be negative")
        return (opened_at + timedelta(hours=hours)).astimezone(UTC)
    assert working_days is not None
    if working_days < 1:
        raise ValueError("working_days must be at least 1")
    zone = ZoneInfo(calendar.timezone)
    day = opened_at.astimezone(zone).date()
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if is_working_day(day, calendar=calendar):
            counted += 1
    return datetime.combine(day, calendar.day_ends_at, tzinfo=zone).astimezone(UTC)
