"""The Celery app: embedded SQLite broker by default, Redis or RabbitMQ when BROKER_URL says so."""

from __future__ import annotations

from celery import Celery

from hotline.config import Settings

# Jobs whose failure would lose work are acknowledged only after they finish.
TASK_MODULES = ["ivr.tasks", "routing.tasks"]


def create_celery(settings: Settings) -> Celery:
    """Build the Celery app for these settings and make it the current one."""
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    app = Celery("hotline", broker=settings.broker_url, include=TASK_MODULES)
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
                "task": "routing.sweep_deadlines",
                "schedule": 60.0,
                "options": {"expires": 55.0},
            },
            "resend-pending-deliveries": {
                "task": "routing.resend_pending_deliveries",
                "schedule": 60.0,
                "options": {"expires": 55.0},
            },
        },
    )
    app.set_current()
    app.set_default()
    return app
