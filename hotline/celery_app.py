"""The Celery app: embedded SQLite broker by default, Redis or RabbitMQ when BROKER_URL says so.

Every job is given the process's `Wiring` as its first argument (after `self` for a bound job),
as pypi/warehouse's WarehouseTask gives its jobs a request: jobs reach what the shell wired
through the app that runs them, never through module globals. The message carries only the
job's own arguments (ids), so a retry re-sends exactly those.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from celery import Celery, Task

from hotline.config import Settings

if TYPE_CHECKING:
    from hotline.wiring import Wiring

# Jobs whose failure would lose work are acknowledged only after they finish.
TASK_MODULES = ["ivr.tasks", "routing.tasks", "delivery.tasks", "hotline.jobs"]


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
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        enable_utc=True,
        # Our logs already go to stdout, one line per event; Celery must not re-log them.
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        beat_schedule={
            "requeue-stalled-fetches": {
                "task": "ivr.requeue_stalled_fetches",
                "schedule": 120.0,
            },
            # Lights, overdue reminders and escalations. A sweep queued while the workers were
            # down is dropped once the next one is due: running it late adds nothing.
            "sweep-deadlines": {
                "task": "cases.sweep_deadlines",
                "schedule": 60.0,
                "options": {"expires": 55.0},
            },
            "resend-pending-deliveries": {
                "task": "delivery.resend_pending_deliveries",
                "schedule": 60.0,
                "options": {"expires": 55.0},
            },
        },
    )
    return app
