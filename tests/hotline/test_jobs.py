"""The shell's Celery app and the domain's own job: the beat schedule, and the deadline sweep
every minute, run as Celery runs it (`apply`); what it queues goes through the real worker.
Then the worker and beat as the Procfile starts them: separate processes, reliable on a fresh
embedded broker (issue 12, defect 4)."""

from __future__ import annotations

import functools
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery.beat import PersistentScheduler

from cases.models import CaseStatus, DeliveryStatus, Light, utcnow
from hotline import jobs
from hotline.celery_app import (
    JOBS_QUEUE,
    TASK_MODULES,
    TRANSCRIPTION_QUEUE,
    create_celery,
    declare_queues,
)
from hotline.config import load_settings
from hotline.db import Database
from hotline.health import broker_queue_depth
from tests.conftest import wait_until
from tests.support.factories import DEFAULT_WORDS, case_named, make_case, quiet_session
from tests.support.processes import (
    alive,
    descendants,
    procfile_commands,
    start_procfile_entry,
    started,
    stop,
)
from tests.support.receivers import ReceivedPush, WebhookReceiver, make_department

SECRET = "beat-secret-0123456789"


def test_beat_runs_the_sweep_every_minute_and_the_resend(environ: dict[str, str]) -> None:
    schedule = create_celery(load_settings(environ)).conf.beat_schedule
    jobs = {entry["task"]: entry["schedule"] for entry in schedule.values()}

    assert jobs["cases.sweep_deadlines"] == 60.0
    assert jobs["delivery.resend_pending_deliveries"] <= 120.0
    assert jobs["ivr.requeue_stalled_fetches"] <= 300.0
    assert jobs["routing.requeue_unrouted_cases"] <= 120.0
    # The worker knows every job the beat and the app send.
    assert {"hotline.jobs", "delivery.tasks", "routing.tasks", "ivr.tasks"} <= set(TASK_MODULES)


def test_batch_transcription_lands_in_its_own_queue_and_every_other_job_in_the_jobs_queue(
    tmp_path: Path,
) -> None:
    """On a broker of the test's own: a route queued behind a hundred recordings is next in
    its queue, not the hundred-and-first."""
    broker = f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    celery = create_celery(
        load_settings({"HOTLINE_INSTANCE_PATH": str(tmp_path), "BROKER_URL": broker})
    )
    declare_queues(celery)
    for recording_id in (1, 2, 3):
        celery.send_task("ivr.transcribe_recording", args=[recording_id])
    celery.send_task("routing.route_case", args=[7])
    celery.send_task("delivery.deliver", args=[8])

    assert broker_queue_depth(celery, TRANSCRIPTION_QUEUE) == 3
    assert broker_queue_depth(celery, JOBS_QUEUE) == 2
    # Redis's direct exchange delivers a message to every queue bound by its routing key: each
    # queue is bound by its own name alone (both bound by `celery` ran every job twice there).
    bindings = {queue.name: queue.routing_key for queue in celery.amqp.queues.values()}
    assert bindings == {JOBS_QUEUE: JOBS_QUEUE, TRANSCRIPTION_QUEUE: TRANSCRIPTION_QUEUE}


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


# --- The worker and beat as the Procfile runs them (issue 12, defect 4) ----------------------


def overdue_schedule(environ: dict[str, str], path: Path) -> None:
    """Write beat's schedule file as a beat stopped long ago left it: every job overdue."""
    scheduler = PersistentScheduler(
        app=create_celery(load_settings(environ)), schedule_filename=str(path)
    )
    for entry in scheduler.schedule.values():
        entry.last_run_at = datetime(2000, 1, 1, tzinfo=UTC)
    scheduler.sync()
    scheduler.close()


def fresh_broker(environ: dict[str, str], folder: Path) -> dict[str, str]:
    """The session's environment with an embedded broker of its own, empty."""
    return {**environ, "BROKER_URL": f"sqla+sqlite:///{folder / 'broker.sqlite'}"}


def test_the_procfile_runs_one_beat_beside_workers_that_schedule_nothing() -> None:
    commands = procfile_commands()

    assert "--beat" not in commands["worker"].split()
    assert " beat" in commands["beat"] and "--schedule" in commands["beat"]
    assert sum(1 for name in commands if name == "beat") == 1


def queues_consumed(command: str) -> set[str]:
    """The queues a Procfile worker command consumes (`--queues a,b`)."""
    words = command.split()
    return set(words[words.index("--queues") + 1].split(","))


