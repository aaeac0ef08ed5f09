"""Per-core figures for the capacity model that the other benchmarks do not give: batch audio
seconds per CPU second, cases routed per CPU second, database writes and bytes per case.

CPU is the working thread's own (`time.thread_time`), not wall time: on a shared machine a
neighbour stretches the clock far more than the CPU a piece of work takes. On PostgreSQL
(DATABASE_URL set) the server's own CPU is not in these figures; on SQLite (the default) it
is.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from celery import signals
from flask import Flask
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/capacity.py`: import the project itself
from bench.queue_service_level import start_prism  # noqa: E402
from cases import intake, lifecycle, staff  # noqa: E402
from cases.access import Actor  # noqa: E402
from cases.models import (  # noqa: E402
    Call,
    Case,
    CaseStatus,
    Category,
    Department,
    Intake,
    Role,
    Transcript,
    utcnow,
)
from emulator import RecordingServer, Speak, TwilioEmulator  # noqa: E402
from hotline import create_app  # noqa: E402
from hotline.wiring import Wiring, wiring_of  # noqa: E402
from routing.corpus import load_category_examples  # noqa: E402
from routing.tasks import route_case  # noqa: E402
from tests.support.receivers import WebhookReceiver  # noqa: E402
from transcription.audio import decode_wav  # noqa: E402
from transcription.recognizer import transcribe  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "capacity.json"
AUDIO = ROOT / "tests" / "fixtures" / "audio"
# The 8 kHz telephone fixtures: what a call's recording is.
BATCH_NAMES = ["ko_water", "ko_garbage", "ko_parking", "ko_road", "ko_streetlight", "ko_noise"]
VOICE_CLIP = AUDIO / "ko_streetlight.wav"
PUBLIC_BASE_URL = "https://hotline.capacity.test"
ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "capacity-bench-token-0123456789abcdef"
HOTLINE_NUMBER = "+865374412345"
PUSH_SECRET = "capacity-department-secret"
REPLY = "已处理完毕，感谢您的反映。"
COPIES_ONLY = ("leadership",)  # leadership only receives copies: it holds no case
# The table an INSERT [OR IGNORE] INTO, an UPDATE or a DELETE FROM writes to.
WRITE_STATEMENT = re.compile(
    r'\s*(?P<verb>INSERT|UPDATE|DELETE)\b(?:\s+OR\s+\w+)?(?:\s+INTO|\s+FROM)?\s+"?(?P<table>\w+)',
    re.IGNORECASE,
)
WAIT_SECONDS = 120.0

T = TypeVar("T")


@dataclass
class WriteCounter:
    """Counts the write statements an engine runs, in every thread, while `counting`.

    An executemany counts once per row it writes; `transactions` counts commits (each a log
    flush on the database's side)."""

    counting: bool = False
    statements: Counter[str] = field(default_factory=Counter)  # "INSERT cases" -> count
    transactions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, engine: Engine) -> None:
        """Listen on the engine's statements and commits."""
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(
        self, _conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, many: bool
    ) -> None:
        if not self.counting:
            return
        written = WRITE_STATEMENT.match(statement)
        if written is None:
            return
        verb, table = written["verb"].upper(), written["table"]
        rows = len(parameters) if many and parameters else 1
        with self.lock:
            self.statements[f"{verb} {table.strip(chr(34))}"] += rows

    def _commit(self, _conn: Any) -> None:
        if self.counting:
            with self.lock:
                self.transactions += 1

    @contextlib.contextmanager
    def window(self, ledger: CpuLedger) -> Iterator[None]:
        """Count writes and CPU only inside the block (starting from zero)."""
        self.statements.clear()
        self.transactions = 0
        ledger.reset()
        self.counting = ledger.counting = True
        try:
            yield
        finally:
            self.counting = ledger.counting = False


