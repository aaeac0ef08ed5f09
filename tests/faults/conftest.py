"""The fault-injection suite's parts: a service stack of its own per test (the Procfile's web,
streams, worker, transcriber and beat processes, which the test may kill, on a broker of their
own, with TCP proxies it can cut in front of the broker and the database if it asks), a
department receiver, and the table every fault test adds a row to (printed at the end of the
run).

Counts are small by default, so CI stays fast; `make faults` runs the full counts:
- FAULT_CALLS: calls placed per fault (default 3);
- FAULT_OUTAGE_SECONDS: how long the broker is down (default 15; the issue's figure, 60, in
  `make faults`);
- FAULT_DATABASE_OUTAGE_SECONDS: how long the database refuses connections (default 5).

The stack's jobs re-drive fast (beat every 2 s; a step is presumed lost after 6 s), so a fault
plays out in seconds; production waits minutes (`hotline.config.Settings.jobs_*`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import func, select

from cases import staff
from cases.models import Call, Case, CaseEvent, Delivery, DeliveryStatus, Department, Transcript
from emulator import RecordingServer, TwilioEmulator
from hotline.db import Database
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL, free_port, wait_until
from tests.support.processes import start_procfile_entry, started, stop
from tests.support.receivers import WebhookReceiver
from tests.support.tcp_proxy import TcpProxy

FAULT_CALLS = int(os.environ.get("FAULT_CALLS", "3"))
OUTAGE_SECONDS = float(os.environ.get("FAULT_OUTAGE_SECONDS", "15"))
DATABASE_OUTAGE_SECONDS = float(os.environ.get("FAULT_DATABASE_OUTAGE_SECONDS", "5"))

SECRET = "fault-department-secret"
# Leadership only receives copies; every other department can hold a case.
COPIES_ONLY = ("leadership",)
# What each Procfile entry logs once it is up (web and streams are asked over their port).
READY = {
    "worker": "ready.",
    "transcriber": "ready.",
    "beat": "beat: Starting...",
    "web": None,
    "streams": None,
}
FAST_REDRIVE = {
    "JOBS_SWEEP_SECONDS": "2",
    "JOBS_LOST_AFTER_SECONDS": "6",
    "JOBS_STALLED_SECONDS": "10",
}


# --- The table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultRow:
    """One fault's outcome, as the issue asks for it."""

    fault: str
    calls_placed: int
    cases_opened: int
    cases_finished: int
    lost: int
    doubled: int
    note: str = ""

    HEADER = ("fault", "calls placed", "cases opened", "cases finished", "lost", "doubled")

    def cells(self) -> tuple[str, ...]:
        """The row's cells, in the header's order."""
        counts = (self.calls_placed, self.cases_opened, self.cases_finished)
        return (self.fault, *map(str, counts), str(self.lost), str(self.doubled))


FAULT_TABLE: list[FaultRow] = []


