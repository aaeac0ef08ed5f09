"""Many callers at once, each streaming a live report: do the webhooks still answer in time?

Starts the Procfile's processes on a fresh instance (gunicorn `web` with the Procfile's
threads, the `streams` process, a Celery `worker`), then places `--calls` Korean calls at the
same moment with the Twilio emulator. Each caller talks for about `--seconds` (the test
fixtures, joined), streamed in real time over a Media Streams socket, and presses #.
It prints, and writes to bench/results/streamed_calls.json:
- every `/ivr/*` webhook's latency (p50, p95, max; Twilio gives up after 15 s);
- calls completed and cases opened (every call must get its case);
- who transcribed each case (live or batch), and how far behind the live decode was when
  the stream stopped (from the streams process's log).

`make load` runs the full 100; `tests/ivr/test_streamed_calls_at_once.py` runs a few dozen
through the same functions. With DATABASE_URL and BROKER_URL set it runs on those.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from sqlalchemy import create_engine, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/streamed_calls.py`: import the project
from cases.models import Call, Case, Transcript  # noqa: E402
from emulator import RecordingServer, Speak, TwilioEmulator  # noqa: E402
from hotline.config import load_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "streamed_calls.json"
AUDIO = ROOT / "tests" / "fixtures" / "audio"
SPOKEN = ["ko_streetlight", "ko_water", "ko_garbage", "ko_road", "ko_parking", "ko_noise"]
PUBLIC_BASE_URL = "https://hotline.load.test"
ACCOUNT_SID = "AC" + "c" * 32
AUTH_TOKEN = "load-auth-token-0123456789abcdef"
TWILIO_WEBHOOK_BUDGET = 15.0
# The Procfile's web settings (gthread, 2 workers x 8 threads), without the access log.
GUNICORN = ["--worker-class", "gthread", "--workers", "2", "--threads", "8", "--no-control-socket"]


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


class TimedSession(requests.Session):
    """A requests session that notes how long each webhook took to answer."""

    def __init__(self) -> None:
        super().__init__()
        self.timings: list[tuple[str, float]] = []

    def post(self, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        started = time.perf_counter()
        try:
            return super().post(url, *args, **kwargs)
        finally:
            path = urlsplit(url if isinstance(url, str) else url.decode()).path
            self.timings.append((path, time.perf_counter() - started))


@dataclass
class CallOutcome:
    """One placed call: its CallSid, whether it went to the end, and its webhooks' latencies."""

    call_sid: str
    error: str = ""
    streams: int = 0
    seconds: float = 0.0
    timings: list[tuple[str, float]] = field(default_factory=list)