def test_the_procfile_gives_transcriptions_workers_of_their_own_and_leaves_no_job_unconsumed(
    tmp_path: Path,
) -> None:
    commands = procfile_commands()
    celery = create_celery(load_settings({"HOTLINE_INSTANCE_PATH": str(tmp_path)}))
    celery.loader.import_default_modules()
    router = celery.amqp.router
    jobs_queues = {
        name: router.route({}, name)["queue"].name
        for name in celery.tasks
        if not name.startswith("celery.")
    }

    # A route, a push or a text never waits for a thread a transcription holds.
    assert queues_consumed(commands["transcriber"]) == {TRANSCRIPTION_QUEUE}
    assert queues_consumed(commands["worker"]) == {JOBS_QUEUE}
    assert jobs_queues["ivr.transcribe_recording"] == TRANSCRIPTION_QUEUE
    # Every job the app defines lands in a queue some Procfile worker takes.
    consumed = queues_consumed(commands["worker"]) | queues_consumed(commands["transcriber"])
    assert set(jobs_queues.values()) <= consumed, jobs_queues


@pytest.mark.usefixtures("app")
def test_a_worker_killed_outright_leaves_no_scheduler_behind_to_run_sweeps_twice(
    environ: dict[str, str], tmp_path: Path
) -> None:
    log_path = tmp_path / "worker.log"
    worker = start_procfile_entry("worker", fresh_broker(environ, tmp_path), log_path)
    try:
        wait_until(
            functools.partial(started, worker, log_path, "ready."),
            timeout=60,
            what="the worker to start",
        )
        assert worker.poll() is None, log_path.read_text()
        below = descendants(worker.pid)

        os.kill(worker.pid, signal.SIGKILL)  # the worker alone, as the OOM killer would
        worker.wait(timeout=10)
        time.sleep(1)  # a beat child is not told: it would still be running now

        orphans = {pid for pid in below if alive(pid)}
        assert not orphans, f"processes left running by the killed worker: {orphans}"
    finally:
        stop(worker)


ROUNDS = int(os.environ.get("WORKER_START_ROUNDS", "3"))


@pytest.mark.usefixtures("app")
def test_a_worker_and_beat_started_together_on_a_fresh_embedded_broker_both_stay_up(
    environ: dict[str, str], tmp_path: Path
) -> None:
    if not environ["BROKER_URL"].startswith("sqla+"):
        pytest.skip("the queue-declaration race is the embedded broker's (kombu's SQLAlchemy)")
    failures = []
    for round_ in range(ROUNDS):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        env = fresh_broker(environ, folder)
        env["HOTLINE_INSTANCE_PATH"] = str(folder)
        # A restart after a while: beat sends its overdue sweeps the moment it starts, into a
        # queue the workers' consumers are declaring at that moment.
        overdue_schedule(env, folder / "celerybeat-schedule")
        # As `make run` starts them: all at once, the two kinds of worker beside beat.
        names = ("worker", "transcriber", "beat")
        logs = {name: folder / f"{name}.log" for name in names}
        processes = {name: start_procfile_entry(name, env, logs[name]) for name in names}
        ready = {"worker": "ready.", "transcriber": "ready.", "beat": "beat: Starting..."}
        try:
            for name, process in processes.items():
                wait_until(
                    functools.partial(started, process, logs[name], ready[name]),
                    timeout=90,
                    what=f"{name} to start",
                )
            time.sleep(1)  # a consumer that dies on its first declaration dies by now
            for name, process in processes.items():
                if process.poll() is not None or "kombu_queue" in logs[name].read_text():
                    failures.append(f"round {round_}, {name}:\n{logs[name].read_text()[-2000:]}")
        finally:
            for process in processes.values():
                stop(process)
    assert not failures, "\n".join(failures)


# --- Retention (issue 16) --------------------------------------------------------------------


def test_beat_purges_expired_audio_every_hour_and_the_job_reports_what_it_removed(
    database: Database, environ: dict[str, str]
) -> None:
    schedule = create_celery(load_settings(environ)).conf.beat_schedule
    assert {e["task"]: e["schedule"] for e in schedule.values()}["cases.purge_expired"] == 3600.0
    long_ago = datetime(1991, 6, 1, tzinfo=UTC)
    with database.session() as session, session.begin():
        case = make_case(session, opened_at=long_ago - timedelta(days=1))
        case.status, case.closed_at = CaseStatus.CLOSED, long_ago
        number = case.number

    purged = jobs.purge_expired.apply().get()

    assert purged["cases"] >= 1 and purged["transcripts"] >= 1 and purged["failures"] == 0
    kept = case_named(database, number)
    assert [event.data for event in kept.events if event.kind == "purged"] == [
        {"kept_for_days": 180, "transcript_characters": len(DEFAULT_WORDS)}
    ]
