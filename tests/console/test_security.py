"""OWASP ASVS level 2 checks for the console and the public site: sessions (new at sign-in,
ended on the server at sign-out, deactivation and a new password), CSRF on every form, security
headers on every route, argon2 passwords, recording links that expire, and sign-in pauses that
hold in every web process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from html import unescape
from typing import Any, cast

import pytest
import requests
from flask import Flask
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import func, select
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from cases import staff
from cases.models import (
    AdminEvent,
    Attachment,
    Case,
    CaseAssist,
    CaseEvent,
    Category,
    Delivery,
    Department,
    KnowledgeRevision,
    StaffSession,
    ThrottleFailure,
    User,
)
from console.blueprint import RECORDING_LINK_SECONDS, _recording_signature
from hotline.config import PROJECT_ROOT
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.conftest import answers_http, free_port, wait_until
from tests.support.browser import headless_chromium
from tests.support.factories import make_case
from tests.support.staff import TOKEN, Account, Console, new_address, store_recording

OWN = "urban_mgmt"


def session_cookie(app: Flask, browser: Console) -> str | None:
    """The browser's session cookie, as it would send it."""
    cookie = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie else None


def with_cookie(app: Flask, value: str, *, address: str) -> Console:
    """A fresh browser holding a copy of someone's session cookie, from their address (Flask-
    Login's strong session protection already drops a cookie replayed from elsewhere)."""
    thief = Console(app)
    thief.client.environ_base["REMOTE_ADDR"] = address
    thief.client.set_cookie(app.config["SESSION_COOKIE_NAME"], value)
    return thief


def opens_the_console(browser: Console) -> bool:
    """Whether the browser is signed in (the inbox answers rather than the sign-in page)."""
    return browser.get("/console/").status_code == 200


# --- sessions ---------------------------------------------------------------------------


