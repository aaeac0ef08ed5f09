"""A gunicorn worker killed outright (SIGKILL) during a burst of first webhooks: the call rows
its write-behind still held are lost, and the calls' later webhooks (the menu, the recording)
record them again, so every call and its case exist in the end.

The app is `tests.support.lingering_app` (a 30 s write-behind linger), so the kill meets every
answered row still queued: the worst case, counted exactly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from cases.models import Call, Case
from emulator import RecordingServer, TwilioEmulator
from hotline.config import PROJECT_ROOT
from hotline.db import Database
from tests.conftest import (
    ACCOUNT_SID,
    AUDIO,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    answers_http,
    free_port,
    wait_until,
)
from tests.support.fault_worker import fault_counts, print_row

WAV = (AUDIO / "en_pothole.wav").read_bytes()


def children(pid: int) -> list[int]:
    """The processes `pid` started (gunicorn's master: its workers)."""
    listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in listed]


def rows(database: Database, sids: list[str]) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).where(Call.call_sid.in_(sids))) or 0)


def cases(database: Database, sids: list[str]) -> dict[str, int]:
    with database.session() as session:
        found = session.execute(
            select(Call.call_sid, func.count(Case.id))
            .join(Case, Case.call_id == Call.id)
            .where(Call.call_sid.in_(sids))
            .group_by(Call.call_sid)
        ).all()
    return {sid: int(n) for sid, n in found}


def test_calls_whose_first_row_died_with_a_killed_web_worker_are_recorded_by_their_later_webhooks(
    environ: dict[str, str], database: Database, recording_server: RecordingServer
) -> None:
    calls = fault_counts(ci=12)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "1",
               "--threads", "8", "--no-control-socket", "--bind", f"127.0.0.1:{port}",
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
        sids = [twilio.new_call_sid() for _ in range(calls)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(lambda sid: twilio.post("/ivr/voice", twilio.base_params(sid)), sids)
            )
        assert [a.status_code for a in answers] == [200] * calls  # every caller was greeted
        (worker,) = children(server.pid)
        os.kill(worker, signal.SIGKILL)  # the OOM killer, or a kill -9
        wait_until(lambda: worker not in children(server.pid), timeout=10, what="the kill")
        lost = calls - rows(database, sids)
        assert lost == calls  # all were still queued behind the 30 s linger

        # The master starts a new worker; each call goes on: the menu, then the report.
        wait_until(lambda: answers_http(url + "/healthz"), timeout=60, what="a new worker")
        for sid in sids:
            menu = twilio.post("/ivr/greeting/choice", {**twilio.base_params(sid), "Digits": "1"})
            assert menu.status_code == 200 and "Record" in menu.verbs
            recording_sid = "RE" + sid[2:]
            recording_url = recording_server.add(recording_sid, WAV, not_found_first=0)
            recorded = twilio.post(
                "/ivr/recorded",
                {**twilio.base_params(sid), "RecordingUrl": recording_url,
                 "RecordingSid": recording_sid, "RecordingDuration": "3", "Digits": "#"},
            )  # fmt: skip
            assert recorded.status_code == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()

    repaired = rows(database, sids)
    opened = cases(database, sids)
    assert repaired == calls  # every call recorded again, once
    assert sorted(opened) == sorted(sids) and set(opened.values()) == {1}
    print_row(
        f"gunicorn worker SIGKILLed in a burst of first webhooks ({lost} rows lost, repaired)",
        placed=calls,
        opened=len(opened),
        finished=len(opened),
        lost=calls - len(opened),
        doubled=sum(opened.values()) - len(opened),
    )
