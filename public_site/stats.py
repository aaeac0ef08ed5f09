"""The disclosure figures: per department and ISO week, the volume and the hotline's rates.

These are the "three rates" Chinese 12345 lines publish (响应率, 解决率, 满意率) plus the on-time
rate, computed from the audit trail and the cases' state. Everything here is a plain function of
a session (or of plain values) and a date range; nothing reads Flask, and no figure carries
personal data: only counts per department and week leave this module.

Definitions (all times are compared in UTC; weeks are ISO weeks, Monday to Sunday, on the
calendar's local time, Asia/Shanghai by default):

- **Assignment:** an audit event that puts a case in a handling department's inbox: ``routed``
  (unless routing sent it to triage), ``triaged``, ``ruling`` or ``transferred``. The dispatch
  desk and leadership are not handling departments: they triage and supervise.
- **The case's department and week:** the case's *first kept assignment*: its first assignment,
  unless that department sent the case back (退单), in which case the next assignment counts, and
  so on. That department is the first asked (首问): under first-responsible it answers for the
  outcome even if it transfers the case on, so each case is counted exactly once, for that
  department, in the ISO week of that assignment. A rightful send-back is the routing's mistake,
  not the department's, so it does not count against the department that sent it back. A case
  still waiting for the desk's ruling is counted once it is ruled on.
- **Volume:** the number of such cases.
- **Response rate (响应率):** the share of the volume accepted within one working day, that is
  by the end of the working day after the day of assignment (``day_ends_at`` local time, on the
  same working-day calendar as the deadlines).
- **Resolution rate (解决率):** the share of the volume now resolved or closed. A case reopened by
  a low rating is not resolved until its department answers again.
- **On-time rate:** of the cases that are due (resolved, or past their deadline), the share
  resolved by their deadline. A case still inside its time limit is neither late nor on time.
- **Contacts and problems (并单):** a report that repeats an open case joins it as a co-reporter
  (``cases.merging``), so one problem may come from several contacts. The volume and every rate
  above count problems: the cases not merged into another, under the department and week of
  their first kept assignment. ``contacts`` counts, for the same problems, every report: the
  case itself and the reports merged into it.
- **Satisfaction (满意率):** per problem, of the problems rated by at least one of their
  reporters, the share whose reporters' ratings average 4 or more (a problem counts once,
  however many reported it; for a problem with one reporter, its rating is 4 or 5). Per
  contact, of every rating given (each reporter rates on their own), the share of 4 or 5.
- **Answering (GB/T 33358):** of the calls that asked for a person in the range, the share
  answered within 15 seconds and the share answered at all (``cases.service_level``).

A rate with nothing to divide by is None ("no figure"), never 0%.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from statistics import mean
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cases import service_level
from cases.access import DISPATCH_DESK, LEADERSHIP
from cases.models import Case, CaseEvent, CaseStatus, Department
from routing.deadlines import WorkingCalendar, compute_deadline

ASSIGNMENT_KINDS = ("routed", "triaged", "ruling", "transferred")
SEND_BACK_KIND = "sent_back"
NOT_HANDLING = frozenset({DISPATCH_DESK, LEADERSHIP})
RESPONSE_WORKING_DAYS = 1
SATISFIED_AT_OR_ABOVE = 4
DONE_STATUSES = frozenset({CaseStatus.RESOLVED, CaseStatus.CLOSED})


@dataclass(frozen=True)
class Counts:
    """What the rates are made of, for one department and week (or any sum of them)."""

    volume: int = 0
    responded: int = 0
    resolved: int = 0
    due: int = 0
    on_time: int = 0
    rated: int = 0
    satisfied: int = 0
    # 并单: every report of these problems, and the ratings each reporter gave.
    contacts: int = 0
    contacts_rated: int = 0
    contacts_satisfied: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            **{
                field.name: getattr(self, field.name) + getattr(other, field.name)
                for field in fields(self)
            }
        )

    @property
    def response_rate(self) -> float | None:
        """Share of the volume accepted within one working day."""
        return _share(self.responded, self.volume)

    @property
    def resolution_rate(self) -> float | None:
        """Share of the volume resolved or closed."""
        return _share(self.resolved, self.volume)

    @property
    def on_time_rate(self) -> float | None:
        """Share of the due cases resolved by their deadline."""
        return _share(self.on_time, self.due)

    @property
    def satisfaction_rate(self) -> float | None:
        """Share of the rated problems whose reporters' ratings average 4 or more."""
        return _share(self.satisfied, self.rated)

    @property
    def contact_satisfaction_rate(self) -> float | None:
        """Share of every rating given (each reporter's own) that is 4 or 5."""
        return _share(self.contacts_satisfied, self.contacts_rated)

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rates as plain data, for the JSON and CSV downloads; the keys
        added for contacts come last, so the older columns keep their places."""
        older = [
            name for name in (field.name for field in fields(self)) if name not in CONTACT_KEYS
        ]
        return {
            **{name: getattr(self, name) for name in older},
            "response_rate": self.response_rate,
            "resolution_rate": self.resolution_rate,
            "on_time_rate": self.on_time_rate,
            "satisfaction_rate": self.satisfaction_rate,
            **{name: getattr(self, name) for name in CONTACT_KEYS},
            "contact_satisfaction_rate": self.contact_satisfaction_rate,
        }


CONTACT_KEYS = ("contacts", "contacts_rated", "contacts_satisfied")


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def total(counts: Iterable[Counts]) -> Counts:
    """The sum of several departments' or weeks' counts."""
    result = Counts()
    for item in counts:
        result += item
    return result


@dataclass(frozen=True)
class Assignment:
    """A case's first kept assignment: the department that answers for it, and since when."""

    department_code: str
    at: datetime


