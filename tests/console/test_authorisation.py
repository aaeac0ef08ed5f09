"""The authorisation matrix.

First, every route in the app's URL map (console, API, public site, IVR, and what the shell
adds) × every role (signed out, dispatcher, department staff of the case's own department and of
another, supervisor, administrator) with the outcome each must get: done, sent to sign in,
refused (403/404), or the fixed answer of a route that a staff cookie does not open (Twilio's
signature, an API key). A route or a role added without an entry fails the test.

Then the other department's case in detail: staff of one department get 403 or 404 on every
console route that lists, opens, plays or acts on it, and never see it in a list.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.routing import Rule

from cases import attachments, callbacks, knowledge_links, lifecycle, merging
from cases.access import SYSTEM, Actor
from cases.models import (
    Call,
    Case,
    CaseEvent,
    Category,
    Delivery,
    Department,
    Intake,
    Recording,
    RecordingStatus,
    Role,
    utcnow,
)
from cases.numbers import new_case_number
from hotline.db import Database
from hotline.web import RowIdConverter
from hotline.wiring import wiring_of
from knowledge import store as knowledge_store
from tests.conftest import AUDIO
from tests.support.calls import fresh_mobile_number
from tests.support.factories import make_case
from tests.support.staff import Account, Console, store_recording

OWN = "urban_mgmt"
OTHER = "water"
# A real one-pixel PNG, for a photo sent with a report.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077053e"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)
# Every field any console form takes, filled in plausibly: a refusal must come from the
# authorisation, not from a form that could not be read.
FORM_DATA = {
    "accept-next": "",
    "note-text": "看一下",
    "work-order-text": "春秋路路灯不亮，请维修",
    "assist-department": "housing",
    "assist-task": "排查管网",
    "assist-reply-reply": "已排查",
    "extension-working_days": "3",
    "extension-reason": "需协调停电",
    "extension-ruling-decision": "approve",
    "transfer-department": "housing",
    "transfer-reason": "转住建局",
    "send-back-reason": "不归我们",
    "resolve-reply": "已处理",
    "desk-answer-reply": "您好，热线受理时间为全天。",
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
    attachment_id: int = 0


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
        photo = attachments.store_photo(
            session,
            case=case,
            photo=attachments.check_photo(TINY_PNG, max_bytes=10_000),
            media_dir=wiring_of(app).settings.media_dir,
            now=utcnow(),
        )
        lifecycle.escalate(session, case=case, actor=SYSTEM, reason="overdue")
        number, recording_id, attachment_id = case.number, recording.id, photo.id
    return OtherCase(
        number, recording_id, make_account("department", OTHER), attachment_id=attachment_id
    )


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
        elif argument == "attachment_id":
            values[argument] = case.attachment_id
        elif argument == "user_id":
            values[argument] = case.other_staff.id
        elif argument == "code":
            values[argument] = OTHER
        elif argument == "call_id":
            values[argument] = 0  # no case behind it, and no such call
        elif argument == "article_id":
            values[argument] = "hotline-service"  # the hotline office's, not the intruder's
        elif argument == "task_id":
            values[argument] = 0  # no such callback
        elif argument == "token":
            values[argument] = "no-such-token"  # a reset link that was never issued
        elif argument == "kind":
            values[argument] = "csv"  # a search's export
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
                assert response.status_code in (200, 403, 404), f"{where}: {response.status_code}"
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
    # Nor does a search for it by its very number.
    found = intruder.get(
        "/console/search", query_string={"status": status, "number": other_case.number}
    ).get_data(as_text=True)
    assert f'id="case-row-{other_case.number}"' not in found
    assert 'id="search-results-empty"' in found


def test_the_other_departments_own_staff_do_reach_it(
    other_case: OtherCase, console: Callable[[], Console]
) -> None:
    # The control: the 404s above are refusals, not broken routes.
    browser = console()
    browser.sign_in(other_case.other_staff)
    assert browser.get(f"/console/cases/{other_case.number}").status_code == 200
    with browser.get(recording_link(browser, other_case.number)) as response:
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


def recording_link(browser: Console, number: str) -> str:
    """The signed, expiring recording link the case page gives this person."""
    page = browser.get(f"/console/cases/{number}").get_data(as_text=True)
    found = re.search(rf'src="(/console/cases/{number}/recordings/\d+\?[^"]+)"', page)
    assert found, "the case page links the recording"
    return unescape(found.group(1))


def attachment_link(browser: Console, number: str) -> str:
    """The signed, expiring photo link the case page gives this person."""
    page = browser.get(f"/console/cases/{number}").get_data(as_text=True)
    found = re.search(rf'href="(/console/cases/{number}/attachments/\d+\?[^"]+)"', page)
    assert found, "the case page links the photo"
    return unescape(found.group(1))


def unreported_call_recording_link(browser: Console, call_id: int) -> str:
    """The signed, expiring link the desk's list of calls without a report gives this person."""
    page = browser.get("/console/unreported-calls").get_data(as_text=True)
    found = re.search(rf'src="(/console/unreported-calls/{call_id}/recordings/\d+\?[^"]+)"', page)
    assert found, "the list links the call's recording"
    return unescape(found.group(1))


