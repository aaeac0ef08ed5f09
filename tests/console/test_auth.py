"""Signing in and out, throttling, CSRF, `next` redirects, and the language switch."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from cases import staff
from cases.models import Case, CaseEvent, CaseStatus, User, utcnow
from console.auth import safe_next
from hotline.web import compile_catalogues
from hotline.wiring import wiring_of
from tests.support.factories import make_case
from tests.support.staff import Account, Console


def test_sign_in_opens_the_inbox_and_sign_out_ends_the_session(
    console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    browser = console()
    account = make_account("department", "urban_mgmt")
    assert browser.get("/console/").location.startswith("/console/login")

    response = browser.sign_in(account)
    assert response.status_code == 302
    assert response.location == "/console/"
    inbox = browser.get("/console/")
    assert inbox.status_code == 200
    assert account.username in inbox.get_data(as_text=True)
    # Pages with personal data are never cached, and never framed by another site.
    assert inbox.headers["Cache-Control"] == "private, no-store"
    assert "frame-ancestors 'none'" in inbox.headers["Content-Security-Policy"]

    assert browser.get("/console/logout").status_code == 405  # signing out is a POST only
    response = browser.post("/console/logout")
    assert response.status_code == 302
    assert response.location == "/console/login"
    assert browser.get("/console/").status_code == 302


def test_a_wrong_password_signs_nobody_in(
    console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    browser = console()
    account = make_account("dispatcher")
    response = browser.sign_in(account, password="not-the-password")
    assert response.status_code == 200
    assert 'id="login-error"' in response.get_data(as_text=True)
    assert browser.get("/console/").status_code == 302

    unknown = Account(0, "nobody-such", "dispatcher", None)
    assert 'id="login-error"' in browser.sign_in(unknown).get_data(as_text=True)


def test_a_deactivated_account_cannot_sign_in(
    console: Callable[[], Console], make_account: Callable[..., Account], database: Any
) -> None:
    account = make_account("supervisor")
    with database.session() as session, session.begin():
        session.get(User, account.id).active = False
    response = console().sign_in(account)
    assert response.status_code == 200
    assert 'id="login-error"' in response.get_data(as_text=True)


def _guess_until_paused(app: Flask, browser: Console, account: Account) -> TestResponse:
    """Wrong passwords from one browser until its pause starts; the refused attempt's answer."""
    free = wiring_of(app).settings.login_max_failures
    for _ in range(free):
        assert browser.sign_in(account, password="wrong-password").status_code == 200
    return browser.sign_in(account, password="wrong-password")