def _assigned_department(kind: str, data: dict[str, Any]) -> str | None:
    """The handling department an audit event assigned the case to, if it is an assignment."""
    if kind == "routed":
        department = None if data.get("needs_triage") else data.get("department")
    elif kind == "triaged":
        department = data.get("department")
    elif kind in ("ruling", "transferred"):
        department = data.get("to_department")
    else:
        return None
    if not isinstance(department, str) or department in NOT_HANDLING:
        return None
    return department


def first_kept_assignment(
    events: Iterable[tuple[str, dict[str, Any], datetime]],
) -> Assignment | None:
    """From one case's (kind, data, created_at) events in order: its first kept assignment."""
    kept: Assignment | None = None
    for kind, data, created_at in events:
        if kind == SEND_BACK_KIND:
            if kept is not None and data.get("by") == kept.department_code:
                kept = None
            continue
        department = _assigned_department(kind, data)
        if department is not None and kept is None:
            kept = Assignment(department_code=department, at=created_at)
    return kept


def case_counts(
    *,
    assigned_at: datetime,
    status: str,
    accepted_at: datetime | None,
    resolved_at: datetime | None,
    deadline_at: datetime | None,
    rating: int | None,
    now: datetime,
    calendar: WorkingCalendar,
    co_reporter_ratings: Sequence[int | None] = (),
) -> Counts:
    """What one problem (a case not merged into another) adds to its department's week, with
    the ratings of the reports merged into it (see the module docstring)."""
    response_due = compute_deadline(
        opened_at=assigned_at,
        hours=None,
        working_days=RESPONSE_WORKING_DAYS,
        calendar=calendar,
    )
    done = status in DONE_STATUSES
    on_time = (
        done and resolved_at is not None and (deadline_at is None or resolved_at <= deadline_at)
    )
    due = done or (deadline_at is not None and deadline_at <= now)
    ratings = [score for score in (rating, *co_reporter_ratings) if score is not None]
    return Counts(
        volume=1,
        responded=int(accepted_at is not None and accepted_at <= response_due),
        resolved=int(done),
        due=int(due),
        on_time=int(on_time),
        rated=int(bool(ratings)),
        satisfied=int(bool(ratings) and mean(ratings) >= SATISFIED_AT_OR_ABOVE),
        contacts=1 + len(co_reporter_ratings),
        contacts_rated=len(ratings),
        contacts_satisfied=sum(score >= SATISFIED_AT_OR_ABOVE for score in ratings),
    )


def week_start(moment: datetime, *, zone: ZoneInfo) -> date:
    """The Monday (local date) of the ISO week a moment falls in."""
    local_day = moment.astimezone(zone).date()
    return local_day - timedelta(days=local_day.weekday())


def week_label(monday: date) -> str:
    """The ISO week's name, such as 2024-W09."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def last_weeks(*, now: datetime, count: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range from the Monday that starts the `count`-th last ISO week (this one included)
    to `now`, as aware UTC datetimes."""
    if count < 1:
        raise ValueError("count must be at least 1")
    first = week_start(now, zone=zone) - timedelta(weeks=count - 1)
    return datetime.combine(first, time(0), tzinfo=zone).astimezone(UTC), now


def weeks_between(start: datetime, end: datetime, *, zone: ZoneInfo) -> list[date]:
    """The Mondays of the ISO weeks that overlap [start, end)."""
    if end <= start:
        return []
    monday = week_start(start, zone=zone)
    last = week_start(end - timedelta(microseconds=1), zone=zone)
    weeks = []
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(weeks=1)
    return weeks


