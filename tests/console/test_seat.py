"""The operator's seat page: sign-in lands there, the status buttons, the live assistant (and
its server-sent events over real HTTP), the case written at the seat, wrap-up, callbacks, the
caller's earlier cases, and who is refused what. The phone system is a recording fake; rows
are made with the domain's own functions."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
import requests
from flask import Flask
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from werkzeug.test import TestResponse

from cases import callbacks, intake, seats, staff
from cases.models import (
    CallbackTask,
    Case,
    CaseStatus,
    QueueEntry,
    Seat,
    SeatStatus,
    WrapUpCode,
)
from console import seat_live
from hotline.db import Database
from hotline.wiring import EXTENSION, Wiring, wiring_of
from tests.conftest import ACCOUNT_SID
from tests.support.browser import headless_chromium, screenshot
from tests.support.factories import DEFAULT_WORDS, make_case
from tests.support.staff import PASSWORD, TOKEN, Account, Console

STREETLIGHT = "鲁城街道春秋路的路灯坏了好几天了"


@dataclass
class FakeTelephony:
    """The phone system as the console sees it (`cases.SeatTelephony`), recording what
    it was asked to do."""

    asked: list[tuple[str, Any]] = field(default_factory=list)

    def ring_free_seats(self) -> None:
        self.asked.append(("ring_free_seats", None))

    def call_back(self, attempt_id: int) -> None:
        self.asked.append(("call_back", attempt_id))

    def text_case_number(self, case_id: int) -> None:
        self.asked.append(("text_case_number", case_id))

    def text_callback_given_up(self, task_id: int) -> None:
        self.asked.append(("text_callback_given_up", task_id))

    def transfer_to_emergency(self, *, call_sid: str, kind: str, locale: str) -> None:
        self.asked.append(("transfer_to_emergency", (call_sid, kind, locale)))

    def names(self) -> list[str]:
        return [name for name, _value in self.asked]


@pytest.fixture
def telephony(app: Flask, monkeypatch: pytest.MonkeyPatch) -> FakeTelephony:
    """The app wired with a fake phone system for this test."""
    fake = FakeTelephony()
    monkeypatch.setitem(app.extensions, EXTENSION, replace(wiring_of(app), telephony=fake))
    return fake


@dataclass
class Operator:
    """A signed-in operator's browser, with their account and (once taken) seat."""

    browser: Console
    account: Account
    seat_id: int | None = None

    @property
    def seat(self) -> int:
        """The operator's seat's id (they have taken one)."""
        assert self.seat_id is not None
        return self.seat_id

    def page(self) -> str:
        response = self.browser.get("/console/seat")
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(as_text=True)

    def post(self, url: str, data: dict[str, str] | None = None) -> TestResponse:
        """POST a seat form with the CSRF token of the seat page."""
        found = TOKEN.search(self.page())
        assert found, "no CSRF token on the seat page"
        return self.browser.client.post(url, data={"csrf_token": found.group(1), **(data or {})})


def new_number() -> str:
    """A mobile number no other test calls from."""
    return "+86139" + "".join(secrets.choice("0123456789") for _ in range(8))


@pytest.fixture
def operators(
    console: Callable[[], Console],
    make_account: Callable[..., Account],
    database: Database,
    telephony: FakeTelephony,
) -> Iterator[Callable[..., Operator]]:
    """Sign in operators (with a seat unless told not to); their seats are signed out after
    the test, so that no later test's caller rings them."""
    made: list[Operator] = []

    def make(*, seat: bool = True) -> Operator:
        account = make_account("operator")
        browser = console()
        assert browser.sign_in(account).status_code == 302
        browser.account = account
        operator = Operator(browser=browser, account=account)
        if seat:
            response = operator.post("/console/seat/address", {"seat-address": new_number()})
            assert response.status_code == 303, response.get_data(as_text=True)
            with database.session() as session:
                found = seats.seat_of(session, user_id=account.id)
                assert found is not None
                operator.seat_id = found.id
        made.append(operator)
        return operator

    yield make
    for operator in made:
        if operator.seat_id is not None:
            sign_out_seat(database, operator.seat_id)


