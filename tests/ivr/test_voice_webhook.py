"""The voice webhook's fast path: its group-committed call row is written before the answer,
once, whatever the concurrency, and a bad write fails alone."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from cases.database import GroupCommit
from cases.models import Call, utcnow
from ivr.emulator import TwilioEmulator


def test_concurrent_first_webhooks_each_find_their_call_written_when_answered(
    emulator: TwilioEmulator, lookups: Any
) -> None:
    sids = [emulator.new_call_sid() for _ in range(48)]

    def first_webhook(call_sid: str) -> tuple[int, int]:
        step = emulator.post("/ivr/voice", emulator.base_params(call_sid))
        return step.status_code, lookups.count_calls(call_sid)  # read right after the answer

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(first_webhook, sids))
    assert outcomes == [(200, 1)] * len(sids)


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