def place_calls(
    *,
    count: int,
    seconds: float,
    app_url: str,
    streams_url: str,
    recordings: RecordingServer,
    public_base_url: str,
    auth_token: str,
    account_sid: str,
) -> list[CallOutcome]:
    """Place `count` streamed calls at the same moment (one thread each); their outcomes."""
    wavs = [report_wav(seconds, offset) for offset in range(len(SPOKEN))]
    barrier = threading.Barrier(count)
    outcomes = [CallOutcome(call_sid="") for _ in range(count)]

    def call(index: int) -> None:
        http = TimedSession()
        emulator = TwilioEmulator(
            public_base_url=public_base_url,
            app_url=app_url,
            streams_url=streams_url,
            auth_token=auth_token,
            account_sid=account_sid,
            recordings=recordings,
            from_number=f"+86139{index:08d}",
            http=http,
            stream_speed=1.0,  # the caller talks in real time: the socket stays open as long
        )
        outcome = outcomes[index]
        outcome.call_sid = emulator.new_call_sid()
        barrier.wait()
        started = time.monotonic()
        try:
            log = emulator.call(
                ["3", "1", Speak(wavs[index % len(wavs)])], call_sid=outcome.call_sid
            )
            outcome.streams = len(log.streams)
        except Exception as error:  # a failed call is a figure, not a crash
            outcome.error = f"{type(error).__name__}: {error}"[:300]
        finally:
            outcome.seconds = time.monotonic() - started
            outcome.timings = http.timings
            http.close()

    threads = [threading.Thread(target=call, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@dataclass
class Settled:
    """What the database holds for the calls once their jobs are done."""

    cases: int
    transcripts: Counter[str]


def settle(database_url: str, call_sids: list[str], *, timeout: float) -> Settled:
    """Wait (up to `timeout`) until every case has a complete transcript; what there is then."""
    engine = create_engine(load_settings({"DATABASE_URL": database_url}).database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as connection:
                cases = connection.execute(
                    select(Call.call_sid)
                    .join(Case, Case.call_id == Call.id)
                    .where(Call.call_sid.in_(call_sids))
                ).all()
                sources = connection.execute(
                    select(Transcript.source)
                    .join(Call, Transcript.call_id == Call.id)
                    .where(Call.call_sid.in_(call_sids), Transcript.complete)
                ).all()
            settled = Settled(len(cases), Counter(row[0] for row in sources))
            if sum(settled.transcripts.values()) >= len(cases) or time.monotonic() > deadline:
                return settled
            time.sleep(0.5)
    finally:
        engine.dispose()


def summarise(outcomes: list[CallOutcome], settled: Settled) -> dict[str, object]:
    """The figures: webhook latencies, calls completed, cases opened, who transcribed."""
    latencies = sorted(seconds for outcome in outcomes for _path, seconds in outcome.timings)
    per_path: dict[str, list[float]] = {}
    for outcome in outcomes:
        for path, seconds in outcome.timings:
            per_path.setdefault(path, []).append(seconds)

    def q(values: list[float], fraction: float) -> float:
        ordered = sorted(values)
        return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 3)

    return {
        "calls": len(outcomes),
        "calls_completed": sum(not outcome.error for outcome in outcomes),
        "errors": sorted({outcome.error for outcome in outcomes if outcome.error})[:5],
        "streams_opened": sum(outcome.streams for outcome in outcomes),
        "cases_opened": settled.cases,
        "transcripts": dict(settled.transcripts),
        "webhooks": len(latencies),
        "webhook_p50_s": q(latencies, 0.5) if latencies else None,
        "webhook_p95_s": q(latencies, 0.95) if latencies else None,
        "webhook_max_s": round(latencies[-1], 3) if latencies else None,
        "webhooks_over_15s": sum(seconds > TWILIO_WEBHOOK_BUDGET for seconds in latencies),
        "max_per_path_s": {path: round(max(v), 3) for path, v in sorted(per_path.items())},
        "call_seconds_median": round(statistics.median(o.seconds for o in outcomes), 1),
    }


def live_lag(log_text: str) -> dict[str, float] | None:
    """From the streams process's log: how long the decode took after each stream's stop
    (`finish_seconds`), median and max."""
    lags = [
        float(line.split("finish_seconds=", 1)[1].split()[0])
        for line in log_text.splitlines()
        if "live transcript" in line and "finish_seconds=" in line
    ]
    if not lags:
        return None
    return {"median": round(statistics.median(lags), 2), "max": round(max(lags), 2)}


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


def start_web(env: dict[str, str], logdir: Path, port: int) -> Process:
    """gunicorn with the Procfile's settings."""
    command = [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{port}",
               "hotline.wsgi:app"]  # fmt: skip
    web = Process("web", command, env, logdir)
    web.wait_for("Booting worker")
    return web


def start_streams(env: dict[str, str], logdir: Path, port: int) -> Process:
    """The Media Streams process, as the Procfile starts it."""
    streams = Process(
        "streams",
        [sys.executable, "-m", "hotline.streams"],
        {**env, "STREAMS_PORT": str(port)},
        logdir,
    )
    streams.wait_for("media streams listening")
    return streams


def start_worker(env: dict[str, str], logdir: Path) -> Process:
    """A Celery worker with the Procfile's settings (no beat: nothing here needs it)."""
    command = [sys.executable, "-m", "celery", "--app", "hotline.worker", "worker", "--pool",
               "threads", "--concurrency", "4", "--loglevel", "INFO", "--without-mingle",
               "--without-gossip"]  # fmt: skip
    worker = Process("worker", command, env, logdir)
    worker.wait_for("ready.")
    return worker


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    """Start the processes, place the calls, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0, help="speech per call")
    parser.add_argument("--settle", type=float, default=300.0, help="seconds to wait for jobs")
    parser.add_argument("--logs", type=Path, help="copy the processes' logs to this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hotline-load-") as tmp:
        instance = Path(tmp)
        env = {
            **os.environ,
            "HOTLINE_ENV": "test",
            "HOTLINE_INSTANCE_PATH": str(instance),
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "RECORDING_FETCH_BACKOFF": "1.0",
            "LOG_LEVEL": "INFO",
        }
        settings = load_settings(env)
        init = [sys.executable, "-m", "flask", "--app", "hotline", "init"]
        subprocess.run(init, cwd=ROOT, env=env, check=True, capture_output=True)
        web_port, streams_port = free_port(), free_port()
        processes = []
        try:
            processes.append(start_web(env, instance, web_port))
            processes.append(start_streams(env, instance, streams_port))
            processes.append(start_worker(env, instance))
            with RecordingServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as recordings:
                started = time.monotonic()
                outcomes = place_calls(
                    count=args.calls,
                    seconds=args.seconds,
                    app_url=f"http://127.0.0.1:{web_port}",
                    streams_url=f"ws://127.0.0.1:{streams_port}",
                    recordings=recordings,
                    public_base_url=PUBLIC_BASE_URL,
                    auth_token=AUTH_TOKEN,
                    account_sid=ACCOUNT_SID,
                )
                calls_done = time.monotonic() - started
                settled = settle(
                    settings.database_url, [o.call_sid for o in outcomes], timeout=args.settle
                )
                summary = summarise(outcomes, settled)
            summary["all_calls_seconds"] = round(calls_done, 1)
            summary["live_finish_seconds"] = live_lag(processes[1].log_text())
        finally:
            for process in reversed(processes):
                process.stop()
                if args.logs:
                    args.logs.mkdir(parents=True, exist_ok=True)
                    (args.logs / process.log_path.name).write_text(process.log_text())
        summary.update(
            speech_seconds=args.seconds,
            database=settings.database_url.split(":", 1)[0],
            broker=settings.broker_url.split(":", 1)[0],
            live_stream_limit=settings.live_stream_limit,
            date=time.strftime("%Y-%m-%d"),
        )
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
