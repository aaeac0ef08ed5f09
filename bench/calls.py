"""Whole calls at once: does every caller get a case, their number, a transcript, a route, a push
to the department and a text, none twice, and how soon after hanging up?

Starts the service through the Makefile, as `make run` starts it (`make serve`: web, streams,
worker and beat on the embedded SQLite database and broker) or, with `--scaled`, as
`make run-scaled` does (`make serve-scaled`: two web and two worker processes, on the
PostgreSQL and Redis that DATABASE_URL and BROKER_URL name). Then it places `--calls` Korean
calls at the same moment with the Twilio emulator: greeting, 3 (Korean), 1 (report), about
`--seconds` of speech streamed in real time over a Media Stream while <Record> runs, #, and the
number read back. Every handling department pushes to a signed-webhook receiver run here, and
callers' texts go to a stand-in for Twilio's Messages API run here too (TWILIO_API_BASE_URL).

Twilio calls one URL; with two web processes the emulator sends each webhook to the next web
in turn (`BalancedSession`), as a round-robin load balancer would: one call's steps land on
both, so nothing may live in one process's memory, and no proxy hop adds its own latency.

It prints a table and writes bench/results/calls.json. A call is lost when, at the end of the
settle window, it lacks a case, its number read back, a complete transcript, a route, an
acknowledged push or a text; duplicated when it has two of any. Exit 1 when a call is lost or
duplicated, a webhook answered 5xx or a call failed; a missed latency goal is only reported.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != HERE)]

from cases import staff  # noqa: E402
from cases.locales import LOCALES  # noqa: E402
from cases.models import (  # noqa: E402
    Call,
    Case,
    CaseEvent,
    Delivery,
    DeliveryStatus,
    Department,
    Transcript,
)
from delivery.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature  # noqa: E402
from emulator import MediaStream, RecordingServer, Speak, TwilioEmulator  # noqa: E402
from hotline.config import CONFIG_DIR, load_settings  # noqa: E402
from ivr.prompts import load_prompts  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "calls.json"
AUDIO = ROOT / "tests" / "fixtures" / "audio"
SPOKEN = ["ko_streetlight", "ko_water", "ko_garbage", "ko_road", "ko_parking", "ko_noise"]
PUBLIC_BASE_URL = "https://hotline.load.test"
ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "load-auth-token-0123456789abcdef"
PUSH_SECRET = "load-department-secret"
# Leadership only gets copies of pressing cases; every other department can hold one.
COPIES_ONLY = ("leadership",)
TWILIO_WEBHOOK_BUDGET = 15.0
PUSHED_P95_GOAL = 2.0  # seconds from hang-up to push, for calls decoded live


def report_wav(seconds: float, offset: int = 0) -> bytes:
    """About `seconds` of Korean speech: the 8 kHz fixtures, joined, starting at `offset`."""
    frames: list[bytes] = []
    total, index = 0.0, offset
    while total < seconds:
        with wave.open(str(AUDIO / f"{SPOKEN[index % len(SPOKEN)]}.wav"), "rb") as reader:
            frames.append(reader.readframes(reader.getnframes()))
            total += reader.getnframes() / reader.getframerate()
        index += 1
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(8000)
        writer.writeframes(b"".join(frames))
    return out.getvalue()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# --- What the service sends out: pushes and texts, received here --------------------------------


@dataclass(frozen=True)
class Push:
    """One push that reached the department receiver."""

    delivery_id: str
    event: str
    case_number: str
    signature_valid: bool
    received_at: float  # time.time()


@dataclass(frozen=True)
class Text:
    """One text the service asked Twilio to send."""

    to: str
    body: str
    received_at: float


class _Receiver:
    """A local HTTP server on its own thread; subclasses answer POSTs and keep what came."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:port"""
        return f"http://127.0.0.1:{self._server.server_port}"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """The status and JSON body for one POST."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                """Hand the request to the receiver and send its answer."""
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = receiver.answer(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


class PushReceiver(_Receiver):
    """The departments' signed-webhook endpoint (DESIGN.md, contract 6): 200 to a push signed
    with the secret, 401 to any other."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.pushes: list[Push] = []

    @property
    def url(self) -> str:
        """What the departments' webhook is set to."""
        return f"{self.base_url}/hotline/push"

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Check the signature and keep the push."""
        valid = verify_signature(self.secret, headers.get(SIGNATURE_HEADER), body)
        document = json.loads(body) if valid else {}
        push = Push(
            delivery_id=headers.get(DELIVERY_HEADER, ""),
            event=str(document.get("event", "")),
            case_number=str((document.get("case") or {}).get("number", "")),
            signature_valid=valid,
            received_at=time.time(),
        )
        with self.lock:
            self.pushes.append(push)
        return (200 if valid else 401), json.dumps({"received": push.delivery_id}).encode()

    def accepted(self) -> list[Push]:
        """The well-signed pushes, in arrival order."""
        with self.lock:
            return [push for push in self.pushes if push.signature_valid]


class TwilioMessages(_Receiver):
    """Twilio's "create a Message" (POST /2010-04-01/Accounts/{Sid}/Messages.json), answered
    with the documented Message resource; Prism does the same from Twilio's OpenAPI file, too
    slowly for a hundred texts at once."""

    PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Messages\.json$")

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[Text] = []

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """Keep the text and answer 201 with its Message resource."""
        matched = self.PATH.match(urlsplit(path).path)
        form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
        if matched is None or not form.get("To") or not form.get("Body"):
            error = {"code": 21604, "message": "A 'To' and a 'Body' are required", "status": 400}
            return 400, json.dumps(error).encode()
        with self.lock:
            self.texts.append(Text(to=form["To"], body=form["Body"], received_at=time.time()))
            sid = f"SM{len(self.texts):032x}"
        now = formatdate(usegmt=True)
        message: dict[str, Any] = {
            "account_sid": matched.group(1),
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {},
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{matched.group(1)}/Messages/{sid}.json",
        }
        return 201, json.dumps(message).encode()

    def received(self) -> list[Text]:
        """Every text, in arrival order."""
        with self.lock:
            return list(self.texts)


# --- The service's processes, as the Makefile starts them ---------------------------------------


class Process:
    """A child process with its output in a file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logdir: Path) -> None:
        self.name, self.log_path = name, logdir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def wait_for(self, text: str, timeout: float = 90.0) -> None:
        """Return once `text` is in the log; raise with the log if the process dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start:\n{self.log_text()[-3000:]}")

    def log_text(self) -> str:
        """Everything it printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# honcho announces each process it starts: "web.1 started (pid=1234)".
