"""The fuzz suites' environment (a database and a broker of their own) and their figures.

How many inputs: `FUZZ_EXAMPLES` per surface (the IVR webhooks, the department API). Unset, the
suites try a number that keeps each surface within about 45 s in CI; `make fuzz` sets 10,000.
The figures (inputs tried, 5xx answers, crashes, exceptions the app caught and logged, rows
written by refused requests) are printed at the end of the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

# Small in CI, where each surface stays within about 45 s; `make fuzz` asks for 10,000.
CI_EXAMPLES = {"ivr": 200, "api": 150}

FIGURES: dict[str, dict[str, Any]] = {}


def examples(surface: str) -> int:
    """How many inputs to try on `surface` in this run."""
    configured = os.environ.get("FUZZ_EXAMPLES")
    return int(configured) if configured else CI_EXAMPLES[surface]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print each fuzzed surface's figures after the run."""
    if not FIGURES:
        return
    terminalreporter.section("fuzzing")
    for surface, seen in sorted(FIGURES.items()):
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(seen["statuses"].items()))
        terminalreporter.write_line(
            f"{surface}: {seen['inputs']} inputs tried, {seen['server_errors']} 5xx, "
            f"{seen['crashes']} crashes, {seen.get('internal_errors', 0)} exceptions caught "
            f"inside, {seen['rejected']} refused (4xx) that wrote "
            f"{seen['rows_written_by_rejected']} rows; statuses {{{statuses}}}"
            + (" -- FAILED" if seen["failed"] else "")
        )


def _own_database_url(session_url: str, folder: Path, name: str) -> str:
    """A database nobody else writes to: a SQLite file, or a PostgreSQL schema of its own."""
    if not session_url.startswith("postgres"):
        return f"sqlite:///{folder / f'{name}.sqlite'}"
    engine = create_engine(session_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {name}"))
    engine.dispose()
    separator = "&" if "?" in session_url else "?"
    return f"{session_url}{separator}options=-csearch_path%3D{name}"


@pytest.fixture
def fuzz_environ(
    environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], dict[str, str]]:
    """The session's environment with a database, broker and instance folder of their own,
    named after the surface."""

    def make(surface: str) -> dict[str, str]:
        folder = tmp_path_factory.mktemp(f"fuzz-{surface}")
        return {
            **environ,
            "HOTLINE_INSTANCE_PATH": str(folder),
            "DATABASE_URL": _own_database_url(environ["DATABASE_URL"], folder, f"fuzz_{surface}"),
            "BROKER_URL": f"sqla+sqlite:///{folder / 'broker.sqlite'}",
        }

    return make
