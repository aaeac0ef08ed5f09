"""GB/T 33358's two headline rates on the disclosure page (answered within 15 s, answered at all):
exact counts on crafted queue entries in a week of 2004 that no other test uses, rolled back
afterwards; and the page and its JSON, which carry counts and rates only."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from cases.models import QueueEntry, utcnow
from hotline.db import Database
from public_site import stats
from tests.support.privacy import shows_number

BEIJING = ZoneInfo("Asia/Shanghai")
CALLER = "+8613912345678"


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.session() as session:
        session.begin()
        try:
            yield session
        finally:
            session.rollback()


def call(at: datetime, *, result: str | None, wait: int | None, answered: bool) -> QueueEntry:
    return QueueEntry(
        call_sid=f"CA{uuid.uuid4().hex}",
        caller_number=CALLER,
        locale="zh-CN",
        reason="asked",
        enqueued_at=at,
        result=result,
        wait_seconds=wait,
        answered_at=at + timedelta(seconds=wait or 0) if answered else None,
        handled_seconds=60 if answered else None,
    )


def test_the_headline_rates_count_every_call_that_asked_for_a_person(session: Session) -> None:
    # Monday 1 March 2004, Beijing time; the last call is on Sunday night, local time.
    start = datetime(2004, 3, 1, tzinfo=BEIJING)
    session.add_all(
        [
            call(start + timedelta(hours=9), result="bridged", wait=4, answered=True),
            call(start + timedelta(hours=10), result="bridged", wait=15, answered=True),
            call(start + timedelta(hours=11), result="bridged", wait=50, answered=True),
            call(start + timedelta(hours=12), result="hangup", wait=70, answered=False),
            call(start + timedelta(hours=13), result="no_seat", wait=0, answered=False),
            call(start + timedelta(days=6, hours=23), result="bridged", wait=9, answered=True),
            # The Monday after: outside the week.
            call(start + timedelta(days=7, hours=1), result="bridged", wait=1, answered=True),
        ]
    )
    session.flush()

    figures = stats.answering(
        session,
        start=start.astimezone(UTC),
        end=(start + timedelta(weeks=1)).astimezone(UTC),
        zone=BEIJING,
    )

    assert figures == stats.Answering(offered=6, answered=4, answered_in_time=3)
    assert figures.in_time_rate == pytest.approx(3 / 6)
    assert figures.answered_rate == pytest.approx(4 / 6)
    assert figures.as_dict() == {
        "offered": 6,
        "answered": 4,
        "answered_within_15s": 3,
        "answered_within_15s_rate": pytest.approx(0.5),
        "answered_rate": pytest.approx(4 / 6),
        "answered_within_15s_target": 0.95,
        "answered_rate_target": 0.95,
    }


def test_no_calls_means_no_figure_rather_than_zero() -> None:
    assert stats.Answering().in_time_rate is None
    assert stats.Answering().answered_rate is None


def test_the_disclosure_page_and_its_json_show_the_two_rates_with_their_targets(
    client: FlaskClient, database: Database
) -> None:
    with database.session() as session, session.begin():
        session.add(call(utcnow(), result="bridged", wait=3, answered=True))
        session.add(call(utcnow(), result="hangup", wait=40, answered=False))
    # A week count no other test asks for: the cached figures are computed now, with the calls.
    figures = client.get("/disclosure.json?weeks=5").get_json()["answering"]
    assert figures["offered"] >= 2 and figures["answered"] >= 1
    assert (
        figures["answered_within_15s_rate"] == figures["answered_within_15s"] / figures["offered"]
    )
    assert figures["answered_rate"] == figures["answered"] / figures["offered"]
    assert figures["answered_within_15s_target"] == figures["answered_rate_target"] == 0.95

    page = client.get("/disclosure?weeks=5&lang=en-US").get_data(as_text=True)
    in_time = re.search(r'id="answered-in-time-rate"><strong>([\d.]+)%</strong>', page)
    answered = re.search(r'id="answered-rate"><strong>([\d.]+)%</strong>', page)
    assert in_time and float(in_time.group(1)) == round(
        figures["answered_within_15s_rate"] * 100, 1
    )
    assert answered and float(answered.group(1)) == round(figures["answered_rate"] * 100, 1)
    assert "within 15 seconds (target: at least 95%)" in page
    assert "(target: at least 95%)." in page
    # Counts only: no caller's number, whole or in part.
    assert not shows_number(page, CALLER)
    assert not shows_number(client.get("/disclosure.json?weeks=5").get_data(as_text=True), CALLER)

    chinese = client.get("/disclosure?weeks=5&lang=zh-CN").get_data(as_text=True)
    assert 'id="answered-in-time-rate"' in chinese
    # A department's own view has no such figure: calls are answered by the hotline.
    water = client.get("/disclosure?weeks=5&department=water").get_data(as_text=True)
    assert 'id="answering"' not in water