class CpuLedger:
    """CPU seconds of the app's work in this process, split into web requests and jobs.

    Jobs run eagerly inside the request (or call) that queues them: a request's own CPU is its
    thread's CPU less the jobs run within it, and each job's is its own less the jobs it ran
    (a transcription runs the routing job, which sends the push)."""

    def __init__(self) -> None:
        self.counting = False
        self.requests = 0
        self.web = 0.0
        self.jobs: Counter[str] = Counter()
        self.runs: Counter[str] = Counter()
        self._local = threading.local()
        self._lock = threading.Lock()
        signals.task_prerun.connect(self._job_starts, weak=False)
        signals.task_postrun.connect(self._job_ends, weak=False)

    def _frames(self) -> list[list[Any]]:
        frames: list[list[Any]] = self._local.__dict__.setdefault("frames", [])
        return frames

    def _job_starts(self, task: Any = None, **_: Any) -> None:
        self._frames().append([task.name if task else "?", time.thread_time(), 0.0])

    def _job_ends(self, **_: Any) -> None:
        name, started, children = self._frames().pop()
        spent = time.thread_time() - started
        if self._frames():
            self._frames()[-1][2] += spent
        if self.counting:
            with self._lock:
                self.jobs[name] += spent - children
                self.runs[name] += 1

    def wsgi(self, app: Flask) -> Callable[..., Any]:
        """The app, with each request's own CPU counted."""

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            frames = self._frames()
            frames.append(["request", time.thread_time(), 0.0])
            try:
                return list(app(environ, start_response))
            finally:
                _, started, in_jobs = frames.pop()
                if self.counting:
                    with self._lock:
                        self.requests += 1
                        self.web += time.thread_time() - started - in_jobs

        return counted

    def reset(self) -> None:
        """Start counting again from zero."""
        self.requests, self.web = 0, 0.0
        self.jobs.clear()
        self.runs.clear()