def test_signing_in_starts_a_new_session_and_the_cookie_from_before_signs_nobody_in(
    app: Flask, console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    browser = console()
    token_before = browser.token()
    planted = session_cookie(app, browser)
    assert planted

    assert browser.sign_in(make_account("dispatcher")).status_code == 302
    assert session_cookie(app, browser) != planted
    assert browser.token() != token_before  # a new CSRF token as well
    assert not opens_the_console(with_cookie(app, planted, address=browser.address))


def test_a_session_cookie_copied_before_sign_out_opens_nothing_afterwards(
    app: Flask, signed_in: Callable[..., Console]
) -> None:
    browser = signed_in("supervisor")
    copied = session_cookie(app, browser)
    assert copied and opens_the_console(with_cookie(app, copied, address=browser.address))

    assert browser.post("/console/logout").status_code == 302
    assert not opens_the_console(with_cookie(app, copied, address=browser.address))


def test_a_new_password_or_a_deactivation_ends_every_session_of_the_account(
    database: Database,
    console: Callable[[], Console],
    make_account: Callable[..., Account],
) -> None:
    account = make_account("department", OWN)
    first, second = console(), console()
    assert first.sign_in(account).status_code == 302
    with database.session() as session, session.begin():
        user = session.get(User, account.id)
        assert user is not None
        staff.set_password(session, user=user, password="a-new-password-1")
    assert not opens_the_console(first)

    assert second.sign_in(account, password="a-new-password-1").status_code == 302
    admin = console()
    admin.sign_in(make_account("admin"))
    assert admin.post(f"/console/admin/staff/{account.id}/deactivate").status_code == 302
    with database.session() as session:
        left = session.scalar(
            select(func.count(StaffSession.id)).where(StaffSession.user_id == account.id)
        )
    assert left == 0
    assert not opens_the_console(second)


def test_a_session_ends_twelve_hours_after_signing_in_however_busy(
    app: Flask, database: Database, signed_in: Callable[..., Console]
) -> None:
    browser = signed_in("dispatcher")
    assert opens_the_console(browser)
    with database.session() as session, session.begin():
        row = session.scalars(
            select(StaffSession).where(StaffSession.user_id == browser.account.id)
        ).one()
        row.created_at -= staff.SESSION_MAX_AGE
    assert not opens_the_console(browser)


# --- passwords ----------------------------------------------------------------------------


def test_passwords_are_argon2id_and_an_older_hash_is_upgraded_at_the_next_sign_in(
    database: Database, console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    account = make_account("dispatcher")
    with database.session() as session, session.begin():
        user = session.get(User, account.id)
        assert user is not None and user.password_hash.startswith("$argon2id$")
        user.password_hash = generate_password_hash(account.password, method="pbkdf2:sha256")

    assert console().sign_in(account).status_code == 302
    with database.session() as session:
        upgraded = session.get(User, account.id)
        assert upgraded is not None and upgraded.password_hash.startswith("$argon2id$")
    # The upgraded hash still takes the same password, and no other.
    assert console().sign_in(account).status_code == 302
    assert console().sign_in(account, password="not-the-password").status_code == 200


# --- CSRF ---------------------------------------------------------------------------------

# Every field any console or public form takes, filled in plausibly, so that a refusal comes
# from the missing token and not from a form that could not be read.
FORM_DATA = {
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
    "escalate-reason": "督办",
    "supervise-instruction": "尽快",
    "channels-email": "csrf@example.org",
    "limit-hours": "7",
    "user-username": "csrf-intruder",
    "user-password": "long-enough-password",
    "user-role": "admin",
    "locale": "en-US",
    "phone_last4": "1234",
}


def form_routes(app: Flask) -> list[Rule]:
    """Every route a browser form posts to: everything that takes POST but the webhooks
    (signed by Twilio) and the APIs, the department's and Open311 (a key per request), which
    carry no cookie."""
    return [
        rule
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or ())
        and not rule.endpoint.startswith(("ivr.", "ivr_sms.", "api.", "open311."))
    ]


def test_the_only_posts_exempt_from_csrf_are_twilios_and_the_apis(app: Flask) -> None:
    exempt = {rule.endpoint.split(".")[0] for rule in app.url_map.iter_rules()} - {
        rule.endpoint.split(".")[0] for rule in form_routes(app)
    }
    assert exempt <= {"ivr", "ivr_sms", "api", "open311", "healthz", "readyz", "metrics", "static"}
    assert {"console", "auth", "public"} <= {
        rule.endpoint.split(".")[0] for rule in form_routes(app)
    }


def written(database: Database, *, number: str, user_id: int) -> tuple[Any, ...]:
    """Everything a console or public form could change, for the target case and account."""
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        user = session.get(User, user_id)
        department = session.get(Department, "water")
        category = session.get(Category, "streetlight")
        assert user is not None and department is not None and category is not None

        def count(column: Any) -> int:
            return int(session.scalar(select(func.count(column))) or 0)

        return (
            case.status,
            case.department_code,
            case.escalated_at,
            count(CaseEvent.id),
            count(Delivery.id),
            user.active,
            user.locale,
            count(User.id),
            department.email,
            department.api_key_hash,
            category.time_limit_hours,
            count(StaffSession.id),
            count(ThrottleFailure.id),
            count(KnowledgeRevision.id),
            case.work_order,
            case.extension_until,
            count(CaseAssist.id),
            count(Attachment.id),
            user.password_hash,
            user.reset_token_hash,
            count(AdminEvent.id),
        )


def test_every_form_refuses_a_post_without_a_valid_token_and_writes_nothing(
    app: Flask,
    database: Database,
    signed_in: Callable[..., Console],
    make_account: Callable[..., Account],
) -> None:
    admin = signed_in("admin")
    target = make_account("department", OWN)
    with database.session() as session, session.begin():
        number = make_case(session, department_code=OWN).number
    values = {"number": number, "user_id": target.id, "code": "water", "call_id": 1}
    values["article_id"] = "hotline-service"
    values["task_id"] = 1
    values["token"] = "no-such-token"  # a password-reset link's
    values["kind"] = "csv"
    before = written(database, number=number, user_id=target.id)
    checked = []

    for rule in form_routes(app):
        url = cast(tuple[str, str], rule.build(values, append_unknown=False))[1]
        for token in (None, "forged", admin.token()[:-4] + "AAAA"):
            data = {**FORM_DATA, "number": number, "username": admin.account.username}
            data["password"] = admin.account.password
            if token is not None:
                data["csrf_token"] = token
            response = admin.client.post(url, data=data)
            assert response.status_code == 400, f"POST {url} with token {token!r}"
        checked.append(rule.endpoint)

    assert written(database, number=number, user_id=target.id) == before
    assert {"auth.login", "auth.logout", "public.lookup", "console.admin_unlock_user"} <= set(
        checked
    )
    assert opens_the_console(admin)  # not even signed out


# --- headers ------------------------------------------------------------------------------


def sample_url(rule: Rule, number: str) -> str:
    """A URL for the rule with plausible values."""
    samples = {
        "number": number,
        "recording_id": 1,
        "attachment_id": 1,
        "user_id": 1,
        "call_id": 1,
        "article_id": "hotline-service",
        "task_id": 1,
        "code": "water",
        "path": "nothing-here",
        "fmt": "json",
        "token": "nothing-here",
        "kind": "csv",
        "filename": {"console.static": "console.css", "public.static": "public.css"}.get(
            rule.endpoint, "nothing-here.css"
        ),
    }
    unknown = set(rule.arguments) - set(samples)
    assert not unknown, f"{rule.rule}: teach the header test about {unknown}"
    return cast(tuple[str, str], rule.build(samples, append_unknown=False))[1]


def assert_hardened(response: TestResponse, where: str) -> None:
    """The headers every answer must carry over plain HTTP."""
    headers = response.headers
    policy = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in policy, where
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in policy.split(";") if part.strip()
    )
    scripts = directives.get("script-src", directives.get("default-src", ""))
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where
    assert "Strict-Transport-Security" not in headers, where