def sign_out_seat(database: Database, seat_id: int) -> None:
    """End whatever the seat is doing and sign it out, through the queue's own steps."""
    with database.session() as session, session.begin():
        seat = session.get_one(Seat, seat_id)
        if seat.status in (SeatStatus.ON_CALL, SeatStatus.OFFERED):
            seats.seat_call_ended(
                session,
                seat_id=seat.id,
                offer=seat.offer,
                dial_status="completed",
                talked_seconds=1,
                wrap_up=timedelta(0),
            )
        seats.set_seat_status(session, seat=seat, status=SeatStatus.SIGNED_OUT)


def set_status(database: Database, seat_id: int, status: SeatStatus) -> None:
    with database.session() as session, session.begin():
        seats.set_seat_status(session, seat=session.get_one(Seat, seat_id), status=status)


def seat_status(database: Database, seat_id: int) -> SeatStatus:
    with database.session() as session:
        return SeatStatus(session.get_one(Seat, seat_id).status)


@dataclass(frozen=True)
class PutThrough:
    """A caller put through to a seat."""

    call_sid: str
    caller: str
    entry_id: int


def put_through(
    database: Database, operator: Operator, *, caller: str | None = None, reason: str = "asked"
) -> PutThrough:
    """A caller joins the queue, the operator's seat rings and answers, and Twilio puts the
    caller through: each step as the queue's webhooks take it."""
    assert operator.seat_id is not None
    caller = caller or new_number()
    call_sid = f"CA{uuid.uuid4().hex}"
    with database.session() as session, session.begin():
        intake.record_call(
            session,
            caller=intake.CallerInfo(
                call_sid=call_sid,
                account_sid=ACCOUNT_SID,
                from_number=caller,
                to_number="+865374412345",
                details={},
            ),
        )
        entry = seats.join_queue(
            session, call_sid=call_sid, caller_number=caller, locale="zh-CN", reason=reason
        )
        entry_id = entry.id
    set_status(database, operator.seat, SeatStatus.AVAILABLE)
    with database.session() as session, session.begin():
        rings = seats.seats_to_ring(session)
    ring = next((r for r in rings if r.seat_id == operator.seat_id), None)
    assert ring is not None, "another seat left free took the caller: see sign_out_seat"
    seat_call_sid = f"CA{uuid.uuid4().hex}"
    with database.session() as session, session.begin():
        assert seats.seat_answered(
            session, seat_id=ring.seat_id, offer=ring.offer, seat_call_sid=seat_call_sid
        )
        seats.put_through(
            session, caller_call_sid=call_sid, seat_call_sid=seat_call_sid, queue_time=7
        )
    return PutThrough(call_sid=call_sid, caller=caller, entry_id=entry_id)


def hear(
    database: Database, call_sid: str, text: str, emergency: dict[str, str] | None = None
) -> None:
    """The streams process writes the words heard so far."""
    with database.session() as session, session.begin():
        assert seats.hear_live(session, call_sid=call_sid, text=text, emergency=emergency)


def end_call(database: Database, operator: Operator, *, wrap_up: timedelta) -> None:
    """The seat's call ends (its Dial's action)."""
    with database.session() as session, session.begin():
        seat = session.get_one(Seat, operator.seat_id)
        seats.seat_call_ended(
            session,
            seat_id=seat.id,
            offer=seat.offer,
            dial_status="completed",
            talked_seconds=60,
            wrap_up=wrap_up,
        )


def flashed_error(page: str) -> bool:
    return 'class="flash flash-error"' in page


# --- signing in and the status ---------------------------------------------------------


