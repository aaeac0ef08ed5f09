"""The group commit: writes from many threads share a transaction, a bad write fails alone,
queued writes are committed soon and at close, and a full queue makes writers wait.

The writer's `before_transaction` hook (called with each batch's size) lets a test watch or
hold the batches; nothing private is patched.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import psycopg
import pytest
from sqlalchemy import Table, func, insert, make_url, select, text
from sqlalchemy.exc import IntegrityError

from cases.models import Call, utcnow
from hotline.db import IDLE_IN_TRANSACTION_TIMEOUT_MS, Database, GroupCommit
from tests.conftest import wait_until
from tests.support.tcp_proxy import TcpProxy

CALLS = cast(Table, Call.__table__)


def call_row(call_sid: str, account_sid: str | None = "AC1") -> dict[str, Any]:
    """A `calls` row; no account SID violates NOT NULL (a write that must fail)."""
    now = utcnow()
    return {
        "call_sid": call_sid,
        "account_sid": account_sid,
        "from_number": "+8613800000000",
        "to_number": "+865374412345",
        "caller_id_withheld": False,
        "callback_number": None,
        "locale": None,
        "details": {},
        "status": "in-progress",
        "started_at": now,
        "updated_at": now,
    }


def sids(prefix: str, count: int) -> list[str]:
    """CallSids no other test (or run of this one) uses."""
    return [f"CA{prefix}{n}{threading.get_ident()}{time.monotonic_ns()}" for n in range(count)]


def count(database: Database, call_sids: list[str]) -> int:
    with database.session() as session:
        found = session.scalar(select(func.count()).where(Call.call_sid.in_(call_sids)))
    return int(found or 0)


@pytest.fixture
def make_group(database: Database) -> Iterator[Callable[..., GroupCommit]]:
    """Group commits of the test's own, whose writers are stopped even if the test fails."""
    made: list[GroupCommit] = []

    def make(**options: Any) -> GroupCommit:
        group = GroupCommit(database.engine, **options)
        made.append(group)
        return group

    yield make
    for group in made:
        group.before_transaction = None
        group.close()


def test_writes_share_a_transaction_and_a_bad_write_fails_alone(
    database: Database, make_group: Callable[..., GroupCommit]
) -> None:
    first_batch_started, queued = threading.Event(), threading.Event()
    batch_sizes: list[int] = []

    def observed(size: int) -> None:
        batch_sizes.append(size)
        if len(batch_sizes) == 1:  # hold the first transaction until the others have queued
            first_batch_started.set()
            assert queued.wait(10)

    group = make_group(before_transaction=observed)
    call_sids = sids("group", 6)
    results: dict[str, BaseException | None] = {}

    def write(call_sid: str, account_sid: str | None = "AC1") -> None:
        try:
            group.execute(insert(CALLS), call_row(call_sid, account_sid))
            results[call_sid] = None
        except Exception as error:  # the test looks at what each caller got
            results[call_sid] = error

    threads = [threading.Thread(target=write, args=(call_sids[0],))]
    threads[0].start()
    assert first_batch_started.wait(10)
    threads += [threading.Thread(target=write, args=(sid,)) for sid in call_sids[1:5]]
    threads.append(threading.Thread(target=write, args=(call_sids[5], None)))  # NOT NULL
    for thread in threads[1:]:
        thread.start()
    while group.waiting < 5:  # all five queued behind the first transaction
        time.sleep(0.01)
    queued.set()
    for thread in threads:
        thread.join(10)

    assert batch_sizes[:2] == [1, 5]  # the five shared one transaction, then were retried alone
    assert [results[sid] for sid in call_sids[:5]] == [None] * 5
    assert isinstance(results[call_sids[5]], IntegrityError)
    assert count(database, call_sids) == 5


def test_a_new_writer_starts_after_close(
    database: Database, make_group: Callable[..., GroupCommit]
) -> None:
    group = make_group()
    first, second = sids("close", 2)
    group.execute(insert(CALLS), call_row(first))
    group.close()
    assert not group.running
    group.execute(insert(CALLS), call_row(second))
    assert group.running
    group.close()
    assert not group.running
    assert count(database, [first, second]) == 2


def test_queued_writes_are_committed_when_the_group_commit_closes(
    database: Database, make_group: Callable[..., GroupCommit]
) -> None:
    group = make_group(linger_seconds=30.0)  # nothing would commit them for half a minute
    call_sids = sids("exit", 5)
    for sid in call_sids:
        group.submit(insert(CALLS), call_row(sid), label=f"call {sid}")
    assert count(database, call_sids) == 0
    group.close()  # what a worker does at exit
    assert count(database, call_sids) == 5
    assert group.queued == 0


def test_a_waiting_write_takes_the_queued_ones_along_without_lingering(
    database: Database, make_group: Callable[..., GroupCommit]
) -> None:
    batch_sizes: list[int] = []
    group = make_group(linger_seconds=30.0, before_transaction=batch_sizes.append)
    call_sids = sids("linger", 3)
    for sid in call_sids[:2]:
        group.submit(insert(CALLS), call_row(sid), label=f"call {sid}")
    started = time.monotonic()
    group.execute(insert(CALLS), call_row(call_sids[2]))  # wakes the lingering writer
    assert time.monotonic() - started < 10
    assert batch_sizes == [3]
    assert count(database, call_sids) == 3


