"""The public pages through the app: the case lookup (no personal data, one answer for every
miss, guessing throttled) and the disclosure page (charts for our script to draw, tables,
downloads)."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from cases import lifecycle, lookup, staff, throttles
from cases.access import Actor
from cases.models import Role, ThrottleFailure, utcnow
from cases.numbers import luhn_check_digit, new_case_number
from hotline.db import Database
from tests.support.factories import make_case

URBAN_MGMT = Actor(name="urban-test", role=Role.DEPARTMENT, department_code="urban_mgmt")


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_address() -> str:
    """An address no other test uses, so that throttling in one test never leaks into another."""
    return "10.{}.{}.{}".format(*(secrets.randbelow(250) + 1 for _ in range(3)))


def caller_phone() -> str:
    return "+86139" + "".join(str(secrets.randbelow(10)) for _ in range(8))


def committed_case(
    database: Database, *, caller_number: str, text: str, reply: str | None = None
) -> str:
    """A street-light case routed to urban management (resolved with `reply` if given)."""
    with database.session() as session, session.begin():
        case = make_case(session, caller_number=caller_number, text=text)
        if reply is not None:
            lifecycle.resolve(session, case=case, actor=URBAN_MGMT, reply=reply)
        return case.number


def csrf_token(client: FlaskClient) -> str:
    page = client.get("/lookup").get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert match, "the lookup form carries a CSRF token"
    return match.group(1)


def look_up(
    client: FlaskClient, *, number: str, digits: str, address: str, lang: str = "en-US"
) -> Any:
    return client.post(
        f"/lookup?lang={lang}",
        data={"csrf_token": csrf_token(client), "number": number, "phone_last4": digits},
        environ_overrides={"REMOTE_ADDR": address},
    )


def result_block(html: str) -> str:
    match = re.search(r'<div id="lookup-result".*?</div>', html, re.S)
    assert match, "the page has a result block"
    return match.group(0)


def failed_lookups(database: Database, address: str) -> int:
    with database.session() as session:
        return int(
            session.scalar(
                select(func.count(ThrottleFailure.id)).where(
                    ThrottleFailure.kind == throttles.LOOKUP,
                    ThrottleFailure.remote_addr == address,
                )
            )
            or 0
        )


def test_home_page_links_to_the_lookup_and_the_record(app: Flask, client: FlaskClient) -> None:
    response = client.get("/?lang=en-US")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="en-US">' in html
    assert 'href="/lookup?lang=en-US"' in html
    assert 'href="/disclosure?lang=en-US"' in html
    assert "110" in html and "119" in html and "120" in html
    # The choice is remembered for the visitor; a new visitor gets Chinese.
    assert '<html lang="en-US">' in client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in app.test_client().get("/").get_data(as_text=True)


def test_lookup_with_the_right_digits_shows_progress_and_no_personal_data(
    client: FlaskClient, database: Database
) -> None:
    phone = caller_phone()
    words = f"春秋路{uuid.uuid4().hex[:8]}号门口的路灯不亮"
    reply = f"已更换灯泡 {uuid.uuid4().hex[:6]}"
    number = committed_case(database, caller_number=phone, text=words, reply=reply)

    response = look_up(client, number=number, digits=phone[-4:], address=new_address())

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    block = result_block(html)
    assert f"Case {number}" in block
    assert re.search(r'id="case-status">Resolved, waiting for your rating<', block)
    assert re.search(r'id="case-category">Street lights<', block)
    assert re.search(r'id="case-department">Urban Management Bureau<', block)
    assert re.search(r'id="case-resolved">\d{4}-\d\d-\d\d \d\d:\d\d<', block)
    assert re.search(r'id="case-rated">No<', block)
    assert reply in block
    # Nothing about the caller: not the number in any form, not their words, no recording.
    for private in (phone, phone.removeprefix("+86"), phone.removeprefix("+"), words):
        assert private not in html
    assert "<audio" not in html
    # The digits typed are not echoed back.
    assert re.search(r'id="phone_last4"[^>]*value="\d', html) is None


def test_the_lookup_speaks_chinese_by_default(app: Flask, database: Database) -> None:
    phone = caller_phone()
    number = committed_case(database, caller_number=phone, text="路灯不亮")
    visitor = app.test_client()

    form = visitor.get("/lookup").get_data(as_text=True)
    response = look_up(
        visitor, number=number, digits=phone[-4:], address=new_address(), lang="zh-CN"
    )

    assert '<html lang="zh-CN">' in form
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(r'id="case-department">城管局<', html)
    assert re.search(r'id="case-category">路灯<', html)
    # The status is put into the page's language, not left in the English of the source.
    status = re.search(r'id="case-status">([^<]+)<', html)
    assert status and status.group(1) != "Assigned to the department"
    error = visitor.get("/disclosure?weeks=0&lang=zh-CN")
    message = re.search(r'id="error-message">([^<]+)<', error.get_data(as_text=True))
    assert error.status_code == 400 and message
    assert "52" in message.group(1) and "weeks" not in message.group(1)


def test_wrong_digits_and_an_unknown_number_get_the_same_answer(
    client: FlaskClient, database: Database
) -> None:
    phone = caller_phone()
    number = committed_case(database, caller_number=phone, text="路灯不亮", reply="已修复")
    wrong_digits = f"{(int(phone[-4:]) + 1) % 10000:04d}"
    unknown = new_case_number()
    address = new_address()

    wrong = look_up(client, number=number, digits=wrong_digits, address=address)
    missing = look_up(client, number=unknown, digits=phone[-4:], address=address)

    assert wrong.status_code == missing.status_code == 404
    wrong_block = result_block(wrong.get_data(as_text=True))
    assert wrong_block == result_block(missing.get_data(as_text=True))
    assert 'id="lookup-not-found"' in wrong_block
    assert "case-status" not in wrong_block
    assert failed_lookups(database, address) == 2


def test_a_malformed_number_gets_a_clear_error_and_counts_nothing(
    client: FlaskClient, database: Database
) -> None:
    address = new_address()
    valid = new_case_number()
    mistyped = valid[:-1] + str((int(valid[-1]) + 1) % 10)
    assert luhn_check_digit(mistyped[:-1]) != mistyped[-1]

    short = look_up(client, number="12345", digits="1234", address=address)
    typo = look_up(client, number=mistyped, digits="1234", address=address)
    letters = look_up(client, number=valid, digits="12a4", address=address)

    assert short.status_code == typo.status_code == letters.status_code == 400
    assert "A case number has 9 digits." in short.get_data(as_text=True)
    assert "please check it for typos" in typo.get_data(as_text=True)
    assert "Enter exactly 4 digits." in letters.get_data(as_text=True)
    assert failed_lookups(database, address) == 0


def test_spaces_and_dashes_in_a_keyed_number_are_ignored(
    client: FlaskClient, database: Database
) -> None:
    phone = caller_phone()
    number = committed_case(database, caller_number=phone, text="路灯不亮")
    spaced = f"{number[:3]} {number[3:6]}-{number[6:]}"

    response = look_up(client, number=spaced, digits=phone[-4:], address=new_address())

    assert response.status_code == 200
    assert re.search(
        r'id="case-status">Assigned to the department<', response.get_data(as_text=True)
    )


def test_lookup_without_a_csrf_token_is_refused(client: FlaskClient, database: Database) -> None:
    address = new_address()
    response = client.post(
        "/lookup",
        data={"number": new_case_number(), "phone_last4": "1234"},
        environ_overrides={"REMOTE_ADDR": address},
    )
    assert response.status_code == 400
    assert failed_lookups(database, address) == 0


def test_guessing_one_number_from_one_address_is_slowed_and_said_in_minutes(
    client: FlaskClient, database: Database
) -> None:
    phone = caller_phone()
    number = committed_case(database, caller_number=phone, text="路灯不亮")
    right = phone[-4:]
    guesses = (f"{(int(right) + offset) % 10000:04d}" for offset in range(1, 100))
    address = new_address()

    for _ in range(lookup.LOOKUP_POLICY.free):
        assert (
            look_up(client, number=number, digits=next(guesses), address=address).status_code == 404
        )
    # Paused now: even the right digits get no answer, so guessing on gains nothing.
    throttled = look_up(client, number=number, digits=right, address=address, lang="zh-CN")

    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    html = throttled.get_data(as_text=True)
    assert re.search(r'id="lookup-throttled">[^<]*请 1 分钟后再试', html)
    assert "case-status" not in html
    # The refused attempt itself is not recorded, so waiting out the pause is enough.
    assert failed_lookups(database, address) == lookup.LOOKUP_POLICY.free
    # Another address still gets its answer, and staff sign-in from this address is untouched.
    assert look_up(client, number=number, digits=right, address=new_address()).status_code == 200
    with database.session() as session:
        sign_in = staff.sign_in_policy(free_failures=1, longest_pause=timedelta(hours=1))
        verdict = throttles.check(
            session, policy=sign_in, subject="nobody", remote_addr=address, now=utcnow()
        )
        assert verdict.allowed


def test_strangers_guessing_at_a_case_number_from_many_addresses_do_not_lock_its_caller_out(
    client: FlaskClient, database: Database
) -> None:
    phone = caller_phone()
    number = committed_case(database, caller_number=phone, text="路灯不亮")
    right = phone[-4:]

    for offset in range(1, 21):
        wrong = f"{(int(right) + offset) % 10000:04d}"
        assert (
            look_up(client, number=number, digits=wrong, address=new_address()).status_code == 404
        )

    assert look_up(client, number=number, digits=right, address=new_address()).status_code == 200


def test_one_address_checking_several_cases_is_not_paused_by_its_own_typos_on_one(
    client: FlaskClient, database: Database
) -> None:
    family = new_address()
    first, second = caller_phone(), caller_phone()
    first_number = committed_case(database, caller_number=first, text="路灯不亮")
    second_number = committed_case(database, caller_number=second, text="路灯不亮")
    wrong = f"{(int(first[-4:]) + 1) % 10000:04d}"
    for _ in range(lookup.LOOKUP_POLICY.free + 1):
        look_up(client, number=first_number, digits=wrong, address=family)

    response = look_up(client, number=second_number, digits=second[-4:], address=family)
    assert response.status_code == 200


def external_references(html: str) -> list[str]:
    """Every src or href that leaves this site (an absolute or protocol-relative URL)."""
    references = re.findall(r'(?:src|href|action)\s*=\s*["\']([^"\']*)["\']', html)
    return [url for url in references if re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url, re.I)]


def chart_specs(html: str) -> dict[str, dict[str, Any]]:
    """Each chart on a page by its figure's id: what the page's script is given to draw."""
    found = re.findall(
        r'<figure class="chart" id="([^"]+)" hidden>.*?role="img" aria-label="([^"]+)" '
        r"data-chart='([^']*)'",
        html,
        re.S,
    )
    return {name: {**json.loads(spec), "aria_label": label} for name, label, spec in found}


def test_the_disclosure_pages_charts_are_drawn_by_our_own_script_with_no_external_urls(
    client: FlaskClient, database: Database
) -> None:
    phone = caller_phone()
    committed_case(database, caller_number=phone, text="路灯不亮", reply="已修复")

    # A week count no other test asks for: the cached figures are computed now, with the case.
    response = client.get("/disclosure?weeks=3&lang=en-US")

    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self';" in policy
    html = response.get_data(as_text=True)
    charts = chart_specs(html)
    # Volume and rates per week and per department, contacts beside problems (issue 15), and
    # the direct-answer rate (issue 13), each hidden until the script has drawn it.
    assert {name: spec["kind"] for name, spec in charts.items()} == {
        "chart-weekly-volume": "columns",
        "chart-weekly-rates": "lines",
        "chart-department-volume": "rows",
        "chart-department-rates": "rows",
        "chart-contacts": "lines",
        "chart-direct-answers": "lines",
    }
    weekly = charts["chart-weekly-volume"]
    assert len(weekly["labels"]) == 3 and weekly["x_label"] == "Week"
    assert weekly["series"][0]["values"][-1] >= 1 and not weekly["percent"]
    departments = charts["chart-department-volume"]
    urban = departments["labels"].index("Urban Management Bureau")
    assert departments["series"][0]["values"][urban] >= 1
    rates = charts["chart-weekly-rates"]
    assert rates["percent"] and len(rates["series"]) == 5
    assert "from 0% to 100%" in rates["aria_label"]  # a literal percent sign survives translation
    # One script, ours, from this site; nothing else is loaded from anywhere.
    assert re.findall(r'<script src="([^"]+)"', html) == ["/static/charts.js"]
    assert external_references(html) == []
    with client.get("/static/charts.js") as script:
        assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert phone not in html
    # The table has a row for the case's department, with at least this case in it.
    row = re.search(
        r'<tr data-department="urban_mgmt"><th scope="row">Urban Management Bureau</th>\s*'
        r'<td class="num">(\d+)</td>',
        html,
    )
    assert row and int(row.group(1)) >= 1
    assert 'id="weekly-table"' in html and 'id="definitions"' in html
    with client.get("/public/static/public.css") as stylesheet:
        assert stylesheet.status_code == 200 and stylesheet.mimetype == "text/css"
        css = stylesheet.get_data(as_text=True)
    # The stylesheet fetches nothing either: no fonts, no images, no imports.
    assert "url(" not in css and "@import" not in css


def test_the_disclosure_page_in_chinese_and_for_one_department(client: FlaskClient) -> None:
    chinese = client.get("/disclosure?lang=zh-CN").get_data(as_text=True)
    assert '<html lang="zh-CN">' in chinese
    assert "城管局" in chinese

    response = client.get("/disclosure?department=water&weeks=4&lang=en-US")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'option value="water" selected' in html
    assert "Cases per week: Water Authority" in html
    assert len(re.findall(r'<tbody data-department="', html)) == 1
    assert 'data-department="water"' in html
    # Per-department charts are for the city-wide view only.
    assert list(chart_specs(html)) == ["chart-weekly-volume", "chart-weekly-rates"]


@pytest.mark.parametrize(
    "query",
    [
        "weeks=0",
        "weeks=53",
        "weeks=abc",
        "weeks=-1",
        "weeks=²",
        "department=nowhere",
        "department=leadership",
    ],
)
def test_the_disclosure_page_refuses_bad_input_clearly(client: FlaskClient, query: str) -> None:
    response = client.get(f"/disclosure?{query}&lang=en-US")

    assert response.status_code == 400
    message = re.search(r'id="error-message">([^<]+)<', response.get_data(as_text=True))
    assert message
    assert "weeks" in message.group(1) or "department" in message.group(1)


def test_the_downloads_hold_the_figures_the_page_shows(
    client: FlaskClient, database: Database
) -> None:
    committed_case(database, caller_number=caller_phone(), text="路灯不亮")

    document = client.get("/disclosure.json?weeks=2&lang=en-US")
    table = client.get("/disclosure.csv?weeks=2&lang=en-US")
    page = client.get("/disclosure?weeks=2&lang=en-US").get_data(as_text=True)

    assert document.status_code == 200 and document.mimetype == "application/json"
    data = document.get_json()
    assert len(data["weeks"]) == 2 and re.fullmatch(r"\d{4}-W\d\d", data["weeks"][0])
    departments = {row["department"] for row in data["rows"]}
    assert "urban_mgmt" in departments and "hotline_office" not in departments
    assert len(data["rows"]) == 2 * len(departments)
    this_week = next(
        row
        for row in data["rows"]
        if row["department"] == "urban_mgmt" and row["week"] == data["weeks"][-1]
    )
    assert this_week["volume"] >= 1
    assert this_week["department_name"] == "Urban Management Bureau"
    assert set(this_week) >= {
        "response_rate",
        "resolution_rate",
        "on_time_rate",
        "satisfaction_rate",
    }
    assert data["total"]["volume"] == sum(row["volume"] for row in data["rows"])

    assert table.status_code == 200 and table.mimetype == "text/csv"
    assert "attachment" in table.headers["Content-Disposition"]
    text = table.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [(row["department"], row["week"], int(row["volume"])) for row in rows] == [
        (row["department"], row["week"], row["volume"]) for row in data["rows"]
    ]
    # The page's summary row shows the same volume as the downloads.
    total_volume = sum(row["volume"] for row in data["rows"] if row["department"] == "urban_mgmt")
    summary_row = (
        r'data-department="urban_mgmt"><th scope="row">[^<]+</th>\s*'
        rf'<td class="num">{total_volume}</td>'
    )
    assert re.search(summary_row, page)
    # No personal data: only counts, rates, weeks and department names.
    assert set(rows[0]) == {
        "week",
        "week_start",
        "department",
        "department_name",
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
        # 并单 (issue 15): every report of the problems, and every reporter's rating.
        "contacts",
        "contacts_rated",
        "contacts_satisfied",
        "contact_satisfaction_rate",
    }


def test_url_fors_own_arguments_in_the_query_change_no_link(client: FlaskClient) -> None:
    for page in ("/lookup", "/disclosure", "/"):
        response = client.get(f"{page}?_method=x&_external=1&lang=en-US")
        assert response.status_code == 200, page
        assert "http://localhost" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("number", "digits"),
    [
        ("12345678\x002", "1234"),
        ("123456782", "12\x0034"),
        ("\x1b[2J", "\ufffe000"),
        ("\ufffd", ""),
    ],
    ids=["nul-in-number", "nul-in-digits", "controls", "replacement"],
)
def test_a_lookup_with_characters_that_are_not_digits_is_a_form_error_not_a_crash(
    client: FlaskClient, number: str, digits: str
) -> None:
    # PostgreSQL refuses a NUL in a query: the form's own checks stop it before the database.
    response = look_up(client, number=number, digits=digits, address=new_address())
    assert response.status_code == 400
    assert 'class="field-error"' in response.get_data(as_text=True)
