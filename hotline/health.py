"""The probes: `/healthz` (liveness: the process answers) and `/readyz` (readiness: it can
do its work, so a load balancer may send it calls).

Ready means the database answers `SELECT 1`, the broker accepts a connection within a couple
of seconds (the embedded one too), and every enabled locale has its speech model on disk
(found, not loaded: loading takes seconds, and the streams process does it at start). The
answer names each check and whether it passed, nothing more: what failed, and why, goes to
the log, where an address or a path is nobody's secret.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from celery import Celery
from kombu.exceptions import ChannelError
from sqlalchemy import text

if TYPE_CHECKING:
    from flask import Flask

    from hotline.wiring import Wiring

log = logging.getLogger("hotline.health")

BROKER_TIMEOUT_SECONDS = 2.0


def database_ready(wiring: Wiring) -> bool:
    """The database answers a query."""
    with wiring.database.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return True


def broker_ready(wiring: Wiring) -> bool:
    """The broker answers: it takes a connection and says how long the job queue is."""
    broker_queue_depth(wiring.celery)
    return True


def broker_queue_depth(celery: Celery, queue: str | None = None) -> int:
    """The jobs waiting in `queue` (the default queue if None); raises if the broker does not
    answer within BROKER_TIMEOUT_SECONDS and one try. Asking for the queue (rather than only
    connecting) makes even the embedded broker, whose connection is lazy, read its database."""
    queue = queue or str(celery.conf.task_default_queue or "celery")
    with celery.connection_for_read(connect_timeout=BROKER_TIMEOUT_SECONDS) as connection:
        connection.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
        try:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        except ChannelError:  # the broker answered: no worker has declared the queue yet
            return 0
    return int(declared.message_count)


def models_ready(wiring: Wiring) -> bool:
    """Some enabled locale has a speech model (its folder is there; it is not loaded).

    One missing is logged, not a failure: the service takes those calls all the same (their
    reports go to the desk to be listened to), and a probe that failed for good on a machine
    with only some models would take every web process out of service for nothing.
    """
    available = set(wiring.models.available())
    missing = [locale for locale in wiring.settings.enabled_locales if locale not in available]
    if missing:
        log.warning("no speech model for %s", ", ".join(missing))
    return len(missing) < len(wiring.settings.enabled_locales)


CHECKS: dict[str, Callable[[Wiring], bool]] = {
    "database": database_ready,
    "broker": broker_ready,
    "models": models_ready,
}


def readiness(wiring: Wiring) -> dict[str, bool]:
    """Each check's result; a check that raises has failed (and is logged with its error)."""
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check(wiring)
        except Exception:
            log.warning("readiness: the %s check failed", name, exc_info=True)
            results[name] = False
    return results


def register_probes(app: Flask, wiring: Wiring) -> None:
    """`GET /healthz` and `GET /readyz`."""
    from flask import Response, jsonify

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        checks = readiness(wiring)
        ready = all(checks.values())
        answer = {
            "status": "ok" if ready else "unavailable",
            "checks": {name: "ok" if passed else "failed" for name, passed in checks.items()},
        }
        return jsonify(answer), 200 if ready else 503
