"""The Celery workers killed outright (SIGKILL) in the middle of each job of a case's chain
(the transcriber in the transcription, the worker in the others), then restarted: every case
still ends transcribed, routed and pushed, once.

What makes that hold: jobs are acknowledged late (a job taken by a killed worker is not
acknowledged); each is idempotent (the fetch and the delivery are claimed by a conditional
update, the transcript and the route are written under a row lock and only once); and beat's
re-drive sweeps queue again whatever step was left without its job (on the embedded broker a
message taken by a killed worker is never given back, so the sweeps are what bring it back).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable

from emulator import Speak
from hotline.db import Database
from tests.faults.conftest import (
    FAULT_CALLS,
    FaultRow,
    FaultStack,
    Proxies,
    fault_row,
    settle,
)
from tests.support.calls import SPEECH
from tests.support.receivers import WebhookReceiver

# The chain of a case, in order, and the Procfile entry that runs each job: each is killed
# once, while one of its jobs is in hand.
STAGES = {
    "ivr.fetch_recording": "worker",
    "ivr.transcribe_recording": "transcriber",
    "routing.route_case": "worker",
    "delivery.deliver": "worker",
}


# How many passes over the stages, each with one more call, to catch a transcription in hand.
KILL_ROUNDS = 3


def place_calls(stack: FaultStack, count: int, placed: list[str], pause: float) -> None:
    """Korean reports (the language with a model here), the live stream broken off halfway so
    the worker transcribes the recording; the fetch finds a 404 first, as Twilio often does."""
    for _ in range(count):
        speech = Speak(SPEECH, drop_stream=True, not_found_first=1)
        placed.append(stack.emulator.call(["3", "1", speech]).call_sid)
        time.sleep(pause)


def worker_has(stack: FaultStack, stage: str) -> bool:
    """Whether the stack's current worker for this stage has one of its jobs in hand."""
    return job_in_hand(stack.log(STAGES[stage]), stage)


def job_in_hand(log: str, stage: str) -> bool:
    """Whether the worker has taken a job of this stage (received, not yet finished)."""
    received = set(re.findall(rf"Task {re.escape(stage)}\[([0-9a-f-]+)\] received", log))
    finished = set(
        re.findall(rf"Task {re.escape(stage)}\[([0-9a-f-]+)\] (?:succeeded|retry|raised)", log)
    )
    return bool(received - finished)


def test_cases_are_transcribed_routed_and_pushed_once_through_worker_kills(
    fault_stack: Callable[..., tuple[FaultStack, Proxies]],
    department_receiver: WebhookReceiver,
    database: Database,
    record_fault: Callable[[FaultRow], None],
) -> None:
    stack, _ = fault_stack()
    stack.start_service()
    placed: list[str] = []
    caller = threading.Thread(target=place_calls, args=(stack, FAULT_CALLS, placed, 0.5))
    caller.start()

    killed: list[str] = []
    for _ in range(KILL_ROUNDS):
        for stage, entry in STAGES.items():
            if stage not in killed and within(40, functools.partial(worker_has, stack, stage)):
                stack.kill(entry)
                killed.append(stage)
                stack.start(entry)
        if "ivr.transcribe_recording" in killed:
            break
        # On a loaded machine a job can start and end between two looks (or while the worker
        # restarts): one more call gives the missed stages another chance.
        place_calls(stack, 1, placed, 0)
    caller.join(timeout=300)

    outcomes = settle(database, department_receiver, placed, timeout=90)
    repeats = sum(outcome.pushes - len(outcome.pushed_ids) for outcome in outcomes)
    row = fault_row(
        "Celery workers SIGKILLed in " + ", ".join(killed),
        outcomes,
        note=f"{len(killed)} kills; {repeats} repeated pushes of one delivery id (at least once)",
    )
    record_fault(row)

    assert len(placed) >= FAULT_CALLS
    unfinished = [outcome for outcome in outcomes if not outcome.finished]
    assert row.lost == 0, (unfinished, stack.thread_dumps())
    assert row.doubled == 0, [outcome for outcome in outcomes if outcome.doubled]
    assert "ivr.transcribe_recording" in killed  # the long job: a kill lands mid-way


def within(seconds: float, predicate: Callable[[], bool]) -> bool:
    """Poll `predicate` closely (a short job is in hand for a moment) until it holds or
    `seconds` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False