# --- the matrix: every route × every role -------------------------------------------------

ANONYMOUS = "anonymous"
DISPATCHER = "dispatcher"
OWN_DEPARTMENT = "department (own)"
OTHER_DEPARTMENT = "department (other)"
SUPERVISOR = "supervisor"
OPERATOR = "operator"
ADMIN = "admin"
# The accounts behind the roles; every Role must have one (a role added later fails below).
ACCOUNTS = {
    DISPATCHER: (Role.DISPATCHER, None),
    OWN_DEPARTMENT: (Role.DEPARTMENT, OWN),
    OTHER_DEPARTMENT: (Role.DEPARTMENT, OTHER),
    SUPERVISOR: (Role.SUPERVISOR, None),
    OPERATOR: (Role.OPERATOR, None),
    ADMIN: (Role.ADMIN, None),
}
ROLES = (ANONYMOUS, *ACCOUNTS)

# Outcomes: done (2xx, or a redirect that is not to the sign-in page), sent to sign in, refused
# (403, or the 404 that hides a case), or an exact status for routes no staff cookie opens.
DONE, SIGN_IN, REFUSED = "done", "sign in", "refused"
Outcome = str | int


def everyone(outcome: Outcome) -> dict[str, Outcome]:
    """The same outcome for every role, signed in or not."""
    return dict.fromkeys(ROLES, outcome)


def staff_only(*allowed: str) -> dict[str, Outcome]:
    """Signed-out visitors are sent to sign in; the roles named get it done, the rest are
    refused (with no role named, every signed-in role gets it done)."""
    chosen = set(allowed or ACCOUNTS)
    row: dict[str, Outcome] = {ANONYMOUS: SIGN_IN}
    row.update({role: DONE if role in chosen else REFUSED for role in ACCOUNTS})
    return row


# Who may act on a case the own department holds (assigned, not yet accepted).
HOLDER = (OWN_DEPARTMENT,)
WORKERS = (OWN_DEPARTMENT, DISPATCHER, ADMIN)  # the holder and the desk (admins run the desk)
DESK = (DISPATCHER, ADMIN)
SUPERVISORS = (DISPATCHER, SUPERVISOR, ADMIN)
SEES_THE_CASE = (OWN_DEPARTMENT, DISPATCHER, SUPERVISOR, ADMIN)

IVR = [
    "ivr.call_status",
    "ivr.callback_number",
    "ivr.fallback",
    "ivr.greeting_choice",
    "ivr.interrupt.emergency_heard",
    "ivr.main_menu",
    "ivr.queue.callback_connect",
    "ivr.queue.callback_dialled",
    "ivr.queue.callback_status",
    "ivr.queue.person",
    "ivr.queue.person_offer",
    "ivr.queue.queue_connecting",
    "ivr.queue.queue_key",
    "ivr.queue.queue_left",
    "ivr.queue.queue_wait",
    "ivr.queue.seat_answer",
    "ivr.queue.seat_done",
    "ivr.queue.seat_status",
    "ivr.recorded",
    "ivr.recording_status",
    "ivr.report",
    "ivr.report_answered",
    "ivr.report_check",
    "ivr.report_danger",
    "ivr.report_nothing_heard",
    "ivr.report_start",
    "ivr.status_lookup",
    "ivr.voice",
    "ivr_sms.inbound_sms",
]
API = ["api.list_cases", "api.show_case", "api.accept", "api.add_note", "api.resolve"]
API += ["api.send_back", "api.transfer"]

