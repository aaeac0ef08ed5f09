"""A department's receiver down for an hour, then back: each case reaches it exactly once, under
one delivery id, and nothing is given up inside the day's retry window.

The hour passes on the worker's wall clock, not the test's: the test's own worker runs under
`tests.support.shifted_clock`, and the test moves its clock forward in 4-minute steps, asking
it after each step for the beat's sweep (`delivery.resend_pending_deliveries`), which re-sends
whatever is overdue. Deliveries run with the production backoff (30 s, doubling, capped at an
hour) and the production "lost after" (120 s), so the tries fall where they would in a real
outage. Steps are under the receiver's 300 s signature tolerance, so a push signed just before
a step is still valid just after it, as it would be on a real network.

The receiver refuses connections (nothing listens) for the first half hour, then answers 503
(up but being deployed) for the second, then accepts. Its clock follows the worker's.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cases.models import Case, CaseEvent, Delivery, DeliveryStatus, utcnow
from delivery.messages import DeliveryConfig
from delivery.services import stalled_deliveries
from hotline.db import Database
from tests.conftest import PUBLIC_BASE_URL, wait_until
from tests.faults.conftest import FaultRow
from tests.support.factories import make_case, quiet_session
from tests.support.fault_worker import (
    celery_worker_process,
    fault_counts,
    flush_broker,
    isolated_broker_url,
    sender,
)
from tests.support.receivers import WebhookReceiver, make_department

FAULT = "department receiver down for an hour, then back"
SECRET = "receiver-down-secret"
STEP_SECONDS = 240.0  # under the 300 s signature tolerance
REFUSED_UNTIL = 1800.0  # nothing listens for the first half hour
DOWN_UNTIL = 3600.0  # then 503 until the hour is over
# After the hour a pending try is due within the backoff's cap (an hour) plus the sweep's
# "lost after" (120 s); give it that and a step, then half an hour more to see nothing repeats.
GIVE_UP_AT = DOWN_UNTIL + 3600.0 + 120.0 + STEP_SECONDS
QUIET_AFTER_SECONDS = 1800.0
LOST_AFTER = timedelta(seconds=120)
# The production schedule (the session's environment has a fast one for other tests).
PRODUCTION = DeliveryConfig(public_base_url=PUBLIC_BASE_URL, backoff=30.0)


class WorkerClock:
    """The offset of the worker's wall clock, moved through a file the worker follows."""

    def __init__(self, folder: Path) -> None:
        self.file = folder / "clock"
        self.file.write_text("0\n")
        self.offset = 0.0

    def move_to(self, offset: float) -> None:
        """Set the worker's clock `offset` seconds ahead of real time, once it has done so."""
        self.file.write_text(f"{offset}\n")
        applied = Path(f"{self.file}.applied")

        def moved() -> bool:
            try:
                return float(applied.read_text().strip() or "nan") == offset
            except (OSError, ValueError):
                return False

        wait_until(moved, timeout=10, what=f"the worker's clock at +{offset:.0f} s")
        self.offset = offset

    def time(self) -> float:
        """The worker's wall clock, read from the test."""
        return time.time() + self.offset


def finished_in(log_path: Path, task_id: str) -> Callable[[], bool]:
    """Whether the worker has logged this job as done."""
    marker = f"[{task_id}] succeeded"
    return lambda: marker in log_path.read_text()


def deliveries(database: Database, row_ids: list[int]) -> list[Delivery]:
    with database.session() as session:
        return list(session.scalars(select(Delivery).where(Delivery.id.in_(row_ids))))


class Sweeps:
    """The beat's sweep, sent now and again every `every` seconds while something is overdue."""

    def __init__(self, send: Callable[[], object], every: float = 5.0) -> None:
        self.send, self.every = send, every
        self.sent_at = time.monotonic()
        send()

    def until(self, done: Callable[[], bool]) -> bool:
        """Whether `done`, having sent another sweep if not and the last one is `every` old."""
        if done():
            return True
        if time.monotonic() - self.sent_at >= self.every:
            self.sent_at = time.monotonic()
            self.send()
        return False


