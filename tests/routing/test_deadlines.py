"""Deadlines on the clock and on China's working-day calendar (with 调休 and city holidays)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import chinese_calendar
import pytest

from routing.deadlines import WorkingCalendar, compute_deadline, is_working_day, load_calendar

SHANGHAI = timezone(timedelta(hours=8))


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A Shanghai wall-clock time as an aware UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_hours_run_on_the_clock_across_midnight(calendar: WorkingCalendar) -> None:
    opened = local(2026, 10, 3, 23, 30)  # a holiday: the clock does not care
    assert compute_deadline(opened_at=opened, hours=2, working_days=None, calendar=calendar) == (
        local(2026, 10, 4, 1, 30)
    )
    deadline = compute_deadline(opened_at=opened, hours=24, working_days=None, calendar=calendar)
    assert deadline == local(2026, 10, 4, 23, 30)
    assert deadline.tzinfo == UTC


def test_working_days_skip_the_weekend(calendar: WorkingCalendar) -> None:
    # Friday 6 March 2026, 10:00: Mon 9 (1), Tue 10 (2), Wed 11 (3) at 18:00.
    opened = local(2026, 3, 6, 10, 0)
    assert compute_deadline(opened_at=opened, hours=None, working_days=3, calendar=calendar) == (
        local(2026, 3, 11, 18, 0)
    )


def test_the_day_of_opening_never_counts(calendar: WorkingCalendar) -> None:
    # Opened on Saturday: the count starts on Monday.
    opened = local(2026, 3, 7, 9, 0)
    assert compute_deadline(opened_at=opened, hours=None, working_days=1, calendar=calendar) == (
        local(2026, 3, 9, 18, 0)
    )


def test_the_package_knows_national_day_2026() -> None:
    # What chinesecalendar 1.11 says: 1–7 October off, Sunday 20 September and Saturday
    # 10 October worked (调休).
    for day in range(1, 8):
        assert not chinese_calendar.is_workday(date(2026, 10, day))
    assert chinese_calendar.is_workday(date(2026, 9, 20))
    assert chinese_calendar.is_workday(date(2026, 10, 10))
    assert not chinese_calendar.is_workday(date(2026, 10, 11))


def test_national_day_and_its_working_saturday(calendar: WorkingCalendar) -> None:
    # Opened Wed 30 Sep: Thu 8 Oct (1), Fri 9 Oct (2), Sat 10 Oct, a 调休 working day (3).
    opened = local(2026, 9, 30, 10, 0)
    assert compute_deadline(opened_at=opened, hours=None, working_days=3, calendar=calendar) == (
        local(2026, 10, 10, 18, 0)
    )
    # Five working days: ... Sat 10 (3), Mon 12 (4), Tue 13 (5).
    assert compute_deadline(opened_at=opened, hours=None, working_days=5, calendar=calendar) == (
        local(2026, 10, 13, 18, 0)
    )


def test_working_sunday_before_the_holidays(calendar: WorkingCalendar) -> None:
    # Opened Sat 19 Sep: Sun 20 Sep is a 调休 working day.
    opened = local(2026, 9, 19, 12, 0)
    assert compute_deadline(opened_at=opened, hours=None, working_days=1, calendar=calendar) == (
        local(2026, 9, 20, 18, 0)
    )


def test_local_day_not_utc_day(calendar: WorkingCalendar) -> None:
    # 20:00 UTC on Thursday is already Friday 04:00 in Shanghai: Friday is the day of opening.
    opened = datetime(2026, 3, 5, 20, 0, tzinfo=UTC)
    assert compute_deadline(opened_at=opened, hours=None, working_days=1, calendar=calendar) == (
        local(2026, 3, 9, 18, 0)
    )


def test_extra_holidays_and_workdays_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text(
        'timezone = "Asia/Shanghai"\nday_ends_at = "17:30"\n'
        'extra_holidays = [{ date = 2026-03-09, name = "city day off" }, 2026-03-10]\n'
        "extra_workdays = [2026-03-14]\n",
        encoding="utf-8",
    )
    calendar = load_calendar(path)
    assert calendar.day_ends_at == time(17, 30)
    assert not is_working_day(date(2026, 3, 9), calendar=calendar)
    assert is_working_day(date(2026, 3, 14), calendar=calendar)
    # Fri 6 Mar: Mon 9 and Tue 10 off, Wed 11 (1), Thu 12 (2), Fri 13 (3), Sat 14 worked (4).
    opened = local(2026, 3, 6, 10, 0)
    assert compute_deadline(opened_at=opened, hours=None, working_days=4, calendar=calendar) == (
        local(2026, 3, 14, 17, 30)
    )


def test_shipped_calendar_loads(calendar: WorkingCalendar) -> None:
    assert calendar.timezone == "Asia/Shanghai"
    assert calendar.day_ends_at == time(18, 0)


def test_outside_the_package_years_falls_back_to_monday_to_friday(
    calendar: WorkingCalendar,
) -> None:
    # chinesecalendar 1.11 has no data for 2030; Fri 4 Jan 2030 → Mon 7 Jan.
    opened = local(2030, 1, 4, 10, 0)
    assert compute_deadline(opened_at=opened, hours=None, working_days=1, calendar=calendar) == (
        local(2030, 1, 7, 18, 0)
    )
    assert not is_working_day(date(2003, 1, 4), calendar=calendar)  # a Saturday


@pytest.mark.parametrize(("hours", "working_days"), [(None, None), (2, 3), (-1, None), (None, 0)])
def test_bad_limits_are_refused(
    calendar: WorkingCalendar, hours: int | None, working_days: int | None
) -> None:
    with pytest.raises(ValueError):
        compute_deadline(
            opened_at=local(2026, 3, 6, 10, 0),
            hours=hours,
            working_days=working_days,
            calendar=calendar,
        )


def test_naive_opened_at_is_refused(calendar: WorkingCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        compute_deadline(
            opened_at=datetime(2026, 3, 6, 10, 0), hours=2, working_days=None, calendar=calendar
        )