def _assigned_between(start: datetime, end: datetime) -> Select[Any]:
    """SELECT of the ids of the cases with an assignment event in [start, end)."""
    return select(CaseEvent.case_id).where(
        CaseEvent.kind.in_(ASSIGNMENT_KINDS),
        CaseEvent.created_at >= start,
        CaseEvent.created_at < end,
    )


def first_assignments(session: Session, *, start: datetime, end: datetime) -> dict[int, Assignment]:
    """Case id to first kept assignment, for the cases whose first kept assignment (as the audit
    trail stood at `end`) falls in [start, end)."""
    touched = _assigned_between(start, end)
    rows = session.execute(
        select(CaseEvent.case_id, CaseEvent.kind, CaseEvent.data, CaseEvent.created_at)
        .where(
            CaseEvent.case_id.in_(touched),
            CaseEvent.kind.in_((*ASSIGNMENT_KINDS, SEND_BACK_KIND)),
            # Events before `start` matter: they decide whether an assignment is the first.
            CaseEvent.created_at < end,
        )
        .order_by(CaseEvent.case_id, CaseEvent.created_at, CaseEvent.id)
    )
    assignments: dict[int, Assignment] = {}
    for case_id, events in _grouped(rows):
        assignment = first_kept_assignment(events)
        if assignment is not None and start <= assignment.at < end:
            assignments[case_id] = assignment
    return assignments


def _grouped(
    rows: Iterable[Any],
) -> Iterator[tuple[int, list[tuple[str, dict[str, Any], datetime]]]]:
    """Rows ordered by case id, grouped into each case's list of (kind, data, created_at)."""
    current: int | None = None
    events: list[tuple[str, dict[str, Any], datetime]] = []
    for case_id, kind, data, created_at in rows:
        if case_id != current:
            if current is not None:
                yield current, events
            current, events = case_id, []
        events.append((kind, data or {}, created_at))
    if current is not None:
        yield current, events


@dataclass(frozen=True)
class Disclosure:
    """The figures for a range: one Counts per handling department and ISO week, zeros
    included, so that tables and charts have no gaps."""

    start: datetime
    end: datetime
    weeks: list[date]
    departments: list[str]
    counts: dict[tuple[str, date], Counts]

    def cell(self, department_code: str, monday: date) -> Counts:
        """One department's counts for one week."""
        return self.counts.get((department_code, monday), Counts())

    def department_total(self, department_code: str) -> Counts:
        """One department's counts over the whole range."""
        return total(self.cell(department_code, monday) for monday in self.weeks)

    def week_total(self, monday: date) -> Counts:
        """All departments' counts for one week."""
        return total(self.cell(code, monday) for code in self.departments)

    def grand_total(self) -> Counts:
        """All departments over the whole range."""
        return total(self.counts.values())


def handling_departments(session: Session) -> list[str]:
    """The codes of the departments that handle cases (not the desk, not leadership)."""
    codes = session.scalars(select(Department.code).order_by(Department.code))
    return [code for code in codes if code not in NOT_HANDLING]


def _co_reporter_ratings(session: Session, *, problems: Select[Any]) -> dict[int, list[int | None]]:
    """Case id to the ratings (None: not rated) of the reports merged into it, for the cases
    `problems` selects."""
    ratings: dict[int, list[int | None]] = {}
    rows = session.execute(
        select(Case.merged_into_id, Case.rating)
        .where(Case.merged_into_id.in_(problems))
        .order_by(Case.merged_into_id, Case.id)
    )
    for into_id, rating in rows:
        if into_id is not None:  # always, by the query; said for the type checker
            ratings.setdefault(into_id, []).append(rating)
    return ratings


def disclosure(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
    calendar: WorkingCalendar,
) -> Disclosure:
    """The disclosure figures for the cases first assigned in [start, end), as of `now`."""
    if start.tzinfo is None or end.tzinfo is None or now.tzinfo is None:
        raise ValueError("start, end and now must be timezone-aware")
    zone = ZoneInfo(calendar.timezone)
    assignments = first_assignments(session, start=start, end=end)
    touched = _assigned_between(start, end)
    # A report merged into another case is a contact of that problem, not a problem of its own.
    cases = session.execute(
        select(
            Case.id, Case.status, Case.accepted_at, Case.resolved_at, Case.deadline_at, Case.rating
        ).where(Case.id.in_(touched), Case.merged_into_id.is_(None))
    )
    co_reporter_ratings = _co_reporter_ratings(session, problems=touched)
    departments = handling_departments(session)
    counts: dict[tuple[str, date], Counts] = {}
    for case_id, status, accepted_at, resolved_at, deadline_at, rating in cases:
        assignment = assignments.get(case_id)
        if assignment is None:
            continue
        key = (assignment.department_code, week_start(assignment.at, zone=zone))
        counts[key] = counts.get(key, Counts()) + case_counts(
            assigned_at=assignment.at,
            status=status,
            accepted_at=accepted_at,
            resolved_at=resolved_at,
            deadline_at=deadline_at,
            rating=rating,
            now=now,
            calendar=calendar,
            co_reporter_ratings=co_reporter_ratings.get(case_id, ()),
        )
    # A department removed from the directory keeps its past cases in the figures.
    departments += sorted({code for code, _ in counts} - set(departments))
    return Disclosure(
        start=start,
        end=end,
        weeks=weeks_between(start, end, zone=zone),
        departments=departments,
        counts=counts,
    )


