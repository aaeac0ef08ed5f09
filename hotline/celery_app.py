"""The Celery app: embedded SQLite broker by default, Redis or RabbitMQ when BROKER_URL says so.

Every job is given the process's `Wiring` as its first argument (after `self` for a bound job),
as pypi/warehouse's WarehouseTask gives its jobs a request: jobs reach what the shell wired
through the app that runs them, never through module globals. The message carries only the
job's own arguments (ids), so a retry re-sends exactly those.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery, Task
from kombu.entity import Queue
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from hotline.config import Settings

if TYPE_CHECKING:
    from hotline.wiring import Wiring

log = logging.getLogger("hotline.jobs")

# Jobs whose failure would lose work are acknowledged only after they finish.
TASK_MODULES = ["ivr.tasks", "ivr.seat_calls", "routing.tasks", "delivery.tasks", "hotline.jobs"]


# Two queues, which every worker consumes unless told otherwise (`-Q`). Batch transcription
# has its own, so that it can have workers of its own: after a burst of calls, a hundred
# transcriptions (seconds of CPU each) stood in one line in front of every route and push.
# A worker that consumes both takes their messages in turn (kombu's fair cycle, prefetch 1),
# which still gives the quick jobs only the threads that transcriptions free: bench/calls.py
# measured routes coming at the end of a 100-call burst's transcriptions all the same, behind
# the burst's own fetches and texts. Where bursts matter, run transcription workers
# (`-Q transcription`) beside workers that never transcribe (`-Q celery`).
JOBS_QUEUE = "celery"
TRANSCRIPTION_QUEUE = "transcription"
TASK_ROUTES = {"ivr.transcribe_recording": {"queue": TRANSCRIPTION_QUEUE}}


class HotlineCelery(Celery):
    """A Celery app that knows the process's wiring (set by `hotline.factory.wire`)."""

    wiring: Wiring | None = None


class WiredTask(Task):
    """A job whose function receives the process's `Wiring` before its own arguments."""

    def __new__(cls, *args: Any, **kwargs: Any) -> WiredTask:
        task: WiredTask = super().__new__(cls)
        # Celery checks a job's arguments against its function when it is sent: the wiring
        # is not the sender's to give, so the check takes a stand-in for it.
        header = getattr(task, "__header__", None)
        if header is not None:
            task.__header__ = functools.partial(header, object())
        # Wrap `run` rather than `__call__`: Celery records `__call__`'s arguments as the
        # request's, and a retry would then try to send the wiring through the broker.
        unwired = task.run

        @functools.wraps(unwired)
        def run(*run_args: Any, **run_kwargs: Any) -> Any:
            wiring = task.app.wiring
            if wiring is None:
                raise RuntimeError("this Celery app was not wired by hotline.factory.wire")
            return unwired(wiring, *run_args, **run_kwargs)

        task.run = run
        return task


def create_celery(settings: Settings) -> HotlineCelery:
    """Build the Celery app for these settings (`hotline.factory.wire` makes it current)."""
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = HotlineCelery(
        "hotline",
        broker=settings.broker_url,
        include=TASK_MODULES,
        task_cls=WiredTask,
        set_as_current=False,
    )
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=JOBS_QUEUE,
        # Each bound by its own name on the default direct exchange: a Queue given only a name
        # is bound by the default routing key, and every job would land in `celery`.
        task_queues=[_queue(JOBS_QUEUE), _queue(TRANSCRIPTION_QUEUE)],
        task_routes=TASK_ROUTES,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        # Our logs already go to stdout, one line per event; Celery must not re-log them.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        # Re-drive sweeps: each finds the steps whose job a broker outage or a dead worker lost
        # (the domain rows are the jobs' outbox) and queues them again; every job is
        # idempotent, so a job queued twice does its work once.
        beat_schedule={
            "requeue-stalled-fetches": {
                "task": "ivr.requeue_stalled_fetches",
                "schedule": settings.jobs_sweep_seconds,
                "options": {"expires": settings.jobs_sweep_seconds},
            },
            "requeue-unrouted-cases": {
                "task": "routing.requeue_unrouted_cases",
                "schedule": settings.jobs_sweep_seconds,
                "options": {"expires": settings.jobs_sweep_seconds},
            },
            # Lights, overdue reminders and escalations. A sweep queued while the workers were
            # down is dropped once the next one is due: running it late adds nothing.
            "sweep-deadlines": {
                "task": "cases.sweep_deadlines",
                "schedule": 60.0,
                "options": {"expires": 55.0},
            },
            # Seats whose wrap-up ended, and callers a lost job left waiting, are paired here
            # too (each webhook that frees a seat or queues a caller also queues it at once).
            "ring-free-seats": {
                "task": "ivr.ring_free_seats",
                "schedule": settings.jobs_sweep_seconds,
                "options": {"expires": settings.jobs_sweep_seconds},
            },
            # Recordings, transcripts and photos past RETENTION_DAYS after the case closed.
            "purge-expired-audio-and-text": {
                "task": "cases.purge_expired",
                "schedule": 3600.0,
                "options": {"expires": 3500.0},
            },
            "resend-pending-deliveries": {
                "task": "delivery.resend_pending_deliveries",
                "schedule": settings.jobs_sweep_seconds,
                "options": {"expires": settings.jobs_sweep_seconds},
            },
        },
    )
    return app


def _queue(name: str) -> Queue:
    queue: Queue = Queue(name, routing_key=name)  # type: ignore[no-untyped-call]
    return queue


def declare_queues(app: Celery, *, attempts: int = 10) -> None:
    """Declare the app's queues on the embedded broker once, before consumers or beat use it.

    kombu's SQLAlchemy transport creates a queue's row on first use and guards that only
    within one process; a worker and beat starting together on a fresh broker both insert
    it, and the loser dies at once on `UNIQUE constraint failed: kombu_queue.name`. So every
    process declares first, one at a time across processes (a lock file beside the broker's
    SQLite file), and a clash with a process that did not take the lock is retried: the row
    is there on the next try. Other brokers declare queues atomically; nothing to do.
    """
    url = str(app.conf.broker_url or "")
    if not url.startswith("sqla+"):
        return
    broker = make_url(url.removeprefix("sqla+"))
    path = broker.database or ":memory:"
    on_file = broker.get_backend_name() == "sqlite" and path != ":memory:"
    lock_path = Path(f"{path}.declare-lock") if on_file else None
    for attempt in range(1, attempts + 1):
        try:
            with _file_lock(lock_path), app.connection_for_write() as connection:
                channel = connection.default_channel
                for queue in app.amqp.queues.values():
                    queue(channel).declare()
            return
        except DBAPIError as error:
            if attempt == attempts:
                raise
            log.warning("declaring the broker's queues clashed (%s); trying again", error.orig)
            time.sleep(random.uniform(0.05, 0.2) * attempt)


@contextmanager
def _file_lock(path: Path | None) -> Iterator[None]:
    """An exclusive `flock` on `path` for the block (none when there is no path)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the file releases the lock
