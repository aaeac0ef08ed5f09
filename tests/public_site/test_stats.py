"""The disclosure figures (public_site.stats): exact counts on crafted cases, and the pure rules.

Each database test builds its cases inside one transaction, moves their timestamps into a week
of 2001 that no other test uses, computes the figures for that week, and rolls back: the
figures are exact because nothing else in the database falls into that week.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from cases import lifecycle
from cases.access import Actor
from cases.models import Case, CaseStatus, Role
from hotline.db import Database
from public_site import stats
from routing.deadlines import WorkingCalendar
from tests.support.factories import make_case

BEIJING = ZoneInfo("Asia/Shanghai")
# No city holidays: 2001 is before chinesecalendar's years, so Monday to Friday are working days.
CALENDAR = WorkingCalendar()
DESK = Actor(name="desk-test", role=Role.DISPATCHER)
# Long after every crafted week: what is due is due.
NOW = datetime(2001, 12, 31, tzinfo=UTC)


def staff_of(code: str) -> Actor:
    return Actor(name=f"{code}-test", role=Role.DEPARTMENT, department_code=code)


def monday(week: int) -> datetime:
    """Monday 00:00 Beijing time of ISO week `week` of 2001."""
    return datetime.combine(date.fromisocalendar(2001, week, 1), datetime.min.time(), BEIJING)


def figures_for(session: Session, *, week: int, weeks: int = 1) -> stats.Disclosure:
    start = monday(week)
    return stats.disclosure(
        session,
        start=start.astimezone(UTC),
        end=(start + timedelta(weeks=weeks)).astimezone(UTC),
        now=NOW,
        calendar=CALENDAR,
    )


def backdate(case: Case, at: datetime, *, step: timedelta = timedelta(minutes=1)) -> None:
    """Move the case and its audit trail to `at`, keeping the events in order, `step` apart."""
    case.opened_at = case.routed_at = case.assigned_at = at
    for index, event in enumerate(case.events):
        event.created_at = at + index * step


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end: crafted weeks stay empty for reruns."""
    with database.session() as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


def test_figures_for_one_department_and_week_are_exact(session: Session) -> None:
    week = 10
    start = monday(week)
    water = staff_of("water")
    # All assigned on Monday 10:00; the response window closes Tuesday 18:00.
    assigned = start + timedelta(hours=10)
    deadline = assigned + timedelta(hours=24)

    def water_case() -> Case:
        return make_case(session, department_code="water", category_code="water_supply")

    # Accepted in 2 h, resolved on time, rated 5.
    model = water_case()
    lifecycle.resolve(session, case=model, actor=water, reply="已修复")
    lifecycle.rate(session, case=model, score=5, message_sid=None)
    # Accepted on Thursday (late), resolved after its deadline, rated 3.
    late = water_case()
    lifecycle.resolve(session, case=late, actor=water, reply="已修复")
    lifecycle.rate(session, case=late, score=3, message_sid=None)
    # Never accepted, and past its deadline.
    ignored = water_case()
    # Accepted in time, still being worked on, deadline not reached by NOW.
    working = water_case()
    lifecycle.accept(session, case=working, actor=water)
    # Resolved in time, then reopened by a rating of 1: rated, not satisfied, not resolved.
    reopened = water_case()
    lifecycle.resolve(session, case=reopened, actor=water, reply="已修复")
    outcome = lifecycle.rate(session, case=reopened, score=1, message_sid=None)
    assert outcome.reopened

    for case in (model, late, ignored, working, reopened):
        backdate(case, assigned)
        case.deadline_at = deadline
    model.accepted_at, model.resolved_at = (
        assigned + timedelta(hours=2),
        assigned + timedelta(hours=5),
    )
    late.accepted_at = start + timedelta(days=3, hours=9)
    late.resolved_at = start + timedelta(days=3, hours=10)
    working.accepted_at = assigned + timedelta(hours=30)  # Tuesday 16:00: in time
    working.deadline_at = NOW + timedelta(days=1)
    reopened.accepted_at = assigned + timedelta(hours=1)
    reopened.deadline_at = NOW + timedelta(days=1)
    session.flush()

    figures = figures_for(session, week=week)

    expected = stats.Counts(
        volume=5,
        responded=3,
        resolved=2,
        due=3,
        on_time=1,
        rated=3,
        satisfied=1,
        # One reporter each (并单): the contacts and their ratings are the cases' own.
        contacts=5,
        contacts_rated=3,
        contacts_satisfied=1,
    )
    assert figures.weeks == [start.date()]
    assert figures.cell("water", start.date()) == expected
    assert figures.grand_total() == expected
    assert expected.response_rate == pytest.approx(3 / 5)
    assert expected.resolution_rate == pytest.approx(2 / 5)
    assert expected.on_time_rate == pytest.approx(1 / 3)
    assert expected.satisfaction_rate == pytest.approx(1 / 3)


