"""The console's pages and actions through the app: inbox and lights, the case page, the
recording, first-responsible, transfer, send-back, triage, ruling, supervision, and admin."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import timedelta
from html import unescape as html_unescape
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import select

from cases import intake, lifecycle, staff
from cases.access import SYSTEM, Actor
from cases.models import (
    Case,
    CaseStatus,
    Category,
    Channel,
    Delivery,
    Department,
    Light,
    Role,
    User,
    utcnow,
)
from cases.privacy import mask_number
from cases.timeline import add_event
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.support.factories import DEFAULT_WORDS, make_case
from tests.support.staff import Account, Console, store_recording

# A department few other tests route to, so that inbox order is this test's own cases.
QUIET = "education"


def load(database: Database, number: str) -> Case:
    """The case as committed, with what the assertions read."""
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.deliveries
        return case


def event_kinds(database: Any, number: str) -> list[str]:
    return [event.kind for event in load(database, number).events]


def new_case(database: Any, **kwargs: Any) -> str:
    with database.session() as session, session.begin():
        return make_case(session, **kwargs).number


def inbox_row(browser: Console, number: str, *, pages: int = 50) -> str | None:
    """The case's row in the inbox, on whichever page it falls (cases waiting for the
    department come first, and the session's other tests fill the first pages)."""
    for page_number in range(1, pages + 1):
        page = browser.get(f"/console/?page={page_number}").get_data(as_text=True)
        found = re.search(rf'<tr[^>]*id="case-row-{number}".*?</tr>', page, re.S)
        if found:
            return found.group(0)
        if 'id="page-next"' not in page:
            return None
    return None


def row_light(page: str, number: str) -> str:
    found = re.search(rf'class="case-row light-row-(\w+)" id="case-row-{number}"', page)
    assert found, f"case {number} is not listed"
    return found.group(1)


def test_the_inbox_lists_the_department_by_deadline_with_lights(
    signed_in: Callable[..., Console], database: Any
) -> None:
    now = utcnow()
    with database.session() as session, session.begin():
        green = make_case(session, department_code=QUIET, category_code="education")
        green.assigned_at, green.deadline_at = now, now + timedelta(days=3)
        yellow = make_case(session, department_code=QUIET, category_code="education")
        yellow.assigned_at, yellow.deadline_at = now - timedelta(hours=9), now + timedelta(hours=1)
        red = make_case(session, department_code=QUIET, category_code="education")
        red.assigned_at, red.deadline_at = now - timedelta(days=2), now - timedelta(minutes=5)
        elsewhere = make_case(session, department_code="water", category_code="water_supply")
        numbers = [red.number, yellow.number, green.number]
        # Stored lights lag behind until the next sweep; the page must not.
        assert {red.light, yellow.light} == {Light.GREEN}

    browser = signed_in("department", QUIET)
    page = browser.get("/console/").get_data(as_text=True)
    assert "<h1>" in page and 'id="inbox"' in page
    positions = [page.index(f'id="case-row-{number}"') for number in numbers]
    assert positions == sorted(positions)
    assert [row_light(page, n) for n in numbers] == ["red", "yellow", "green"]
    assert 'class="light light-red"' in page
    assert elsewhere.number not in page


def test_the_status_filter_shows_finished_cases_only_when_asked(
    signed_in: Callable[..., Console], database: Any
) -> None:
    browser = signed_in("department", QUIET)
    with database.session() as session, session.begin():
        done = make_case(session, department_code=QUIET, category_code="education")
        actor = Actor(name="education-test", role=Role.DEPARTMENT, department_code=QUIET)
        lifecycle.resolve(session, case=done, actor=actor, reply="答复")
        number = done.number
    assert number not in browser.get("/console/").get_data(as_text=True)
    assert number in browser.get("/console/?status=resolved").get_data(as_text=True)
    assert number in browser.get("/console/?status=all").get_data(as_text=True)
    response = browser.get("/console/?status=misfiled")
    assert response.status_code == 400
    assert "misfiled" in response.get_data(as_text=True)
    for page in ("0", "²", "99999999999999999999", "x"):
        assert browser.get(f"/console/?page={page}").status_code == 400, page
    # url_for's own arguments in a visitor's query string change none of the links.
    pager = browser.get("/console/?status=all&_external=1&_method=GET")
    assert pager.status_code == 200


