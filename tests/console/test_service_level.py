"""The supervisors' service-level page: who may open it, and that it shows the domain's figures
for today and the last 14 days, with its charts (drawn by our own script) and tables."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from cases import service_level
from cases.models import CallbackAttempt, CallbackTask, QueueEntry, utcnow
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.public_site.test_public import chart_specs
from tests.support.privacy import shows_number
from tests.support.staff import Console

CALLER = "+8613700001234"


def add_calls(database: Database) -> None:
    """Two calls that asked for a person a moment ago (both over), and a callback made."""
    now = utcnow()
    with database.session() as session, session.begin():
        session.add_all(
            [
                QueueEntry(
                    call_sid=f"CA{uuid.uuid4().hex}",
                    caller_number=CALLER,
                    locale="zh-CN",
                    reason="asked",
                    enqueued_at=now - timedelta(seconds=30),
                    result="bridged",
                    wait_seconds=6,
                    answered_at=now - timedelta(seconds=24),
                    handled_seconds=20,
                ),
                QueueEntry(
                    call_sid=f"CA{uuid.uuid4().hex}",
                    caller_number=CALLER,
                    locale="zh-CN",
                    reason="asked",
                    enqueued_at=now - timedelta(seconds=20),
                    result="hangup",
                    wait_seconds=18,
                ),
            ]
        )
        task = CallbackTask(
            caller_number=f"+86137{uuid.uuid4().int % 10**8:08d}",
            locale="zh-CN",
            reason="hung_up_in_queue",
            created_at=now - timedelta(seconds=10),
            status="done",
            attempts=1,
        )
        session.add(task)
        session.flush()
        session.add(
            CallbackAttempt(
                task_id=task.id, number=1, operator="op", started_at=now, outcome="completed"
            )
        )


@pytest.mark.parametrize(
    ("role", "department"),
    [("supervisor", None), ("dispatcher", None), ("admin", None), ("department", "hotline_office")],
)
def test_supervisors_and_the_desk_see_today_and_the_last_14_days(
    app: Flask,
    database: Database,
    signed_in: Callable[..., Console],
    role: str,
    department: str | None,
) -> None:
    add_calls(database)
    browser = signed_in(role, department)

    response = browser.get("/console/service-level")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert 'id="nav-service-level"' in page
    # Six charts (rates, waits, calls; today and the last days), drawn by our own script.
    charts = chart_specs(page)
    assert len(charts) == 6
    assert re.findall(r'<script src="([^"]+)"', page) == ["/static/charts.js"]
    assert "script-src 'self';" in response.headers["Content-Security-Policy"]
    # The 95% and 15 s lines, twice each.
    targets = sorted(spec["target"]["value"] for spec in charts.values() if spec["target"])
    assert targets == [0.95, 0.95, 15, 15]
    # The page's figures are the domain's (nothing else writes while the test runs).
    zone = ZoneInfo(wiring_of(app).router.calendar.timezone)
    with database.session() as session:
        hours = service_level.today_by_hour(session, now=utcnow(), zone=zone)
        days = service_level.last_days(session, now=utcnow(), zone=zone, days=14)
    today = service_level.total(hours)
    assert today.offered >= 2 and today.callbacks_made >= 1
    offered = re.search(r'id="today-offered">(\d+)<', page)
    assert offered and int(offered.group(1)) == today.offered
    level = re.search(r'id="today-service-level">([\d.]+)%<', page)
    assert level and today.service_level is not None
    assert float(level.group(1)) == round(today.service_level * 100, 1)
    # Today from midnight to this hour, on the hotline's clock; the last 14 days, today last.
    hour_rows = re.findall(r'<tr[^>]*><th scope="row">(\d\d:00)</th>', page)
    assert hour_rows == [f"{hour.start:%H}:00" for hour in hours if hour.start]
    day_rows = re.findall(r'<tr[^>]*><th scope="row">(\d\d-\d\d)</th>', page)
    assert day_rows == [f"{day.start:%m-%d}" for day in days if day.start]
    assert len(day_rows) == 14
    assert not shows_number(page, CALLER)  # counts, never callers


@pytest.mark.parametrize(("role", "department"), [("department", "water"), ("operator", None)])
def test_department_staff_and_operators_are_refused(
    signed_in: Callable[..., Console], role: str, department: str | None
) -> None:
    browser = signed_in(role, department)

    assert browser.get("/console/service-level").status_code == 403
    home = browser.get("/console/")
    assert 'id="nav-service-level"' not in home.get_data(as_text=True)


def test_signed_out_visitors_are_sent_to_sign_in(console: Callable[[], Console]) -> None:
    response = console().get("/console/service-level")
    assert response.status_code == 302 and response.location.startswith("/console/login")