def test_an_operator_who_signs_in_lands_on_the_seat_page(
    console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    browser = console()
    account = make_account("operator")
    signed_in = browser.sign_in(account)
    assert signed_in.status_code == 302
    page = browser.get(signed_in.headers["Location"], follow_redirects=True)
    assert page.request.path == "/console/seat"
    text = page.get_data(as_text=True)
    assert 'id="seat"' in text and 'id="nav-seat"' in text
    assert 'id="nav-home"' not in text  # operators have no inbox
    assert 'id="seat-address-form"' in text and 'id="seat-status"' not in text  # no seat yet
    # The page runs its own script, and nothing from anywhere else.
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp


def test_an_operator_takes_a_seat_and_sets_their_status(
    operators: Callable[..., Operator], database: Database, telephony: FakeTelephony
) -> None:
    operator = operators(seat=False)
    refused = operator.post("/console/seat/address", {"seat-address": "not a phone"})
    assert refused.status_code == 400
    assert 'class="field-error"' in refused.get_data(as_text=True)
    with database.session() as session:
        assert seats.seat_of(session, user_id=operator.account.id) is None

    number = new_number()
    assert operator.post("/console/seat/address", {"seat-address": number}).status_code == 303
    with database.session() as session:
        seat = seats.seat_of(session, user_id=operator.account.id)
        assert seat is not None and seat.address == number
        assert seat.status == SeatStatus.SIGNED_OUT
        operator.seat_id = seat.id
    page = operator.page()
    assert 'id="seat-status-now"' in page and 'id="seat-set-available"' in page

    assert operator.post("/console/seat/status", {"status": "available"}).status_code == 303
    assert seat_status(database, operator.seat) == SeatStatus.AVAILABLE
    assert telephony.names() == ["ring_free_seats"]  # after the commit: a caller may wait
    assert 'aria-pressed="true"' in operator.page()

    for status in ("busy", "on_break", "signed_out"):
        assert operator.post("/console/seat/status", {"status": status}).status_code == 303
        assert seat_status(database, operator.seat) == SeatStatus(status)
    assert telephony.names() == ["ring_free_seats"]  # only "available" rings anyone

    # Statuses the queue sets are not the operator's to choose.
    operator.post("/console/seat/status", {"status": "on_call"})
    assert seat_status(database, operator.seat) == SeatStatus.SIGNED_OUT

    # Signing out of the console leaves the seat: an available one rings no more.
    assert operator.post("/console/seat/status", {"status": "available"}).status_code == 303
    assert operator.post("/console/logout").status_code == 302
    assert seat_status(database, operator.seat) == SeatStatus.SIGNED_OUT


def test_a_seat_on_a_call_keeps_its_status_and_an_unanswered_ring_sets_it_away(
    operators: Callable[..., Operator], database: Database
) -> None:
    operator = operators()
    put_through(database, operator)
    assert 'id="seat-on-call"' in operator.page()
    response = operator.post("/console/seat/status", {"status": "on_break"})
    assert response.status_code == 303
    assert flashed_error(operator.browser.get(response.headers["Location"]).get_data(as_text=True))
    assert seat_status(database, operator.seat) == SeatStatus.ON_CALL

    end_call(database, operator, wrap_up=timedelta(minutes=2))
    assert 'id="seat-wrapping-up"' in operator.page()
    assert 'data-countdown-until="' in operator.page()

    # The next ring is not answered: the seat is away until its operator comes back.
    set_status(database, operator.seat, SeatStatus.AVAILABLE)
    with database.session() as session, session.begin():
        seats.join_queue(
            session,
            call_sid=f"CA{uuid.uuid4().hex}",
            caller_number=new_number(),
            locale="zh-CN",
            reason="asked",
        )
        rings = seats.seats_to_ring(session)
    ring = next(r for r in rings if r.seat_id == operator.seat_id)
    with database.session() as session, session.begin():
        seats.seat_call_ended(
            session,
            seat_id=ring.seat_id,
            offer=ring.offer,
            dial_status="no-answer",
            talked_seconds=None,
            wrap_up=timedelta(minutes=2),
        )
    assert 'id="seat-away"' in operator.page()
    assert operator.post("/console/seat/status", {"status": "available"}).status_code == 303
    assert seat_status(database, operator.seat) == SeatStatus.AVAILABLE


# --- who may see what --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "department"),
    [("dispatcher", None), ("department", "water"), ("supervisor", None), ("admin", None)],
)
def test_other_roles_are_refused_every_seat_page(
    role: str,
    department: str | None,
    signed_in: Callable[..., Console],
    telephony: FakeTelephony,
) -> None:
    browser = signed_in(role, department)
    token = browser.token()
    assert browser.get("/console/seat").status_code == 403
    assert browser.get("/console/seat/live").status_code == 403
    assert browser.get("/console/seat/earlier/123456789012").status_code == 403
    for url, data in [
        ("/console/seat/address", {"seat-address": new_number()}),
        ("/console/seat/status", {"status": "available"}),
        ("/console/seat/wrap-up", {"wrap-up-entry": "1", "wrap-up-code": "answered"}),
        ("/console/seat/emergency", {"emergency-entry": "1"}),
        ("/console/seat/case", {"seat-case-entry": "1"}),
        ("/console/seat/callbacks/1", {}),
    ]:
        response = browser.client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 403, url
    assert telephony.asked == []
    expected = 200 if role != "department" else 403
    assert browser.get("/console/seats").status_code == expected