def fault_table_lines(rows: list[FaultRow]) -> list[str]:
    """The rows as a Markdown table, notes below it."""
    lines = ["| " + " | ".join(FaultRow.HEADER) + " |", "|" + " --- |" * len(FaultRow.HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    lines += [f"- {row.fault}: {row.note}" for row in rows if row.note]
    return lines


@pytest.fixture
def record_fault() -> Callable[[FaultRow], None]:
    """Add a row to the table printed at the end of the run (and print it now, for -s)."""

    def record(row: FaultRow) -> None:
        FAULT_TABLE.append(row)
        print("\n".join(fault_table_lines([row])))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault table after the run."""
    if FAULT_TABLE:
        terminalreporter.section("fault injection")
        for line in fault_table_lines(FAULT_TABLE):
            terminalreporter.write_line(line)


# --- A stack of the service's processes per test ------------------------------------------------


@dataclass
class FaultStack:
    """The Procfile's processes (web, streams, worker, transcriber, beat) on a broker of their
    own, and an emulated Twilio that calls them."""

    env: dict[str, str]
    folder: Path
    emulator: TwilioEmulator
    processes: dict[str, Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    starts: int = 0

    def start(self, entry: str, *, name: str | None = None) -> Popen[bytes]:
        """Start a Procfile entry under `name`, and wait until it is up."""
        name = name or entry
        self.starts += 1
        log_path = self.folder / f"{name}.{self.starts}.log"
        extra = ("-n", f"{name}-{self.starts}@%h") if entry in ("worker", "transcriber") else ()
        process = start_procfile_entry(entry, self.env, log_path, *extra)
        self.processes[name], self.logs[name] = process, log_path
        marker = READY[entry]
        port = int(self.env["PORT" if entry == "web" else "STREAMS_PORT"]) if not marker else 0
        wait_until(
            lambda: (
                (started(process, log_path, marker) if marker else listening(port))
                or process.poll() is not None
            ),
            timeout=90,
            what=f"{name} to start",
        )
        if process.poll() is not None:
            pytest.fail(f"{name} died at start:\n{log_path.read_text()[-3000:]}")
        return process

    def start_service(self) -> None:
        """What a deployment runs: web, streams, one beat, a worker and a transcriber."""
        for entry in ("web", "streams", "beat", "worker", "transcriber"):
            self.start(entry)

    def kill(self, name: str) -> None:
        """SIGKILL the process outright: no shutdown, no acknowledgements, no clean-up."""
        stop(self.processes[name])

    def log(self, name: str) -> str:
        """What the process has logged so far."""
        return self.logs[name].read_text(errors="replace")

    def thread_dumps(self) -> str:
        """What each running Celery worker's threads are doing, as Celery's own SIGUSR1
        handler logs it, with the end of its log: for the message of a failed check (a worker
        that took jobs and finished none is otherwise a mystery after the run)."""
        running = {
            name: process
            for name, process in self.processes.items()
            if name in ("worker", "transcriber") and process.poll() is None
        }
        for process in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGUSR1)
        time.sleep(2)  # the handler writes from the worker's main thread
        return "\n".join(f"--- {name} ---\n{self.log(name)[-20000:]}" for name in running)

    def stop_all(self) -> None:
        """Stop what is still running: SIGTERM to all at once (a graceful stop), then reap."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            stop(process)


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _with_port(url: str, port: int) -> str:
    """`url` pointed at 127.0.0.1:`port` instead of its own host."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _own_broker(environ: dict[str, str], folder: Path) -> str:
    """A broker no other worker of the session consumes from: a fresh embedded one, or the
    session's Redis at another database number (the session's plus eight)."""
    url = environ["BROKER_URL"]
    if not url.startswith("redis"):
        return f"sqla+sqlite:///{folder / 'broker.sqlite'}"
    import redis

    parts = urlsplit(url)
    database = (int(parts.path.strip("/") or 0) + 8) % 16
    own = urlunsplit(parts._replace(path=f"/{database}"))
    redis.Redis.from_url(own).flushdb()
    return own


Proxies = dict[str, TcpProxy]


@pytest.fixture
def fault_stack(
    environ: dict[str, str],
    app: Any,
    recording_server: RecordingServer,
    tmp_path: Path,
) -> Iterator[Callable[..., tuple[FaultStack, Proxies]]]:
    """Builds a `FaultStack` (its processes not started yet); `proxied=("broker",
    "database")` puts a `TcpProxy` in front of either, returned beside the stack; `settings`
    overrides environment variables. The session's `app` has migrated the database and trained
    the classifier."""
    stacks: list[FaultStack] = []
    proxies: list[TcpProxy] = []

    def build(
        *, proxied: tuple[str, ...] = (), settings: dict[str, str] | None = None
    ) -> tuple[FaultStack, Proxies]:
        env = {
            **environ,
            **FAST_REDRIVE,
            **(settings or {}),
            "BROKER_URL": _own_broker(environ, tmp_path),
            "PORT": str(free_port()),
            "STREAMS_PORT": str(free_port()),
        }
        cut: Proxies = {}
        for name, key, default_port in (
            ("broker", "BROKER_URL", 6379),
            ("database", "DATABASE_URL", 5432),
        ):
            if name in proxied:
                target = urlsplit(env[key])
                proxy = TcpProxy(
                    upstream_host=target.hostname or "127.0.0.1",
                    upstream_port=target.port or default_port,
                ).__enter__()
                proxies.append(proxy)
                cut[name] = proxy
                env[key] = _with_port(env[key], proxy.port)
        emulator = TwilioEmulator(
            public_base_url=PUBLIC_BASE_URL,
            app_url=f"http://127.0.0.1:{env['PORT']}",
            streams_url=f"ws://127.0.0.1:{env['STREAMS_PORT']}",
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            recordings=recording_server,
        )
        stack = FaultStack(env=env, folder=tmp_path, emulator=emulator)
        stacks.append(stack)
        return stack, cut

    yield build
    for stack in stacks:
        stack.stop_all()
    for proxy in proxies:
        proxy.__exit__(None, None, None)


@pytest.fixture
def department_receiver(database: Database) -> Iterator[WebhookReceiver]:
    """A department system's endpoint on every handling department (wherever routing sends a
    case, its push comes here), unconfigured afterwards."""
    with WebhookReceiver(secret=SECRET) as receiver:
        with database.session() as session, session.begin():
            codes = [
                code
                for code in session.scalars(select(Department.code))
                if code not in COPIES_ONLY and not code.startswith("t_")
            ]
            for code in codes:
                staff.set_department_channels(
                    session, code=code, webhook_url=receiver.url, webhook_secret=SECRET
                )
        try:
            yield receiver
        finally:
            with database.session() as session, session.begin():
                for code in codes:
                    staff.set_department_channels(
                        session, code=code, webhook_url="", webhook_secret=""
                    )


# --- Counting what became of the calls ----------------------------------------------------------


@dataclass(frozen=True)
class CallOutcome:
    """What became of one call: its cases, and how far the first got."""

    call_sid: str
    cases: int
    transcribed: bool = False
    routed: int = 0  # "routed" events on the case
    delivered: bool = False  # its department's push delivered, by the outbox's record
    pushed_ids: frozenset[str] = frozenset()  # distinct delivery ids the department accepted
    pushes: int = 0  # pushes the department accepted, repeats of one delivery id included

    @property
    def finished(self) -> bool:
        """Transcribed, routed and pushed to its department."""
        return (
            self.cases == 1
            and self.transcribed
            and self.routed >= 1
            and self.delivered
            and len(self.pushed_ids) >= 1
        )

    @property
    def doubled(self) -> bool:
        """Opened, routed or pushed more than once (a repeat of one delivery id is the
        contract's at-least-once, not a double)."""
        return self.cases > 1 or self.routed > 1 or len(self.pushed_ids) > 1


def outcome_of(database: Database, receiver: WebhookReceiver, call_sid: str) -> CallOutcome:
    """Read one call's outcome from the database and the department receiver."""
    database.group_commit.flush()
    with database.session() as session:
        cases = session.scalars(
            select(Case).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
        ).all()
        if len(cases) != 1:
            return CallOutcome(call_sid, cases=len(cases))
        case = cases[0]
        transcribed = session.scalar(
            select(func.count(Transcript.id)).where(
                Transcript.call_id == case.call_id, Transcript.complete
            )
        )
        routed = session.scalar(
            select(func.count(CaseEvent.id)).where(
                CaseEvent.case_id == case.id, CaseEvent.kind == "routed"
            )
        )
        delivered = session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.case_id == case.id,
                Delivery.recipient == case.department_code,
                Delivery.topic == "assigned",
                Delivery.status == DeliveryStatus.DELIVERED,
            )
        )
        number = case.number
    accepted = [
        push for push in receiver.accepted_for(number) if push.document.get("event") == "assigned"
    ]
    return CallOutcome(
        call_sid,
        cases=1,
        transcribed=bool(transcribed),
        routed=int(routed or 0),
        delivered=bool(delivered),
        pushed_ids=frozenset(push.delivery_id for push in accepted),
        pushes=len(accepted),
    )


def settle(
    database: Database, receiver: WebhookReceiver, call_sids: list[str], *, timeout: float
) -> list[CallOutcome]:
    """Wait until every call's case has finished (or the timeout passes), then read them all."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcomes = [outcome_of(database, receiver, sid) for sid in call_sids]
        if all(outcome.finished for outcome in outcomes):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # a late duplicate push lands in the count, not after it
    return [outcome_of(database, receiver, sid) for sid in call_sids]


def fault_row(fault: str, outcomes: list[CallOutcome], note: str = "") -> FaultRow:
    """The table's row for these outcomes."""
    finished = sum(outcome.finished for outcome in outcomes)
    return FaultRow(
        fault=fault,
        calls_placed=len(outcomes),
        cases_opened=sum(1 for outcome in outcomes if outcome.cases >= 1),
        cases_finished=finished,
        lost=len(outcomes) - finished,
        doubled=sum(outcome.doubled for outcome in outcomes),
        note=note,
    )