def test_every_route_answers_with_the_security_headers(
    app: Flask, database: Database, signed_in: Callable[..., Console]
) -> None:
    with database.session() as session, session.begin():
        number = make_case(session, department_code=OWN).number
    staffed = signed_in("admin")
    visitor = Console(app)
    for rule in app.url_map.iter_rules():
        url = sample_url(rule, number)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            for browser in (visitor, staffed):
                if method == "GET":
                    response = browser.client.get(url)
                else:
                    response = browser.client.open(url, method=method, data={})
                response.close()
                assert_hardened(response, f"{method} {url}")
    # Errors outside any route too.
    assert_hardened(visitor.client.get("/no/such/page"), "404")


def test_no_page_template_carries_inline_script_or_event_handlers() -> None:
    templates = [
        *sorted((PROJECT_ROOT / "console" / "templates").rglob("*.html")),
        *sorted((PROJECT_ROOT / "public_site" / "templates").rglob("*.html")),
    ]
    assert len(templates) > 10
    for template in templates:
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, re.I):
            assert "src=" in tag, f"{template.name}: inline <script>"
        assert not re.search(r"\son[a-z]+\s*=", text, re.I), f"{template.name}: inline handler"
        assert "javascript:" not in text.lower(), template.name


def csp_violations(driver: Any) -> list[str]:
    """What Chromium logged about the page breaking its Content-Security-Policy."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]


def test_pages_in_a_real_browser_break_no_rule_of_their_content_security_policy(
    live_server: str, database: Database, make_account: Callable[..., Account]
) -> None:
    with database.session() as session, session.begin():
        number = make_case(session, department_code=OWN).number
    account = make_account("department", OWN)
    with headless_chromium() as driver:
        driver.get(f"{live_server}/console/login")
        driver.find_element(By.ID, "username").send_keys(account.username)
        driver.find_element(By.ID, "password").send_keys(account.password)
        driver.find_element(By.ID, "login-submit").click()
        WebDriverWait(driver, 15).until(
            expected_conditions.presence_of_element_located((By.ID, "logout"))
        )
        for path in ("/console/", f"/console/cases/{number}", "/", "/lookup", "/disclosure"):
            driver.get(live_server + path)
        assert csp_violations(driver) == []
        # The control: an inline script is refused, and the log shows it.
        driver.execute_script(
            "const s = document.createElement('script');"
            "s.textContent = 'document.title = 1';"
            "document.body.appendChild(s);"
        )
        assert csp_violations(driver), "the browser log shows CSP violations"


@pytest.fixture(scope="module")
def proxied_web(environ: dict[str, str], app: Flask) -> Iterator[str]:
    """Another web process (gunicorn) on the same database, behind one trusted proxy."""
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1",
               "--threads", "2", "--no-control-socket", "--bind", f"127.0.0.1:{port}",
               "hotline.wsgi:app"]  # fmt: skip
    server = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **environ, "TRUSTED_PROXIES": "1"},
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers_http(url + "/healthz"), timeout=60, what="gunicorn to serve")
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_hsts_goes_with_https_and_a_proxys_word_for_it_only_when_trusted(
    app: Flask, proxied_web: str
) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    assert "Strict-Transport-Security" not in app.test_client().get("/healthz").headers
    # Nobody's proxy is believed by default: anyone can send the header.
    assert (
        "Strict-Transport-Security"
        not in app.test_client().get("/healthz", headers=forwarded).headers
    )
    direct = app.test_client().get("/healthz", base_url="https://localhost")
    assert direct.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    proxied = requests.get(proxied_web + "/console/login", headers=forwarded, timeout=10)
    assert proxied.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert (
        "Strict-Transport-Security"
        not in requests.get(proxied_web + "/healthz", timeout=10).headers
    )


def test_a_sign_in_pause_holds_in_every_web_process(
    app: Flask, proxied_web: str, make_account: Callable[..., Account]
) -> None:
    account = make_account("dispatcher")
    address = new_address()
    free = wiring_of(app).settings.login_max_failures
    here = Console(app)
    here.client.environ_base["REMOTE_ADDR"] = address
    for _ in range(free):
        assert here.sign_in(account, password="wrong-password").status_code == 200

    # The other process, which knows the address through its proxy, keeps the same pause.
    there = requests.Session()
    there.headers["X-Forwarded-For"] = address
    page = there.get(proxied_web + "/console/login", timeout=10).text
    found = TOKEN.search(page)
    assert found
    form = {"csrf_token": found.group(1), "username": account.username}
    answer = there.post(
        proxied_web + "/console/login",
        data={**form, "password": account.password},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 429
    # From its own address, the owner signs in through that process.
    there.headers["X-Forwarded-For"] = new_address()
    answer = there.post(
        proxied_web + "/console/login",
        data={**form, "password": account.password},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302


# --- recording links ----------------------------------------------------------------------


@pytest.fixture
def recorded_case(app: Flask, database: Database) -> tuple[str, int]:
    with database.session() as session, session.begin():
        case = make_case(session, department_code=OWN)
        recording = store_recording(
            session, case=case, recordings_dir=wiring_of(app).settings.recordings_dir
        )
        return case.number, recording.id


def recording_link(browser: Console, number: str, recording_id: int) -> str:
    page = browser.get(f"/console/cases/{number}").get_data(as_text=True)
    found = re.search(rf'src="(/console/cases/{number}/recordings/{recording_id}\?[^"]+)"', page)
    assert found, "the case page links the recording"
    return unescape(found.group(1))


def plays(browser: Console, url: str) -> int:
    with browser.get(url) as response:
        return response.status_code


def test_an_expired_altered_or_borrowed_recording_link_is_refused(
    app: Flask,
    recorded_case: tuple[str, int],
    signed_in: Callable[..., Console],
    console: Callable[[], Console],
) -> None:
    number, recording_id = recorded_case
    listener = signed_in("department", OWN)
    link = recording_link(listener, number, recording_id)
    assert plays(listener, link) == 200
    expires = int(re.search(r"expires=(\d+)", link).group(1))  # type: ignore[union-attr]
    assert time.time() + RECORDING_LINK_SECONDS - 60 <= expires

    base = f"/console/cases/{number}/recordings/{recording_id}"
    with app.app_context():
        past = int(time.time()) - 1
        stale = _recording_signature(
            recording_id=recording_id, user_id=listener.account.id, expires=past
        )
    assert plays(listener, f"{base}?expires={past}&signature={stale}") == 403
    assert plays(listener, link.replace(f"expires={expires}", f"expires={expires + 9999}")) == 403
    assert plays(listener, re.sub(r"signature=\w{6}", "signature=000000", link)) == 403
    assert plays(listener, base) == 403
    # A colleague who may hear it has a link of their own; this one is not theirs.
    colleague = signed_in("department", OWN)
    assert plays(colleague, link) == 403
    assert plays(colleague, recording_link(colleague, number, recording_id)) == 200
    # Without a session the link opens nothing at all.
    with console().get(link) as response:
        assert response.status_code == 302