# --- answered at once ---------------------------------------------------------------------

ANSWERED_AT_ONCE_KIND = "answered_at_once"


@dataclass(frozen=True)
class DirectAnswers:
    """The direct-answer rate (当即解答率): of the cases opened in a range, the share the
    hotline answered at once from its knowledge base (closed by an ``answered_at_once``
    event), per ISO week of opening."""

    weeks: list[date]
    opened: dict[date, int]
    answered: dict[date, int]

    def rate(self, monday: date) -> float | None:
        """The share answered at once of one week's cases."""
        return _share(self.answered.get(monday, 0), self.opened.get(monday, 0))

    @property
    def total_opened(self) -> int:
        """Every case opened in the range."""
        return sum(self.opened.values())

    @property
    def total_answered(self) -> int:
        """The cases of the range answered at once."""
        return sum(self.answered.values())

    @property
    def total_rate(self) -> float | None:
        """The share answered at once over the whole range."""
        return _share(self.total_answered, self.total_opened)

    def as_dict(self) -> dict[str, Any]:
        """The counts and the rate over the range, for the downloads."""
        return {
            "opened": self.total_opened,
            "answered_at_once": self.total_answered,
            "direct_answer_rate": self.total_rate,
        }


def direct_answers(
    session: Session, *, start: datetime, end: datetime, zone: ZoneInfo
) -> DirectAnswers:
    """The direct-answer figures for the cases opened in [start, end)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    in_range = (Case.opened_at >= start, Case.opened_at < end)
    answered_ids = set(
        session.scalars(
            select(CaseEvent.case_id)
            .join(Case, Case.id == CaseEvent.case_id)
            .where(CaseEvent.kind == ANSWERED_AT_ONCE_KIND, *in_range)
        )
    )
    opened: dict[date, int] = {}
    answered: dict[date, int] = {}
    for case_id, opened_at in session.execute(select(Case.id, Case.opened_at).where(*in_range)):
        week = week_start(opened_at, zone=zone)
        opened[week] = opened.get(week, 0) + 1
        if case_id in answered_ids:
            answered[week] = answered.get(week, 0) + 1
    return DirectAnswers(
        weeks=weeks_between(start, end, zone=zone), opened=opened, answered=answered
    )


# --- answering the phone ------------------------------------------------------------------


@dataclass(frozen=True)
class Answering:
    """GB/T 33358's two headline rates over a range: of the calls that asked for a person
    (`cases.service_level` says what counts), the share a person answered within 15 seconds
    and the share answered at all. Three counts, nothing about any caller."""

    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0

    within_seconds = service_level.ANSWER_WITHIN_SECONDS
    in_time_target = service_level.SERVICE_LEVEL_TARGET
    answered_target = service_level.ANSWER_RATE_TARGET

    @property
    def in_time_rate(self) -> float | None:
        """Share of the calls offered that a person answered within 15 seconds."""
        return _share(self.answered_in_time, self.offered)

    @property
    def answered_rate(self) -> float | None:
        """Share of the calls offered that a person answered."""
        return _share(self.answered, self.offered)

    def as_dict(self) -> dict[str, Any]:
        """The counts, the rates and their targets, for the downloads."""
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_within_15s": self.answered_in_time,
            "answered_within_15s_rate": self.in_time_rate,
            "answered_rate": self.answered_rate,
            "answered_within_15s_target": self.in_time_target,
            "answered_rate_target": self.answered_target,
        }


def answering(session: Session, *, start: datetime, end: datetime, zone: ZoneInfo) -> Answering:
    """The headline answering rates for the calls that asked for a person in [start, end)."""
    figures = service_level.total(
        service_level.service_level(
            session, start=start, end=end, zone=zone, resolution=service_level.Resolution.DAY
        )
    )
    return Answering(
        offered=figures.offered,
        answered=figures.answered,
        answered_in_time=figures.answered_in_time,
    )
