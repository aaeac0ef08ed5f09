"""`queue show` and `callbacks list` (contract 5), as real subprocesses: the calls waiting for a
person with their numbers masked, and the open callback tasks with the number to call."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import delete

from cases.models import CallbackAttempt, CallbackTask, QueueEntry, utcnow
from hotline.db import Database
from tests.hotline.test_cli import flask


def unique_number() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


@dataclass(frozen=True)
class Rows:
    """What the fixture made: the call SIDs and numbers, the tasks' ids and numbers."""

    waiting: list[str]
    answered: str
    numbers: list[str]
    tasks: list[int]
    task_numbers: list[str]
    older_created_at: datetime


@pytest.fixture
def rows(database: Database) -> Iterator[Rows]:
    """Two callers waiting (one for 90 s, one for 10 s), one already put through, and open
    and closed callback tasks; all removed afterwards, so no later test finds callers waiting."""
    now = utcnow()
    first, second, answered = (f"CA{uuid.uuid4().hex}" for _ in range(3))
    first_number, second_number = unique_number(), unique_number()
    open_number, tried_number, done_number = unique_number(), unique_number(), unique_number()
    older_created_at = now - timedelta(minutes=30)
    with database.session() as session, session.begin():
        session.add_all(
            [
                QueueEntry(
                    call_sid=first,
                    caller_number=first_number,
                    locale="zh-CN",
                    reason="asked",
                    enqueued_at=now - timedelta(seconds=90),
                    last_position=1,
                ),
                QueueEntry(
                    call_sid=second,
                    caller_number=second_number,
                    locale="en-US",
                    reason="status_lookup",
                    enqueued_at=now - timedelta(seconds=10),
                ),
                QueueEntry(
                    call_sid=answered,
                    caller_number=unique_number(),
                    locale="zh-CN",
                    reason="asked",
                    enqueued_at=now - timedelta(seconds=60),
                    answered_at=now - timedelta(seconds=50),
                    wait_seconds=10,
                ),
            ]
        )
        older = CallbackTask(
            caller_number=open_number,
            locale="zh-CN",
            reason="hung_up_in_queue",
            created_at=older_created_at,
        )
        tried = CallbackTask(
            caller_number=tried_number,
            locale="ko-KR",
            reason="asked",
            created_at=now - timedelta(minutes=5),
            attempts=1,
        )
        done = CallbackTask(
            caller_number=done_number,
            locale="zh-CN",
            reason="no_seat",
            created_at=now - timedelta(minutes=40),
            status="done",
            attempts=1,
        )
        session.add_all([older, tried, done])
        session.flush()
        session.add(
            CallbackAttempt(
                task_id=tried.id,
                number=1,
                operator="op",
                started_at=now - timedelta(minutes=2),
                outcome="no-answer",
            )
        )
        task_ids = [older.id, tried.id, done.id]
    yield Rows(
        waiting=[first, second],
        answered=answered,
        numbers=[first_number, second_number],
        tasks=task_ids,
        task_numbers=[open_number, tried_number, done_number],
        older_created_at=older_created_at,
    )
    with database.session() as session, session.begin():
        session.execute(delete(CallbackAttempt).where(CallbackAttempt.task_id.in_(task_ids)))
        session.execute(delete(CallbackTask).where(CallbackTask.id.in_(task_ids)))
        session.execute(
            delete(QueueEntry).where(QueueEntry.call_sid.in_([first, second, answered]))
        )


def test_queue_show_lists_the_callers_waiting_with_their_numbers_masked(
    environ: dict[str, str], app: Flask, rows: Rows
) -> None:
    result = flask(environ, "queue", "show")

    assert result.returncode == 0, result.stderr
    waiting = json.loads(result.stdout)
    assert isinstance(waiting, list)
    first, second = [call for call in waiting if call["call_sid"] in rows.waiting]
    assert [first["call_sid"], second["call_sid"]] == rows.waiting
    assert set(first) == {"call_sid", "caller", "locale", "reason", "seconds_waiting", "position"}
    first_number, second_number = rows.numbers
    assert first["caller"] == "*" * (len(first_number) - 4) + first_number[-4:]
    assert second["caller"].endswith(second_number[-4:]) and second_number not in result.stdout
    assert (first["locale"], second["locale"]) == ("zh-CN", "en-US")
    assert (first["reason"], second["reason"]) == ("asked", "status_lookup")
    assert 90 <= first["seconds_waiting"] < 90 + 120  # the subprocess takes a while to start
    assert 10 <= second["seconds_waiting"] < 10 + 120
    # Longest-waiting first, positions counted from 1 down the whole queue.
    assert [call["position"] for call in waiting] == list(range(1, len(waiting) + 1))
    assert first["position"] < second["position"]
    assert rows.answered not in result.stdout


def test_callbacks_list_prints_the_open_tasks_with_the_number_to_call(
    environ: dict[str, str], app: Flask, rows: Rows
) -> None:
    result = flask(environ, "callbacks", "list")

    assert result.returncode == 0, result.stderr
    tasks = json.loads(result.stdout)
    older_id, tried_id, done_id = rows.tasks
    ours = [task for task in tasks if task["id"] in (older_id, tried_id, done_id)]
    open_number, tried_number, _done_number = rows.task_numbers
    assert ours == [
        {
            "id": older_id,
            "caller": open_number,
            "locale": "zh-CN",
            "reason": "hung_up_in_queue",
            "created_at": rows.older_created_at.isoformat(),
            "attempts": 0,
        },
        {
            "id": tried_id,
            "caller": tried_number,
            "locale": "ko-KR",
            "reason": "asked",
            "created_at": ours[1]["created_at"],
            "attempts": 1,
        },
    ]
    # ISO 8601 with the zone, as every timestamp the project prints.
    assert ours[1]["created_at"].endswith("+00:00")
