"""The direct-answer rate (当即解答率) on the disclosure page: exact counts on crafted cases in
weeks of 2002 that no other test uses, rolled back afterwards; and the page and downloads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from cases import knowledge_links
from cases.access import SYSTEM
from cases.models import Case
from hotline.db import Database
from public_site import stats
from tests.public_site.test_public import chart_specs
from tests.support.factories import make_case

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def monday(week: int) -> datetime:
    """Monday 00:00 Beijing time of ISO week `week` of 2002."""
    return datetime.combine(date.fromisocalendar(2002, week, 1), datetime.min.time(), BEIJING)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.session() as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


def consultation(session: Session, opened_at: datetime, *, answered: bool) -> Case:
    case = make_case(
        session,
        department_code="hotline_office",
        category_code="consultation",
        text="热线都管什么事",
        triage=True,
        opened_at=opened_at.astimezone(UTC),
    )
    if answered:
        knowledge_links.answer_at_once(
            session, case=case, article_id="hotline-service", actor=SYSTEM
        )
    return case


def test_the_rate_is_the_share_of_each_weeks_cases_answered_at_once(session: Session) -> None:
    first, second = monday(20), monday(21)
    for index in range(4):
        consultation(session, first + timedelta(hours=10), answered=index == 0)
    make_case(session, department_code="water", opened_at=first + timedelta(days=2))
    consultation(session, second + timedelta(hours=9), answered=True)
    # The Sunday before the range, Beijing time: not counted.
    consultation(session, first - timedelta(minutes=1), answered=True)
    session.flush()

    figures = stats.direct_answers(
        session, start=first.astimezone(UTC), end=(second + timedelta(weeks=1)), zone=BEIJING
    )

    assert figures.weeks == [first.date(), second.date()]
    assert (figures.opened[first.date()], figures.answered[first.date()]) == (5, 1)
    assert figures.rate(first.date()) == pytest.approx(1 / 5)
    assert figures.rate(second.date()) == 1.0
    assert (figures.total_opened, figures.total_answered) == (6, 2)
    assert figures.as_dict() == {
        "opened": 6,
        "answered_at_once": 2,
        "direct_answer_rate": pytest.approx(2 / 6),
    }


def test_a_week_without_cases_has_no_rate_rather_than_zero(session: Session) -> None:
    start = monday(30)
    figures = stats.direct_answers(
        session, start=start, end=start + timedelta(weeks=1), zone=BEIJING
    )
    assert figures.rate(start.date()) is None and figures.total_rate is None


def test_the_disclosure_page_and_its_json_show_the_direct_answer_rate(
    client: FlaskClient, database: Database
) -> None:
    with database.session() as session, session.begin():
        consultation(session, datetime.now(UTC), answered=True)
    # A week count no other test asks for: the cached figures are computed now, with the case.
    figures = client.get("/disclosure.json?weeks=7").get_json()["direct_answers"]
    assert set(figures) == {"opened", "answered_at_once", "direct_answer_rate"}
    assert figures["answered_at_once"] >= 1
    assert figures["direct_answer_rate"] == figures["answered_at_once"] / figures["opened"]

    page = client.get("/disclosure?weeks=7&lang=en-US").get_data(as_text=True)
    shown = re.search(r'id="direct-answer-rate"><strong>([\d.]+)%</strong>', page)
    assert shown and float(shown.group(1)) == round(figures["direct_answer_rate"] * 100, 1)
    chart = chart_specs(page)["chart-direct-answers"]
    assert chart["percent"] and [line["name"] for line in chart["series"]] == ["Direct-answer rate"]
    assert chart["series"][0]["values"][-1] > 0  # this week's, with the case answered at once
    # A department's own view has no such figure: these cases go to no department.
    water = client.get("/disclosure?weeks=7&department=water").get_data(as_text=True)
    assert 'id="direct-answers"' not in water
