"""并单 in the disclosure: contacts (every report) and problems (cases not merged into another)
are counted apart, and satisfaction is given per problem and per contact; the page, its chart
and the downloads show both.

The exact counts are made as in test_stats.py: crafted cases moved into a week of 2001 no other
test uses, figures for that week, and a rollback."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from cases import lifecycle, merging
from cases.access import Actor
from cases.models import Case, Role
from hotline.db import Database
from public_site import stats
from tests.public_site.test_public import chart_specs
from tests.public_site.test_stats import CALENDAR, NOW, backdate, monday, staff_of
from tests.support.calls import fresh_mobile_number
from tests.support.factories import make_case

WEEK = 30
WATER = staff_of("water")


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end: the crafted week stays empty."""
    with database.session() as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


def water_case(session: Session) -> Case:
    return make_case(
        session,
        department_code="water",
        category_code="water_supply",
        caller_number=fresh_mobile_number(),
    )


def problem_with_reports(session: Session, reports: int) -> tuple[Case, list[Case]]:
    """A case with `reports` repeat reports joined to it, as the routing job joins them."""
    problem = water_case(session)
    joined = []
    for _ in range(reports):
        report = water_case(session)
        merging.join(session, case=report, into=problem, actor="system", how="similar")
        joined.append(report)
    return problem, joined


def rate(session: Session, case: Case, score: int) -> None:
    lifecycle.rate(session, case=case, score=score, message_sid=None)


def test_contacts_and_problems_are_counted_apart_with_satisfaction_for_each(
    session: Session,
) -> None:
    start = monday(WEEK)
    # Three people report one burst main; each is told the outcome and rates it: 5, 4, 3.
    main, (second, third) = problem_with_reports(session, 2)
    lifecycle.resolve(session, case=main, actor=WATER, reply="已修复")
    for case, score in ((main, 5), (second, 4), (third, 3)):
        rate(session, case, score)
    # One person reports a leak and rates the reply 3.
    leak = water_case(session)
    lifecycle.resolve(session, case=leak, actor=WATER, reply="已修复")
    rate(session, leak, 3)
    # Two report low pressure; only the second rates, 4.
    pressure, (later,) = problem_with_reports(session, 1)
    lifecycle.resolve(session, case=pressure, actor=WATER, reply="已修复")
    rate(session, later, 4)
    for case in (main, second, third, leak, pressure, later):
        backdate(case, start + timedelta(hours=10))
    session.flush()

    figures = stats.disclosure(
        session,
        start=start.astimezone(UTC),
        end=(start + timedelta(weeks=1)).astimezone(UTC),
        now=NOW,
        calendar=CALENDAR,
    )
    counts = figures.cell("water", start.date())

    # Three problems for the department, not six cases: the volume and rates are per problem.
    assert counts.volume == 3 and counts.resolved == 3
    assert counts.contacts == 6
    # Per problem: the three are rated (low pressure by its second reporter); the burst main
    # (mean 4) and low pressure (4) count as satisfied, the leak (3) not.
    assert (counts.rated, counts.satisfied) == (3, 2)
    assert counts.satisfaction_rate == pytest.approx(2 / 3)
    # Per contact: five ratings, three of them 4 or 5.
    assert (counts.contacts_rated, counts.contacts_satisfied) == (5, 3)
    assert counts.contact_satisfaction_rate == pytest.approx(3 / 5)
    assert figures.grand_total() == counts
    # The new keys come after the old ones in the downloads.
    keys = list(counts.as_dict())
    assert keys[:11] == [
        "volume",
        "responded",
        "resolved",
        "due",
        "on_time",
        "rated",
        "satisfied",
        "response_rate",
        "resolution_rate",
        "on_time_rate",
        "satisfaction_rate",
    ]
    assert keys[11:] == [
        "contacts",
        "contacts_rated",
        "contacts_satisfied",
        "contact_satisfaction_rate",
    ]


def test_a_split_report_is_a_problem_of_its_own_again(session: Session) -> None:
    start = monday(WEEK + 2)
    desk = Actor(name="desk-test", role=Role.DISPATCHER)
    problem, (report,) = problem_with_reports(session, 1)
    merging.split(session, case=report, actor=desk)
    for case in (problem, report):
        backdate(case, start + timedelta(hours=10))
    session.flush()

    figures = stats.disclosure(
        session,
        start=start.astimezone(UTC),
        end=(start + timedelta(weeks=1)).astimezone(UTC),
        now=NOW,
        calendar=CALENDAR,
    )

    assert figures.cell("water", start.date()).volume == 2
    assert figures.cell("water", start.date()).contacts == 2


def test_the_page_chart_and_downloads_show_contacts_beside_problems(
    app: Flask, database: Database
) -> None:
    client: FlaskClient = app.test_client()
    with database.session() as session, session.begin():
        problem = make_case(session, caller_number=fresh_mobile_number())
        for _ in range(2):
            report = make_case(session, caller_number=fresh_mobile_number())
            merging.join(session, case=report, into=problem, actor="system", how="similar")

    # A week count no other test asks for: the cached figures are computed now.
    document = client.get("/disclosure.json?weeks=6&lang=en-US").get_json()
    table = client.get("/disclosure.csv?weeks=6&lang=en-US").get_data(as_text=True)
    page = client.get("/disclosure?weeks=6&lang=en-US").get_data(as_text=True)

    this_week = next(
        row
        for row in document["rows"]
        if row["department"] == "urban_mgmt" and row["week"] == document["weeks"][-1]
    )
    # This problem's two repeat reports are contacts, not cases of the department.
    assert this_week["contacts"] >= this_week["volume"] + 2
    total = document["total"]
    assert total["contacts"] == sum(row["contacts"] for row in document["rows"])
    assert total["volume"] == sum(row["volume"] for row in document["rows"])
    assert {"contacts_rated", "contacts_satisfied", "contact_satisfaction_rate"} <= set(total)
    rows = list(csv.DictReader(io.StringIO(table.removeprefix("\ufeff"))))
    assert sum(int(row["contacts"]) for row in rows) == total["contacts"]
    # The page's headline figures and chart.
    shown = re.search(
        r'id="contacts-count"><strong>(\d+)</strong>\s*reports \(contacts\) about (\d+)', page
    )
    assert shown and (int(shown.group(1)), int(shown.group(2))) == (
        total["contacts"],
        total["volume"],
    )
    assert 'id="problem-satisfaction"' in page and 'id="contact-satisfaction"' in page
    chart = chart_specs(page)["chart-contacts"]
    contacts, problems = (line["values"] for line in chart["series"])
    assert [line["name"] for line in chart["series"]] == ["Contacts", "Problems"]
    assert contacts[-1] >= problems[-1] + 2  # this week's two repeat reports
    assert "Satisfaction per contact" in page
