"""The voice webhook's call row: written behind the answer, soon and unprompted, once whatever
the concurrency, and committed when a worker stops gracefully (the group commit itself is
tested in `tests/hotline/test_db.py`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from cases.models import Call
from emulator import RecordingServer, TwilioEmulator
from hotline.config import PROJECT_ROOT
from hotline.db import Database
from ivr.prompts import Prompts
from tests.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    answers_http,
    free_port,
    wait_until,
)
from tests.support.calls import Lookups


def test_concurrent_first_webhooks_each_get_their_call_written(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    sids = [emulator.new_call_sid() for _ in range(48)]

    def first_webhook(call_sid: str) -> tuple[int, int]:
        step = emulator.post("/ivr/voice", emulator.base_params(call_sid))
        return step.status_code, lookups.count_calls(call_sid)  # read right after the answer

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(first_webhook, sids))
    assert outcomes == [(200, 1)] * len(sids)


def test_the_first_webhooks_call_row_lands_unprompted_soon_after_the_answer(
    emulator: TwilioEmulator, database: Database
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
    environ: dict[str, str], database: Database, recording_server: RecordingServer
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
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    call_sid = emulator.new_call_sid()
    params = emulator.base_params(call_sid)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: emulator.post("/ivr/voice", params).status_code, range(8)))
    assert codes == [200] * 8
    assert lookups.count_calls(call_sid) == 1


def test_when_the_call_cannot_be_written_the_caller_hears_an_apology_and_is_recorded(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(size: int) -> None:
        raise RuntimeError("database is down")

    # A database that cannot take the queued rows fills the queue; from then on the entry
    # waits for its write (backpressure), and that write fails.
    monkeypatch.setattr(database.group_commit, "max_pending", 0)
    monkeypatch.setattr(database.group_commit, "before_transaction", broken)
    step = emulator.post("/ivr/voice", emulator.base_params(emulator.new_call_sid()))
    assert step.status_code == 200
    assert step.said[0].text == prompts["zh-CN"].text("error_apology")
    assert "Record" in step.verbs


def test_the_call_row_keeps_the_webhooks_non_ascii_details(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    call_sid = emulator.new_call_sid()
    params = {**emulator.base_params(call_sid), "CallerName": "张三", "FromCity": "曲阜 市"}
    step = emulator.post("/ivr/voice", params)  # urlencoded UTF-8, signed over these values
    assert step.status_code == 200
    call = lookups.call(call_sid)
    assert call is not None
    assert (call.account_sid, call.details["FromCity"]) == (params["AccountSid"], "曲阜 市")


def _count(database: Database, sids: list[str]) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).where(Call.call_sid.in_(sids))) or 0)