def wait_for(predicate: Callable[[], T | None], *, what: str) -> T:
    """Poll until `predicate()` is truthy; fail the measurement after WAIT_SECONDS."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"measurement void: timed out waiting for {what}")


def cpu_seconds(work: Callable[[], T]) -> tuple[T, float]:
    """Run `work` on this thread; its result and the CPU seconds this thread spent."""
    before = time.thread_time()
    result = work()
    return result, time.thread_time() - before


# 1. Batch transcription -------------------------------------------------------------------


def batch_audio_per_cpu(wiring: Wiring, rounds: int) -> dict[str, Any]:
    """Audio seconds per CPU second of the batch path (`decode_wav`, `transcribe`), 8 kHz."""
    model = wiring.models.get("ko-KR")
    transcribe(decode_wav((AUDIO / f"{BATCH_NAMES[0]}.wav").read_bytes()), model)  # warm up
    per_round = []
    audio = cpu = 0.0
    for _ in range(rounds):
        round_audio = round_cpu = 0.0
        for name in BATCH_NAMES:
            data = (AUDIO / f"{name}.wav").read_bytes()
            transcript, spent = cpu_seconds(lambda: transcribe(decode_wav(data), model))  # noqa: B023 (called at once)
            round_audio += transcript.duration_seconds
            round_cpu += spent
        per_round.append(round_audio / round_cpu)
        audio, cpu = audio + round_audio, cpu + round_cpu
    return {
        "fixtures": len(BATCH_NAMES) * rounds,
        "audio_seconds": round(audio, 2),
        "cpu_seconds": round(cpu, 3),
        "audio_seconds_per_cpu_second": round(audio / cpu, 2),
        # Neighbours inflate CPU time too (shared caches, a busy sibling thread): the rounds'
        # spread says how much.
        "per_round": [round(figure, 2) for figure in per_round],
        "model": model.name,
    }


# 2. Routing -------------------------------------------------------------------------------


def routing_per_cpu(wiring: Wiring, count: int, ledger: CpuLedger) -> dict[str, Any]:
    """CPU per `route_case` over `count` freshly opened call cases with complete transcripts,
    its own: the push it queues (run eagerly within it) is counted apart.

    The texts are the shipped corpus's Mandarin examples, spread over its categories, so the
    cases land in many departments and some repeat one another (并单 checks them), as a day's
    reports do."""
    examples = [e for e in load_category_examples() if e.locale == "zh-CN"]
    step = max(1, len(examples) // count)
    texts = [examples[(i * step) % len(examples)].text for i in range(count)]
    database = wiring.database
    case_ids = []
    with database.session() as session, session.begin():
        for words in texts:
            case_ids.append(_open_call_case_with_transcript(session, words=words))
    route_case.apply(args=[case_ids[0]])  # warm up: the classifier's first predict
    spent = []
    outcomes: Counter[str] = Counter()
    ledger.reset()
    ledger.counting = True
    for case_id in case_ids[1:]:
        before = ledger.jobs[route_case.name]
        outcomes[route_case.apply(args=[case_id]).get()] += 1
        spent.append(ledger.jobs[route_case.name] - before)
    ledger.counting = False
    pushes = {name: cpu for name, cpu in ledger.jobs.items() if name != route_case.name}
    with database.session() as session:
        statuses = Counter(
            str(status)
            for status in session.scalars(select(Case.status).where(Case.id.in_(case_ids)))
        )
    half = len(spent) // 2
    return {
        "cases": len(spent),
        "cpu_ms_per_case_median": round(statistics.median(spent) * 1000, 2),
        "cpu_ms_per_case_mean": round(statistics.fmean(spent) * 1000, 2),
        # Routing compares a report with the open cases of its category (并单): a rising
        # second half would mean the cost grows with the open cases.
        "cpu_ms_first_half_mean": round(statistics.fmean(spent[:half]) * 1000, 2),
        "cpu_ms_second_half_mean": round(statistics.fmean(spent[half:]) * 1000, 2),
        "cases_per_cpu_second": round(len(spent) / sum(spent), 1),
        "outcomes": dict(outcomes),
        "statuses": dict(statuses),
        "other_jobs_cpu_ms_per_case": {
            name: round(cpu / len(spent) * 1000, 2) for name, cpu in sorted(pushes.items())
        },
    }


def _open_call_case_with_transcript(session: Session, *, words: str) -> int:
    caller = intake.CallerInfo(
        call_sid="CA" + uuid.uuid4().hex,
        account_sid=ACCOUNT_SID,
        from_number=_new_mobile_number(),
        to_number=HOTLINE_NUMBER,
        details={},
    )
    opened = intake.open_case_from_recording(
        session,
        caller=caller,
        locale="zh-CN",
        report=intake.RecordingReport(
            url=f"https://api.twilio.com/recordings/RE{uuid.uuid4().hex}",
            recording_sid="RE" + uuid.uuid4().hex,
            duration=20,
        ),
        region="CN",
    )
    intake.store_transcript(
        session,
        call=intake.get_call(session, call_sid=caller.call_sid),
        source="batch",
        complete=True,
        result=intake.TranscriptText(
            text=words,
            words=[],
            duration_seconds=20.0,
            engine="vosk",
            model="capacity-bench",
            processing_seconds=1.0,
        ),
    )
    return int(opened.case.id)


def _new_mobile_number() -> str:
    return "+86139" + f"{uuid.uuid4().int % 10**8:08d}"


# 3. A whole case's writes -----------------------------------------------------------------


@dataclass
class Life:
    """What one case's whole life wrote."""

    channel: str
    case_number: str
    triaged: bool
    statements: dict[str, int]
    transactions: int
    requests: int  # requests to the app (webhooks, the department's API calls)
    web_cpu: float  # CPU seconds in those requests, jobs left out
    job_cpu: dict[str, float]  # CPU seconds per job, by name
    audio_seconds: float  # the call's recording, as transcribed (0 for a written report)

    @property
    def writes(self) -> int:
        """Write statements (rows, for an executemany) in all."""
        return sum(self.statements.values())


class ShortLifeError(Exception):
    """The report joined an open case (并单), or the knowledge base answered it and closed it
    at once: its life ends there, unlike a case's."""