def test_the_case_page_shows_what_the_department_needs_with_the_number_masked(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database, caller_number="+8613912345678")
    page = signed_in("department", "urban_mgmt").get(f"/console/cases/{number}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f'<h1 id="case-title">工单 {number}</h1>' in html
    assert mask_number("+8613912345678") in html
    assert "13912345678" not in html
    assert 'id="transcript"' in html and DEFAULT_WORDS in html
    assert 'id="classification"' in html
    assert 'id="timeline"' in html and "event-routed" in html
    assert 'id="accept"' in html and 'id="send-back"' in html and 'id="resolve"' in html
    assert 'id="triage"' not in html and 'id="escalate"' not in html


@pytest.mark.parametrize(
    ("role", "full"), [("dispatcher", True), ("admin", True), ("supervisor", False)]
)
def test_only_dispatchers_and_admins_see_the_full_number(
    signed_in: Callable[..., Console], database: Any, role: str, full: bool
) -> None:
    number = new_case(database, caller_number="+8613955554444")
    html = signed_in(role).get(f"/console/cases/{number}").get_data(as_text=True)
    assert ("+8613955554444" in html) is full
    assert (mask_number("+8613955554444") in html) is not full


def test_deliveries_are_shown_on_the_case_with_their_state(
    signed_in: Callable[..., Console], database: Any
) -> None:
    with database.session() as session, session.begin():
        case = make_case(session, department_code="transport", category_code="transport")
        # Written straight into the table, not through the outbox: no job is sent for it.
        delivery = Delivery(
            delivery_id=f"dlv_console_{case.number}",
            case=case,
            recipient="transport",
            channel=Channel.EMAIL,
            topic="assigned",
            address="duty@transport.example",
            attempts=3,
            last_error="SMTP 451 try again later",
        )
        session.add(delivery)
        session.flush()
        number = case.number
    html = (
        signed_in("department", "transport").get(f"/console/cases/{number}").get_data(as_text=True)
    )
    assert f'id="delivery-{delivery.id}"' in html
    assert "duty@transport.example" in html
    # The provider's raw words are for the log (issue 17: no developer text on a page); the
    # department reads that the last try failed.
    assert "SMTP 451 try again later" not in html
    assert "最近一次发送失败，原因见系统日志" in html
    assert 'class="delivery delivery-pending"' in html


def test_the_recording_streams_with_range_support_to_those_who_see_the_case(
    app: Flask, signed_in: Callable[..., Console], database: Any
) -> None:
    recordings_dir = wiring_of(app).settings.recordings_dir
    with database.session() as session, session.begin():
        case = make_case(session)
        recording = store_recording(session, case=case, recordings_dir=recordings_dir)
        number, recording_id, size = case.number, recording.id, recording.size_bytes
    browser = signed_in("department", "urban_mgmt")
    html = browser.get(f"/console/cases/{number}").get_data(as_text=True)
    assert f'<audio controls preload="none" id="recording-{recording_id}"' in html
    # The page's link to it is signed and expires (tests/console/test_security.py).
    found = re.search(rf'src="(/console/cases/{number}/recordings/{recording_id}\?[^"]+)"', html)
    assert found
    src = html_unescape(found.group(1))

    # The file is streamed: close each response, as a server would.
    with browser.get(src) as whole:
        assert whole.status_code == 200
        assert whole.mimetype == "audio/wav"
        assert len(whole.data) == size and whole.data[:4] == b"RIFF"
        assert "no-store" in whole.headers["Cache-Control"]
    with browser.get(src, headers={"Range": "bytes=0-99"}) as part:
        assert part.status_code == 206
        assert len(part.data) == 100
        assert part.headers["Content-Range"] == f"bytes 0-99/{size}"

    # Someone else's recording, a wrong id, or one not stored yet: 404 alike.
    assert (
        browser.get(f"/console/cases/{number}/recordings/{recording_id + 10_000}").status_code
        == 404
    )
    assert signed_in("department", "water").get(src).status_code == 404


def test_first_responsible_through_a_transfer_until_the_other_accepts(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    housing = signed_in("department", "housing")

    response = urban.post(f"/console/cases/{number}/accept")
    assert response.status_code == 302 and response.location == f"/console/cases/{number}"
    case = load(database, number)
    assert (case.status, case.responsible_department_code) == (CaseStatus.ACCEPTED, "urban_mgmt")
    assert 'id="send-back"' not in urban.get(f"/console/cases/{number}").get_data(as_text=True)

    # A transfer needs a reason; without one nothing moves.
    refused = urban.post(f"/console/cases/{number}/transfer", {"transfer-department": "housing"})
    assert refused.status_code == 400
    assert load(database, number).department_code == "urban_mgmt"

    response = urban.post(
        f"/console/cases/{number}/transfer",
        {"transfer-department": "housing", "transfer-reason": "井盖归住建局管"},
    )
    assert response.status_code == 302
    case = load(database, number)
    assert (case.department_code, case.responsible_department_code) == ("housing", "urban_mgmt")
    assert case.status == CaseStatus.ASSIGNED

    # Still first-responsible: urban management sees the case, marked, but cannot work it.
    row = inbox_row(urban, number)
    assert row is not None and "tag-responsible" in row
    page = urban.get(f"/console/cases/{number}").get_data(as_text=True)
    assert 'id="accept"' not in page and 'id="note-form"' in page
    assert urban.post(f"/console/cases/{number}/accept").status_code == 403
    assert urban.post(f"/console/cases/{number}/resolve", {"resolve-reply": "x"}).status_code == 403

    assert housing.post(f"/console/cases/{number}/accept").status_code == 302
    case = load(database, number)
    assert case.responsible_department_code == "housing"
    assert urban.get(f"/console/cases/{number}").status_code == 404
    response = housing.post(f"/console/cases/{number}/resolve", {"resolve-reply": "井盖已补上"})
    assert response.status_code == 302
    case = load(database, number)
    assert (case.status, case.resolution) == (CaseStatus.RESOLVED, "井盖已补上")
    # The lifecycle's own steps; a worker running for an earlier test may deliver the caller's
    # texts meanwhile, and its "delivered" entries are no step of the case.
    steps = [k for k in event_kinds(database, number) if k not in ("routed", "delivered")]
    assert steps == [
        "accepted",
        "transferred",
        "accepted",
        "resolved",
    ]


def test_send_back_goes_to_the_desk_and_the_ruling_assigns_it_with_a_fresh_deadline(
    app: Flask, signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database, category_code="sanitation")
    urban = signed_in("department", "urban_mgmt")
    desk = signed_in("dispatcher")

    refused = urban.post(f"/console/cases/{number}/send-back", {"send-back-reason": "  "})
    assert refused.status_code == 400
    assert load(database, number).status == CaseStatus.ASSIGNED

    response = urban.post(f"/console/cases/{number}/send-back", {"send-back-reason": "不归我们管"})
    assert response.status_code == 302
    case = load(database, number)
    assert (case.status, case.department_code, case.sent_back_by_code) == (
        CaseStatus.SENT_BACK,
        "hotline_office",
        "urban_mgmt",
    )
    assert urban.get(f"/console/cases/{number}").status_code == 404

    queue = desk.get("/console/sent-back").get_data(as_text=True)
    assert f'id="sent-back-item-{number}"' in queue
    assert "不归我们管" in queue
    assert f'id="ruling-{number}-department"' in queue

    # A ruling must name a department.
    assert desk.post(f"/console/cases/{number}/ruling", {"ruling-ruling": "x"}).status_code == 400
    assert load(database, number).status == CaseStatus.SENT_BACK

    before = utcnow()
    response = desk.post(
        f"/console/cases/{number}/ruling",
        {
            "ruling-department": "housing",
            "ruling-ruling": "道路设施归住建局",
            "ruling-category": "road_facility",
            "ruling-next": "/console/sent-back",
        },
    )
    after = utcnow()
    assert response.status_code == 302 and response.location == "/console/sent-back"
    case = load(database, number)
    assert (case.status, case.department_code, case.category_code) == (
        CaseStatus.ASSIGNED,
        "housing",
        "road_facility",
    )
    with database.session() as session:
        category = session.get(Category, "road_facility")
        router = wiring_of(app).router
        earliest = router.deadline_for(category=category, urgency="normal", start=before)
        latest = router.deadline_for(category=category, urgency="normal", start=after)
    assert case.deadline_at is not None and earliest <= case.deadline_at <= latest
    ruling = case.events[-1]
    assert ruling.kind == "ruling" and ruling.data["upheld"] is True


def test_an_accepted_case_cannot_be_sent_back(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    urban.post(f"/console/cases/{number}/accept")
    response = urban.post(f"/console/cases/{number}/send-back", {"send-back-reason": "不是我们的"})
    assert response.status_code == 400
    assert 'id="send-back-error"' in response.get_data(as_text=True) or 'id="action-error"' in (
        response.get_data(as_text=True)
    )
    case = load(database, number)
    assert (case.status, case.department_code) == (CaseStatus.ACCEPTED, "urban_mgmt")


def test_the_desk_triages_from_the_queue_with_the_classifiers_suggestion(
    app: Flask, signed_in: Callable[..., Console], database: Any
) -> None:
    with database.session() as session, session.begin():
        case = make_case(
            session, department_code="hotline_office", category_code="other", triage=True
        )
        case.routing = {
            **(case.routing or {}),
            "explanation": {
                "top": [["other", 0.31], ["water_supply", 0.28], ["power_supply", 0.1]]
            },
        }
        number = case.number
    desk = signed_in("dispatcher")
    queue = desk.get("/console/triage").get_data(as_text=True)
    assert f'id="triage-item-{number}"' in queue
    assert f'id="suggestion-{number}"' in queue
    # The form starts from the best guess that names a real matter, not "other".
    selected = re.search(
        rf'id="triage-{number}-category"[^>]*>.*?<option selected value="(\w+)"', queue, re.S
    )
    assert selected and selected.group(1) == "water_supply"

    # The desk cannot "triage" a case back to itself.
    refused = desk.post(
        f"/console/cases/{number}/triage",
        {"triage-category": "consultation", "triage-department": "", "triage-urgency": "normal"},
    )
    assert refused.status_code == 400
    assert load(database, number).status == CaseStatus.TRIAGE

    before = utcnow()
    response = desk.post(
        f"/console/cases/{number}/triage",
        {
            "triage-category": "water_supply",
            "triage-department": "",
            "triage-urgency": "urgent",
            "triage-next": "/console/triage",
        },
    )
    after = utcnow()
    assert response.status_code == 302 and response.location == "/console/triage"
    case = load(database, number)
    assert (case.status, case.department_code, case.category_code, case.urgency) == (
        CaseStatus.ASSIGNED,
        "water",
        "water_supply",
        "urgent",
    )
    # Urgent: two hours from the triage, and a copy to leadership.
    assert case.deadline_at is not None
    assert before + timedelta(hours=2) <= case.deadline_at <= after + timedelta(hours=2)
    assert case.major
    assert f'id="triage-item-{number}"' not in desk.get("/console/triage").get_data(as_text=True)


def test_a_case_with_nothing_to_suggest_a_category_starts_the_desks_form_blank_not_at_one(
    signed_in: Callable[..., Console], database: Any
) -> None:
    """A recording no model could transcribe: no words, no suggestion. The form started at the
    first category in the list, the desk's own 政策咨询, and 分类并派单 was then refused."""
    with database.session() as session, session.begin():
        case = make_case(session, department_code="hotline_office", triage=True)
        case.category_code, case.routing = None, None
        number = case.number
    desk = signed_in("dispatcher")

    queue = desk.get("/console/triage").get_data(as_text=True)
    category = re.search(rf'id="triage-{number}-category"[^>]*>(.*?)</select>', queue, re.S)
    assert category is not None
    # The blank choice leads, and no category is selected over it (a browser shows the first).
    assert category.group(1).startswith('<option value="">选择类别</option>')
    assert "selected" not in category.group(1)

    # Sent as it stands, the desk is asked to choose, in Chinese; nothing changes.
    refused = desk.post(
        f"/console/cases/{number}/triage",
        {"triage-category": "", "triage-department": "", "triage-urgency": "normal"},
    )
    assert refused.status_code == 400
    assert "请选择事项的类别。" in refused.get_data(as_text=True)
    assert load(database, number).status == CaseStatus.TRIAGE

    chosen = desk.post(
        f"/console/cases/{number}/triage",
        {"triage-category": "streetlight", "triage-department": "", "triage-urgency": "normal"},
    )
    assert chosen.status_code == 302
    case = load(database, number)
    assert (case.status, case.category_code) == (CaseStatus.ASSIGNED, "streetlight")
    # The case page says how it was classified, not 分类结果：尚未分类.
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    classification = re.search(r'<section id="classification">(.*?)</section>', page, re.S)
    assert classification is not None
    assert "尚未分类" not in classification.group(1)
    assert re.search(r'id="category-by-hand">路灯</dd>', classification.group(1))
    assert "由热线办人工分类" in classification.group(1)


@pytest.mark.parametrize(
    ("rule", "shown"),
    [
        ("24 h", "24 小时"),
        ("1 working days", "1 个工作日"),
        ("5 working days", "5 个工作日"),
        ("2 h (urgent)", "2 小时（紧急事项）"),
        (None, "—"),
    ],
)
def test_the_deadline_rule_routing_wrote_is_shown_in_chinese(
    signed_in: Callable[..., Console], database: Any, rule: str | None, shown: str
) -> None:
    """Routing keeps the rule as it wrote it ("1 working days"); staff read it in Chinese."""
    with database.session() as session, session.begin():
        case = make_case(session)
        routing = dict(case.routing or {})
        routing["explanation"] = {**routing.get("explanation", {}), "deadline_rule": rule}
        case.routing = routing
        number = case.number
    page = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)
    assert f'<dd id="deadline-rule">{shown}</dd>' in page


def test_the_timeline_names_who_wrote_each_entry_in_chinese(
    signed_in: Callable[..., Console], database: Any
) -> None:
    """The machine's parts had their codes shown ("system", "ivr"); staff keep their names."""
    with database.session() as session, session.begin():
        case = make_case(session)
        for author in ("system", "ivr", "caller", "open311:fixmystreet", "desk_wang"):
            add_event(session, case=case, kind="note", actor=author, text="…")
        number = case.number
    page = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)
    authors = re.findall(r'<span class="actor"[^>]*>(.*?)</span>', page)  # a name: translate=no

    for shown in ("系统", "语音导航", "来电人", "Open311 接口（fixmystreet）", "desk_wang"):
        assert shown in authors
    assert not {"system", "ivr", "caller"} & set(authors)


def test_department_staff_cannot_triage_or_rule(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    assert urban.get("/console/triage").status_code == 403
    assert urban.get("/console/sent-back").status_code == 403
    response = urban.post(
        f"/console/cases/{number}/triage",
        {"triage-category": "streetlight", "triage-urgency": "normal"},
    )
    assert response.status_code == 403
    assert load(database, number).status == CaseStatus.ASSIGNED


def test_supervisors_see_overdue_and_escalated_cases_and_can_only_supervise(
    signed_in: Callable[..., Console], database: Any
) -> None:
    now = utcnow()
    # Long overdue, so that it sorts ahead of whatever else the session left overdue.
    overdue_number = new_case(database, deadline_at=now - timedelta(days=3650))
    on_time_number = new_case(database, deadline_at=now + timedelta(days=2))
    supervisor = signed_in("supervisor")

    overdue_page = supervisor.get("/console/overdue").get_data(as_text=True)
    assert f'id="case-row-{overdue_number}"' in overdue_page
    assert row_light(overdue_page, overdue_number) == "red"
    assert on_time_number not in overdue_page

    page = supervisor.get(f"/console/cases/{overdue_number}").get_data(as_text=True)
    assert 'id="escalate"' in page and 'id="supervise"' in page
    assert 'id="accept"' not in page and 'id="note-form"' not in page
    assert supervisor.post(f"/console/cases/{overdue_number}/accept").status_code == 403
    assert (
        supervisor.post(f"/console/cases/{overdue_number}/note", {"note-text": "x"}).status_code
        == 403
    )

    response = supervisor.post(
        f"/console/cases/{overdue_number}/supervise", {"supervise-instruction": "今天内办结"}
    )
    assert response.status_code == 302
    response = supervisor.post(
        f"/console/cases/{overdue_number}/escalate", {"escalate-reason": "超期未办"}
    )
    assert response.status_code == 302
    case = load(database, overdue_number)
    assert case.escalated_at is not None and case.major
    assert event_kinds(database, overdue_number)[-2:] == ["supervised", "escalated"]
    escalated_page = supervisor.get("/console/escalated").get_data(as_text=True)
    assert f'id="case-row-{overdue_number}"' in escalated_page
    assert 'id="escalate"' not in supervisor.get(f"/console/cases/{overdue_number}").get_data(
        as_text=True
    )


def test_a_refused_action_shows_the_reason_on_the_form_and_changes_nothing(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    response = urban.post(f"/console/cases/{number}/resolve", {"resolve-reply": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'id="resolve-form"' in html and "field-error" in html
    response = urban.post(
        f"/console/cases/{number}/transfer",
        {"transfer-department": "leadership", "transfer-reason": "请领导处理"},
    )
    assert response.status_code == 400
    assert load(database, number).department_code == "urban_mgmt"
    assert event_kinds(database, number) == ["routed"]


# Administration.


def test_only_admins_reach_the_admin_pages(signed_in: Callable[..., Console]) -> None:
    dispatcher = signed_in("dispatcher")
    for url in ("/console/admin/departments", "/console/admin/staff", "/console/admin/time-limits"):
        assert dispatcher.get(url).status_code == 403
    assert (
        dispatcher.post("/console/admin/time-limits/education", {"limit-hours": "1"}).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"limit-hours": "24", "limit-working_days": "2"}, "not both"),
        ({}, "not both"),
        ({"limit-hours": "0"}, "from 1 to 720"),
        ({"limit-hours": "-3"}, "from 1 to 720"),
        ({"limit-working_days": "61"}, "from 1 to 60"),
        ({"limit-hours": "twelve"}, "integer"),
        ({"limit-hours": "1.5"}, "integer"),
    ],
)
def test_time_limits_are_validated_with_a_clear_error(
    signed_in: Callable[..., Console], database: Any, form: dict[str, str], message: str
) -> None:
    admin = signed_in("admin")
    admin.post("/console/locale", {"locale": "en-US"})
    response = admin.post("/console/admin/time-limits/education", form)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'id="category-education" class="has-error"' in html
    with database.session() as session:
        category = session.get(Category, "education")
        assert (category.time_limit_hours, category.time_limit_working_days) == (None, 5)


def test_an_admin_changes_a_time_limit_and_the_change_is_logged(
    signed_in: Callable[..., Console], database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    admin = signed_in("admin")
    try:
        with caplog.at_level(logging.INFO, logger="hotline.console"):
            response = admin.post("/console/admin/time-limits/education", {"limit-hours": "72"})
        assert response.status_code == 302
        with database.session() as session:
            category = session.get(Category, "education")
            assert (category.time_limit_hours, category.time_limit_working_days) == (72, None)
        record = next(r for r in caplog.records if r.getMessage() == "time limit changed")
        assert record.category == "education"  # type: ignore[attr-defined]
        assert record.before == "5 working days"  # type: ignore[attr-defined]
        assert record.after == "72 h"  # type: ignore[attr-defined]
        assert record.username == admin.account.username  # type: ignore[attr-defined]
        assert admin.get("/console/admin/time-limits/unknown").status_code == 405
        assert (
            admin.post("/console/admin/time-limits/unknown", {"limit-hours": "1"}).status_code
            == 404
        )
    finally:
        # The directory is shared by the whole session: put the shipped limit back.
        response = admin.post("/console/admin/time-limits/education", {"limit-working_days": "5"})
        assert response.status_code == 302


def test_department_channels_are_validated_and_saved(
    signed_in: Callable[..., Console], database: Any
) -> None:
    admin = signed_in("admin")
    url = "/console/admin/departments/environment/channels"
    with database.session() as session:
        department = session.get(Department, "environment")
        original = {
            "webhook_url": department.webhook_url or "",
            "webhook_secret": department.webhook_secret or "",
            "email": department.email or "",
            "sms_number": department.sms_number or "",
        }
    bad = admin.post(url, {"channels-email": "not-an-address"})
    assert bad.status_code == 400
    bad = admin.post(url, {"channels-sms_number": "call me"})
    assert bad.status_code == 400
    no_secret = admin.post(url, {"channels-webhook_url": "https://env.example/hook"})
    assert no_secret.status_code == 400
    assert "secret" in no_secret.get_data(as_text=True)
    with database.session() as session:
        department = session.get(Department, "environment")
        assert (department.webhook_url or "", department.email or "") == (
            original["webhook_url"],
            original["email"],
        )

    try:
        response = admin.post(
            url,
            {
                "channels-webhook_url": "https://env.example/hook",
                "channels-webhook_secret": "s3cret-value",
                "channels-email": "duty@env.example",
                "channels-sms_number": "+8613900001111",
            },
        )
        assert response.status_code == 302
        with database.session() as session:
            department = session.get(Department, "environment")
            assert department.channels() == {
                Channel.WEBHOOK: "https://env.example/hook",
                Channel.EMAIL: "duty@env.example",
                Channel.SMS: "+8613900001111",
            }
            assert department.webhook_secret == "s3cret-value"
        page = admin.get("/console/admin/departments").get_data(as_text=True)
        assert "s3cret-value" not in page
    finally:
        with database.session() as session, session.begin():
            staff.set_department_channels(session, code="environment", **original)


def test_an_api_key_is_shown_once_and_works(
    signed_in: Callable[..., Console], database: Any
) -> None:
    admin = signed_in("admin")
    response = admin.post("/console/admin/departments/market/api-key")
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    key = cast(
        re.Match[str], re.search(r'id="api-key">([^<]+)<', response.get_data(as_text=True))
    ).group(1)
    with database.session() as session:
        department = staff.department_for_api_key(session, key=key)
        assert department is not None and department.code == "market"
    assert key not in admin.get("/console/admin/departments").get_data(as_text=True)


def test_admins_add_and_deactivate_staff(
    signed_in: Callable[..., Console],
    console: Callable[[], Console],
    make_account: Callable[..., Account],
    database: Any,
) -> None:
    admin = signed_in("admin")
    short = admin.post(
        "/console/admin/staff",
        {"user-username": "short-pw", "user-password": "short", "user-role": "dispatcher"},
    )
    assert short.status_code == 400
    needs_department = admin.post(
        "/console/admin/staff",
        {
            "user-username": "no-dept-x",
            "user-password": "long-enough-pw",
            "user-role": "department",
        },
    )
    assert needs_department.status_code == 400
    with database.session() as session:
        assert session.scalars(select(User).where(User.username == "no-dept-x")).first() is None

    username = f"new-{admin.address}"
    response = admin.post(
        "/console/admin/staff",
        {
            "user-username": username,
            "user-password": "long-enough-pw",
            "user-role": "department",
            "user-department": "water",
        },
    )
    assert response.status_code == 302
    with database.session() as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        assert (user.role, user.department_code, user.active) == ("department", "water", True)
        assert user.password_hash != "long-enough-pw"

    worker = make_account("department", "water")
    browser = console()
    browser.sign_in(worker)
    assert browser.get("/console/").status_code == 200
    assert admin.post(f"/console/admin/staff/{worker.id}/deactivate").status_code == 302
    assert browser.get("/console/").status_code == 302  # signed out at the next request
    assert admin.post(f"/console/admin/staff/{admin.account.id}/deactivate").status_code == 400
    assert admin.post(f"/console/admin/staff/{worker.id}/activate").status_code == 302


def test_leadership_sees_what_was_escalated_to_it(
    signed_in: Callable[..., Console], database: Any
) -> None:
    with database.session() as session, session.begin():
        case = make_case(session, department_code="water", category_code="water_supply")
        quiet = make_case(session, department_code="water", category_code="water_supply")
        lifecycle.escalate(session, case=case, actor=SYSTEM, reason="超期")
        number, quiet_number = case.number, quiet.number
    leadership = signed_in("department", "leadership")
    inbox = leadership.get("/console/?status=all").get_data(as_text=True)
    assert f'id="case-row-{number}"' in inbox
    assert quiet_number not in inbox
    html = leadership.get(f"/console/cases/{number}").get_data(as_text=True)
    assert "event-escalated" in html and "超期" in html
    assert leadership.get(f"/console/cases/{quiet_number}").status_code == 404


# Bad text and 首问负责 after a reopen (issue 12, defects 2 and 10).


@pytest.mark.parametrize(
    ("action", "field"),
    [
        ("note", "note-text"),
        ("resolve", "resolve-reply"),
        ("send-back", "send-back-reason"),
        ("transfer", "transfer-reason"),
    ],
)
@pytest.mark.parametrize(
    "bad", ["已处理\x00", "\x1b[31m已处理", "已处理\x85"], ids=["nul", "esc", "c1"]
)
def test_a_note_with_a_character_that_cannot_be_saved_is_a_form_error_and_writes_nothing(
    signed_in: Callable[..., Console], database: Any, action: str, field: str, bad: str
) -> None:
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    data = {field: bad}
    if action == "transfer":
        data["transfer-department"] = "housing"

    response = urban.post(f"/console/cases/{number}/{action}", data)

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "含有无法保存的字符" in html and "U+00" in html
    case = load(database, number)
    assert (case.status, case.department_code, case.resolution) == (
        CaseStatus.ASSIGNED,
        "urban_mgmt",
        None,
    )
    assert event_kinds(database, number) == ["routed"]
    assert urban.get(f"/console/cases/{number}").status_code == 200


def test_a_reopened_case_cannot_be_sent_back_by_the_department_that_accepted_it(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    assert urban.post(f"/console/cases/{number}/accept").status_code == 302
    resolved = urban.post(f"/console/cases/{number}/resolve", {"resolve-reply": "路灯已修复"})
    assert resolved.status_code == 302
    with database.session() as session, session.begin():
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert lifecycle.rate(session, case=case, score=2, message_sid=None).reopened

    page = urban.get(f"/console/cases/{number}").get_data(as_text=True)
    # 首问负责: still theirs, so the page offers no send-back, only handling it.
    assert 'id="send-back-form"' not in page
    assert 'id="resolve-form"' in page and 'id="transfer-form"' in page
    refused = urban.post(f"/console/cases/{number}/send-back", {"send-back-reason": "不是我们的"})

    assert refused.status_code == 400
    assert 'id="action-error"' in refused.get_data(as_text=True)
    case = load(database, number)
    assert (case.status, case.department_code) == (CaseStatus.ASSIGNED, "urban_mgmt")
    assert case.responsible_department_code == "urban_mgmt"
    assert "sent_back" not in event_kinds(database, number)


def test_sign_in_and_admin_fields_with_a_nul_are_form_errors_not_crashes(
    console: Callable[[], Console], signed_in: Callable[..., Console], database: Any
) -> None:
    # PostgreSQL refuses a NUL in text: the forms stop it before any query.
    browser = console()
    page = browser.post("/console/login", {"username": "desk\x001", "password": "x" * 12})
    assert page.status_code in (200, 400)
    assert "无法保存的字符" in page.get_data(as_text=True)

    admin = signed_in("admin")
    saved = admin.post(
        "/console/admin/departments/water/channels",
        {"channels-webhook_url": "https://water.example.test/\x00hook", "channels-email": ""},
    )
    assert saved.status_code == 400
    assert "无法保存的字符" in saved.get_data(as_text=True)
    with database.session() as session:
        water = session.get(Department, "water")
        assert water is not None
        assert "\x00" not in (water.webhook_url or "")


def test_a_full_length_note_typed_with_line_breaks_is_saved(
    signed_in: Callable[..., Console], database: Any
) -> None:
    # The page lets staff type 4000 characters, counting a line break as one; the browser posts
    # each as CRLF. The note is 4000 characters as stored, and must not be refused as 4200.
    typed = ("路灯" * 9 + "坏\r\n") * 200
    number = new_case(database)
    urban = signed_in("department", "urban_mgmt")
    page = urban.get(f"/console/cases/{number}").get_data(as_text=True)
    assert re.search(r'<textarea[^>]*id="note-text"[^>]*maxlength="4000"', page)

    response = urban.post(f"/console/cases/{number}/note", {"note-text": typed})

    assert response.status_code == 302, response.get_data(as_text=True)
    (note,) = [e for e in load(database, number).events if e.kind == "note"]
    assert note.data["text"] == typed.replace("\r\n", "\n").strip()
    assert len(note.data["text"]) == 3999


def test_a_check_the_call_could_not_run_is_on_the_timeline_in_chinese(
    signed_in: Callable[..., Console], database: Any
) -> None:
    number = new_case(database)
    with database.session() as session, session.begin():
        case = session.scalars(select(Case).where(Case.number == number)).one()
        intake.note_check_skipped(
            session, case=case, checks=["emergency", "knowledge"], reason="live transcript late"
        )

    html = signed_in("dispatcher").get(f"/console/cases/{number}").get_data(as_text=True)

    assert "通话中的检查未能进行" in html
    assert "紧急情况、知识库答复" in html and "实时转写来得太晚" in html
    shown = re.sub(r"<[^>]*>", " ", html)  # what the dispatcher reads, not the markup's classes
    assert "live transcript late" not in shown and "check_skipped" not in shown
    assert ">normal<" not in html  # the routed event's urgency, named in Chinese too