def test_supervisors_see_the_seats_and_the_callers_waiting_masked(
    operators: Callable[..., Operator], signed_in: Callable[..., Console], database: Database
) -> None:
    operator = operators()
    set_status(database, operator.seat, SeatStatus.BUSY)  # rings nobody while a caller waits
    caller = new_number()
    with database.session() as session, session.begin():
        entry = seats.join_queue(
            session,
            call_sid=f"CA{uuid.uuid4().hex}",
            caller_number=caller,
            locale="en-US",
            reason="status_lookup",
        )
        entry_id = entry.id
    try:
        for role in ("supervisor", "dispatcher"):
            page = signed_in(role).get("/console/seats").get_data(as_text=True)
            row = re.search(rf'<tr id="seat-row-{operator.seat_id}".*?</tr>', page, re.S)
            assert row and operator.account.username in row.group(0)
            waiting = re.search(rf'<tr id="waiting-{entry_id}".*?</tr>', page, re.S)
            assert waiting, "the caller waiting is listed"
            assert caller not in page and caller[-4:] in waiting.group(0)
        assert operators(seat=False).browser.get("/console/seats").status_code == 403
    finally:
        with database.session() as session, session.begin():
            seats.leave_queue(session, call_sid=entry.call_sid, result="leave", queue_time=3)


def test_another_operators_call_is_refused(
    operators: Callable[..., Operator], database: Database, telephony: FakeTelephony
) -> None:
    taker, other = operators(), operators()
    call = put_through(database, taker)
    hear(database, call.call_sid, "着火了", emergency={"kind": "fire", "number": "119"})
    entry = str(call.entry_id)
    for url, data in [
        ("/console/seat/wrap-up", {"wrap-up-entry": entry, "wrap-up-code": "nuisance"}),
        ("/console/seat/emergency", {"emergency-entry": entry}),
        (
            "/console/seat/case",
            {
                "seat-case-entry": entry,
                "seat-case-summary": "冒名",
                "seat-case-category": "streetlight",
                "seat-case-department": "urban_mgmt",
                "seat-case-urgency": "normal",
            },
        ),
    ]:
        assert other.post(url, data).status_code == 403, url
    assert telephony.asked == []
    with database.session() as session:
        assert session.get_one(QueueEntry, call.entry_id).wrap_up is None
        assert intake.get_call(session, call_sid=call.call_sid) is not None
        assert session.scalars(select(Case).where(Case.owner == other.account.username)).all() == []
    assert call.call_sid not in other.page() and 'id="seat-no-call"' in other.page()


# --- the live assistant --------------------------------------------------------------------


