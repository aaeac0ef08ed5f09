"""The voice webhook's call row: written behind the answer, soon and unprompted, once whatever
the concurrency; and the group commit it goes through, where a bad write fails alone."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from cases import database as database_module
from cases.database import GroupCommit
from cases.models import Call, utcnow
from hotline.config import PROJECT_ROOT
from ivr.emulator import TwilioEmulator
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    answers_http,
    free_port,
    wait_until,
)


def test_concurrent_first_webhooks_each_get_their_call_written(
    emulator: TwilioEmulator, lookups: Any
) -> None:
    sids = [emulator.new_call_sid() for _ in range(48)]

    def first_webhook(call_sid: str) -> tuple[int, int]:
        step = emulator.post("/ivr/voice", emulator.base_params(call_sid))
        return step.status_code, lookups.count_calls(call_sid)  # read right after the answer

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(first_webhook, sids))
    assert outcomes == [(200, 1)] * len(sids)


def test_the_first_webhooks_call_row_lands_unprompted_soon_after_the_answer(
    emulator: TwilioEmulator, database: Any
) -> None:
    call_sid = emulator.new_call_sid()
    assert emulator.post("/ivr/voice", emulator.base_params(call_sid)).status_code == 200
    answered = time.monotonic()

    def row() -> int:  # read directly: no flush, unlike `lookups`
        with database.session() as session:
            return int(session.scalar(select(func.count()).where(Call.call_sid == call_sid)) or 0)

    wait_until(row, timeout=5, what="the queued call row")
    # Within the linger (20 ms) and one commit; generous, for a busy test machine.
    assert time.monotonic() - answered < 2


def test_a_graceful_stop_of_gunicorn_commits_the_rows_still_queued(
    environ: dict[str, str], database: Any, recording_server: Any
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1",
               "--threads", "4", "--no-control-socket", "--bind", f"127.0.0.1:{port}",
               "tests.support.lingering_app:app"]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env={**os.environ, **environ}, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers_http(url + "/healthz"), timeout=60, what="gunicorn to serve")
        twilio = TwilioEmulator(
            public_base_url=PUBLIC_BASE_URL, app_url=url, auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID, recordings=recording_server,
        )  # fmt: skip
        sids = [twilio.new_call_sid() for _ in range(20)]
        for sid in sids:
            assert twilio.post("/ivr/voice", twilio.base_params(sid)).status_code == 200
        assert _count(database, sids) == 0  # answered, and still queued (the linger is 30 s)
        server.send_signal(signal.SIGTERM)  # what a deploy or `honcho` does
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert _count(database, sids) == len(sids)


def test_a_retried_first_webhook_racing_itself_records_the_call_once(
    emulator: TwilioEmulator, lookups: Any
) -> None:
    call_sid = emulator.new_call_sid()
    params = emulator.base_params(call_sid)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: emulator.post("/ivr/voice", params).status_code, range(8)))
    assert codes == [200] * 8
    assert lookups.count_calls(call_sid) == 1


def test_when_the_call_cannot_be_written_the_caller_hears_an_apology_and_is_recorded(
    emulator: TwilioEmulator, database: Any, prompts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is down")

    # A database that cannot take the queued rows fills the queue; from then on the entry
    # waits for its write (backpressure), and that write fails.
    monkeypatch.setattr(database_module, "WRITE_BEHIND_MAX_PENDING", 0)
    monkeypatch.setattr(database.group_commit, "execute", broken)
    step = emulator.post("/ivr/voice", emulator.base_params(emulator.new_call_sid()))
    assert step.status_code == 200
    assert step.said[0].text == prompts["zh-CN"].text("error_apology")
    assert "Record" in step.verbs


def _call_row(call_sid: str, account_sid: str | None = "AC1") -> dict[str, Any]:
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


def test_group_commit_shares_a_transaction_and_a_bad_write_fails_alone(
    database: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = GroupCommit(database.engine)
    statement = insert(cast(Table, Call.__table__))
    first_batch_started, queued = threading.Event(), threading.Event()
    batch_sizes: list[int] = []
    transaction = GroupCommit._transaction

    def observed(connection: Any, writes: list[Any]) -> None:
        batch_sizes.append(len(writes))
        if len(batch_sizes) == 1:  # hold the first transaction until the others have queued
            first_batch_started.set()
            assert queued.wait(10)
        transaction(connection, writes)

    monkeypatch.setattr(GroupCommit, "_transaction", staticmethod(observed))
    sids = [f"CAgroup{n}{threading.get_ident()}" for n in range(6)]
    results: dict[str, BaseException | None] = {}

    def write(call_sid: str, account_sid: str | None = "AC1") -> None:
        try:
            group.execute(statement, _call_row(call_sid, account_sid))
            results[call_sid] = None
        except Exception as error:  # the test looks at what each caller got
            results[call_sid] = error

    threads = [threading.Thread(target=write, args=(sids[0],))]
    threads[0].start()
    assert first_batch_started.wait(10)
    threads += [threading.Thread(target=write, args=(sid,)) for sid in sids[1:5]]
    threads.append(threading.Thread(target=write, args=(sids[5], None)))  # NOT NULL violated
    for thread in threads[1:]:
        thread.start()
    while len(group._pending.writes) < 5:  # all five queued behind the first transaction
        time.sleep(0.01)
    queued.set()
    for thread in threads:
        thread.join(10)
    group.close()

    assert batch_sizes[:2] == [1, 5]  # the five shared one transaction, then were retried alone
    assert [results[sid] for sid in sids[:5]] == [None] * 5
    assert isinstance(results[sids[5]], IntegrityError)
    with database.session() as session:
        written = session.scalar(select(func.count()).where(Call.call_sid.in_(sids)))
    assert written == 5


def test_group_commit_starts_a_new_writer_after_close(database: Any) -> None:
    group = GroupCommit(database.engine)
    statement = insert(cast(Table, Call.__table__))
    group.execute(statement, _call_row(f"CAclose1{threading.get_ident()}"))
    group.close()
    group.execute(statement, _call_row(f"CAclose2{threading.get_ident()}"))
    group.close()
    assert group._writer is None


def test_the_call_row_keeps_the_webhooks_non_ascii_details(
    emulator: TwilioEmulator, lookups: Any
) -> None:
    call_sid = emulator.new_call_sid()
    params = {**emulator.base_params(call_sid), "CallerName": "张三", "FromCity": "曲阜 市"}
    step = emulator.post("/ivr/voice", params)  # urlencoded UTF-8, signed over these values
    assert step.status_code == 200
    call = lookups.call(call_sid)
    assert call is not None
    assert (call.account_sid, call.details["FromCity"]) == (params["AccountSid"], "曲阜 市")


@pytest.fixture
def group(database: Any) -> Iterator[GroupCommit]:
    """A group commit of the test's own, whose writer is stopped even if the test fails."""
    group_commit = GroupCommit(database.engine)
    yield group_commit
    group_commit.close()


