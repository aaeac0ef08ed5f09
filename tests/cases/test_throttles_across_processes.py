"""Throttles hold when the guesses race through different processes (cases.throttles,
cases.verification, cases.web_reports), on the real database.

The other process is a second `Database` on the same URL: its own engine, pool and (on SQLite)
write gate, as a web process on another machine has. Its request starts while the first one's
transaction is still open; on PostgreSQL the test waits until it is blocked on a lock (or
done), so that without the lock it would read the count before the first commits.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cases import throttles, verification, web_reports
from cases.models import Case, ThrottleFailure, utcnow
from hotline.db import Database
from tests.conftest import wait_until
from tests.support.calls import fresh_mobile_number

# One failure is free; the second pauses the pair for a minute.
ONE_FREE = throttles.Policy(
    kind="race_test",
    free=1,
    base=timedelta(minutes=1),
    cap=timedelta(minutes=1),
    address_ceiling=100,
    ceiling_window=timedelta(hours=1),
)


def fresh_address() -> str:
    """An address no other test guesses from (documentation range)."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


@pytest.fixture
def other_process(database: Database) -> Iterator[Database]:
    """The same database as another process sees it: another engine, pool and write gate."""
    other = Database(database.url)
    yield other
    other.dispose()


def _someone_waits_for_a_lock(database: Database) -> bool:
    with database.session() as session:
        waiting = session.scalar(
            text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
    return bool(waiting)


def race(
    database: Database,
    other: Database,
    *,
    first: Callable[[Session], Any],
    second: Callable[[Session], Any],
) -> tuple[Any, Any]:
    """`first` in one process's transaction; `second` in the other's, started before the first
    commits. Returns what each gave (an exception the second raised is what it gave)."""
    given: dict[str, Any] = {}

    def run_second() -> None:
        try:
            with other.session() as session, session.begin():
                given["second"] = second(session)
        except Exception as error:  # the second's refusal is its answer
            given["second"] = error

    thread = threading.Thread(target=run_second, name="other-process", daemon=True)
    with database.session() as session, session.begin():
        given["first"] = first(session)
        thread.start()
        if database.engine.dialect.name == "postgresql":
            # On SQLite the first transaction holds the write gate: the second cannot read yet.
            wait_until(
                lambda: not thread.is_alive() or _someone_waits_for_a_lock(database),
                timeout=30,
                what="the other process's request to wait or finish",
            )
    thread.join(timeout=60)
    assert not thread.is_alive(), "the other process's request never finished"
    return given["first"], given["second"]


def test_a_guess_racing_from_another_process_waits_for_the_first_guess_to_count(
    database: Database, other_process: Database
) -> None:
    subject, address = f"user-{secrets.token_hex(4)}", fresh_address()

    def guess_wrong(session: Session) -> throttles.Verdict:
        now = utcnow()
        verdict = throttles.check(
            session, policy=ONE_FREE, subject=subject, remote_addr=address, now=now
        )
        if verdict.allowed:
            throttles.record_failure(
                session, policy=ONE_FREE, subject=subject, remote_addr=address, now=now
            )
        return verdict

    first, second = race(database, other_process, first=guess_wrong, second=guess_wrong)

    assert first.allowed
    # It saw the first guess's failure: the pair's pause had started.
    assert not second.allowed and second.wait_seconds > 0
    # Refused before its password was checked, so only the first guess counts.
    with database.session() as session:
        failures = session.scalar(
            select(func.count(ThrottleFailure.id)).where(
                ThrottleFailure.subject == subject, ThrottleFailure.remote_addr == address
            )
        )
    assert failures == 1


def test_codes_asked_for_one_number_from_two_processes_never_pass_its_hourly_limit(
    database: Database, other_process: Database
) -> None:
    number = fresh_mobile_number()
    # All but one of the number's codes for the hour, each from an address of its own.
    for _ in range(verification.CODES_PER_NUMBER - 1):
        with database.session() as session, session.begin():
            sent = verification.request_code(
                session, number=number, remote_addr=fresh_address(), now=utcnow()
            )
        assert isinstance(sent, verification.CodeSent)

    def ask(session: Session) -> verification.CodeSent | verification.SendRefused:
        return verification.request_code(
            session, number=number, remote_addr=fresh_address(), now=utcnow()
        )

    first, second = race(database, other_process, first=ask, second=ask)

    assert isinstance(first, verification.CodeSent)
    assert isinstance(second, verification.SendRefused)
    assert not second.wait.allowed


def test_web_reports_racing_from_one_address_through_two_processes_are_counted_in_turn(
    database: Database, other_process: Database, tmp_path: Path
) -> None:
    address = fresh_address()
    # The reports that cost nothing, all but the last.
    with database.session() as session, session.begin():
        for _ in range(web_reports.REPORT_POLICY.free - 1):
            throttles.record_failure(
                session,
                policy=web_reports.REPORT_POLICY,
                subject="report",
                remote_addr=address,
                now=utcnow(),
            )

    # A street no other test reports: a sweep later routes this case, and a street light in
    # 鲁城街道 named by no street would take in another test's reports (并单).
    def report(session: Session) -> str:
        opened = web_reports.open_web_report(
            session,
            report=web_reports.WebReport(
                description="鲁城街道逵泉路路灯不亮了",
                locale="zh-CN",
                submission=secrets.token_hex(8),
            ),
            media_dir=tmp_path,
            remote_addr=address,
            now=utcnow(),
        )
        return opened.case.number

    first, second = race(database, other_process, first=report, second=report)

    assert isinstance(second, web_reports.ReportThrottledError)
    assert not second.wait.allowed
    with database.session() as session:
        assert session.scalar(select(func.count(Case.id)).where(Case.number == first)) == 1