def test_a_transferred_case_counts_once_for_the_department_first_asked(
    session: Session,
) -> None:
    week = 12
    start = monday(week)
    case = make_case(session, department_code="urban_mgmt", category_code="sanitation")
    lifecycle.accept(session, case=case, actor=staff_of("urban_mgmt"))
    lifecycle.transfer(
        session,
        case=case,
        actor=staff_of("urban_mgmt"),
        department_code="housing",
        reason="路面塌陷归住建",
    )
    lifecycle.accept(session, case=case, actor=staff_of("housing"))
    backdate(case, start + timedelta(hours=9))
    case.accepted_at = start + timedelta(hours=10)
    session.flush()

    figures = figures_for(session, week=week)

    assert figures.cell("urban_mgmt", start.date()).volume == 1
    assert figures.cell("urban_mgmt", start.date()).responded == 1
    assert figures.cell("housing", start.date()) == stats.Counts()
    assert figures.grand_total().volume == 1


def test_a_send_back_moves_the_case_to_the_department_the_ruling_names(
    session: Session,
) -> None:
    week = 14
    start = monday(week)
    case = make_case(session, department_code="market", category_code="consumer_rights")
    lifecycle.send_back(session, case=case, actor=staff_of("market"), reason="不是我们的事")
    lifecycle.rule_on_send_back(
        session,
        case=case,
        actor=DESK,
        department_code="transport",
        ruling="出租车问题，交通运输局办理",
        category_code="transport",
    )
    # Routed on Friday, sent back on Saturday, ruled on the next Monday: the next ISO week.
    backdate(case, start + timedelta(days=4, hours=10), step=timedelta(days=1, hours=12))
    session.flush()
    assert [event.kind for event in case.events][:3] == ["routed", "sent_back", "ruling"]
    assert stats.week_start(case.events[2].created_at, zone=BEIJING) == monday(week + 1).date()

    figures = figures_for(session, week=week, weeks=2)

    assert figures.department_total("market") == stats.Counts()
    assert figures.cell("transport", monday(week).date()) == stats.Counts()
    assert figures.cell("transport", monday(week + 1).date()).volume == 1


def test_a_triaged_case_counts_from_its_triage_and_the_desk_is_not_listed(
    session: Session,
) -> None:
    week = 16
    start = monday(week)
    case = make_case(session, department_code="hotline_office", category_code="other", triage=True)
    lifecycle.triage(
        session,
        case=case,
        actor=DESK,
        category_code="noise_pollution",
        department_code="environment",
        urgency="normal",
        deadline_at=start + timedelta(days=3),
    )
    backdate(case, start + timedelta(hours=11))
    session.flush()

    figures = figures_for(session, week=week)

    assert "hotline_office" not in figures.departments
    assert "leadership" not in figures.departments
    assert "environment" in figures.departments
    assert figures.cell("environment", start.date()).volume == 1
    assert figures.grand_total().volume == 1


def test_only_cases_first_assigned_inside_the_range_are_counted(session: Session) -> None:
    week = 18
    start = monday(week)
    # First assigned on the Sunday before the range (Beijing time), transferred inside it.
    before = make_case(session, department_code="power", category_code="power_supply")
    lifecycle.transfer(
        session, case=before, actor=staff_of("power"), department_code="housing", reason="线路归属"
    )
    backdate(before, start - timedelta(minutes=30), step=timedelta(hours=1))
    # Assigned at 23:59 Beijing time on the range's last day: inside.
    inside = make_case(session, department_code="power", category_code="power_supply")
    backdate(inside, start + timedelta(days=7) - timedelta(minutes=1))
    # Monday 00:00 of the next week: outside.
    after = make_case(session, department_code="power", category_code="power_supply")
    backdate(after, start + timedelta(days=7))
    session.flush()

    figures = figures_for(session, week=week)

    assert figures.cell("power", start.date()).volume == 1
    assert figures.grand_total().volume == 1


