"""The shell's Celery app and the domain's own job: the beat schedule, and the deadline sweep
every minute, run as Celery runs it (`apply`); what it queues goes through the real worker."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cases.models import DeliveryStatus, Light, utcnow
from hotline import jobs
from hotline.celery_app import TASK_MODULES, create_celery
from hotline.config import load_settings
from hotline.db import Database
from tests.conftest import wait_until
from tests.support.factories import case_named, make_case, quiet_session
from tests.support.receivers import ReceivedPush, WebhookReceiver, make_department

SECRET = "beat-secret-0123456789"


def test_beat_runs_the_sweep_every_minute_and_the_resend(environ: dict[str, str]) -> None:
    schedule = create_celery(load_settings(environ)).conf.beat_schedule
    jobs = {entry["task"]: entry["schedule"] for entry in schedule.values()}

    assert jobs["cases.sweep_deadlines"] == 60.0
    assert jobs["delivery.resend_pending_deliveries"] <= 120.0
    assert jobs["ivr.requeue_stalled_fetches"] <= 300.0
    # The worker knows every job the beat and the app send.
    assert {"hotline.jobs", "delivery.tasks", "routing.tasks", "ivr.tasks"} <= set(TASK_MODULES)


@pytest.mark.usefixtures("celery_worker")
def test_the_sweep_job_lights_cases_reminds_on_red_and_escalates_after_the_grace(
    database: Database,
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

        swept = jobs.sweep_deadlines.apply().get()

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
    again = jobs.sweep_deadlines.apply().get()
    assert not set(cases.values()) & set(again["yellow"] + again["red"] + again["escalated"])