def test_the_seat_page_shows_the_call_with_suggestions_and_earlier_cases(
    operators: Callable[..., Operator],
    database: Database,
    wiring: Wiring,
    telephony: FakeTelephony,
) -> None:
    operator = operators()
    caller = new_number()
    with database.session() as session, session.begin():
        earlier = make_case(session, caller_number=caller, text="小区停水三天了").number
    call = put_through(database, operator, caller=caller, reason="report_then_person")
    page = operator.page()
    assert 'id="seat-transcript-empty"' in page and 'id="seat-suggestion-empty"' in page
    assert f'data-entry="{call.entry_id}"' in page
    assert caller in page and 'id="seat-caller-waited"' in page

    hear(database, call.call_sid, STREETLIGHT)
    page = operator.page()
    transcript = re.search(r'id="seat-transcript".*?</blockquote>', page, re.S)
    assert transcript and STREETLIGHT in transcript.group(0)
    assert 'data-code="streetlight"' in page and 'data-code="urban_mgmt"' in page
    assert 'id="seat-suggested-deadline"' in page and 'id="seat-suggested-rule"' in page
    place = re.search(r'id="seat-suggested-place".*?</dd>', page, re.S)
    assert place and "鲁城街道" in place.group(0)
    # The case form is filled in from the suggestion.
    assert re.search(r'id="seat-case-summary"[^>]*>\s*' + STREETLIGHT, page)
    assert re.search(r'<option selected value="streetlight">|value="streetlight" selected', page)
    assert re.search(r'id="seat-case-deadline"[^>]*value="\d{4}-\d\d-\d\dT\d\d:\d\d"', page)
    assert f'id="seat-earlier-{earlier}"' in page
    assert 'id="emergency-banner"' not in page

    # A question the knowledge base answers: its article is shown beside the call.
    question = "身份证丢了怎么补办"
    wiring.knowledge.ready(timeout=120)
    with database.session() as session:
        expected = wiring.knowledge.suggest(session, question, "zh-CN")
    assert expected is not None
    hear(database, call.call_sid, question)
    assert f'data-article="{expected.article.id}"' in operator.page()

    hear(database, call.call_sid, "楼里着火了，好多烟", emergency={"kind": "fire", "number": "119"})
    page = operator.page()
    assert 'id="emergency-banner"' in page and 'id="emergency-transfer"' in page
    response = operator.post("/console/seat/emergency", {"emergency-entry": str(call.entry_id)})
    assert response.status_code == 303
    assert telephony.asked == [("transfer_to_emergency", (call.call_sid, "fire", "zh-CN"))]


def test_earlier_cases_open_read_only_and_only_for_the_caller_on_the_call(
    operators: Callable[..., Operator], database: Database
) -> None:
    operator, bystander = operators(), operators()
    caller = new_number()
    with database.session() as session, session.begin():
        earlier = make_case(session, caller_number=caller).number
        stranger = make_case(session, caller_number=new_number()).number
    url = f"/console/seat/earlier/{earlier}"
    assert operator.browser.get(url).status_code == 404  # no call yet

    call = put_through(database, operator, caller=caller)
    page = operator.browser.get(url)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'id="earlier-case"' in text and DEFAULT_WORDS in text
    assert "<form" not in text.split('id="main"', 1)[1]  # read-only: no action at all
    # Only through the seat: the case itself stays the department's.
    assert operator.browser.get(f"/console/cases/{earlier}").status_code == 404
    assert operator.browser.get(f"/console/seat/earlier/{stranger}").status_code == 404
    assert bystander.browser.get(url).status_code == 404

    end_call(database, operator, wrap_up=timedelta(minutes=2))
    assert operator.browser.get(url).status_code == 200  # still writing the call up
    operator.post(
        "/console/seat/wrap-up", {"wrap-up-entry": str(call.entry_id), "wrap-up-code": "answered"}
    )
    assert operator.browser.get(url).status_code == 404  # the call is over