class CaseLives:
    """Plays whole cases against the app served in this process, its jobs run eagerly."""

    def __init__(
        self,
        app: Flask,
        app_url: str,
        recordings: RecordingServer,
        receiver: WebhookReceiver,
        ledger: CpuLedger,
    ) -> None:
        self.wiring = wiring_of(app)
        self.app_url = app_url
        self.recordings = recordings
        self.receiver = receiver
        self.counter = WriteCounter()
        self.counter.attach(self.wiring.database.engine)
        self.ledger = ledger
        self.http = requests.Session()
        self.api_keys: dict[str, str] = {}

    def emulator(self, caller: str) -> TwilioEmulator:
        """A Twilio for one caller, which waits long for webhooks that run jobs inline."""
        return TwilioEmulator(
            public_base_url=PUBLIC_BASE_URL,
            app_url=self.app_url,
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            recordings=self.recordings,
            from_number=caller,
            to_number=HOTLINE_NUMBER,
            status_callback="/ivr/call-status",
            timeout=WAIT_SECONDS,  # the transcription job runs inside the recording callback
            http=self.http,
        )

    def voice(self) -> Life:
        """A Korean call: menus, the report, recording callbacks, batch transcript, routing,
        the push, the department's accept and resolve (API), the caller's text, the rating."""
        caller = _new_mobile_number()
        emulator = self.emulator(caller)
        with self.counter.window(self.ledger):
            log = emulator.call(["3", "1", Speak(VOICE_CLIP.read_bytes())])
            number = self._case_number(lambda s: _case_of_call(s, log.call_sid))
            triaged = self._finish(emulator, caller, number)
        return self._life("voice", number, triaged)

    def sms(self, words: str) -> Life:
        """A texted report: the text, routing, the push, accept, resolve, the text back, the
        rating."""
        caller = _new_mobile_number()
        emulator = self.emulator(caller)
        with self.counter.window(self.ledger):
            answer = emulator.post("/ivr/sms", _sms_form(caller, words))
            if answer.status_code != 200:
                raise SystemExit(f"measurement void: /ivr/sms answered {answer.status_code}")
            number = self._case_number(lambda s: _latest_written_case(s, caller))
            triaged = self._finish(emulator, caller, number)
        return self._life("sms", number, triaged)

    def _life(self, channel: str, number: str, triaged: bool) -> Life:
        return Life(
            channel=channel,
            case_number=number,
            triaged=triaged,
            statements=dict(self.counter.statements),
            transactions=self.counter.transactions,
            requests=self.ledger.requests,
            web_cpu=self.ledger.web,
            job_cpu=dict(self.ledger.jobs),
            audio_seconds=self._audio_seconds(number),
        )

    def _audio_seconds(self, number: str) -> float:
        with self.wiring.database.session() as session:
            seconds = session.scalars(
                select(Transcript.duration_seconds)
                .join(Case, Transcript.case_id == Case.id)
                .where(Case.number == number)
            ).first()
            return float(seconds or 0.0)

    def _case_number(self, find: Callable[[Session], str | None]) -> str:
        def found() -> str | None:
            self.wiring.database.group_commit.flush()
            with self.wiring.database.session() as session:
                return find(session)

        return wait_for(found, what="the case to open")

    def _finish(self, emulator: TwilioEmulator, caller: str, number: str) -> bool:
        """Routed (or triaged by the desk), pushed, accepted, resolved, texted, rated."""
        database = self.wiring.database
        wait_for(lambda: self._case(number).routed_at is not None, what="routing")
        triaged = self._case(number).status == CaseStatus.TRIAGE
        if triaged:  # not confident: a dispatcher triages it, as at the desk
            with database.session() as session, session.begin():
                held = session.scalars(select(Case).where(Case.number == number)).one()
                category = session.get_one(Category, "streetlight")
                lifecycle.triage(
                    session,
                    case=held,
                    actor=Actor(name="capacity-dispatcher", role=Role.DISPATCHER),
                    category_code="streetlight",
                    department_code="urban_mgmt",
                    urgency="normal",
                    deadline_at=self.wiring.router.deadline_for(
                        category=category, urgency="normal", start=utcnow()
                    ),
                )
        case = self._case(number)
        if case.status in (CaseStatus.MERGED, CaseStatus.CLOSED):
            raise ShortLifeError(number)
        if case.status != CaseStatus.ASSIGNED or case.department_code is None:
            raise SystemExit(f"measurement void: case {number} is {case.status}, not assigned")
        holder = case.department_code
        wait_for(
            lambda: [
                push
                for push in self.receiver.accepted_for(number)
                if push.document["case"]["department"] == holder
            ],
            what="the push to the department",
        )
        headers = {"Authorization": f"Bearer {self.api_keys[holder]}"}
        for action, body in (("accept", None), ("resolve", {"reply": REPLY})):
            answer = self.http.post(
                f"{self.app_url}/api/v1/cases/{number}/{action}",
                json=body,
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                timeout=WAIT_SECONDS,
            )
            if answer.status_code != 200:
                raise SystemExit(f"measurement void: {action} answered {answer.status_code}")
        rating = emulator.post("/ivr/sms", _sms_form(caller, "5"))
        if rating.status_code != 200:
            raise SystemExit(f"measurement void: the rating answered {rating.status_code}")
        wait_for(lambda: self._case(number).status == CaseStatus.CLOSED, what="the rating")
        database.group_commit.flush()
        return triaged

    def _case(self, number: str) -> Case:
        with self.wiring.database.session() as session:
            return session.scalars(select(Case).where(Case.number == number)).one()


