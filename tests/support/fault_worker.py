"""A Celery worker of a fault test's own: its own broker (so no other worker takes its jobs),
its own environment (a clock, a recordings folder), started and stopped by the test.

The session's worker (tests/conftest.py `celery_worker`) shares the session's broker with
every test; a fault test that changes what its worker sees (a shifted clock, a full disk)
needs one that nothing else feeds. It works on the session's database, so the test reads
the outcome where the app would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from celery import Celery

from hotline.config import PROJECT_ROOT
from tests.conftest import wait_until

# A Redis database index away from the session's (the lead's is 0, a helper's its number).
REDIS_DB_OFFSET = 8


def fault_counts(*, ci: int) -> int:
    """How many calls a fault test places: a few in CI, FAULT_CALLS in the long run."""
    raw = os.environ.get("FAULT_CALLS")
    return max(int(raw), 1) if raw else ci


def isolated_broker_url(session_broker_url: str, folder: Path) -> str:
    """A broker nobody else uses, of the same kind as the session's: a SQLite file of its own
    for the embedded broker, another database index on the session's Redis server."""
    if session_broker_url.startswith("redis"):
        parts = urlsplit(session_broker_url)
        index = int(parts.path.strip("/") or 0)
        path = f"/{(index + REDIS_DB_OFFSET) % 16}"
        return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))
    return f"sqla+sqlite:///{folder / 'broker.sqlite'}"


def flush_broker(url: str) -> None:
    """Empty a Redis broker left over by an earlier run (a SQLite one is a fresh file)."""
    if url.startswith("redis"):
        import redis

        redis.Redis.from_url(url).flushdb()


@contextmanager
def celery_worker_process(
    environ: Mapping[str, str],
    log_path: Path,
    *,
    app: str = "hotline.worker",
    extra_args: Sequence[str] = (),
    wrapper: Sequence[str] = (),
    what: str = "the fault test's Celery worker",
) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker (threads pool) with this environment, stopped at the end; the
    session's worker (tests/conftest.py `celery_worker`) is one too.

    `wrapper` is a module (and its arguments) that runs the worker inside itself, e.g.
    `("tests.support.shifted_clock", clock_file)` for a worker whose wall clock the test moves.
    """
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                *wrapper,
                "celery",
                "--app",
                app,
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "4",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                *extra_args,
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, **environ},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: "ready." in log_path.read_text() or process.poll() is not None,
            timeout=90,
            what=what,
        )
        if process.poll() is not None:
            pytest.fail(f"{what} died:\n" + log_path.read_text())
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextmanager
def sender(broker_url: str) -> Iterator[Celery]:
    """A Celery app that only sends jobs, by name, to the fault test's broker."""
    app = Celery("fault-test-sender", broker=broker_url, set_as_current=False)
    try:
        yield app
    finally:
        app.close()


def print_row(
    fault: str, *, placed: int, opened: int, finished: int, lost: int, doubled: int
) -> None:
    """The fault suite's table row, on the test's output (run pytest with -s to see it)."""
    print(
        f"\nFAULT ROW | {fault} | calls placed {placed} | cases opened {opened} | "
        f"cases finished {finished} | lost {lost} | doubled {doubled}"
    )