def nothing_overdue(database: Database, row_ids: list[int], clock: WorkerClock) -> bool:
    """Whether every try the sweep found overdue has been made (as of the worker's clock)."""
    now = utcnow() + timedelta(seconds=clock.offset)
    with database.session() as session:
        stalled = stalled_deliveries(session, now=now, config=PRODUCTION, lost_after=LOST_AFTER)
    return not set(stalled) & set(row_ids)


# Out of CI until its flake is understood: it waits past 60 s for the overdue tries at +720 s
# (now and then in the full suite, never alone). The sweep repeated while something is overdue
# mended one cause, a try falling due just after the step's one sweep, but not this.
# `make faults` (which sets FAULT_CALLS) still runs it.
@pytest.mark.skipif(
    "FAULT_CALLS" not in os.environ,
    reason="flaky in the full suite (the tries at +720 s not made within 60 s); run by make faults",
)
def test_a_department_whose_receiver_is_down_for_an_hour_gets_each_case_once_under_one_id(
    environ: dict[str, str],
    app: object,
    database: Database,
    tmp_path: Path,
    record_fault: Callable[[FaultRow], None],
) -> None:
    calls = fault_counts(ci=3)
    broker = isolated_broker_url(environ["BROKER_URL"], tmp_path)
    flush_broker(broker)
    clock = WorkerClock(tmp_path)
    worker_env = {
        **environ,
        "BROKER_URL": broker,
        "DELIVERY_BACKOFF": str(PRODUCTION.backoff),
        "DELIVERY_RETRY_HOURS": "24",
        "JOBS_LOST_AFTER_SECONDS": str(LOST_AFTER.total_seconds()),
    }
    log_path = tmp_path / "worker.log"
    wrapper = ("tests.support.shifted_clock", str(clock.file))

    with (
        WebhookReceiver(secret=SECRET, clock=clock.time) as receiver,
        celery_worker_process(worker_env, log_path, wrapper=wrapper),
        sender(broker) as jobs,
    ):
        # A department of the test's own, and its cases routed to it with their pushes in the
        # outbox (a quiet session: the session's worker, on the real clock, must not send them).
        with quiet_session(database) as session:
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            cases = [make_case(session, department_code=code) for _ in range(calls)]
            numbers = [case.number for case in cases]
            rows = {
                case.number: next(d for d in case.deliveries if d.recipient == code)
                for case in cases
            }
        row_ids = [row.id for row in rows.values()]
        delivery_ids = {number: row.delivery_id for number, row in rows.items()}

        receiver.go_down()
        for row_id in row_ids:  # what the commit's after-commit hook sends
            jobs.send_task("delivery.deliver", args=[row_id])
        wait_until(
            lambda: all(d.attempts >= 1 and d.last_error for d in deliveries(database, row_ids)),
            timeout=30,
            what="the first try of each push, refused",
        )

        offset, delivered_at = 0.0, None
        while (
            offset < GIVE_UP_AT
            if delivered_at is None
            else offset < delivered_at + QUIET_AFTER_SECONDS
        ):
            offset += STEP_SECONDS
            clock.move_to(offset)
            if offset >= REFUSED_UNTIL and offset - STEP_SECONDS < REFUSED_UNTIL:
                receiver.fail_all(503)
                receiver.come_back()
            if offset >= DOWN_UNTIL and offset - STEP_SECONDS < DOWN_UNTIL:
                receiver.fail_all(None)
            # The beat's sweep, repeated as the beat repeats it; the step is done once every
            # try overdue at the new time has been made (a step with nothing due goes on at
            # once, its sweep a harmless no-op). One sweep is not enough: a try that falls due
            # a moment after the sweep ran (a 120 s backoff plus the 120 s "lost after" is
            # exactly one step) is overdue by the time the test looks, and only the next sweep
            # makes it; waiting on the first sweep alone was this test's flake.
            sweeps = Sweeps(lambda: jobs.send_task("delivery.resend_pending_deliveries"))
            wait_until(
                functools.partial(sweeps.until, lambda: nothing_overdue(database, row_ids, clock)),
                # Generous: on a loaded machine a sweep and its tries can take a while.
                timeout=60,
                what=f"the overdue tries at +{offset:.0f} s",
            )
            rows_now = deliveries(database, row_ids)
            assert all(d.status != DeliveryStatus.FAILED for d in rows_now), (
                f"a push was given up at +{offset:.0f} s, inside the day's retry window"
            )
            if offset < DOWN_UNTIL:
                assert all(d.status == DeliveryStatus.PENDING for d in rows_now)
            elif delivered_at is None and all(
                d.status == DeliveryStatus.DELIVERED for d in rows_now
            ):
                delivered_at = offset
        # A last sweep, seen through, then a push still in flight lands in the count.
        sweep = jobs.send_task("delivery.resend_pending_deliveries")
        wait_until(finished_in(log_path, sweep.id), timeout=30, what="the last sweep")
        time.sleep(1.0)

    final = {d.id: d for d in deliveries(database, row_ids)}
    with database.session() as session:
        opened = session.scalars(select(Case).where(Case.number.in_(numbers))).all()
        failures = session.scalars(
            select(CaseEvent).where(
                CaseEvent.case_id.in_([c.id for c in opened]),
                CaseEvent.kind == "delivery_failed",
            )
        ).all()
        flagged = [c.number for c in opened if c.needs_review]

    accepted = {number: receiver.accepted_for(number) for number in numbers}
    tries = {number: receiver.received_for(number) for number in numbers}
    finished = [n for n in numbers if len(accepted[n]) >= 1]
    doubled = [n for n in numbers if len(accepted[n]) > 1]
    attempts = sorted(d.attempts for d in final.values())
    record_fault(
        FaultRow(
            fault=FAULT,
            calls_placed=calls,
            cases_opened=len(opened),
            cases_finished=len(finished),
            lost=calls - len(finished),
            doubled=len(doubled),
            note=(
                f"refused for {REFUSED_UNTIL / 60:.0f} min, 503 until {DOWN_UNTIL / 60:.0f} "
                f"min of the worker's clock, in {STEP_SECONDS / 60:.0f}-minute steps; "
                f"delivered by +{(delivered_at or 0) / 60:.0f} min; tries per push {attempts}"
            ),
        )
    )

    assert delivered_at is not None, "not every push was delivered after the receiver came back"
    for number in numbers:
        row = rows[number]
        assert final[row.id].status == DeliveryStatus.DELIVERED
        # Exactly one push acknowledged per case, and nothing after it.
        assert len(accepted[number]) == 1, number
        assert tries[number][-1].status < 300
        # Every try that reached the receiver (the 503s and the accepted one) carried the
        # row's one delivery id, in the header and the body, and a valid signature.
        assert len(tries[number]) >= 2, "the receiver saw no try while it answered 503"
        assert {push.delivery_id for push in tries[number]} == {delivery_ids[number]}
        assert {push.document["delivery_id"] for push in tries[number]} == {delivery_ids[number]}
        assert all(push.signature_valid for push in tries[number])
        assert accepted[number][0].document["event"] == "assigned"
        # The tries count up: the department can tell a retry from a new message.
        numbered = [int(push.headers["X-Hotline-Attempt"]) for push in tries[number]]
        assert numbered == sorted(set(numbered))
        assert final[row.id].attempts == numbered[-1] >= 4
    assert not failures and not flagged  # nothing given up, nobody at the desk alerted
    assert len(opened) == calls and not doubled