def _case_of_call(session: Session, call_sid: str) -> str | None:
    number: str | None = session.scalars(
        select(Case.number).join(Call, Case.call_id == Call.id).where(Call.call_sid == call_sid)
    ).one_or_none()
    return number


def _latest_written_case(session: Session, caller: str) -> str | None:
    number: str | None = session.scalars(
        select(Case.number)
        .where(Case.caller_number == caller, Case.intake == Intake.SMS)
        .order_by(Case.id.desc())
        .limit(1)
    ).first()
    return number


def _sms_form(caller: str, body: str) -> dict[str, str]:
    message_sid = "SM" + uuid.uuid4().hex
    return {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": HOTLINE_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


# Bytes per case ---------------------------------------------------------------------------


def database_bytes(engine: Engine) -> int:
    """The database's size: every table with its indexes and TOAST on PostgreSQL; the pages
    in use on SQLite (after a checkpoint, free pages left out)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    text(
                        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')"
                    )
                )
                or 0
            )
    # The driver's own connection, outside any transaction: a checkpoint inside one fails.
    raw = engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        pages, free, size = (
            driver.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
    finally:
        raw.close()
    return int((pages - free) * size)


def per_table_writes(lives: list[Life]) -> dict[str, float]:
    """Write statements per case by statement and table, averaged over `lives`."""
    total: Counter[str] = Counter()
    for life in lives:
        total.update(life.statements)
    return {key: round(count / len(lives), 2) for key, count in sorted(total.items())}


def summarise_lives(lives: list[Life], repeats: int, grown: int) -> dict[str, Any]:
    """Writes, transactions and bytes per case for one channel (`repeats`: reports that joined
    an open case or were answered at once, whose rows are in `grown` too)."""
    return {
        "cases": len(lives),
        "short_lives": repeats,  # joined an open case, or answered and closed at once
        "triaged_by_desk": sum(life.triaged for life in lives),
        "writes_per_case": round(statistics.fmean(life.writes for life in lives), 1),
        "writes_min_max": [min(life.writes for life in lives), max(life.writes for life in lives)],
        "transactions_per_case": round(statistics.fmean(life.transactions for life in lives), 1),
        "bytes_per_case": round(grown / (len(lives) + repeats)),
        "requests_per_case": round(statistics.fmean(life.requests for life in lives), 1),
        "audio_seconds_per_case": round(statistics.fmean(life.audio_seconds for life in lives), 1),
        "web_cpu_ms_per_case": round(statistics.fmean(life.web_cpu for life in lives) * 1000, 1),
        "job_cpu_ms_per_case": {
            name: round(sum(life.job_cpu.get(name, 0.0) for life in lives) / len(lives) * 1000, 1)
            for name in sorted({name for life in lives for name in life.job_cpu})
        },
        "writes_by_table": per_table_writes(lives),
    }


# The run ----------------------------------------------------------------------------------


def environment(instance: Path, prism_url: str) -> dict[str, str]:
    """The service's environment; DATABASE_URL passes through (default: SQLite in `instance`)."""
    return {
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance),
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'bench.sqlite'}",
        # Jobs run eagerly: the broker is never used, but the app wants one named.
        "BROKER_URL": f"sqla+sqlite:///{instance / 'broker.sqlite'}",
        "SECRET_KEY": "capacity-bench",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": prism_url,
        "HOTLINE_ENABLED_LOCALES": "zh-CN,en-US,ko-KR",
        "LOG_LEVEL": "WARNING",
    }