def test_response_is_by_the_end_of_the_next_working_day() -> None:
    # Assigned on Friday 2001-03-09 at 10:00 Beijing time: the window closes on Monday at 18:00.
    assigned = datetime(2001, 3, 9, 10, 0, tzinfo=BEIJING)

    def responded(accepted_at: datetime | None) -> int:
        return stats.case_counts(
            assigned_at=assigned,
            status=CaseStatus.ACCEPTED,
            accepted_at=accepted_at,
            resolved_at=None,
            deadline_at=None,
            rating=None,
            now=NOW,
            calendar=CALENDAR,
        ).responded

    assert responded(datetime(2001, 3, 12, 18, 0, tzinfo=BEIJING)) == 1
    assert responded(datetime(2001, 3, 12, 18, 1, tzinfo=BEIJING)) == 0
    assert responded(None) == 0


def test_a_case_inside_its_time_limit_is_neither_late_nor_on_time() -> None:
    counts = stats.case_counts(
        assigned_at=NOW - timedelta(hours=2),
        status=CaseStatus.ACCEPTED,
        accepted_at=NOW - timedelta(hours=1),
        resolved_at=None,
        deadline_at=NOW + timedelta(hours=22),
        rating=None,
        now=NOW,
        calendar=CALENDAR,
    )
    assert (counts.due, counts.on_time, counts.resolved) == (0, 0, 0)
    assert counts.on_time_rate is None


def test_first_kept_assignment_skips_a_department_that_sent_the_case_back() -> None:
    t = [datetime(2001, 1, 1, tzinfo=UTC) + timedelta(hours=hour) for hour in range(5)]
    events: list[tuple[str, dict[str, Any], datetime]] = [
        ("routed", {"department": "market", "needs_triage": False}, t[0]),
        ("sent_back", {"by": "market"}, t[1]),
        ("ruling", {"to_department": "transport"}, t[2]),
        ("transferred", {"to_department": "housing"}, t[3]),
        ("sent_back", {"by": "housing"}, t[4]),
    ]
    assert stats.first_kept_assignment(events) == stats.Assignment("transport", t[2])
    triage: list[tuple[str, dict[str, Any], datetime]] = [
        ("routed", {"department": "hotline_office", "needs_triage": True}, t[0])
    ]
    assert stats.first_kept_assignment(triage) is None
    triaged = [*triage, ("triaged", {"department": "education"}, t[1])]
    assert stats.first_kept_assignment(triaged) == stats.Assignment("education", t[1])


def test_weeks_are_iso_weeks_on_beijing_time() -> None:
    # Sunday 17:00 UTC is already Monday 01:00 in Beijing.
    sunday_evening_utc = datetime(2001, 3, 11, 17, 0, tzinfo=UTC)
    assert stats.week_start(sunday_evening_utc, zone=BEIJING) == date(2001, 3, 12)
    assert stats.week_label(date(2001, 3, 12)) == "2001-W11"
    # The ISO year differs from the calendar year at the turn of some years.
    assert stats.week_label(date(2004, 12, 27)) == "2004-W53"
    start, end = stats.last_weeks(
        now=datetime(2001, 3, 14, 4, 0, tzinfo=UTC), count=3, zone=BEIJING
    )
    assert start == datetime(2001, 2, 26, tzinfo=BEIJING)
    assert stats.weeks_between(start, end, zone=BEIJING) == [
        date(2001, 2, 26),
        date(2001, 3, 5),
        date(2001, 3, 12),
    ]
    with pytest.raises(ValueError, match="at least 1"):
        stats.last_weeks(now=end, count=0, zone=BEIJING)


def test_rates_without_a_denominator_are_none_and_counts_add_up() -> None:
    empty = stats.Counts()
    assert (empty.response_rate, empty.resolution_rate) == (None, None)
    assert (empty.on_time_rate, empty.satisfaction_rate) == (None, None)
    one = stats.Counts(volume=2, responded=1, resolved=1, due=1, on_time=1, rated=1, satisfied=0)
    assert stats.total([one, one, empty]) == stats.Counts(
        volume=4, responded=2, resolved=2, due=2, on_time=2, rated=2, satisfied=0
    )
    assert one.as_dict()["satisfaction_rate"] == 0.0
    assert one.as_dict()["on_time_rate"] == 1.0


def test_naive_datetimes_are_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        stats.disclosure(
            session,
            start=datetime(2001, 1, 1),
            end=datetime(2001, 1, 8),
            now=NOW,
            calendar=CALENDAR,
        )