def test_the_live_stream_sends_the_words_as_they_come(
    operators: Callable[..., Operator], database: Database, live_server: str
) -> None:
    operator = operators()
    call = put_through(database, operator)
    browser = requests.Session()
    login = browser.get(f"{live_server}/console/login", timeout=10)
    token = TOKEN.search(login.text)
    assert token
    signed_in = browser.post(
        f"{live_server}/console/login",
        data={
            "csrf_token": token.group(1),
            "username": operator.account.username,
            "password": PASSWORD,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert signed_in.status_code == 302

    with browser.get(f"{live_server}/console/seat/live", stream=True, timeout=10) as stream:
        assert stream.status_code == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = read_events(str(line) for line in stream.iter_lines(decode_unicode=True))
        first = next_event(events, lambda data: True)
        assert first["entry"] == call.entry_id and first["status"] == "on_call"
        assert 'id="seat-transcript-empty"' in first["live_html"]

        hear(database, call.call_sid, STREETLIGHT)
        heard = next_event(events, lambda data: STREETLIGHT in data["live_html"])
        assert heard["prefill"]["summary"] == STREETLIGHT
        assert heard["prefill"]["category"] == "streetlight"
        assert 'data-code="streetlight"' in heard["live_html"]

        hear(database, call.call_sid, STREETLIGHT + "，晚上很黑")
        more = next_event(events, lambda data: "晚上很黑" in data["live_html"])
        assert more["entry"] == call.entry_id

        # Signed out elsewhere: the stream stops, and coming back meets the sign-in page.
        with database.session() as session, session.begin():
            staff.end_all_sessions(session, user_id=operator.account.id)
        started = time.monotonic()
        assert list(events) == []
        assert time.monotonic() - started < 10
    again = browser.get(f"{live_server}/console/seat/live", allow_redirects=False, timeout=10)
    assert again.status_code == 302 and "/console/login" in again.headers["Location"]


def test_the_live_stream_ends_after_its_time_and_says_when_to_come_back(
    operators: Callable[..., Operator], monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = operators()
    monkeypatch.setattr(seat_live, "STREAM_SECONDS", 1.0)
    started = time.monotonic()
    response = operator.browser.get("/console/seat/live")
    body = response.get_data(as_text=True)  # the whole stream: it must end by itself
    assert time.monotonic() - started < 10
    assert body.startswith("retry: ")
    assert body.count("event: seat\n") == 1  # nothing changed after the first
    assert json.loads(body.split("data: ", 1)[1].split("\n", 1)[0])["entry"] is None


def read_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The data of each `seat` event in a text/event-stream."""
    name, data = None, []
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif line == "":
            if name == "seat" and data:
                yield json.loads("\n".join(data))
            name, data = None, []


def next_event(
    events: Iterator[dict[str, Any]], wanted: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    """The next event that `wanted` accepts, read for at most `timeout` seconds (the stream's
    own read timeout bounds each wait; keep-alives come every 15 seconds)."""
    ends = time.monotonic() + timeout
    for data in events:
        if wanted(data):
            return data
        if time.monotonic() > ends:
            break
    pytest.fail("the live stream did not send the event")


# --- the case, the wrap-up, callbacks --------------------------------------------------------


def test_the_case_form_opens_a_case_owned_by_the_operator_and_texts_its_number(
    operators: Callable[..., Operator], database: Database, telephony: FakeTelephony
) -> None:
    operator = operators()
    call = put_through(database, operator)
    hear(database, call.call_sid, STREETLIGHT)
    invalid = operator.post(
        "/console/seat/case",
        {"seat-case-entry": str(call.entry_id), "seat-case-summary": ""},
    )
    assert invalid.status_code == 400
    assert 'class="field-error"' in invalid.get_data(as_text=True)
    assert telephony.asked == []

    response = operator.post(
        "/console/seat/case",
        {
            "seat-case-entry": str(call.entry_id),
            "seat-case-suggested": "streetlight",
            "seat-case-summary": "春秋路路灯坏了，晚上很黑",
            "seat-case-category": "streetlight",
            "seat-case-department": "urban_mgmt",
            "seat-case-urgency": "normal",
            "seat-case-place": "lucheng",
            "seat-case-deadline": "",
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    with database.session() as session:
        case = session.scalars(
            select(Case).where(Case.call_id == intake.get_call(session, call_sid=call.call_sid).id)
        ).one()
        assert case.owner == operator.account.username
        assert case.status == CaseStatus.ASSIGNED and case.department_code == "urban_mgmt"
        assert case.deadline_at is not None and case.caller_number == call.caller
        opened = [event for event in case.events if event.kind == "opened_at_seat"]
        assert opened and opened[0].data["summary"] == "春秋路路灯坏了，晚上很黑"
        assert case.work_order == "春秋路路灯坏了，晚上很黑"  # what the department reads first
        case_id, number = case.id, case.number
    assert telephony.asked == [("text_case_number", case_id)]

    page = operator.page()
    big = re.search(r'id="seat-case-number"[^>]*>(.*?)</p>', page, re.S)
    assert big and re.findall(r'<span class="digit">(\d)</span>', big.group(1)) == list(number)
    assert 'id="seat-case-form"' not in page
    # The operator's own case is theirs to open from now on.
    assert operator.browser.get(f"/console/cases/{number}").status_code == 200

    again = operator.post(
        "/console/seat/case",
        {
            "seat-case-entry": str(call.entry_id),
            "seat-case-summary": "再开一次",
            "seat-case-category": "streetlight",
            "seat-case-department": "urban_mgmt",
            "seat-case-urgency": "normal",
        },
    )
    assert again.status_code == 409  # the case is routed: nothing opens twice
    assert telephony.asked == [("text_case_number", case_id)]


def test_wrap_up_frees_the_seat_and_rings_the_next_caller(
    operators: Callable[..., Operator], database: Database, telephony: FakeTelephony
) -> None:
    operator = operators()
    call = put_through(database, operator)
    end_call(database, operator, wrap_up=timedelta(minutes=5))
    assert seat_status(database, operator.seat) == SeatStatus.WRAP_UP
    assert 'id="seat-wrap-up-form"' in operator.page()

    response = operator.post(
        "/console/seat/wrap-up",
        {"wrap-up-entry": str(call.entry_id), "wrap-up-code": "callback_needed"},
    )
    assert response.status_code == 303
    assert seat_status(database, operator.seat) == SeatStatus.AVAILABLE
    assert telephony.names() == ["ring_free_seats"]
    with database.session() as session:
        entry = session.get_one(QueueEntry, call.entry_id)
        assert entry.wrap_up == WrapUpCode.CALLBACK_NEEDED
        assert entry.wrap_up_by == operator.account.username
        task = session.scalars(
            select(CallbackTask).where(CallbackTask.call_sid == call.call_sid)
        ).one()
        assert task.caller_number == call.caller
    page = operator.page()
    assert 'id="seat-no-call"' in page and 'id="seat-wrap-up-form"' not in page
    assert f'id="callback-{task.id}"' in page


def test_a_callback_is_started_once_at_a_time(
    operators: Callable[..., Operator], database: Database, telephony: FakeTelephony
) -> None:
    first, second = operators(), operators()
    older, newer = new_number(), new_number()
    with database.session() as session, session.begin():
        tasks = [
            callbacks.request_callback(
                session,
                call_sid=f"CA{uuid.uuid4().hex}",
                caller_number=number,
                locale="zh-CN",
                reason="hung_up_in_queue",
            )
            for number in (older, newer)
        ]
        task_ids = [task.id for task in tasks if task is not None]
    page = first.page()
    assert page.index(f'id="callback-{task_ids[0]}"') < page.index(f'id="callback-{task_ids[1]}"')

    assert first.post(f"/console/seat/callbacks/{task_ids[0]}").status_code == 303
    with database.session() as session:
        task = session.get_one(CallbackTask, task_ids[0])
        (attempt,) = task.attempt_rows
        assert attempt.operator == first.account.username and attempt.outcome is None
        attempt_id = attempt.id
    assert telephony.asked == [("call_back", attempt_id)]

    refused = second.post(f"/console/seat/callbacks/{task_ids[0]}")
    assert refused.status_code == 303
    assert flashed_error(second.browser.get(refused.headers["Location"]).get_data(as_text=True))
    with database.session() as session:
        assert session.get_one(CallbackTask, task_ids[0]).attempts == 1
    assert telephony.asked == [("call_back", attempt_id)]
    assert f'id="callback-{task_ids[0]}-under-way"' in second.page()

    # The attempt's outcome is shown with the task.
    with database.session() as session, session.begin():
        callbacks.finish_attempt(
            session, attempt_id=attempt_id, outcome="no-answer", talked_seconds=None
        )
    row = re.search(rf'id="callback-{task_ids[0]}".*?</tr>', second.page(), re.S)
    assert row and 'class="callback-attempts"' in row.group(0)
    assert f'id="callback-{task_ids[0]}-form"' in row.group(0)  # may be tried again


def test_nobody_without_a_seat_calls_back(
    operators: Callable[..., Operator], database: Database, telephony: FakeTelephony
) -> None:
    operator = operators(seat=False)
    with database.session() as session, session.begin():
        task = callbacks.request_callback(
            session, call_sid=None, caller_number=new_number(), locale="zh-CN", reason="asked"
        )
        assert task is not None
        task_id = task.id
    response = operator.post(f"/console/seat/callbacks/{task_id}")
    assert response.status_code == 303
    assert flashed_error(operator.browser.get(response.headers["Location"]).get_data(as_text=True))
    with database.session() as session:
        assert session.get_one(CallbackTask, task_id).attempts == 0
    assert telephony.asked == []


# --- the page in a real browser ----------------------------------------------------------------


def test_the_seat_page_updates_itself_in_a_browser(
    operators: Callable[..., Operator], database: Database, live_server: str
) -> None:
    operator = operators()
    call = put_through(database, operator)
    with headless_chromium(height=1600) as driver:
        driver.get(f"{live_server}/console/login")
        driver.find_element(By.ID, "username").send_keys(operator.account.username)
        driver.find_element(By.ID, "password").send_keys(operator.account.password)
        driver.find_element(By.ID, "login-submit").click()
        wait = WebDriverWait(driver, 20)
        wait.until(expected_conditions.presence_of_element_located((By.ID, "seat-live")))
        assert driver.find_elements(By.ID, "seat-transcript-empty")

        # The operator starts writing before the caller has finished.
        summary = driver.find_element(By.ID, "seat-case-summary")
        summary.send_keys("市民反映：")
        hear(database, call.call_sid, STREETLIGHT)
        wait.until(
            expected_conditions.text_to_be_present_in_element((By.ID, "seat-transcript"), "路灯")
        )
        # The suggestion fills what the operator has not touched, and nothing they typed.
        wait.until(
            lambda d: (
                Select(
                    d.find_element(By.ID, "seat-case-category")
                ).first_selected_option.get_attribute("value")
                == "streetlight"
            )
        )
        assert summary.get_attribute("value") == "市民反映："
        assert (
            Select(
                driver.find_element(By.ID, "seat-case-place")
            ).first_selected_option.get_attribute("value")
            == "lucheng"
        )
        assert driver.find_element(By.ID, "seat-case-deadline").get_attribute("value")
        screenshot(driver, "seat-live-assistant")

        # The call ends while the operator writes: the status changes without a reload.
        end_call(database, operator, wrap_up=timedelta(minutes=2))
        wait.until(expected_conditions.presence_of_element_located((By.ID, "seat-wrapping-up")))
        assert summary.get_attribute("value") == "市民反映："  # the same page, still typed in
        # Counting down from two minutes, by the page's own clock.
        wait.until(lambda d: 0 < int(d.find_element(By.ID, "seat-wrap-up-left").text) < 119)

        summary.send_keys("路灯坏了")
        driver.find_element(By.ID, "seat-case-submit").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "seat-case-number")))
        digits = driver.find_elements(By.CSS_SELECTOR, "#seat-case-number .digit")
        number = "".join(digit.text for digit in digits)
        with database.session() as session:
            case = session.scalars(select(Case).where(Case.number == number)).one()
            assert case.owner == operator.account.username
            assert case.category_code == "streetlight" and case.place_code == "lucheng"
        screenshot(driver, "seat-case-number")

        Select(driver.find_element(By.ID, "seat-wrap-up-code")).select_by_value("case_opened")
        driver.find_element(By.ID, "seat-wrap-up-submit").click()
        wait.until(expected_conditions.presence_of_element_located((By.ID, "seat-no-call")))
        assert seat_status(database, operator.seat) == SeatStatus.AVAILABLE
