"""The authorisation matrix: staff of one department get 403 or 404 on every console route
that lists, opens, plays or acts on another department's case, and never see it in a list.

The routes come from the app's URL map, so a route added later is covered without touching
this file; a route with a parameter the matrix does not know fails loudly instead of being
skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.routing import Rule

from cases import lifecycle
from cases.access import SYSTEM
from cases.models import Case, CaseEvent, Delivery, utcnow
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.support.factories import make_case
from tests.support.staff import Account, Console, store_recording

OWN = "urban_mgmt"
OTHER = "water"
# Every field any console form takes, filled in plausibly: a refusal must come from the
# authorisation, not from a form that could not be read.
FORM_DATA = {
    "accept-next": "",
    "note-text": "看一下",
    "transfer-department": "housing",
    "transfer-reason": "转住建局",
    "send-back-reason": "不归我们",
    "resolve-reply": "已处理",
    "triage-category": "streetlight",
    "triage-department": OWN,
    "triage-urgency": "normal",
    "ruling-department": OWN,
    "ruling-ruling": "归城管",
    "ruling-category": "",
    "escalate-reason": "督办",
    "supervise-instruction": "尽快",
    "channels-email": "x@example.org",
    "limit-hours": "1",
    "user-username": "intruder",
    "user-password": "long-enough-password",
    "user-role": "admin",
    "user-department": "",
    "status": "all",
}


@dataclass(frozen=True)
class OtherCase:
    """The other department's case, overdue and escalated so every list would show it."""

    number: str
    recording_id: int
    other_staff: Account


@pytest.fixture
def other_case(app: Flask, database: Database, make_account: Callable[..., Account]) -> OtherCase:
    recordings_dir = wiring_of(app).settings.recordings_dir
    with database.session() as session, session.begin():
        case = make_case(
            session,
            department_code=OTHER,
            category_code="water_supply",
            deadline_at=utcnow() - timedelta(days=3650),
        )
        recording = store_recording(session, case=case, recordings_dir=recordings_dir)
        lifecycle.escalate(session, case=case, actor=SYSTEM, reason="overdue")
        number, recording_id = case.number, recording.id
    return OtherCase(number, recording_id, make_account("department", OTHER))


def console_routes(app: Flask) -> list[Rule]:
    """Every console route but the stylesheet."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("console.") and rule.endpoint != "console.static"
    ]


def url_for_rule(rule: Rule, case: OtherCase) -> str:
    """The rule's URL, aimed at the other department's case and staff."""
    values: dict[str, Any] = {}
    for argument in rule.arguments:
        if argument == "number":
            values[argument] = case.number
        elif argument == "recording_id":
            values[argument] = case.recording_id
        elif argument == "user_id":
            values[argument] = case.other_staff.id
        elif argument == "code":
            values[argument] = OTHER
        else:
            pytest.fail(f"{rule.rule}: teach the authorisation matrix about <{argument}>")
    return cast(tuple[str, str], rule.build(values, append_unknown=False))[1]


def snapshot(database: Database, number: str) -> tuple[Any, ...]:
    """What any action would change."""
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        events = session.scalars(select(CaseEvent.id).where(CaseEvent.case_id == case.id)).all()
        deliveries = session.scalars(select(Delivery.id).where(Delivery.case_id == case.id)).all()
        return (
            case.status,
            case.department_code,
            case.responsible_department_code,
            case.category_code,
            case.deadline_at,
            case.resolution,
            len(events),
            len(deliveries),
        )


def test_the_matrix_covers_every_kind_of_route(app: Flask) -> None:
    rules = console_routes(app)
    with_case = [rule for rule in rules if "number" in rule.arguments]
    assert {"GET", "POST"} <= {method for rule in with_case for method in rule.methods or ()}
    assert any("recording_id" in rule.arguments for rule in rules)
    assert any("number" not in rule.arguments and "GET" in (rule.methods or ()) for rule in rules)


def test_another_departments_case_is_out_of_reach_on_every_console_route(
    app: Flask,
    database: Database,
    other_case: OtherCase,
    signed_in: Callable[..., Console],
) -> None:
    intruder = signed_in("department", OWN)
    with database.session() as session, session.begin():
        own_number = make_case(session, department_code=OWN).number
    before = snapshot(database, other_case.number)
    checked = []

    for rule in console_routes(app):
        url = url_for_rule(rule, other_case)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            if method == "GET":
                response = intruder.get(url, query_string={"status": "all"})
            else:
                response = intruder.post(url, FORM_DATA)
            body = response.get_data(as_text=True)
            response.close()
            where = f"{method} {url}"
            if "number" in rule.arguments:
                assert response.status_code in (403, 404), f"{where}: {response.status_code}"
            else:
                # Lists and pages about no case: allowed or refused, never showing the case.
                assert response.status_code in (200, 403), f"{where}: {response.status_code}"
                assert other_case.number not in body, f"{where} shows the other department's case"
            checked.append(where)

    assert snapshot(database, other_case.number) == before
    assert any("/recordings/" in where for where in checked)
    # The same lists do show the intruder's own department's case: they are not just empty.
    assert own_number in intruder.get("/console/").get_data(as_text=True)


@pytest.mark.parametrize("status", ["active", "all", "assigned", "accepted", "resolved"])
def test_no_list_shows_another_departments_case_under_any_filter(
    other_case: OtherCase, signed_in: Callable[..., Console], status: str
) -> None:
    intruder = signed_in("department", OWN)
    for url in ("/console/", "/console/overdue", "/console/escalated"):
        page = intruder.get(url, query_string={"status": status, "department": OTHER})
        assert other_case.number not in page.get_data(as_text=True), url


def test_the_other_departments_own_staff_do_reach_it(
    other_case: OtherCase, console: Callable[[], Console]
) -> None:
    # The control: the 404s above are refusals, not broken routes.
    browser = console()
    browser.sign_in(other_case.other_staff)
    assert browser.get(f"/console/cases/{other_case.number}").status_code == 200
    with browser.get(
        f"/console/cases/{other_case.number}/recordings/{other_case.recording_id}"
    ) as response:
        assert response.status_code == 200
    assert other_case.number in browser.get("/console/overdue").get_data(as_text=True)


@pytest.mark.parametrize("role", ["dispatcher", "supervisor"])
def test_staff_outside_admin_are_refused_every_admin_route(
    app: Flask, other_case: OtherCase, signed_in: Callable[..., Console], role: str
) -> None:
    browser = signed_in(role)
    for rule in console_routes(app):
        if not rule.rule.startswith("/console/admin/"):
            continue
        url = url_for_rule(rule, other_case)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = browser.get(url) if method == "GET" else browser.post(url, FORM_DATA)
            assert response.status_code == 403, f"{role}: {method} {url}"


def test_signed_out_visitors_reach_no_console_route(
    app: Flask, other_case: OtherCase, console: Callable[[], Console]
) -> None:
    visitor = console()
    for rule in console_routes(app):
        url = url_for_rule(rule, other_case)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = visitor.get(url) if method == "GET" else visitor.post(url, FORM_DATA)
            assert response.status_code == 302, f"{method} {url}"
            assert response.location.startswith("/console/login")