def test_a_queued_write_that_fails_is_logged_by_its_label_and_fails_alone(
    database: Database,
    make_group: Callable[..., GroupCommit],
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = make_group()
    good = sids("queued", 3)
    (bad,) = sids("queuedbad", 1)
    with caplog.at_level(logging.ERROR, logger="hotline.database"):
        group.submit(insert(CALLS), call_row(good[0]), label=f"call {good[0]}")
        group.submit(insert(CALLS), call_row(bad, None), label=f"call {bad}")  # NOT NULL
        for sid in good[1:]:
            group.submit(insert(CALLS), call_row(sid), label=f"call {sid}")
        group.flush()
    assert count(database, good) == 3
    assert f"a queued write failed: call {bad}" in caplog.text
    assert not any(f"a queued write failed: call {sid}" in caplog.text for sid in good)


def test_a_full_queue_makes_the_next_write_wait_for_its_commit(
    database: Database, make_group: Callable[..., GroupCommit]
) -> None:
    holding, release = threading.Event(), threading.Event()

    def held(size: int) -> None:
        holding.set()
        assert release.wait(10)

    group = make_group(max_pending=1, before_transaction=held)
    first, second = sids("full", 2)
    group.submit(insert(CALLS), call_row(first), label=f"call {first}")  # queued: returns at once
    assert holding.wait(10)  # its transaction is under way, and held
    returned = threading.Event()

    def submit_second() -> None:
        group.submit(insert(CALLS), call_row(second), label="second")
        returned.set()

    waiter = threading.Thread(target=submit_second)
    waiter.start()
    assert not returned.wait(0.3)  # the queue is full: the second write waits
    release.set()
    waiter.join(10)
    assert returned.is_set()
    assert count(database, [first, second]) == 2


def test_a_failing_hook_fails_the_batch_like_the_database_would(
    database: Database, make_group: Callable[..., GroupCommit]
) -> None:
    def broken(size: int) -> None:
        raise RuntimeError("database is down")

    group = make_group(before_transaction=broken)
    (sid,) = sids("broken", 1)
    with pytest.raises(RuntimeError, match="database is down"):
        group.execute(insert(CALLS), call_row(sid))
    assert count(database, [sid]) == 0


def test_a_wake_up_pipe_closed_by_another_loses_no_write(
    database: Database, make_group: Callable[..., GroupCommit], caplog: pytest.LogCaptureFixture
) -> None:
    """A double close elsewhere in the process once took a batch's pipe (gunicorn, under wrk):
    the writer lives on, and the writes queued behind that batch are committed."""
    group = make_group(linger_seconds=0.0)
    closed: list[int] = []

    def close_the_pipe_behind_its_back(size: int) -> None:
        if not closed:
            batch = group._committing  # read only: the batch this transaction will wake
            assert batch is not None
            closed.append(batch._write)
            os.close(batch._write)

    group.before_transaction = close_the_pipe_behind_its_back
    first, later = sids("pipe", 1), sids("pipelater", 3)
    with caplog.at_level(logging.ERROR, logger="hotline.database"):
        group.execute(insert(CALLS), call_row(first[0]))
        for sid in later:
            group.submit(insert(CALLS), call_row(sid), label=f"call {sid}")
        group.flush()
    assert closed and "wake-up pipe was closed by another" in caplog.text
    assert count(database, first + later) == 4
    assert group.running


def postgresql_sessions(database: Database, application_name: str) -> list[str]:
    """The states of the server's sessions of that application name."""
    with database.session() as session:
        return list(
            session.scalars(
                text("SELECT state FROM pg_stat_activity WHERE application_name = :name"),
                {"name": application_name},
            )
        )


def test_a_cut_connection_leaves_no_session_idle_in_a_transaction_holding_its_locks(
    environ: dict[str, str], database: Database
) -> None:
    """The fault tests' proxy drops every connection, as a restarted server does: PostgreSQL's
    end of one left idle in a transaction must go too, or its row locks outlive the cut (they
    did: the stalled fetch that refused a stop, and a case row in the worker-kill test)."""
    if not environ["DATABASE_URL"].startswith("postgres"):
        pytest.skip("SQLite has no server whose sessions could outlive a client")
    url = make_url(environ["DATABASE_URL"])
    name = f"cut-{uuid.uuid4().hex[:8]}"
    with TcpProxy(upstream_host=url.host or "127.0.0.1", upstream_port=url.port or 5432) as proxy:
        client = psycopg.connect(
            host="127.0.0.1",
            port=proxy.port,
            user=url.username,
            dbname=url.database,
            application_name=name,
        )
        client.execute("SELECT 1")  # a transaction begun, and left idle
        assert postgresql_sessions(database, name) == ["idle in transaction"]

        proxy.cut()

        wait_until(lambda: postgresql_sessions(database, name) == [], timeout=10, what="the cut")
        client.close()


def test_postgresql_ends_a_session_left_idle_in_a_transaction(
    environ: dict[str, str], database: Database
) -> None:
    if not environ["DATABASE_URL"].startswith("postgres"):
        pytest.skip("SQLite has no server-side sessions")
    with database.session() as session:
        timeout = session.scalar(text("SHOW idle_in_transaction_session_timeout"))
    assert timeout == f"{IDLE_IN_TRANSACTION_TIMEOUT_MS // 60_000}min"