_STARTED = re.compile(r"\b(\w+)\.(\d+) started \(pid=(\d+)\)")
# What each worker kind and beat log once they are up (web and streams are asked over a port).
_READY_MARKERS = {"worker": "ready.", "transcriber": "ready.", "beat": "beat: Starting..."}


class Formation:
    """The service's processes as `make serve` (or `make serve-scaled`) starts them under
    honcho: web.N listens on PORT+N-1 (honcho's numbering), streams on STREAMS_PORT."""

    def __init__(
        self, target: str, env: dict[str, str], logdir: Path, *, formation: str | None = None
    ) -> None:
        self.port, self.streams_port = free_port(), free_port()
        while _listening(self.port + 1) or self.port + 1 == self.streams_port:
            self.port = free_port()  # web.2 takes the next port: it must be free too
        command = ["make", "--no-print-directory", target, f"METRICS_DIR={logdir / 'metrics'}"]
        if formation:
            command.append(f"FORMATION={formation}")
        self.make = Process(
            "formation",
            command,
            {**env, "PORT": str(self.port), "STREAMS_PORT": str(self.streams_port)},
            logdir,
        )

    def processes(self) -> dict[str, int]:
        """What honcho started so far: pid by name (web.1, worker.2...)."""
        found = _STARTED.findall(self.make.log_text())
        return {f"{kind}.{n}": int(pid) for kind, n, pid in found}

    @property
    def web_urls(self) -> list[str]:
        """Each web process's base URL."""
        webs = sorted(int(name.split(".")[1]) for name in self.processes() if name[:4] == "web.")
        return [f"http://127.0.0.1:{self.port + n - 1}" for n in webs]

    @property
    def streams_url(self) -> str:
        """The Media Streams process's ws:// base."""
        return f"ws://127.0.0.1:{self.streams_port}"

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Return once every web and the streams process accept connections and every worker
        and beat have said they are up; raise with honcho's log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.make.proc.poll() is None:
            if self._ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"the formation did not start:\n{self.make.log_text()[-4000:]}")

    def _ready(self) -> bool:
        names = self.processes()
        if not names:
            return False
        log = self.make.log_text()
        for name in names:
            kind, n = name.split(".")
            if kind == "web" and not _listening(self.port + int(n) - 1):
                return False
            if kind == "streams" and not _listening(self.streams_port):
                return False
            marker = _READY_MARKERS.get(kind)
            if marker and not re.search(
                rf"^\S+ {re.escape(name)}\s+\|.*{re.escape(marker)}", log, re.M
            ):
                return False
        return True

    def stop(self) -> None:
        """SIGTERM to honcho, which passes it on to its processes and exits, and make after
        it (each reaping its child); SIGKILL to whatever still runs a minute later."""
        children = self.processes()
        honcho = _honcho_below(self.make.proc.pid)
        if honcho is not None:
            os.kill(honcho, signal.SIGTERM)
        elif self.make.proc.poll() is None:
            os.killpg(self.make.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        for pid in children.values():
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)  # honcho starts each in a session of its own
        try:
            self.make.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(self.make.proc.pid, signal.SIGKILL)
            self.make.proc.wait()

    def running(self) -> list[str]:
        """The names of the processes honcho started that still run."""
        return sorted(name for name, pid in self.processes().items() if _alive(pid))

    def log_text(self) -> str:
        """honcho's output: every process's lines, prefixed with its name."""
        return self.make.log_text()