MATRIX: dict[tuple[str, str], dict[str, Outcome]] = {
    # The shell and the public site: the same for everyone.
    ("healthz", "GET"): everyone(200),
    # Ready: the database, the broker and a speech model (the session installs Korean's).
    ("readyz", "GET"): everyone(200),
    # Each browser here has an address of its own, outside METRICS_ALLOW: staff or not,
    # nobody reads the metrics from the web (tests/hotline/test_metrics.py).
    ("metrics", "GET"): everyone(404),
    ("static", "GET"): everyone(404),  # the app itself has no static folder
    ("public.home", "GET"): everyone(200),
    ("public.lookup", "GET"): everyone(200),
    ("public.lookup", "POST"): everyone(404),  # a number that is not ours: the one "no match"
    ("public.disclosure", "GET"): everyone(200),
    ("public.disclosure_csv", "GET"): everyone(200),
    ("public.disclosure_json", "GET"): everyone(200),
    ("public.faq", "GET"): everyone(200),
    # The report form: an empty form is refused with its errors; nothing sent, no number.
    ("public.report", "GET"): everyone(200),
    ("public.report", "POST"): everyone(400),
    ("public.report_sent", "GET"): everyone(302),
    # Open311: reading is public (no personal data), posting needs a client's key; the
    # scene names a real category and no token, and nothing is at the path it names.
    ("open311.discovery", "GET"): everyone(200),
    ("open311.services", "GET"): everyone(200),
    ("open311.service_definition", "GET"): everyone(200),
    ("open311.requests_list", "GET"): everyone(200),
    ("open311.request_detail", "GET"): everyone(200),
    ("open311.token", "GET"): everyone(404),
    ("open311.updates_list", "GET"): everyone(200),
    ("open311.create_request", "POST"): everyone(403),
    ("open311.post_update", "POST"): everyone(403),
    **{
        ("open311.no_such_resource", method): everyone(404)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    },
    ("public.static", "GET"): everyone(200),
    # Twilio's webhooks need Twilio's signature; a staff cookie is not one.
    **{(endpoint, "POST"): everyone(403) for endpoint in IVR},
    # The API needs a department's key; a staff cookie is not one.
    **{
        (endpoint, "GET" if "list" in endpoint or "show" in endpoint else "POST"): everyone(401)
        for endpoint in API
    },
    ("api.openapi_document", "GET"): everyone(200),
    **{
        ("api.no_such_endpoint", method): everyone(401)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
    },
    # Signing in and out, and the language, work for anyone.
    ("auth.login", "GET"): everyone(DONE),
    ("auth.login", "POST"): everyone(DONE),
    # A reset link's page opens for anyone holding a good token; this one is no token at all.
    ("auth.reset_password", "GET"): everyone(404),
    ("auth.reset_password", "POST"): everyone(404),
    ("auth.set_locale", "POST"): everyone(302),
    ("auth.logout", "POST"): everyone(302),
    ("console.static", "GET"): everyone(200),
    # Lists: every member of staff, each seeing what the queries let them.
    ("console.home", "GET"): staff_only(),
    ("console.overdue", "GET"): staff_only(),
    ("console.escalated", "GET"): staff_only(),
    ("console.search_page", "GET"): staff_only(),
    ("console.search_export", "GET"): staff_only(*SUPERVISORS),
    ("console.triage_queue", "GET"): staff_only(*DESK),
    ("console.sent_back_queue", "GET"): staff_only(*DESK),
    ("console.extension_requests", "GET"): staff_only(*DESK),
    ("console.service_level_page", "GET"): staff_only(*SUPERVISORS),
    # One case (held by the own department): who sees it, who does what to it.
    ("console.case_page", "GET"): staff_only(*SEES_THE_CASE),
    ("console.recording", "GET"): staff_only(*SEES_THE_CASE),
    ("console.attachment", "GET"): staff_only(*SEES_THE_CASE),
    ("console.accept", "POST"): staff_only(*HOLDER),
    ("console.note", "POST"): staff_only(*WORKERS),
    ("console.work_order", "POST"): staff_only(*DESK),
    ("console.request_extension", "POST"): staff_only(*HOLDER),
    # 协办: the desk asks a department to assist; the scene asked the other department to
    # assist with the case the own department holds, and only it replies for that part.
    ("console.add_assist", "POST"): staff_only(*DESK),
    ("console.assist_reply", "POST"): staff_only(OTHER_DEPARTMENT),
    ("console.decide_extension", "POST"): staff_only(*DESK),  # the scene asked for more time
    ("console.transfer", "POST"): staff_only(*WORKERS),
    ("console.send_back", "POST"): staff_only(*HOLDER),
    ("console.resolve", "POST"): staff_only(*HOLDER),
    ("console.triage", "POST"): staff_only(*DESK),  # a case in the desk's triage queue
    ("console.ruling", "POST"): staff_only(*DESK),  # a case the own department sent back
    ("console.escalate", "POST"): staff_only(*SUPERVISORS),
    ("console.supervise", "POST"): staff_only(*SUPERVISORS),
    # 回拨: the desk or a supervisor has the caller called back (the scene's case has a number).
    ("console.call_back", "POST"): staff_only(*SUPERVISORS),
    # Calls that ended without a report: the desk's to follow up.
    ("console.unreported_calls", "GET"): staff_only(*DESK),
    ("console.unreported_call_recording", "GET"): staff_only(*DESK),
    ("console.open_case_from_call", "POST"): staff_only(*DESK),
    ("console.mark_call_handled", "POST"): staff_only(*DESK),
    # 当即解答 on a consultation with an article attached, in the desk's triage queue.
    ("console.answer_at_once", "POST"): staff_only(*DESK),
    ("console.answer_by_desk", "POST"): staff_only(*DESK),  # a case in the triage queue
    # 并单: the desk merges a case into another (the form names one the scene made) and splits
    # a merged report back off.
    ("console.merge", "POST"): staff_only(*DESK),
    ("console.split", "POST"): staff_only(*DESK),
    # The knowledge base: the desk edits; others read, department staff only their own
    # department's articles (the scene's article is the own department's).
    ("console.knowledge_list", "GET"): staff_only(),
    ("console.knowledge_article", "GET"): staff_only(*SEES_THE_CASE, OPERATOR),
    ("console.knowledge_new", "GET"): staff_only(*DESK),
    ("console.knowledge_create", "POST"): staff_only(*DESK),
    ("console.knowledge_edit", "POST"): staff_only(*DESK),
    ("console.knowledge_retire", "POST"): staff_only(*DESK),
    ("console.knowledge_restore", "POST"): staff_only(*DESK),
    # The seat: operators only; supervisors and the desk see every seat and the queue.
    ("console.seat_page", "GET"): staff_only(OPERATOR),
    ("console.seat_address", "POST"): staff_only(OPERATOR),
    ("console.seat_status", "POST"): staff_only(OPERATOR),
    # An operator with no call put through has no call to write up: refused as invalid.
    ("console.seat_case", "POST"): {**staff_only(OPERATOR), OPERATOR: 400},
    ("console.seat_wrap_up", "POST"): staff_only(OPERATOR),
    ("console.seat_emergency", "POST"): staff_only(OPERATOR),
    ("console.seat_call_back", "POST"): staff_only(OPERATOR),
    ("console.seat_live", "GET"): staff_only(OPERATOR),
    # Only the caller on the operator's call: any other case is hidden, even from operators
    # (tests/console/test_seat.py shows the operator the caller's own).
    ("console.seat_earlier_case", "GET"): staff_only(OPERATOR) | {OPERATOR: REFUSED},
    ("console.seats_overview", "GET"): staff_only(*SUPERVISORS),
    # Administration: administrators only.
    ("console.admin_departments", "GET"): staff_only(ADMIN),
    ("console.admin_department_channels", "POST"): staff_only(ADMIN),
    ("console.admin_department_api_key", "POST"): staff_only(ADMIN),
    ("console.admin_staff", "GET"): staff_only(ADMIN),
    ("console.admin_add_user", "POST"): staff_only(ADMIN),
    ("console.admin_activate_user", "POST"): staff_only(ADMIN),
    ("console.admin_deactivate_user", "POST"): staff_only(ADMIN),
    ("console.admin_unlock_user", "POST"): staff_only(ADMIN),
    ("console.admin_reset_link", "POST"): staff_only(ADMIN),
    ("console.admin_audit", "GET"): staff_only(ADMIN),
    ("console.admin_time_limits", "GET"): staff_only(ADMIN),
    ("console.admin_set_time_limit", "POST"): staff_only(ADMIN),
}
# A department and a category that the matrix's administrators "change" to what they were.
ADMIN_DEPARTMENT = "education"
ADMIN_CATEGORY = "education"