def configure_departments(wiring: Wiring, push_url: str | None) -> dict[str, str]:
    """Every department that can hold a case pushes to `push_url`, with an API key for each;
    with None, none pushes anywhere (a database kept from an earlier run may still name a
    receiver that is gone, and eager jobs retry a refused push without end)."""
    keys = {}
    with wiring.database.session() as session, session.begin():
        for code in session.scalars(select(Department.code)).all():
            if code in COPIES_ONLY:
                continue
            staff.set_department_channels(
                session,
                code=code,
                webhook_url=push_url or "",
                webhook_secret=PUSH_SECRET if push_url else "",
            )
            if push_url:
                keys[code] = staff.issue_api_key(session, code=code)
    return keys


def measure(args: argparse.Namespace, instance: Path, prism_url: str) -> dict[str, Any]:
    """The app in this process, then the three measurements in turn."""
    app = create_app(environment(instance, prism_url))
    result = app.test_cli_runner().invoke(args=["init"])
    if result.exit_code != 0:
        raise SystemExit(f"flask init failed: {result.output}")
    wiring = wiring_of(app)
    # Jobs run inside the request or call that queues them: their writes are the case's, and
    # no worker process has to be measured apart.
    wiring.celery.conf.task_always_eager = True
    # Calls are transcribed by the batch job (live decoding is measured in transcription.py).
    wiring.call_flow.live = None
    engine = wiring.database.engine
    figures: dict[str, Any] = {"database": engine.dialect.name}
    configure_departments(wiring, None)

    print(f"1. batch transcription, {len(BATCH_NAMES)} Korean 8 kHz fixtures × {args.rounds}:")
    figures["batch"] = batch = batch_audio_per_cpu(wiring, args.rounds)
    print(
        f"   {batch['audio_seconds']} s of audio in {batch['cpu_seconds']} CPU s:"
        f" {batch['audio_seconds_per_cpu_second']} audio s per CPU s (rounds {batch['per_round']})"
    )

    print(f"2. route_case over {args.cases} fresh call cases with transcripts:")
    size_before = database_bytes(engine)
    ledger = CpuLedger()
    figures["routing"] = routing = routing_per_cpu(wiring, args.cases, ledger)
    sys.stdout.flush()
    routing["bytes_per_case_routed_only"] = round(
        (database_bytes(engine) - size_before) / args.cases
    )
    print(
        f"   {routing['cpu_ms_per_case_median']} ms CPU per case (median; means, first half"
        f" {routing['cpu_ms_first_half_mean']}, second {routing['cpu_ms_second_half_mean']}):"
        f" {routing['cases_per_cpu_second']} cases per CPU s; {routing['statuses']}"
    )

    print(f"3. whole cases, {args.lives} voice and {args.lives} SMS, writes counted:")
    server = make_server("127.0.0.1", 0, ledger.wsgi(app), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Texts the routing step did not use, though a few still repeat an open case (并单).
    sms_texts = iter([e.text for e in load_category_examples() if e.locale == "zh-CN"][1::7])
    try:
        with (
            RecordingServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as recordings,
            WebhookReceiver(secret=PUSH_SECRET) as receiver,
        ):
            lives = CaseLives(
                app, f"http://127.0.0.1:{server.server_port}", recordings, receiver, ledger
            )
            lives.api_keys = configure_departments(wiring, receiver.url)
            for channel in ("voice", "sms"):
                size_before = database_bytes(engine)
                played: list[Life] = []
                repeats = 0
                while len(played) < args.lives:
                    try:
                        played.append(
                            lives.voice() if channel == "voice" else lives.sms(next(sms_texts))
                        )
                    except ShortLifeError:
                        repeats += 1  # its rows are in the size: it counts as a case there
                figures[channel] = summary = summarise_lives(
                    played, repeats, database_bytes(engine) - size_before
                )
                print(
                    f"   {channel:<5} {summary['writes_per_case']} writes per case"
                    f" (min/max {summary['writes_min_max']}),"
                    f" {summary['transactions_per_case']} transactions,"
                    f" {summary['bytes_per_case']} bytes; desk triaged"
                    f" {summary['triaged_by_desk']} of {summary['cases']}"
                )
                print(
                    f"         {summary['audio_seconds_per_case']} s of audio,"
                    f" {summary['requests_per_case']} requests,"
                    f" {summary['web_cpu_ms_per_case']} ms CPU in them; jobs' CPU (ms)"
                    f" {summary['job_cpu_ms_per_case']}"
                )
    finally:
        configure_departments(wiring, None)
        server.shutdown()
        wiring.database.dispose()
    return figures


def print_table(figures: dict[str, Any]) -> None:
    """The per-core figures, one line each."""
    batch, routing = figures["batch"], figures["routing"]
    voice, sms = figures["voice"], figures["sms"]
    rows = [
        ("batch audio seconds per CPU second", f"{batch['audio_seconds_per_cpu_second']}"),
        ("cases routed per CPU second", f"{routing['cases_per_cpu_second']}"),
        ("database writes per voice case", f"{voice['writes_per_case']}"),
        ("database writes per SMS case", f"{sms['writes_per_case']}"),
        (
            "transactions per voice / SMS case",
            f"{voice['transactions_per_case']} / {sms['transactions_per_case']}",
        ),
        ("bytes per voice / SMS case", f"{voice['bytes_per_case']} / {sms['bytes_per_case']}"),
        (
            "requests per voice / SMS case",
            f"{voice['requests_per_case']} / {sms['requests_per_case']}",
        ),
        (
            "web CPU ms per voice / SMS case",
            f"{voice['web_cpu_ms_per_case']} / {sms['web_cpu_ms_per_case']}",
        ),
    ]
    print(f"\nper core, {figures['database']}:")
    for label, value in rows:
        print(f"  {label:<36} {value}")
    print("\nwrites per voice case by table:")
    for key, count in voice["writes_by_table"].items():
        print(f"  {count:>6}  {key}")


def main() -> int:
    """Measure, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, about two minutes")
    parser.add_argument("--cases", type=int, help="cases to route (default 400, quick 100)")
    parser.add_argument("--lives", type=int, help="whole cases per channel (default 10, quick 2)")
    parser.add_argument("--rounds", type=int, help="batch rounds over the fixtures (3, quick 1)")
    args = parser.parse_args()
    args.cases = args.cases or (100 if args.quick else 400)
    args.lives = args.lives or (2 if args.quick else 10)
    args.rounds = args.rounds or (1 if args.quick else 3)
    logging.disable(logging.WARNING)  # the app logs every step; the figures are what count

    prism, prism_url = start_prism()
    # Stopped with SIGTERM (timeout, kill): stop Prism too, through the `finally` below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    try:
        with tempfile.TemporaryDirectory(prefix="capacity-bench-") as instance:
            figures = measure(args, Path(instance), prism_url)
    finally:
        prism.terminate()
        prism.wait(timeout=10)
    figures["when"] = datetime.now(UTC).isoformat(timespec="seconds")
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.node()}"
    print_table(figures)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")
    print(f"\nfigures in {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
