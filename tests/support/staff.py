"""Fixtures for tests of staff pages and the API: staff accounts, a signed-in test client
that sends CSRF tokens like a browser, and cases with a stored recording.

Each client comes from an address of its own: sign-in throttling counts failures per address,
and one test's failures must never lock another test out.
"""

from __future__ import annotations

import re
import secrets
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from cases import staff
from cases.models import Case, Recording, RecordingStatus, Role, Seat, SeatStatus
from hotline.db import Database
from tests.conftest import AUDIO

PASSWORD = "correct-horse-battery"
TOKEN = re.compile(r'name="[\w-]*csrf_token"[^>]*value="([^"]+)"')


def new_address() -> str:
    """An address no other test uses."""
    return "10.{}.{}.{}".format(*(secrets.randbelow(250) + 1 for _ in range(3)))


@dataclass(frozen=True)
class Account:
    """A staff account made for one test."""

    id: int
    username: str
    role: str
    department_code: str | None
    password: str = PASSWORD


class Console:
    """A browser on the console: remembers its cookie and sends the page's CSRF token."""

    # Set by the `signed_in` fixture, for the browsers it signs in.
    account: Account

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.address = new_address()
        self.client.environ_base["REMOTE_ADDR"] = self.address

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        """GET a page."""
        return self.client.get(url, **kwargs)

    def token(self) -> str:
        """The CSRF token of this browser's session, read from a page as a browser would."""
        # Signed out, that is the sign-in page; an operator's home is their seat.
        page = self.client.get("/console/", follow_redirects=True)
        found = TOKEN.search(page.get_data(as_text=True))
        assert found, "no CSRF token on the page"
        return found.group(1)

    def post(self, url: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        """POST a form with a valid CSRF token."""
        return self.client.post(url, data={"csrf_token": self.token(), **(data or {})}, **kwargs)

    def sign_in(self, account: Account, *, password: str | None = None) -> TestResponse:
        """Sign in through the sign-in form."""
        return self.post(
            "/console/login",
            {"username": account.username, "password": password or account.password},
        )


@pytest.fixture
def console(app: Flask) -> Callable[[], Console]:
    """Make a fresh, signed-out browser."""
    return lambda: Console(app)


@pytest.fixture
def make_account(database: Database) -> Iterator[Callable[..., Account]]:
    """Make a staff account with a unique username. An operator's seat is signed out when the
    test ends: a seat left available would queue every later test's caller who presses 0."""
    operators: list[int] = []

    def make(role: str, department_code: str | None = None) -> Account:
        username = f"{role}-{department_code or 'all'}-{uuid.uuid4().hex[:8]}"
        with database.session() as session, session.begin():
            user = staff.add_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                department_code=department_code,
            )
            if role == Role.OPERATOR:
                operators.append(user.id)
            return Account(user.id, username, role, department_code)

    yield make
    if operators:
        with database.session() as session, session.begin():
            session.execute(
                update(Seat)
                .where(Seat.user_id.in_(operators))
                .values(status=SeatStatus.SIGNED_OUT, entry_id=None, wrap_up_until=None)
            )


@pytest.fixture
def signed_in(
    console: Callable[[], Console], make_account: Callable[..., Account]
) -> Callable[..., Console]:
    """A browser signed in as a new account of that role (and department)."""

    def sign_in(role: str, department_code: str | None = None) -> Console:
        browser = console()
        account = make_account(role, department_code)
        response = browser.sign_in(account)
        assert response.status_code == 302, response.get_data(as_text=True)
        browser.account = account
        return browser

    return sign_in


def store_recording(session: Session, *, case: Case, recordings_dir: Path) -> Recording:
    """Give the case a stored recording, as the fetch job would (a real WAV on disk)."""
    relative = Path("console-tests") / f"{uuid.uuid4().hex}.wav"
    target = recordings_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(AUDIO / "ko_streetlight.wav", target)
    assert case.call is not None
    recording = Recording(
        call=case.call,
        case=case,
        recording_sid=f"RE{uuid.uuid4().hex}",
        source_url="https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/RE",
        status=RecordingStatus.STORED,
        storage_path=str(relative),
        size_bytes=target.stat().st_size,
    )
    session.add(recording)
    session.flush()
    return recording
