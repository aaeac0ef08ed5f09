"""The fuzzers' own process: one app, a database and a broker of its own, one surface fuzzed.

`python -m tests.fuzz.harness SURFACE RESULT_JSON` builds the app from the environment (as
gunicorn's workers do), migrates it (`flask init`), fuzzes SURFACE (`ivr` or `api`) in-process
through the WSGI app with `FUZZ_EXAMPLES` inputs, and writes the figures to RESULT_JSON. It exits
non-zero with Hypothesis's minimal failing input if a property fails. `tests/fuzz/test_fuzz.py`
runs it.

Why a process of its own: the test session's app and Celery worker write to the session's
database while the fuzzer runs, and "a refused request writes no row" is checked by counting
every table's rows before and after each request: only a database nobody else writes to makes
that count exact. The fuzz app's jobs go to a broker of its own that no worker reads, so nothing
it enqueues runs behind the counts. (An app per process is also how the service runs: a second
`create_app` in one process fails, as the console's blueprints keep their setup.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask
from sqlalchemy import func, inspect, select, table

from hotline import create_app
from hotline.db import Database
from hotline.wiring import wiring_of

SURFACES = {
    "ivr": "tests.fuzz.ivr_webhooks",
    "api": "tests.fuzz.department_api",
}


@dataclass
class Figures:
    """What fuzzing one surface saw (a failed run counts its shrinking attempts too)."""

    inputs: int = 0
    server_errors: int = 0
    crashes: int = 0
    rejected: int = 0
    rows_written_by_rejected: int = 0
    # Exceptions the app caught and logged (the IVR answers them with an apology, a 200).
    internal_errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def answered(self, status: int) -> None:
        """Count one answer."""
        self.inputs += 1
        self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
        if status >= 500:
            self.server_errors += 1
        elif status >= 400:
            self.rejected += 1


class ErrorLog(logging.Handler):
    """Counts the exceptions the app logs: a webhook that fails inside answers with an apology
    (TwiML, 200), so only its log shows that something broke."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.count += 1
            self.last = self.format(record)


class RowCounts:
    """Counts the rows of every table of a database, in one query."""

    def __init__(self, database: Database) -> None:
        self.database = database
        # Every table the migrations made (alembic's own included), not only those models map.
        names = sorted(inspect(database.engine).get_table_names())
        self.query = select(
            *(
                select(func.count()).select_from(table(name)).scalar_subquery().label(name)
                for name in names
            )
        )

    def __call__(self) -> dict[str, int]:
        """The count of each table, once what the write-behind queued has been committed."""
        self.database.group_commit.flush()
        with self.database.engine.connect() as connection:
            return dict(connection.execute(self.query).one()._mapping)

    @staticmethod
    def written(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """The tables whose count changed, and by how much."""
        return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def examples() -> int:
    """How many inputs to try (`FUZZ_EXAMPLES`, which the parent always sets)."""
    return int(os.environ["FUZZ_EXAMPLES"])


def build_app() -> Flask:
    """The app as a web process builds it, migrated, answering errors as in production."""
    app = create_app()
    result = app.test_cli_runner().invoke(args=["init"])
    if result.exit_code != 0:
        raise SystemExit(f"flask init failed:\n{result.output}")
    app.testing = False  # an unhandled error is a 500 answer, not an exception in the client
    # /ivr/report/check waits up to 3 s (config/ivr.toml) for a live transcript, which never
    # comes here. The wait is a timing, not a decision: with none, the step still reads the
    # transcript once and answers as it would after waiting.
    flow = wiring_of(app).call_flow
    flow.options = dataclasses.replace(flow.options, emergency_check_wait=0)
    return app


def main(argv: list[str]) -> int:
    """Fuzz one surface; write its figures; 1 if a property failed."""
    surface, result_path = argv[1], Path(argv[2])
    module = __import__(SURFACES[surface], fromlist=["fuzz"])
    fuzz: Callable[[Flask, RowCounts, ErrorLog, Figures], None] = module.fuzz
    app = build_app()
    seen = Figures()
    errors = ErrorLog()
    logging.getLogger().addHandler(errors)
    failed = False
    try:
        fuzz(app, RowCounts(wiring_of(app).database), errors, seen)
    except BaseException:
        failed = True
        raise
    finally:
        result_path.write_text(json.dumps({**dataclasses.asdict(seen), "failed": failed}))
        wiring_of(app).database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
