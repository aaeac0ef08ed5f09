"""The broker (Redis) unreachable for a while during calls: callers hear what they always
hear, and every job owed flows once it is back.

No job is ever lost with it: the rows a call writes are the jobs' outbox (a recording still
pending is a fetch owed, a stored one without a transcript a transcription, a transcript
unrouted a routing, a pending delivery a push), written in the webhook's own transaction.
Sending the job after the commit is a fast path that may fail; beat's re-drive sweeps send
whatever is still owed. Redis is cut by a TCP proxy in front of it, not stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from emulator import CallLog, Speak
from hotline.db import Database
from ivr.prompts import Prompts
from tests.conftest import wait_until
from tests.faults.conftest import (
    FAULT_CALLS,
    OUTAGE_SECONDS,
    FaultRow,
    FaultStack,
    Proxies,
    fault_row,
    settle,
)
from tests.support.calls import SPEECH, Lookups
from tests.support.receivers import WebhookReceiver


def heard_shape(said: list[str], spoken_number: str, *, waiting: str) -> list[str]:
    """What a caller heard, with their own case number (as it is spoken) masked. The check's
    "one moment" notice (`waiting`) is left out: whether a caller hears it depends on how fast
    the live decode finished, on a good day as in an outage, not on the broker."""
    return [text.replace(spoken_number, "<number>") for text in said if text != waiting]


def report_by_phone(stack: FaultStack) -> CallLog:
    """A caller who picks Korean and reports, their live stream breaking off halfway (the
    recording still comes): the batch path carries the report."""
    return stack.emulator.call(["3", "1", Speak(SPEECH, drop_stream=True)])


def test_calls_during_a_broker_outage_sound_the_same_and_their_jobs_flow_when_it_returns(
    environ: dict[str, str],
    fault_stack: Callable[..., tuple[FaultStack, Proxies]],
    department_receiver: WebhookReceiver,
    database: Database,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    record_fault: Callable[[FaultRow], None],
) -> None:
    if not environ["BROKER_URL"].startswith("redis"):
        pytest.skip("the embedded broker is the database file itself: it has no outage of its own")
    stack, proxies = fault_stack(proxied=("broker",))
    stack.start_service()

    def place() -> tuple[str, list[str], float]:
        begun = time.monotonic()
        log = report_by_phone(stack)
        return log.call_sid, [spoken.text for spoken in log.said], time.monotonic() - begun

    before_sid, before_heard, before_seconds = place()  # what a caller hears on a good day

    proxies["broker"].cut()
    down_at = time.monotonic()
    during: list[tuple[str, list[str], float]] = []
    pause = OUTAGE_SECONDS / max(FAULT_CALLS, 1) / 2
    for _ in range(FAULT_CALLS):  # spread over the outage (which lasts until all are placed)
        during.append(place())
        time.sleep(pause)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    proxies["broker"].restore()

    call_sids = [before_sid] + [sid for sid, _, _ in during]
    outcomes = settle(database, department_receiver, call_sids, timeout=120 + OUTAGE_SECONDS)
    slowest = max(seconds for _, _, seconds in during)
    row = fault_row(
        f"broker (Redis) unreachable for {OUTAGE_SECONDS:.0f} s",
        outcomes,
        note=(
            f"{len(during)} calls placed while it was down; the longest took {slowest:.1f} s "
            f"(a call before the outage: {before_seconds:.1f} s)"
        ),
    )
    record_fault(row)

    korean = prompts["ko-KR"]
    waiting = korean.text("report_check_wait")
    usual = heard_shape(
        before_heard, korean.digits(lookups.case_of(before_sid).number), waiting=waiting
    )
    for call_sid, heard, _ in during:
        spoken_number = korean.digits(lookups.case_of(call_sid).number)
        assert korean.text("error_apology") not in heard
        assert any(spoken_number in text for text in heard), heard  # their number, read back
        assert heard_shape(heard, spoken_number, waiting=waiting) == usual
    unfinished = [outcome for outcome in outcomes if not outcome.finished]
    assert row.lost == 0, (unfinished, stack.thread_dumps())
    assert row.doubled == 0, [outcome for outcome in outcomes if outcome.doubled]


def test_workers_busy_with_a_job_when_the_broker_goes_away_stay_up_and_take_jobs_once_it_is_back(
    environ: dict[str, str],
    fault_stack: Callable[..., tuple[FaultStack, Proxies]],
    department_receiver: WebhookReceiver,
    database: Database,
) -> None:
    """A job in flight at the cut is a message the worker has not acknowledged. Celery 5.7.0
    could die on it ("Unrecoverable error: AttributeError ... 'hostname'", restoring the
    message through a connection it had already torn down), which lost the transcriber in the
    outage test above and every call after it; requirements.txt pins 5.6.3 for that. Here the
    department holds its answer, so the worker's push is in flight when the broker goes.
    5.7.0 died only when the pub/sub socket noticed the drop before the BRPOP did, which this
    test cannot arrange: under 5.7.0 it passed, restoring the job and living, while the test
    above failed four times of four. What it holds is the rest: a busy worker lives through the
    cut, its job is not done twice, and new calls' jobs flow after."""
    if not environ["BROKER_URL"].startswith("redis"):
        pytest.skip("the embedded broker is the database file itself: it has no outage of its own")
    stack, proxies = fault_stack(proxied=("broker",))
    stack.start_service()

    department_receiver.hold()
    try:
        first = report_by_phone(stack).call_sid
        assert department_receiver.wait_for_a_held_push(timeout=90), stack.log("worker")[-5000:]
        proxies["broker"].cut()
        wait_until(
            lambda: all(
                "Connection to broker lost" in stack.log(name) for name in ("worker", "transcriber")
            ),
            timeout=30,
            what="the worker and the transcriber to see the broker go",
        )
    finally:
        department_receiver.release()
    time.sleep(2)  # the push's answer arrives, and its acknowledgement cannot be sent
    proxies["broker"].restore()

    second = report_by_phone(stack).call_sid
    outcomes = settle(database, department_receiver, [first, second], timeout=120)
    for name in ("worker", "transcriber"):
        assert stack.processes[name].poll() is None, stack.log(name)[-5000:]
    assert all(outcome.finished for outcome in outcomes), (outcomes, stack.thread_dumps())
    assert not any(outcome.doubled for outcome in outcomes), outcomes
