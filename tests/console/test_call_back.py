"""回拨 from a case: the desk has the caller called back about the case. The task is the one an
operator takes from a seat (one open task per number); the case page says how it stands and
links to it on the seats page, which lists it with its case."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from cases import callbacks
from cases.models import CallbackTask, Case
from hotline.db import Database
from tests.public_site.test_public import caller_phone
from tests.support.factories import make_case
from tests.support.staff import Console

PROBLEM = "小区门口的井盖丢了，晚上很危险"


def case_with_caller(database: Database, phone: str | None) -> str:
    with database.session() as session, session.begin():
        return make_case(
            session, caller_number=phone, department_code="urban_mgmt", text=PROBLEM
        ).number


def tasks_for(database: Database, phone: str) -> list[CallbackTask]:
    with database.session() as session:
        return list(
            session.scalars(select(CallbackTask).where(CallbackTask.caller_number == phone))
        )


def events_of(database: Database, number: str) -> list[str]:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        return [event.kind for event in case.events]


def test_the_desk_has_the_caller_called_back_once_and_the_case_links_the_task(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = caller_phone()
    number = case_with_caller(database, phone)
    desk = signed_in("dispatcher")
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert 'id="call-back-form"' in page and 'id="callback-status"' not in page

    response = desk.post(f"/console/cases/{number}/call-back", {})
    # Twice (a double click): the same task, and the timeline says it once.
    again = desk.post(f"/console/cases/{number}/call-back", {})

    assert response.status_code == 302 and again.status_code == 302
    [task] = tasks_for(database, phone)
    assert task.status == "open" and task.reason == "case" and task.attempts == 0
    with database.session() as session:
        assert session.get_one(CallbackTask, task.id).case.number == number  # type: ignore[union-attr]
    assert events_of(database, number).count("callback_requested") == 1
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    assert re.search(r'id="callback-status">等待回拨<', page)
    assert f'href="/console/seats#callback-{task.id}"' in page
    assert 'id="call-back-form"' not in page  # one open task: nothing more to ask for
    assert "回拨来电人已安排" in page  # the timeline's entry, in words

    # The seats page lists the task with its case, for the desk to follow.
    seats = desk.get("/console/seats").get_data(as_text=True)
    row = re.search(rf'<tr id="callback-{task.id}" class="callback-row">(.*?)</tr>', seats, re.S)
    assert row and phone in row.group(1)  # the desk sees whole numbers: it calls them
    assert f'href="/console/cases/{number}"' in row.group(1) and PROBLEM in row.group(1)


def test_an_operator_reads_the_case_on_the_task_and_a_supervisor_sees_a_masked_number(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = caller_phone()
    number = case_with_caller(database, phone)
    signed_in("supervisor").post(f"/console/cases/{number}/call-back", {})
    [task] = tasks_for(database, phone)

    seat = signed_in("operator").get("/console/seat").get_data(as_text=True)
    row = re.search(rf'<tr id="callback-{task.id}" class="callback-row">(.*?)</tr>', seat, re.S)
    assert row and phone in row.group(1) and PROBLEM in row.group(1)
    # The case's number to quote, not a link: an operator sees only the cases they opened.
    assert f'id="callback-{task.id}-case">{number}<' in row.group(1)
    assert "/console/cases/" not in row.group(1)

    overview = signed_in("supervisor").get("/console/seats").get_data(as_text=True)
    row = re.search(rf'<tr id="callback-{task.id}" class="callback-row">(.*?)</tr>', overview, re.S)
    assert row and phone not in row.group(1) and phone[-4:] in row.group(1)


def test_a_callback_the_queue_owes_the_caller_is_the_one_the_case_joins(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = caller_phone()
    number = case_with_caller(database, phone)
    with database.session() as session, session.begin():
        queued = callbacks.request_callback(
            session, call_sid=None, caller_number=phone, locale="zh-CN", reason="hung_up_in_queue"
        )
        assert queued is not None
        queued_id = queued.id

    desk = signed_in("dispatcher")
    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)
    # Already owed a call back: the page says so and asks for no second one.
    assert 'id="callback-status">等待回拨<' in page and 'id="call-back-form"' not in page
    desk.post(f"/console/cases/{number}/call-back", {})

    [task] = tasks_for(database, phone)
    assert task.id == queued_id and task.reason == "hung_up_in_queue"
    with database.session() as session:
        assert session.get_one(CallbackTask, queued_id).case_id is not None


def test_once_called_back_the_case_says_so_and_may_ask_again(
    signed_in: Callable[..., Console], database: Database
) -> None:
    phone = caller_phone()
    number = case_with_caller(database, phone)
    desk = signed_in("dispatcher")
    desk.post(f"/console/cases/{number}/call-back", {})
    [task] = tasks_for(database, phone)
    with database.session() as session, session.begin():
        attempt = callbacks.start_attempt(session, task_id=task.id, operator="op", seat=None)
        callbacks.finish_attempt(
            session, attempt_id=attempt.id, outcome=callbacks.REACHED, talked_seconds=40
        )

    page = desk.get(f"/console/cases/{number}").get_data(as_text=True)

    assert re.search(r'id="callback-status">已回拨 · 1 次<', page)
    assert 'id="callback-link"' not in page  # the seats page lists open tasks only
    assert 'id="call-back-form"' in page  # a follow-up call may be asked for


def test_a_case_without_a_number_offers_no_call_back_and_refuses_one_in_words(
    signed_in: Callable[..., Console], database: Database
) -> None:
    number = case_with_caller(database, None)
    desk = signed_in("dispatcher")
    assert 'id="call-back-form"' not in desk.get(f"/console/cases/{number}").get_data(as_text=True)

    response = desk.post(f"/console/cases/{number}/call-back", {})

    assert response.status_code == 403
    assert "没有可回拨的电话号码" in response.get_data(as_text=True)
    assert "callback_requested" not in events_of(database, number)