def _honcho_below(pid: int) -> int | None:
    """The honcho manager among `pid`'s descendants (make runs it through a shell), if any."""
    todo = [pid]
    while todo:
        current = todo.pop(0)
        try:
            command = Path(f"/proc/{current}/cmdline").read_bytes().split(b"\0")
            found = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        if current != pid and any(part.endswith(b"honcho") for part in command):
            return current
        todo.extend(int(child) for child in found)
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- Placing the calls ---------------------------------------------------------------------------


class BalancedSession(requests.Session):
    """The emulator's HTTP: each webhook goes to the next web process in turn (a round-robin
    load balancer), and its path, status and latency are noted."""

    def __init__(self, webs: list[str], turn: itertools.cycle[str], lock: threading.Lock) -> None:
        super().__init__()
        self.webs, self.turn, self.turn_lock = webs, turn, lock
        self.timings: list[tuple[str, int, float]] = []  # (path, status, seconds)

    def post(self, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """POST to the next web process."""
        url = url if isinstance(url, str) else url.decode()
        if url.startswith(self.webs[0]):
            with self.turn_lock:
                url = next(self.turn) + url[len(self.webs[0]) :]
        started, status = time.perf_counter(), 0
        try:
            response = super().post(url, *args, **kwargs)
            status = response.status_code
            return response
        finally:
            self.timings.append((urlsplit(url).path, status, time.perf_counter() - started))


class StopNotingEmulator(TwilioEmulator):
    """The emulator, noting (time.time()) when each call's stream sends `stop`: the caller has
    finished the report, and the answer to <Record>'s action hangs the stream up."""

    def __init__(self, *, stopped: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stopped = stopped

    def open_stream(self, call_sid: str, stream: dict[str, Any]) -> MediaStream:
        """Open the stream as usual, its stop() wrapped to note the time first."""
        media = super().open_stream(call_sid, stream)
        send_stop = media.stop

        def stop(sid: str, account_sid: str) -> None:
            self.stopped.setdefault(sid, time.time())
            send_stop(sid, account_sid)

        media.stop = stop  # type: ignore[method-assign,assignment]
        return media


@dataclass
class CallOutcome:
    """One placed call, as the caller lived it."""

    call_sid: str
    caller: str
    error: str = ""
    streams: int = 0
    seconds: float = 0.0
    stopped_at: float | None = None  # time.time() of the stream's stop: the hang-up here
    heard: list[str] = field(default_factory=list)
    timings: list[tuple[str, int, float]] = field(default_factory=list)


def place_calls(
    *,
    count: int,
    seconds: float,
    webs: list[str],
    streams_url: str,
    recordings: RecordingServer,
    public_base_url: str,
    auth_token: str,
    account_sid: str,
) -> list[CallOutcome]:
    """Place `count` streamed report calls at the same moment (one thread each), their
    webhooks spread over `webs` in turn; their outcomes."""
    wavs = [report_wav(seconds, offset) for offset in range(len(SPOKEN))]
    barrier = threading.Barrier(count)
    turn, turn_lock = itertools.cycle(webs), threading.Lock()
    stopped: dict[str, float] = {}
    run = int(time.time()) % 10_000  # callers' numbers differ from run to run on one database
    outcomes = [CallOutcome(call_sid="", caller=f"+86139{run:04d}{n:04d}") for n in range(count)]

    def call(index: int) -> None:
        http = BalancedSession(webs, turn, turn_lock)
        outcome = outcomes[index]
        emulator = StopNotingEmulator(
            stopped=stopped,
            public_base_url=public_base_url,
            app_url=webs[0],
            streams_url=streams_url,
            auth_token=auth_token,
            account_sid=account_sid,
            recordings=recordings,
            from_number=outcome.caller,
            http=http,
            stream_speed=1.0,  # the caller talks in real time: the socket stays open as long
        )
        outcome.call_sid = emulator.new_call_sid()
        barrier.wait()
        started = time.monotonic()
        try:
            log = emulator.call(
                ["3", "1", Speak(wavs[index % len(wavs)])], call_sid=outcome.call_sid
            )
            outcome.streams = len(log.streams)
            outcome.heard = [spoken.text for spoken in log.said]
        except Exception as error:  # a failed call is a figure, not a crash
            outcome.error = f"{type(error).__name__}: {error}"[:300]
        finally:
            outcome.seconds = time.monotonic() - started
            outcome.timings = http.timings
            outcome.stopped_at = stopped.get(outcome.call_sid)
            http.close()

    threads = [threading.Thread(target=call, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


# --- What became of each call -------------------------------------------------------------------


@dataclass
class Fate:
    """What the database and the receivers hold for one call."""

    cases: int = 0
    number: str | None = None
    followed_number: str | None = None  # the case it joined (并单), else its own number
    merged: bool = False
    read_back: bool = False
    transcripts: int = 0
    source: str | None = None  # "live" or "batch"
    transcribed_at: float | None = None
    routed: int = 0  # "routed" events
    routed_at: float | None = None
    pushes: int = 0  # distinct delivery ids of the department's "assigned" push
    push_repeats: int = 0  # the same delivery id again (at least once: not a duplicate)
    pushed_at: float | None = None
    texts: int = 0
    text_has_number: bool = False

    @property
    def lacks(self) -> list[str]:
        """What the call is still missing."""
        wanted = {
            "case": self.cases >= 1,
            "number read back": self.read_back,
            "transcript": self.transcripts >= 1,
            "routed": self.routed >= 1,
            "pushed": self.pushes >= 1,
            "SMS": self.texts >= 1 and self.text_has_number,
        }
        return [what for what, there in wanted.items() if not there]

    @property
    def doubles(self) -> list[str]:
        """What the call has more than one of."""
        counts = {
            "case": self.cases,
            "transcript": self.transcripts,
            "routed": self.routed,
            "pushed": self.pushes,
            "SMS": self.texts,
        }
        return [what for what, count in counts.items() if count > 1]


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def read_fates(
    database_url: str,
    outcomes: list[CallOutcome],
    pushes: list[Push],
    texts: list[Text],
) -> dict[str, Fate]:
    """Each call's fate, by CallSid."""
    digits = load_prompts(CONFIG_DIR / "prompts", LOCALES)["ko-KR"].digits
    sids = [outcome.call_sid for outcome in outcomes]
    fates = {sid: Fate() for sid in sids}
    engine = create_engine(load_settings({"DATABASE_URL": database_url}).database_url)
    try:
        with Session(engine) as session:
            cases = session.execute(
                select(Call.call_sid, Case.id, Case.number, Case.routed_at, Case.merged_into_id)
                .join(Case, Case.call_id == Call.id)
                .where(Call.call_sid.in_(sids))
            ).all()
            joined_ids = {row.merged_into_id for row in cases if row.merged_into_id}
            joined = dict(
                session.execute(select(Case.id, Case.number).where(Case.id.in_(joined_ids))).all()
            )
            # The case a report joined may be older than this run, and pushed to an earlier
            # run's receiver: the outbox says whether its department had it.
            joined_pushes = dict(
                session.execute(
                    select(Case.number, func.count(Delivery.id))
                    .join(Delivery, Delivery.case_id == Case.id)
                    .where(
                        Case.id.in_(joined_ids),
                        Delivery.topic == "assigned",
                        Delivery.recipient == Case.department_code,
                        Delivery.status == DeliveryStatus.DELIVERED,
                    )
                    .group_by(Case.number)
                ).all()
            )
            routed_events = dict(
                session.execute(
                    select(CaseEvent.case_id, func.count(CaseEvent.id))
                    .where(CaseEvent.case_id.in_([row.id for row in cases]))
                    .where(CaseEvent.kind == "routed")
                    .group_by(CaseEvent.case_id)
                ).all()
            )
            transcripts = session.execute(
                select(Call.call_sid, Transcript.source, Transcript.updated_at)
                .join(Call, Transcript.call_id == Call.id)
                .where(Call.call_sid.in_(sids), Transcript.complete)
            ).all()
    finally:
        engine.dispose()
    for row in cases:
        fate = fates[row.call_sid]
        fate.cases += 1
        fate.number = row.number
        fate.merged = row.merged_into_id is not None
        fate.followed_number = joined.get(row.merged_into_id, row.number)
        fate.routed += int(routed_events.get(row.id, 0))
        fate.routed_at = _epoch(row.routed_at)
    for call_sid, source, updated_at in transcripts:
        fate = fates[call_sid]
        fate.transcripts += 1
        fate.source, fate.transcribed_at = source, _epoch(updated_at)
    assigned: dict[str, list[Push]] = {}
    for push in pushes:
        if push.event == "assigned":
            assigned.setdefault(push.case_number, []).append(push)
    by_caller: dict[str, list[Text]] = {}
    for text in texts:
        by_caller.setdefault(text.to, []).append(text)
    for outcome in outcomes:
        fate = fates[outcome.call_sid]
        if fate.number:
            fate.read_back = any(digits(fate.number) in heard for heard in outcome.heard)
            # A report that joined an open case (并单) is not pushed again: its department
            # has the case it joined, whose push stands for both.
            received = assigned.get(fate.followed_number or fate.number, [])
            fate.pushes = len({push.delivery_id for push in received})
            fate.push_repeats = len(received) - fate.pushes
            if fate.merged and not received:
                fate.pushes = int(joined_pushes.get(fate.followed_number or "", 0))
            if not fate.merged:  # the push it shares came when the case it joined was opened
                fate.pushed_at = min((push.received_at for push in received), default=None)
        sent = by_caller.get(outcome.caller, [])
        fate.texts = len(sent)
        number = fate.number or ""
        fate.text_has_number = bool(number) and any(number in text.body for text in sent)
    return fates


def settle(
    database_url: str,
    outcomes: list[CallOutcome],
    pushes: PushReceiver,
    texts: TwilioMessages,
    *,
    timeout: float,
) -> dict[str, Fate]:
    """Wait (up to `timeout`) until no placed call lacks anything; then, a moment later, so
    that a late duplicate is counted, each call's fate."""
    deadline = time.monotonic() + timeout
    while True:
        fates = read_fates(database_url, outcomes, pushes.accepted(), texts.received())
        if all(not fate.lacks for fate in fates.values()) or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    time.sleep(2.0)
    return read_fates(database_url, outcomes, pushes.accepted(), texts.received())


def _quantiles(values: list[float]) -> dict[str, float | int | None]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0, "p50": None, "p95": None, "max": None}

    def q(fraction: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)

    return {"n": len(ordered), "p50": q(0.5), "p95": q(0.95), "max": round(ordered[-1], 2)}


def summarise(outcomes: list[CallOutcome], fates: dict[str, Fate]) -> dict[str, Any]:
    """The figures: what each call got, what was lost or doubled, the webhooks, the delays."""
    rows = [(outcome, fates[outcome.call_sid]) for outcome in outcomes]
    latencies = [seconds for outcome in outcomes for _, _, seconds in outcome.timings]
    per_path: dict[str, list[float]] = {}
    for outcome in outcomes:
        for path, _, seconds in outcome.timings:
            per_path.setdefault(path, []).append(seconds)
    statuses = Counter(status for outcome in outcomes for _, status, _ in outcome.timings)
    lost = {o.call_sid: fate.lacks for o, fate in rows if fate.lacks}
    doubled = {o.call_sid: fate.doubles for o, fate in rows if fate.doubles}

    def delays(attribute: str, source: str) -> dict[str, float | int | None]:
        return _quantiles(
            [
                getattr(fate, attribute) - outcome.stopped_at
                for outcome, fate in rows
                if fate.source == source
                and outcome.stopped_at is not None
                and getattr(fate, attribute) is not None
            ]
        )

    return {
        "calls_placed": len(outcomes),
        "calls_completed": sum(not outcome.error for outcome in outcomes),
        "call_errors": sorted({outcome.error for outcome in outcomes if outcome.error})[:5],
        "streams_opened": sum(outcome.streams for outcome in outcomes),
        "cases_opened": sum(fate.cases >= 1 for _, fate in rows),
        "numbers_read_back": sum(fate.read_back for _, fate in rows),
        "transcripts_stored": sum(fate.transcripts >= 1 for _, fate in rows),
        "transcribed_live": sum(fate.source == "live" for _, fate in rows),
        "transcribed_batch": sum(fate.source == "batch" for _, fate in rows),
        "cases_routed": sum(fate.routed >= 1 for _, fate in rows),
        "merged_into_another": sum(fate.merged for _, fate in rows),
        "pushes_delivered": sum(fate.pushes >= 1 for _, fate in rows),
        "push_repeats": sum(fate.push_repeats for _, fate in rows),
        "sms_sent": sum(fate.texts >= 1 and fate.text_has_number for _, fate in rows),
        "lost": len(lost),
        "lost_what": dict(Counter(what for lacks in lost.values() for what in lacks)),
        "duplicated": len(doubled),
        "duplicated_what": dict(Counter(what for ds in doubled.values() for what in ds)),
        "webhooks": len(latencies),
        "webhooks_5xx": sum(count for status, count in statuses.items() if status >= 500),
        "webhooks_failed": statuses.get(0, 0),  # no answer at all (timeout, refused)
        "webhooks_over_15s": sum(seconds > TWILIO_WEBHOOK_BUDGET for seconds in latencies),
        "webhook": _quantiles(latencies),
        "webhook_max_per_path_s": {path: round(max(v), 2) for path, v in sorted(per_path.items())},
        "call_seconds_median": round(statistics.median(o.seconds for o in outcomes), 1),
        "hangup_to_transcript": {s: delays("transcribed_at", s) for s in ("live", "batch")},
        "hangup_to_routed": {s: delays("routed_at", s) for s in ("live", "batch")},
        "hangup_to_pushed": {s: delays("pushed_at", s) for s in ("live", "batch")},
        "lost_calls": dict(list(lost.items())[:5]),
        "duplicated_calls": dict(list(doubled.items())[:5]),
    }


def failed(summary: dict[str, Any]) -> bool:
    """Whether the run failed: a call lost, doubled or broken, or a webhook answered 5xx."""
    return bool(
        summary["lost"]
        or summary["duplicated"]
        or summary["webhooks_5xx"]
        or summary["webhooks_failed"]
        or summary["call_errors"]
    )


def table(summary: dict[str, Any]) -> str:
    """The run as a Markdown table."""

    def delay(name: str, source: str) -> str:
        q = summary[name][source]
        return "—" if not q["n"] else f"{q['p50']} / {q['p95']} / {q['max']} s (n={q['n']})"

    rows = [
        ("calls placed", summary["calls_placed"]),
        ("cases opened", summary["cases_opened"]),
        ("numbers read back", summary["numbers_read_back"]),
        (
            "transcripts stored (live + batch)",
            f"{summary['transcripts_stored']} ({summary['transcribed_live']} + "
            f"{summary['transcribed_batch']})",
        ),
        ("cases routed", summary["cases_routed"]),
        ("pushes delivered", summary["pushes_delivered"]),
        ("SMS sent", summary["sms_sent"]),
        ("lost / duplicated", f"{summary['lost']} / {summary['duplicated']}"),
        ("5xx answers (of webhooks)", f"{summary['webhooks_5xx']} (of {summary['webhooks']})"),
        (
            "webhook p50 / p95 / max",
            f"{summary['webhook']['p50']} / {summary['webhook']['p95']}"
            f" / {summary['webhook']['max']} s",
        ),
    ]
    for name, label in (
        ("hangup_to_transcript", "hang-up → transcript"),
        ("hangup_to_routed", "hang-up → routed"),
        ("hangup_to_pushed", "hang-up → pushed"),
    ):
        for source in ("live", "batch"):
            rows.append((f"{label}, {source}: p50 / p95 / max", delay(name, source)))
    return "\n".join(["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


# --- The run ------------------------------------------------------------------------------------


def bench_env(instance: Path, *, scaled: bool, sms_api: str) -> dict[str, str]:
    """The service's environment: a fresh instance folder, Twilio's texts to `sms_api`, and
    the embedded database and broker, or (scaled) the environment's DATABASE_URL and
    BROKER_URL."""
    env = {
        **os.environ,
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance),
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": sms_api,
        "RECORDING_FETCH_BACKOFF": "1.0",
        "LOG_LEVEL": "INFO",
    }
    classifier = _shared_classifier()
    if classifier is not None:
        env["CLASSIFIER_PATH"] = str(classifier)  # trained once, as the test sessions share it
    if scaled:
        for name in ("DATABASE_URL", "BROKER_URL"):
            if not env.get(name) or "sqlite" in env[name]:
                raise SystemExit(f"--scaled runs on PostgreSQL and Redis: set {name}")
    else:
        env.pop("DATABASE_URL", None)
        env.pop("BROKER_URL", None)
    return env


def _shared_classifier() -> Path | None:
    try:
        from tests.conftest import trained_classifier_path
    except ImportError:  # the tests are not installed beside the bench
        return None
    return trained_classifier_path()


def set_up(env: dict[str, str], push_url: str) -> None:
    """`flask init`, then every handling department pushes to the receiver."""
    init = [sys.executable, "-m", "flask", "--app", "hotline", "init"]
    subprocess.run(init, cwd=ROOT, env=env, check=True, capture_output=True)
    engine = create_engine(load_settings(env).database_url)
    try:
        with Session(engine) as session, session.begin():
            for code in session.scalars(select(Department.code)):
                if code not in COPIES_ONLY and not code.startswith("t_"):
                    staff.set_department_channels(
                        session, code=code, webhook_url=push_url, webhook_secret=PUSH_SECRET
                    )
    finally:
        engine.dispose()


def main() -> int:
    """Start the service, place the calls, wait for their outcomes, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="speech per call")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait for jobs")
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="two web and two worker processes on DATABASE_URL and BROKER_URL (make run-scaled)",
    )
    parser.add_argument("--logs", type=Path, help="copy the processes' output to this folder")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="hotline-calls-") as tmp,
        PushReceiver(PUSH_SECRET) as pushes,
        TwilioMessages() as texts,
        RecordingServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as recordings,
    ):
        instance = Path(tmp)
        env = bench_env(instance, scaled=args.scaled, sms_api=texts.base_url)
        settings = load_settings(env)
        set_up(env, pushes.url)
        formation = Formation("serve-scaled" if args.scaled else "serve", env, instance)
        try:
            formation.wait_ready()
            started = time.monotonic()
            outcomes = place_calls(
                count=args.calls,
                seconds=args.seconds,
                webs=formation.web_urls,
                streams_url=formation.streams_url,
                recordings=recordings,
                public_base_url=PUBLIC_BASE_URL,
                auth_token=AUTH_TOKEN,
                account_sid=ACCOUNT_SID,
            )
            calls_done = time.monotonic() - started
            fates = settle(settings.database_url, outcomes, pushes, texts, timeout=args.settle)
            settled = time.monotonic() - started
            summary = summarise(outcomes, fates)
            summary["processes"] = sorted(formation.processes())
        finally:
            formation.stop()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                (args.logs / "formation.log").write_text(formation.log_text())
        summary.update(
            all_calls_seconds=round(calls_done, 1),
            settled_seconds=round(settled, 1),
            speech_seconds=args.seconds,
            setup="scaled" if args.scaled else "embedded",
            database=settings.database_url.split(":", 1)[0],
            broker=settings.broker_url.split(":", 1)[0],
            live_stream_limit=settings.live_stream_limit,
            date=time.strftime("%Y-%m-%d"),
        )
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print()
    print(table(summary))
    live_pushed_p95 = summary["hangup_to_pushed"]["live"]["p95"]
    if live_pushed_p95 is not None and live_pushed_p95 >= PUSHED_P95_GOAL:
        print(f"GOAL MISSED: hang-up → pushed p95 {live_pushed_p95} s ≥ {PUSHED_P95_GOAL} s (live)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    if failed(summary):
        print("FAILED: calls lost, duplicated or broken, or webhooks answered 5xx")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
