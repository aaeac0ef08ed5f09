"""The beat jobs: the deadline sweep every minute, and the re-send of deliveries whose job was
lost. Each runs as Celery runs it (`apply`); what they queue goes through the real worker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.models import Case, Delivery, DeliveryStatus, Light, utcnow
from hotline.celery_app import TASK_MODULES, create_celery
from hotline.config import load_settings
from routing import tasks
from tests.conftest import wait_until
from tests.support.factories import make_case
from tests.support.receivers import ReceivedPush, WebhookReceiver, make_department

SECRET = "beat-secret-0123456789"


@contextmanager
def quiet_session(database) -> Iterator[Session]:  # type: ignore[no-untyped-def]
    """A transaction whose outbox rows are not queued after the commit (a broker outage)."""
    with Session(database.engine, expire_on_commit=False) as session, session.begin():
        yield session


def case_named(database, number: str) -> Case:  # type: ignore[no-untyped-def]
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.deliveries
        return case


def test_beat_runs_the_sweep_every_minute_and_the_resend(environ: dict[str, str]) -> None:
    schedule = create_celery(load_settings(environ)).conf.beat_schedule
    jobs = {entry["task"]: entry["schedule"] for entry in schedule.values()}

    assert jobs["routing.sweep_deadlines"] == 60.0
    assert jobs["routing.resend_pending_deliveries"] <= 120.0
    assert "routing.tasks" in TASK_MODULES


@pytest.mark.usefixtures("celery_worker")
def test_the_sweep_job_lights_cases_reminds_on_red_and_escalates_after_the_grace(
    database,  # type: ignore[no-untyped-def]
    environ: dict[str, str],
) -> None:
    grace = timedelta(hours=float(environ.get("ESCALATION_GRACE_HOURS", 24)))
    now = utcnow()
    with WebhookReceiver(secret=SECRET) as receiver:
        with quiet_session(database) as session:
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            cases = {}
            # (opened, deadline): 80% of the time gone; overdue; overdue past the grace; fresh.
            for name, opened, deadline in [
                ("yellow", now - timedelta(hours=8), now + timedelta(hours=2)),
                ("red", now - timedelta(hours=10), now - timedelta(hours=1)),
                ("escalated", now - grace - timedelta(hours=30), now - grace - timedelta(hours=1)),
                ("green", now - timedelta(hours=1), now + timedelta(hours=23)),
            ]:
                case = make_case(
                    session,
                    department_code=code,
                    caller_number=None,
                    opened_at=opened,
                    deadline_at=deadline,
                )
                case.assigned_at = opened  # its clock started when it was opened
                for delivery in case.deliveries:  # its first push went out long ago
                    delivery.status = DeliveryStatus.DELIVERED
                cases[name] = case.number

        swept = tasks.sweep_deadlines.apply().get()

        overdue = (cases["red"], cases["escalated"])

        def reminders() -> list[ReceivedPush]:
            pushes = [
                push
                for number in overdue
                for push in receiver.accepted_for(number)
                if push.document["event"] == "overdue"
            ]
            return pushes if {push.case_number for push in pushes} == set(overdue) else []

        reminded = wait_until(reminders, timeout=60, what="the overdue reminders to arrive")

    assert cases["yellow"] in swept["yellow"]
    assert cases["red"] in swept["red"] and cases["escalated"] in swept["red"]
    assert swept["escalated"].count(cases["escalated"]) == 1
    assert cases["red"] not in swept["escalated"]
    assert cases["green"] not in swept["yellow"] + swept["red"]
    assert len(reminded) == 2  # one reminder per overdue case

    lights = {name: case_named(database, number).light for name, number in cases.items()}
    assert lights == {
        "yellow": Light.YELLOW,
        "red": Light.RED,
        "escalated": Light.RED,
        "green": Light.GREEN,
    }
    escalated = case_named(database, cases["escalated"])
    assert escalated.escalated_at is not None
    assert any(e.kind == "escalated" and e.data.get("automatic") for e in escalated.events)
    assert case_named(database, cases["red"]).escalated_at is None

    # A second run a minute later changes nothing that has been done already.
    again = tasks.sweep_deadlines.apply().get()
    assert not set(cases.values()) & set(again["yellow"] + again["red"] + again["escalated"])


@pytest.mark.usefixtures("celery_worker")
def test_the_resend_job_sends_deliveries_a_broker_outage_left_behind(database) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    with WebhookReceiver(secret=SECRET) as receiver:
        with quiet_session(database) as session:
            code = make_department(session, webhook_url=receiver.url, webhook_secret=SECRET)
            lost, retry_lost, in_flight = (
                make_case(session, department_code=code, caller_number=None) for _ in range(3)
            )
            # Queued ten minutes ago; its job never reached the broker.
            lost.deliveries[0].created_at = now - timedelta(minutes=10)
            # Tried once, five minutes ago; its retry was lost with a dead worker.
            retry_lost.deliveries[0].created_at = now - timedelta(minutes=6)
            retry_lost.deliveries[0].attempts = 1
            retry_lost.deliveries[0].last_attempt_at = now - timedelta(minutes=5)
            # Tried a moment ago: its own job is still on it.
            in_flight.deliveries[0].created_at = now - timedelta(minutes=10)
            in_flight.deliveries[0].attempts = 1
            in_flight.deliveries[0].last_attempt_at = now - timedelta(seconds=5)
            ids = {
                name: case.deliveries[0].id
                for name, case in (("lost", lost), ("retry", retry_lost), ("busy", in_flight))
            }
            numbers = {name: case.number for name, case in (("lost", lost), ("retry", retry_lost))}

        with database.session() as session:
            stalled = tasks.stalled_deliveries(
                session, now=utcnow(), config=tasks.current_context().config
            )
        assert ids["lost"] in stalled and ids["retry"] in stalled
        assert ids["busy"] not in stalled

        assert tasks.resend_pending_deliveries.apply().get() >= 2

        for number in numbers.values():
            wait_until(lambda n=number: receiver.accepted_for(n), timeout=60, what="the re-send")

    def settled(row_id: int) -> Delivery | None:
        with database.session() as session:
            row = session.get_one(Delivery, row_id)
            return row if row.status == DeliveryStatus.DELIVERED else None

    lost_row = wait_until(lambda: settled(ids["lost"]), timeout=30, what="the lost row recorded")
    retried_row = wait_until(lambda: settled(ids["retry"]), timeout=30, what="the retry recorded")
    assert lost_row.attempts == 1 and retried_row.attempts == 2
