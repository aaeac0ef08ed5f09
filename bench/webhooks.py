"""Throughput and p99 of POST /ivr/voice (real app) against a bare Flask app, same gunicorn."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import Engine, create_engine, text
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/webhooks.py`: import the project itself
from hotline.config import load_settings  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "webhooks.json"
PUBLIC_BASE_URL = "https://hotline.bench.test"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
# The Procfile's web settings, minus its access log (it would measure stdout, not the app) and
# gunicorn's control socket (one fixed path in ~/.gunicorn, which two masters would fight over).
GUNICORN = ["--worker-class", "gthread", "--workers", "2", "--threads", "8", "--no-control-socket"]
RATIO_GOAL, P99_GOAL_MS, P99_GOAL_CONNECTIONS = 0.5, 50.0, 50
# The app writes its rows behind its answers (within 20 ms); a run's last rows may still be landing.
ROWS_SETTLE_SECONDS = 5.0
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}

# Each wrk thread loads the pool of signed requests and cycles through it from its own offset
# (thread k of n starts k/n of the way in). A thread that sends more than its 1/n share runs
# into the next thread's CallSids, which the app (rightly) records once: the pool is sized so
# that one thread alone could send a whole run's requests without reaching another's share.
LUA = """
local started, requests, index = 0, {}, 0

function setup(thread)
  thread:set("id", started)
  started = started + 1
end

