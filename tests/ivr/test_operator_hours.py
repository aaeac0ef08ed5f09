"""Operator hours, in city time ("24:00" ends the day), and their check at load."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ivr.prompts import parse_operator_hours
from ivr.queue_views import within_operator_hours


@pytest.mark.parametrize(
    ("hours", "utc", "open_now"),
    [
        (("00:00", "24:00"), datetime(2026, 12, 3, 15, 59, tzinfo=UTC), True),  # 23:59 city
        (("08:00", "20:00"), datetime(2026, 12, 3, 0, 0, tzinfo=UTC), True),  # 08:00 city
        (("08:00", "20:00"), datetime(2026, 12, 3, 12, 1, tzinfo=UTC), False),  # 20:01 city
        (("08:00", "20:00"), datetime(2026, 12, 2, 23, 59, tzinfo=UTC), False),  # 07:59 city
    ],
)
def test_operator_hours_are_read_in_city_time(
    hours: tuple[str, str], utc: datetime, open_now: bool
) -> None:
    assert within_operator_hours(hours, utc) is open_now


@pytest.mark.parametrize("value", [["20:00", "08:00"], ["8:00", "20:00"], ["00:00"], "always"])
def test_operator_hours_that_make_no_sense_are_refused_at_start(value: object) -> None:
    with pytest.raises(ValueError, match="operator_hours"):
        parse_operator_hours(value, Path("config/ivr.toml"))