def _count(database: Any, sids: list[str]) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).where(Call.call_sid.in_(sids))) or 0)


def test_queued_writes_are_committed_when_the_group_commit_closes(
    database: Any, group: GroupCommit
) -> None:
    statement = insert(cast(Table, Call.__table__))
    sids = [f"CAexit{n}{threading.get_ident()}" for n in range(5)]
    for sid in sids:
        group.submit(statement, _call_row(sid), label=f"call {sid}")
    group.close()  # what a worker does at exit
    assert _count(database, sids) == 5
    assert group._queued == 0


def test_a_waiting_write_takes_the_queued_ones_along_without_lingering(
    database: Any, group: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "WRITE_BEHIND_LINGER_SECONDS", 30.0)
    statement = insert(cast(Table, Call.__table__))
    batch_sizes: list[int] = []
    transaction = GroupCommit._transaction

    def observed(connection: Any, writes: list[Any]) -> None:
        batch_sizes.append(len(writes))
        transaction(connection, writes)

    monkeypatch.setattr(GroupCommit, "_transaction", staticmethod(observed))
    sids = [f"CAlinger{n}{threading.get_ident()}" for n in range(3)]
    for sid in sids[:2]:
        group.submit(statement, _call_row(sid), label=f"call {sid}")
    started = time.monotonic()
    group.execute(statement, _call_row(sids[2]))  # wakes the lingering writer
    assert time.monotonic() - started < 10
    assert batch_sizes == [3]
    assert _count(database, sids) == 3


def test_a_queued_write_that_fails_is_logged_by_its_label_and_fails_alone(
    database: Any, group: GroupCommit, caplog: pytest.LogCaptureFixture
) -> None:
    statement = insert(cast(Table, Call.__table__))
    good = [f"CAqueued{n}{threading.get_ident()}" for n in range(3)]
    bad = f"CAqueuedbad{threading.get_ident()}"
    with caplog.at_level(logging.ERROR, logger="hotline.database"):
        group.submit(statement, _call_row(good[0]), label=f"call {good[0]}")
        group.submit(statement, _call_row(bad, None), label=f"call {bad}")  # NOT NULL violated
        for sid in good[1:]:
            group.submit(statement, _call_row(sid), label=f"call {sid}")
        group.flush()
    assert _count(database, good) == 3
    assert f"a queued write failed: call {bad}" in caplog.text
    assert not any(f"a queued write failed: call {sid}" in caplog.text for sid in good)


def test_a_full_queue_makes_the_next_write_wait_for_its_commit(
    database: Any, group: GroupCommit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "WRITE_BEHIND_MAX_PENDING", 1)
    statement = insert(cast(Table, Call.__table__))
    holding, release = threading.Event(), threading.Event()
    transaction = GroupCommit._transaction

    def held(connection: Any, writes: list[Any]) -> None:
        holding.set()
        assert release.wait(10)
        transaction(connection, writes)

    monkeypatch.setattr(GroupCommit, "_transaction", staticmethod(held))
    first, second = (f"CAfull{n}{threading.get_ident()}" for n in range(2))
    group.submit(statement, _call_row(first), label=f"call {first}")  # queued: returns at once
    assert holding.wait(10)  # its transaction is under way, and held
    returned = threading.Event()
    waiter = threading.Thread(
        target=lambda: (group.submit(statement, _call_row(second), label="second"), returned.set())
    )
    waiter.start()
    assert not returned.wait(0.3)  # the queue is full: the second write waits
    release.set()
    waiter.join(10)
    assert returned.is_set()
    assert _count(database, [first, second]) == 2