def test_a_stranger_guessing_at_an_account_does_not_lock_its_owner_out(
    app: Flask, console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    account = make_account("department", "water")
    attacker = console()
    refused = _guess_until_paused(app, attacker, account)

    # The owner, at their own desk, signs in as usual.
    assert console().sign_in(account).status_code == 302
    # The guesser is paused, told so in Chinese in minutes, with no code; even the right
    # password is not checked from there while the pause runs.
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    page = refused.get_data(as_text=True)
    assert re.search(r'id="login-error"[^>]*>[^<]*请 1 分钟后再试', page)
    assert attacker.sign_in(account).status_code == 429


def test_a_colleague_behind_the_same_office_address_signs_in_while_another_account_is_paused(
    app: Flask, console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    office = console()
    assert _guess_until_paused(app, office, make_account("dispatcher")).status_code == 429

    colleague = console()
    colleague.client.environ_base["REMOTE_ADDR"] = office.address
    assert colleague.sign_in(make_account("admin")).status_code == 302


def test_each_failure_past_the_free_ones_doubles_the_pause_for_that_account_and_address(
    app: Flask, database: Any, make_account: Callable[..., Account]
) -> None:
    account = make_account("supervisor")
    settings = wiring_of(app).settings
    policy = staff.sign_in_policy(
        free_failures=settings.login_max_failures,
        longest_pause=timedelta(seconds=settings.login_window_seconds),
    )
    now = utcnow()
    waits = []
    with database.session() as session, session.begin():
        for _ in range(settings.login_max_failures + 6):
            outcome = staff.sign_in(
                session,
                username=account.username,
                password="wrong-password",
                remote_addr="192.0.2.7",
                policy=policy,
                now=now,
            )
            waits.append(outcome.wait.wait_seconds)
            # Each next guess comes as soon as the pause allows it.
            now += outcome.wait.wait
        # The right password while a pause runs is not even checked...
        assert staff.sign_in(
            session,
            username=account.username,
            password=account.password,
            remote_addr="192.0.2.7",
            policy=policy,
            now=now - timedelta(seconds=1),
        ).refused
        # ...and once it has run out, it signs in and clears the pair.
        assert staff.sign_in(
            session,
            username=account.username,
            password=account.password,
            remote_addr="192.0.2.7",
            policy=policy,
            now=now,
        ).user
    free = settings.login_max_failures
    assert waits[: free - 1] == [0] * (free - 1)
    assert waits[free - 1 :] == [60, 120, 240, 480, 900, 900, 900]


def test_an_administrator_unlocks_a_paused_account(
    app: Flask,
    console: Callable[[], Console],
    make_account: Callable[..., Account],
    signed_in: Callable[..., Console],
) -> None:
    account = make_account("department", "housing")
    owner = console()
    assert _guess_until_paused(app, owner, account).status_code == 429

    admin = signed_in("admin")
    page = admin.get("/console/admin/staff").get_data(as_text=True)
    assert f'id="paused-{account.id}"' in page
    response = admin.post(f"/console/admin/staff/{account.id}/unlock")
    assert response.status_code == 302
    assert f'id="paused-{account.id}"' not in admin.get("/console/admin/staff").get_data(
        as_text=True
    )
    assert owner.sign_in(account).status_code == 302


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    signed_in: Callable[..., Console], database: Any
) -> None:
    browser = signed_in("department", "urban_mgmt")
    with database.session() as session, session.begin():
        number = make_case(session).number

    response = browser.client.post(f"/console/cases/{number}/accept", data={})
    assert response.status_code == 400
    response = browser.client.post(
        f"/console/cases/{number}/resolve",
        data={"csrf_token": "forged", "resolve-reply": "done"},
    )
    assert response.status_code == 400

    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        assert case.status == CaseStatus.ASSIGNED
        kinds = session.scalars(select(CaseEvent.kind).where(CaseEvent.case_id == case.id)).all()
        assert "accepted" not in kinds and "resolved" not in kinds

    # Nor can another site sign staff out, or sign someone in.
    assert browser.client.post("/console/logout").status_code == 400
    assert browser.get("/console/").status_code == 200
    assert (
        browser.client.post("/console/login", data={"username": "x", "password": "y"}).status_code
        == 400
    )


def test_twilio_webhooks_are_exempt_from_csrf_but_still_need_a_signature(app: Flask) -> None:
    response = app.test_client().post("/ivr/voice", data={"CallSid": "CA" + "0" * 32})
    assert response.status_code == 403  # refused for the missing Twilio signature, not for CSRF


def test_a_request_without_the_session_cookie_gets_none_and_a_forged_one_counts_for_nothing(
    app: Flask, console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    # Webhooks, API calls and health checks never hold the cookie: none is set on their answers.
    for answer in (app.test_client().get("/healthz"), app.test_client().post("/ivr/voice")):
        assert "Set-Cookie" not in answer.headers
    # A browser still gets its signed session on its first page, and signs in with it.
    browser = console()
    assert "Set-Cookie" in browser.client.get("/console/login").headers
    assert browser.sign_in(make_account("dispatcher")).status_code == 302
    assert browser.get("/console/").status_code == 200
    # A cookie that is present goes through the signer: a forged one signs nobody in.
    forger = app.test_client()
    forger.set_cookie(app.config["SESSION_COOKIE_NAME"], "eyJfdXNlcl9pZCI6IjEifQ.forged.x")
    assert forger.get("/console/").status_code == 302


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/console/cases/123456789", "/console/cases/123456789"),
        ("/console/?status=all", "/console/?status=all"),
        ("//evil.example/console/", None),
        ("https://evil.example/", None),
        ("http:/evil.example", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("/console/\r\nLocation: https://evil.example", None),
        ("", None),
        (None, None),
    ],
)
def test_next_must_be_a_path_on_this_site(target: str | None, expected: str | None) -> None:
    assert safe_next(target) == expected


def test_sign_in_follows_next_only_to_local_paths(
    console: Callable[[], Console], make_account: Callable[..., Account]
) -> None:
    account = make_account("dispatcher")
    browser = console()
    response = browser.post(
        "/console/login",
        {"username": account.username, "password": account.password, "next": "//evil.example/"},
    )
    assert response.location == "/console/"

    browser = console()
    response = browser.post(
        "/console/login",
        {"username": account.username, "password": account.password, "next": "/console/triage"},
    )
    assert response.location == "/console/triage"

    # A page that needed signing in passes itself along as next, and the form carries it.
    browser = console()
    response = browser.get("/console/overdue")
    assert response.location == "/console/login?next=%2Fconsole%2Foverdue"
    page = browser.get(response.location).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/console/overdue"' in page


def test_the_console_speaks_chinese_until_switched_and_remembers_the_choice(
    console: Callable[[], Console], make_account: Callable[..., Account], database: Any
) -> None:
    browser = console()
    page = browser.get("/console/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page
    assert "<h1>登录</h1>" in page
    assert 'id="locale-en-US"' in page

    account = make_account("department", "housing")
    browser.sign_in(account)
    response = browser.post("/console/locale", {"locale": "en-US", "next": "/console/overdue"})
    assert response.location == "/console/overdue"
    page = browser.get("/console/overdue").get_data(as_text=True)
    assert '<html lang="en-US">' in page
    assert "<h1>Overdue cases</h1>" in page
    with database.session() as session:
        assert session.get(User, account.id).locale == "en-US"

    # A new browser signing in to the same account gets the account's language.
    other = console()
    other.sign_in(account)
    assert "<h1>Overdue cases</h1>" in other.get("/console/overdue").get_data(as_text=True)

    # A language nobody offers is refused, and nothing changes.
    assert browser.post("/console/locale", {"locale": "fr-FR"}).status_code == 400
    assert '<html lang="en-US">' in browser.get("/console/").get_data(as_text=True)


def test_a_language_chosen_before_signing_in_is_kept_for_the_account(
    console: Callable[[], Console], make_account: Callable[..., Account], database: Any
) -> None:
    account = make_account("supervisor")
    browser = console()
    browser.post("/console/locale", {"locale": "en-US"})
    assert "<h1>Sign in</h1>" in browser.get("/console/login").get_data(as_text=True)
    browser.sign_in(account)
    assert '<html lang="en-US">' in browser.get("/console/").get_data(as_text=True)
    with database.session() as session:
        assert session.get(User, account.id).locale == "en-US"


def test_catalogues_compile_under_the_name_babel_looks_for(tmp_path: Any) -> None:
    from hotline.web import TRANSLATIONS_SOURCE

    written = compile_catalogues(TRANSLATIONS_SOURCE, tmp_path)
    assert tmp_path / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo" in written
    assert not list(tmp_path.rglob("*.part"))


def test_every_web_text_has_a_chinese_translation() -> None:
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    from hotline.config import PROJECT_ROOT
    from hotline.web import TRANSLATIONS_SOURCE

    # What babel.cfg extracts: the console, the public site, and the domain's marked refusals.
    method_map = [
        ("console/**.py", "python"),
        ("public_site/**.py", "python"),
        ("cases/**.py", "python"),
        ("hotline/**.py", "python"),
        ("console/templates/**.html", "jinja2"),
        ("public_site/templates/**.html", "jinja2"),
    ]
    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "N_": None}
    texts = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            PROJECT_ROOT, method_map, keywords=keywords
        )
    }
    assert len(texts) > 150
    with (TRANSLATIONS_SOURCE / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    untranslated = sorted(
        text for text in texts if not (catalog.get(text) and catalog[text].string)
    )
    assert untranslated == [], "run pybabel extract/update and translate (see hotline/web.py)"
    fuzzy = sorted(message.id for message in catalog if message.id and message.fuzzy)
    assert fuzzy == []
