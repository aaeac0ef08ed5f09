"""PostgreSQL restarted during calls: a TCP proxy in front of it drops every connection and
refuses new ones for a few seconds. Webhooks answer at worst with the apology, which records
the caller again; once the database is back each call has its case, once, with its recording.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from cases.models import Call, Case, RecordingStatus
from emulator import Speak
from hotline.db import Database
from ivr.prompts import Prompts
from tests.faults.conftest import (
    DATABASE_OUTAGE_SECONDS,
    FAULT_CALLS,
    FaultRow,
    FaultStack,
    Proxies,
)
from tests.support.calls import SPEECH


def recorded_cases(database: Database, call_sid: str) -> tuple[int, bool]:
    """How many cases the call has, and whether the first has its recording stored."""
    with database.session() as session:
        cases = session.scalars(
            select(Case).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
        ).all()
        stored = bool(cases) and any(
            recording.status == RecordingStatus.STORED for recording in cases[0].recordings
        )
        return len(cases), stored


def test_calls_through_a_database_restart_are_each_recorded_once_it_is_back(
    environ: dict[str, str],
    fault_stack: Callable[..., tuple[FaultStack, Proxies]],
    database: Database,
    prompts: dict[str, Prompts],
    record_fault: Callable[[FaultRow], None],
) -> None:
    if not environ["DATABASE_URL"].startswith("postgres"):
        pytest.skip("SQLite is a file in the process: there is no server to restart")
    # Mandarin alone: no language menu, so after the greeting's key every verb a failed step
    # can lead to is a <Record> (the apology records the caller).
    stack, proxies = fault_stack(
        proxied=("database",), settings={"HOTLINE_ENABLED_LOCALES": "zh-CN"}
    )
    stack.start_service()
    placed: list[str] = []
    apologies = [0]
    transcripts: list[str] = []

    def place_calls() -> None:
        # 1 at the greeting: report now. Spare reports for the apologies, which record the
        # caller again; the caller hangs up after the last.
        for _ in range(FAULT_CALLS):
            log = stack.emulator.call(["1", *[Speak(SPEECH) for _ in range(4)]])
            placed.append(log.call_sid)
            transcripts.append(log.transcript())
            heard = [spoken.text for spoken in log.said]
            apologies[0] += heard.count(prompts["zh-CN"].text("error_apology"))
            time.sleep(0.3)

    caller = threading.Thread(target=place_calls)
    caller.start()
    while not placed and caller.is_alive():
        time.sleep(0.05)
    proxies["database"].cut()  # the restart: every connection dropped, new ones refused
    time.sleep(DATABASE_OUTAGE_SECONDS)
    proxies["database"].restore()
    caller.join(timeout=300)

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        outcomes = [recorded_cases(database, sid) for sid in placed]
        if all(count == 1 and stored for count, stored in outcomes):
            break
        time.sleep(0.5)
    outcomes = [recorded_cases(database, sid) for sid in placed]
    finished = sum(1 for count, stored in outcomes if count == 1 and stored)
    row = FaultRow(
        fault=f"PostgreSQL restarted ({DATABASE_OUTAGE_SECONDS:.0f} s refusing)",
        calls_placed=len(placed),
        cases_opened=sum(1 for count, _ in outcomes if count >= 1),
        cases_finished=finished,
        lost=len(placed) - finished,
        doubled=sum(1 for count, _ in outcomes if count > 1),
        note=f"finished = case opened with its recording stored; {apologies[0]} apologies heard",
    )
    record_fault(row)

    assert len(placed) == FAULT_CALLS
    assert row.lost == 0, (list(zip(placed, outcomes, strict=True)), transcripts)
    assert row.doubled == 0, list(zip(placed, outcomes, strict=True))