def every_route(app: Flask) -> set[tuple[str, str]]:
    """(endpoint, method) for every route in the URL map."""
    return {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }


def test_the_matrix_has_an_entry_for_every_route_and_every_role(app: Flask) -> None:
    missing = sorted(every_route(app) - set(MATRIX))
    assert missing == [], f"add these routes to the authorisation matrix: {missing}"
    stale = sorted(set(MATRIX) - every_route(app))
    assert stale == [], f"these routes are gone: {stale}"
    assert {role for role, _department in ACCOUNTS.values()} == set(Role), "a role is missing"
    for key, row in MATRIX.items():
        assert set(row) == set(ROLES), key


class Scene:
    """What one request of the matrix acts on: a case in the state the action is taken from,
    a throwaway account, a call without a report; made fresh for each request."""

    def __init__(self, app: Flask, database: Database, make_account: Callable[..., Account]):
        self.app = app
        self.database = database
        self.make_account = make_account
        self.recordings_dir = wiring_of(app).settings.recordings_dir

    def case(self, endpoint: str) -> tuple[str, int]:
        """A case held by the own department, in the state `endpoint` acts from, with a
        recording; its number and the recording's id."""
        with self.database.session() as session, session.begin():
            if endpoint in ("console.triage", "console.answer_by_desk"):
                case = make_case(session, department_code="hotline_office", triage=True)
            elif endpoint == "console.answer_at_once":
                case = make_case(session, department_code="hotline_office", triage=True)
                knowledge_links.attach_article(
                    session, case=case, article_id="hotline-service", confidence=0.9
                )
            else:
                case = make_case(session, department_code=OWN)
            if endpoint == "console.split":
                kept = make_case(session, department_code=OWN)
                merging.join(session, case=case, into=kept, actor="matrix", how="desk")
            holder = Actor(name="matrix", role=Role.DEPARTMENT, department_code=OWN)
            if endpoint == "console.ruling":
                lifecycle.send_back(session, case=case, actor=holder, reason="不归我们")
            if endpoint == "console.assist_reply":
                lifecycle.add_assist(
                    session, case=case, actor=SYSTEM, department_code=OTHER, task="排查管网"
                )
            if endpoint == "console.decide_extension":
                assert case.deadline_at is not None
                lifecycle.request_extension(
                    session,
                    case=case,
                    actor=holder,
                    until=case.deadline_at + timedelta(days=3),
                    reason="需协调停电",
                )
            recording = store_recording(session, case=case, recordings_dir=self.recordings_dir)
            return case.number, recording.id

    def photo(self, number: str) -> int:
        """A photo sent with the case numbered `number`; its attachment's id."""
        with self.database.session() as session, session.begin():
            case = session.scalars(select(Case).where(Case.number == number)).one()
            # Photos come with reports from the web form.
            case.intake, case.report_text = Intake.WEB, "鲁城街道春秋路的路灯坏了"
            photo = attachments.store_photo(
                session,
                case=case,
                photo=attachments.check_photo(TINY_PNG, max_bytes=10_000),
                media_dir=wiring_of(self.app).settings.media_dir,
                now=utcnow(),
            )
            return photo.id

    def article(self, endpoint: str) -> str:
        """A knowledge-base article of the own department (retired, for the restore); its
        id."""
        article_id = f"matrix-{uuid.uuid4().hex[:12]}"
        with self.database.session() as session, session.begin():
            knowledge_store.create_article(
                session, data=self.article_data(article_id), editor="matrix", note="矩阵"
            )
            if endpoint == "console.knowledge_restore":
                knowledge_store.retire_article(
                    session, article_id=article_id, editor="matrix", note="矩阵"
                )
        return article_id

    @staticmethod
    def article_data(article_id: str) -> dict[str, Any]:
        """A valid article of the own department."""
        return {
            "id": article_id,
            "category": "streetlight",
            "department": OWN,
            "reviewed": "2026-12-01",
            "zh-CN": {
                "title": "路灯坏了怎么报修",
                "answer": "请拨打热线说明路灯所在的位置，城管局二十四小时内修复。",
                "details": "报修路灯时请说明街道、路名和附近的门牌号或电线杆编号。",
                "questions": ["路灯不亮找谁", "路灯坏了怎么办", "报修路灯"],
            },
        }

    def unreported_call(self) -> tuple[int, int]:
        """A call that ended with no report, with a stored recording; its id and the
        recording's."""
        relative = Path("matrix") / f"{uuid.uuid4().hex}.wav"
        (self.recordings_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (self.recordings_dir / relative).write_bytes((AUDIO / "ko_streetlight.wav").read_bytes())
        with self.database.session() as session, session.begin():
            call = Call(
                call_sid=f"CA{uuid.uuid4().hex}",
                account_sid="AC" + "1" * 32,
                from_number="+8613800000000",
                to_number="+865374412345",
                ended_at=utcnow(),
                status="completed",
            )
            recording = Recording(
                call=call,
                recording_sid=f"RE{uuid.uuid4().hex}",
                source_url="https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE",
                status=RecordingStatus.STORED,
                storage_path=str(relative),
                size_bytes=(self.recordings_dir / relative).stat().st_size,
            )
            session.add_all([call, recording])
            session.flush()
            return call.id, recording.id

    def callback_task(self) -> int:
        """An open callback task for a number of its own."""
        with self.database.session() as session, session.begin():
            task = callbacks.request_callback(
                session,
                call_sid=None,
                caller_number=fresh_mobile_number(),
                locale="zh-CN",
                reason="asked",
            )
            assert task is not None
            return task.id

    def form(self, endpoint: str) -> dict[str, str]:
        """What the endpoint's form takes; the administrators' forms keep what is there."""
        data = dict(FORM_DATA)
        data.update({"number": new_case_number(), "phone_last4": "1234", "locale": "zh-CN"})
        data.update({"username": "nobody-such", "password": "not-a-password"})
        data["user-username"] = f"matrix-{uuid.uuid4().hex[:10]}"
        data["user-role"] = "supervisor"
        data["seat-address"] = fresh_mobile_number()  # the phone that rings a seat
        if endpoint == "console.merge":
            with self.database.session() as session, session.begin():
                data["merge-into"] = make_case(session, department_code=OWN).number
        # The knowledge base's article form (a new article's id must be new).
        article = self.article_data(f"matrix-{uuid.uuid4().hex[:12]}")
        data.update(
            {
                "article_id": article["id"],
                "category": article["category"],
                "department": article["department"],
                "reviewed": article["reviewed"],
                **{f"zh_CN-{key}": value for key, value in article["zh-CN"].items()},
                "zh_CN-questions": "\n".join(article["zh-CN"]["questions"]),
                "note": "矩阵测试",
            }
        )
        with self.database.session() as session:
            department = session.get(Department, ADMIN_DEPARTMENT)
            category = session.get(Category, ADMIN_CATEGORY)
            assert department is not None and category is not None
            data["channels-webhook_url"] = department.webhook_url or ""
            data["channels-email"] = department.email or ""
            data["channels-sms_number"] = department.sms_number or ""
            data["limit-hours"] = str(category.time_limit_hours or "")
            data["limit-working_days"] = str(category.time_limit_working_days or "")
        return data


def build(rule: Rule, values: dict[str, Any]) -> str:
    return cast(tuple[str, str], rule.build(values, append_unknown=False))[1]


def outcome_of(status: int, location: str | None, expected: Outcome) -> Outcome:
    """The outcome a response shows, in the terms the matrix expects."""
    if isinstance(expected, int):
        return status
    if status == 302 and urlsplit(location or "").path == "/console/login":
        return SIGN_IN
    if status in (403, 404):
        return REFUSED
    if status in (200, 206, 302, 303):
        return DONE
    return status


def test_every_route_gives_every_role_the_outcome_the_matrix_says(
    app: Flask,
    database: Database,
    console: Callable[[], Console],
    make_account: Callable[..., Account],
) -> None:
    browsers: dict[str, Console] = {ANONYMOUS: console()}
    for name, (kind, department) in ACCOUNTS.items():
        browsers[name] = console()
        account = make_account(str(kind), department)
        assert browsers[name].sign_in(account).status_code == 302
        browsers[name].account = account
    scene = Scene(app, database, make_account)
    rules = {rule.endpoint: rule for rule in app.url_map.iter_rules()}
    wrong: list[str] = []

    # Signing out last, or the browsers would be signed out for the rest.
    for endpoint, method in sorted(MATRIX, key=lambda key: (key[0] == "auth.logout", key)):
        rule = rules[endpoint]
        for role, expected in MATRIX[endpoint, method].items():
            browser = browsers[role]
            values: dict[str, Any] = {"path": "cases", "code": ADMIN_DEPARTMENT, "fmt": "json"}
            values["token"] = "no-such-token"
            values["kind"] = "csv"
            if "number" in rule.arguments:
                values["number"], values["recording_id"] = scene.case(endpoint)
            if "call_id" in rule.arguments:
                values["call_id"], values["recording_id"] = scene.unreported_call()
            if "article_id" in rule.arguments:
                values["article_id"] = scene.article(endpoint)
            if "user_id" in rule.arguments:
                values["user_id"] = make_account("dispatcher").id
            if "task_id" in rule.arguments:
                values["task_id"] = scene.callback_task()
            if "attachment_id" in rule.arguments:
                values["attachment_id"] = scene.photo(values["number"])
            if endpoint == "console.admin_set_time_limit":
                values["code"] = ADMIN_CATEGORY
            if "filename" in rule.arguments:
                values["filename"] = "public.css" if endpoint == "public.static" else "console.css"
            url = build(rule, values)
            if endpoint == "console.recording" and role in SEES_THE_CASE:
                url = recording_link(browser, values["number"])
            if endpoint == "console.attachment" and role in SEES_THE_CASE:
                url = attachment_link(browser, values["number"])
            if endpoint == "console.unreported_call_recording" and role in DESK:
                url = unreported_call_recording_link(browser, values["call_id"])
            if method == "GET":
                response = browser.client.get(url)
            elif endpoint.startswith(("ivr", "api")):
                response = browser.client.open(url, method=method, data={})
            else:
                response = browser.post(url, scene.form(endpoint))
            response.close()
            got = outcome_of(response.status_code, response.location, expected)
            if got != expected:
                wrong.append(
                    f"{role}: {method} {url}: {got} ({response.status_code}), not {expected}"
                )
    assert wrong == [], "\n".join(wrong)


def test_an_id_past_what_the_database_holds_is_not_found_on_every_route(
    app: Flask, other_case: OtherCase, signed_in: Callable[..., Console]
) -> None:
    """An id beyond a PostgreSQL integer is "no such row" (404), not a query the database
    refuses (500); the route's converter turns it away before any view runs."""
    browser = signed_in("admin")
    too_large = str(2**31)
    checked = 0
    for rule in console_routes(app):
        row_ids = [c for c in rule._converters.values() if isinstance(c, RowIdConverter)]
        if not row_ids:
            continue
        url = url_for_rule(rule, other_case)
        for _ in row_ids:
            url = re.sub(r"/\d+(?=/|$)", f"/{too_large}", url, count=1)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = browser.get(url) if method == "GET" else browser.post(url, FORM_DATA)
            assert response.status_code == 404, f"{method} {url}"
            checked += 1
    assert checked >= 7