function init(args)
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  for line in io.lines(args[1]) do
    local signature, body = line:match("^(%S+)\\t(.+)$")
    headers["X-Twilio-Signature"] = signature
    requests[#requests + 1] = wrk.format("POST", "/ivr/voice", headers, body)
  end
  index = math.floor(#requests * id / tonumber(args[2]))
end

function request()
  index = index % #requests + 1
  return requests[index]
end
"""


class BenchError(RuntimeError):
    """The measurement is void: a server failed or the app did not do its work."""


@dataclass
class Bench:
    """What every wrk run shares."""

    args: argparse.Namespace
    lua: Path
    engine: Engine


@dataclass
class Run:
    """One wrk run against one server."""

    server: str
    round: int
    requests: int
    rps: float
    p99_ms: float
    non_2xx: int
    socket_errors: str
    rows_added: int | None = None
    cpu_us_per_request: float | None = None  # the server's own CPU (all its processes)


class Server:
    """A gunicorn master with the Procfile's settings, on a free local port."""

    def __init__(self, name: str, target: str, env: dict[str, str], logdir: Path) -> None:
        self.name, self.log_path = name, logdir / f"{name}.log"
        self.port = free_port()
        bind = f"127.0.0.1:{self.port}"  # load goes to the loopback only
        command = [sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", bind, target]
        with self.log_path.open("wb") as log:
            # Own session: Ctrl-C reaches only us, and stop() shuts gunicorn down gracefully.
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def url(self) -> str:
        """Where wrk sends the load."""
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Return once a worker answers HTTP (any status), or raise with gunicorn's log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.2)
        raise BenchError(f"{self.name} did not start:\n{self.log_tail()}")

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the master and its workers (Linux /proc), else None."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
            total = 0
            for pid in [self.proc.pid, *map(int, children.split())]:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
        except (OSError, ValueError, IndexError):
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        """The end of gunicorn's output, for error messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (gunicorn's graceful stop), then SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_env(instance: Path) -> dict[str, str]:
    """The service's environment; DATABASE_URL and BROKER_URL pass through from the caller."""
    return {
        **os.environ,
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance),
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "LOG_LEVEL": "WARNING",
    }


def write_pool(path: Path, size: int) -> None:
    """Write `size` signed voice webhooks, one per line as `signature<TAB>body`, all new calls."""
    validator, url = RequestValidator(AUTH_TOKEN), PUBLIC_BASE_URL + "/ivr/voice"
    with path.open("w") as pool:
        for n in range(size):
            params = {
                "CallSid": "CA" + uuid.uuid4().hex,  # random: a reused database stays fresh too
                "AccountSid": ACCOUNT_SID,
                "From": f"+86138{n:08d}",
                "To": "+865374412345",
                "CallStatus": "ringing",
                "ApiVersion": "2010-04-01",
                "Direction": "inbound",
            }
            pool.write(f"{validator.compute_signature(url, params)}\t{urlencode(params)}\n")


def count_calls(engine: Engine) -> int:
    """Rows in the calls table."""
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM calls")).scalar_one())


def run_wrk(bench: Bench, server: Server, pool: Path, seconds: int, round_: int) -> Run:
    """One wrk run, parsed from its --latency report."""
    threads = bench.args.threads
    flags = f"-t{threads} -c{bench.args.connections} -d{seconds}s --latency".split()
    command = ["wrk", *flags, "-s", str(bench.lua), server.url, "--", str(pool), str(threads)]
    cpu_before = server.cpu_seconds()
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    cpu_after = server.cpu_seconds()
    rps, total = re.search(r"Requests/sec:\s+([\d.]+)", out), re.search(r"(\d+) requests in", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(\w+)$", out, re.MULTILINE)  # Latency Distribution
    if not (rps and p99 and total):
        raise BenchError(f"cannot parse wrk's output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    p99_ms = float(p99[1]) * UNIT_MS[p99[2]]
    cpu = None
    if cpu_before is not None and cpu_after is not None and int(total[1]):
        cpu = (cpu_after - cpu_before) / int(total[1]) * 1e6
    return Run(server.name, round_, int(total[1]), float(rps[1]), p99_ms,
               int(non_2xx[1]) if non_2xx else 0, errors[1] if errors else "",
               cpu_us_per_request=cpu)  # fmt: skip


def measure(bench: Bench, server: Server, pool: Path, seconds: int, round_: int) -> Run:
    """Run wrk against a server; for the app, check every answer was a 2xx that wrote a row."""
    before = count_calls(bench.engine) if server.name == "app" else 0
    run = run_wrk(bench, server, pool, seconds, round_)
    label = f"round {round_}" if round_ else "warm-up"
    errors = f", socket errors: {run.socket_errors}" if run.socket_errors else ""
    cpu = f"  cpu {run.cpu_us_per_request:5.0f} us/req" if run.cpu_us_per_request else ""
    print(f"  {label:8} {server.name:8} {run.rps:9.1f} req/s  p99 {run.p99_ms:7.2f} ms{cpu}"
          f"  ({run.requests} requests{errors})")  # fmt: skip
    if run.non_2xx:
        raise BenchError(
            f"{server.name} answered {run.non_2xx} non-2xx (a 403 is a bad signature):\n"
            f"{server.log_tail()}"
        )
    if server.name == "app":
        # The app answers its own errors with a 200 apology, so only the rows prove the writes.
        # They are written behind the answers, within 20 ms: give the last ones time to land.
        deadline = time.monotonic() + ROWS_SETTLE_SECONDS
        run.rows_added = count_calls(bench.engine) - before
        while run.rows_added < run.requests and time.monotonic() < deadline:
            time.sleep(0.05)
            run.rows_added = count_calls(bench.engine) - before
        if run.rows_added < run.requests:
            raise BenchError(f"app answered {run.requests} requests but added only "
                             f"{run.rows_added} calls rows:\n{server.log_tail()}")  # fmt: skip
    return run


def report(runs: list[Run], args: argparse.Namespace) -> dict[str, object]:
    """Print the medians and the goals; return them for the JSON file."""
    names = list(dict.fromkeys(r.server for r in runs))  # bare, app[, no-write]
    med = {name: {"rps": statistics.median(r.rps for r in runs if r.server == name),
                  "p99_ms": statistics.median(r.p99_ms for r in runs if r.server == name)}
           for name in names}  # fmt: skip
    ratio = med["app"]["rps"] / med["bare"]["rps"]
    goals = {"ratio": ratio >= RATIO_GOAL, "app_p99": med["app"]["p99_ms"] < P99_GOAL_MS}
    print(f"\n{'server':8}{'req/s (median)':>16}{'p99 ms (median)':>17}")
    for name, figures in med.items():
        print(f"{name:8}{figures['rps']:16.1f}{figures['p99_ms']:17.2f}")
    verdict = {True: "ok", False: "MISSED"}
    print(f"\nratio app/bare req/s: {ratio:.2f}  goal >= {RATIO_GOAL}: {verdict[goals['ratio']]}")
    note = "" if args.connections == P99_GOAL_CONNECTIONS else " (goal set at 50 connections)"
    print(f"app p99: {med['app']['p99_ms']:.2f} ms  goal < {P99_GOAL_MS:g} ms: "
          f"{verdict[goals['app_p99']]}{note}")  # fmt: skip
    print("\nGOALS MET" if all(goals.values()) else "\n*** GOAL MISSED ***")
    rows = sum(r.rows_added or 0 for r in runs)
    print(f"calls rows added by the measured app runs: {rows}")
    # Server CPU per request: what neighbours on a shared machine disturb least. Its inverse
    # ratio is where req/s would settle if the servers had the cores to themselves.
    cpu = {name: [r.cpu_us_per_request for r in runs if r.server == name] for name in med}
    cpu_ratio = None
    if all(values and None not in values for values in cpu.values()):
        cpu_med = {name: statistics.median(v for v in values if v) for name, values in cpu.items()}
        cpu_ratio = cpu_med["bare"] / cpu_med["app"]
        print(f"server CPU per request (median): bare {cpu_med['bare']:.0f} us, "
              f"app {cpu_med['app']:.0f} us; bare/app {cpu_ratio:.2f}")  # fmt: skip
        if "no-write" in cpu_med:
            share = med["no-write"]["rps"] / med["bare"]["rps"]
            print(f"the app without its call write: {share:.2f} of bare's req/s, "
                  f"{cpu_med['no-write']:.0f} us CPU per request; so the call write "
                  f"costs {cpu_med['app'] - cpu_med['no-write']:.0f} us of CPU per request "
                  "under this load")  # fmt: skip
    return {"medians": med, "ratio_app_bare_rps": ratio, "goals_met": goals, "rows_added": rows,
            "ratio_bare_app_cpu_per_request": cpu_ratio}  # fmt: skip


def main() -> int:
    """Run the interleaved benchmark; exit 1 only when the measurement itself is void."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every server")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per server")
    parser.add_argument(
        "--requests", type=int, default=20_000, help="minimum CallSids per wrk thread per run"
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run the app without its call write (bench/app_without_write.py)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")

    with (
        tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        tmpdir, env = Path(tmp), bench_env(Path(tmp))
        try:
            init = [sys.executable, "-m", "flask", "--app", "hotline", "init"]
            subprocess.run(init, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
            # The URL as the app computes it (postgres:// gets its driver), so we count its rows.
            engine = create_engine(load_settings(env).database_url)
            bench = Bench(args, tmpdir / "replay.lua", engine)
            stack.callback(bench.engine.dispose)
            bench.lua.write_text(LUA)
            targets = [("bare", "bench.bare_app:app"), ("app", "hotline.wsgi:app")]
            if args.breakdown:
                targets.append(("no-write", "bench.app_without_write:app"))
            servers = {name: Server(name, target, env, tmpdir) for name, target in targets}
            for server in servers.values():
                stack.callback(server.stop)
                server.wait_ready()

            print(f"wrk -t{args.threads} -c{args.connections}, {args.duration}s per run")
            size, warm = args.threads * args.requests, {}
            for name, server in servers.items():
                write_pool(tmpdir / "warm.txt", size)
                warm[name] = measure(bench, server, tmpdir / "warm.txt", args.warmup, 0)
            # No CallSid repeats even if one wrk thread sent every request of the run, at 1.5
            # times the fastest warm-up rate (the app can outrun bare in a noisy round).
            fastest = max(run.rps for run in warm.values())
            size = args.threads * max(args.requests, int(1.5 * fastest * args.duration))
            runs = []
            for round_ in range(1, args.rounds + 1):
                pool = tmpdir / f"pool-{round_}.txt"
                write_pool(pool, size)  # fresh CallSids, the same bytes for bare and app
                for server in servers.values():  # bare, app, bare, app: noise hits all
                    runs.append(measure(bench, server, pool, args.duration, round_))
        except (BenchError, subprocess.CalledProcessError) as error:
            output = f"{getattr(error, 'stdout', '')}{getattr(error, 'stderr', '')}"
            detail = "\n".join(output.splitlines()[-25:])  # a traceback's end says what broke
            print(f"\nBENCHMARK FAILED: {error}\n{detail}", file=sys.stderr)
            return 1

    summary = report(runs, args)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    wrk = {"threads": args.threads, "connections": args.connections, "duration_s": args.duration}
    figures = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpus": os.cpu_count(),
               "gunicorn": GUNICORN, "wrk": wrk, "pool_size": size, **summary,
               "runs": [asdict(run) for run in runs]}  # fmt: skip
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the servers were already stopped on the way out
        sys.exit(130)
