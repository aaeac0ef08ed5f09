"""The queue for a person against queueing theory: does the app put callers through as fast as
Erlang C says `--seats` operators can?

Plays `--hours` of calls on the emulator's virtual clock against the real app (in-process, over
real HTTP, its jobs run eagerly inside the webhooks that queue them) with Prism behind the REST
API: Poisson arrivals at `--rate` calls an hour, each caller presses 0 and waits (nobody hangs
up: Erlang C assumes so), talks for an exponential time of mean `--handling` seconds, then hangs
up; operators answer at once and wrap up for zero seconds. time_machine moves the app's clock
with the virtual one. It prints the measured service level (answered within `--target`
seconds), the average and 95th-percentile wait, beside the Erlang C prediction for the same
load, both for the nominal handling time and for the seat time measured (which adds the
operator's "a call is coming" prompt and the caller's "connecting" prompt to each call).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import time_machine
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as `python bench/queue_service_level.py`
from cases import seats, staff  # noqa: E402
from cases.models import Role, SeatStatus  # noqa: E402
from emulator import Caller, Leg, Phone, RecordingServer, Switchboard, TwilioEmulator  # noqa: E402
from emulator.clock import VirtualClock  # noqa: E402
from hotline import create_app  # noqa: E402
from hotline.wiring import wiring_of  # noqa: E402
from tests.support.flaky_proxy import FlakyProxy  # noqa: E402

PUBLIC_BASE_URL = "https://hotline.queue.test"
ACCOUNT_SID = "AC" + "d" * 32
AUTH_TOKEN = "queue-bench-token-0123456789abcdef"
TWILIO_OPENAPI = ROOT / "tests" / "fixtures" / "twilio-oai" / "twilio_api_v2010.yaml"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a weekday morning (17:00 in the city)
SEAT_TALK = 10.0**9  # operators never hang up first: the caller's talk is the handling time


def erlang_c(*, seats: int, erlangs: float) -> float:
    """Erlang C: the probability that a call waits, with `seats` servers offered `erlangs`
    (arrival rate times mean handling time) of Poisson traffic, exponential handling, FIFO,
    nobody abandoning. Summed as Erlang B's recursion, which stays stable for many seats:
    B(0) = 1, B(k) = A·B(k-1) / (k + A·B(k-1)); then C = N·B / (N - A·(1 - B))."""
    if erlangs >= seats:
        return 1.0
    blocking = 1.0
    for k in range(1, seats + 1):
        blocking = erlangs * blocking / (k + erlangs * blocking)
    return seats * blocking / (seats - erlangs * (1 - blocking))


@dataclasses.dataclass(frozen=True)
class Prediction:
    """What Erlang C predicts for one load."""

    waits: float  # probability of waiting at all
    service_level: float  # answered within the target
    average_wait: float
    p95_wait: float


def predict(*, seats: int, rate_per_second: float, handling: float, target: float) -> Prediction:
    """Erlang C's service level, average and 95th-percentile wait. The wait of a call that
    waits is exponential with rate (N - A)/h, so P(W > t) = C·exp(-(N - A)·t/h)."""
    erlangs = rate_per_second * handling
    c = erlang_c(seats=seats, erlangs=erlangs)
    if c >= 1.0:
        return Prediction(1.0, 0.0, math.inf, math.inf)
    decay = (seats - erlangs) / handling
    p95 = math.log(c / 0.05) / decay if c > 0.05 else 0.0
    return Prediction(c, 1 - c * math.exp(-decay * target), c / decay, p95)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def start_prism() -> tuple[subprocess.Popen[bytes], str]:
    """Prism serving Twilio's OpenAPI description, on a free port."""
    binary = ROOT / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        sys.exit("Prism is not installed: run `npm ci`")
    port = _free_port()
    process = subprocess.Popen(
        [str(binary), "mock", "--host", "127.0.0.1", "--port", str(port), str(TWILIO_OPENAPI)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return process, url
        except requests.RequestException:
            time.sleep(0.5)
    process.terminate()
    sys.exit("Prism did not start")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=100.0, help="calls an hour")
    parser.add_argument("--seats", type=int, default=5)
    parser.add_argument("--handling", type=float, default=150.0, help="mean seconds of talk")
    parser.add_argument("--target", type=float, default=15.0, help="answered within (s)")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the app logs every step; the summary is what counts

    prism, prism_url = start_prism()
    instance = Path(tempfile.mkdtemp(prefix="queue-bench-"))
    traveller = time_machine.travel(START, tick=False)
    coordinates = traveller.start()
    try:
        with FlakyProxy(upstream=prism_url) as proxy:
            run(args, instance=instance, proxy=proxy, move_app_clock=coordinates.move_to)
    finally:
        traveller.stop()
        prism.terminate()
        prism.wait(timeout=10)


def run(
    args: argparse.Namespace,
    *,
    instance: Path,
    proxy: FlakyProxy,
    move_app_clock: Callable[[datetime], None],
) -> None:
    """Wire the app, sit the operators, play the calls, print the comparison."""
    environ = {
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'bench.sqlite'}",
        "BROKER_URL": f"sqla+sqlite:///{instance / 'broker.sqlite'}",
        "SECRET_KEY": "queue-bench",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": proxy.url,
        "HOTLINE_ENABLED_LOCALES": "zh-CN",
        "LOG_LEVEL": "WARNING",
    }
    app = create_app(environ)
    result = app.test_cli_runner().invoke(args=["init"])
    if result.exit_code != 0:
        sys.exit(f"flask init failed: {result.output}")
    wiring = wiring_of(app)
    # Jobs run inside the webhook that queues them, on the virtual clock's time: a worker
    # process would run them in wall time, while the calls' time stands still.
    wiring.celery.conf.task_always_eager = True
    flow = wiring.call_flow
    # Open round the clock, nobody sent away for waiting long, no wrap-up: Erlang C's model.
    flow.options = dataclasses.replace(
        flow.options, operator_hours=("00:00", "24:00"), queue_wait_limit=10**6, wrap_up_seconds=0
    )
    flow.live = None  # the queue is measured here, not live transcription
    addresses = [f"+86139{index:08d}" for index in range(args.seats)]
    with wiring.database.session() as session, session.begin():
        for index, address in enumerate(addresses):
            user = staff.add_user(
                session,
                username=f"operator{index}",
                password="operator-password",
                role=Role.OPERATOR,
                department_code=None,
            )
            seat = seats.take_seat(session, user=user, address=address, region="CN")
            seats.set_seat_status(session, seat=seat, status=SeatStatus.AVAILABLE)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    already = len(proxy.forwarded)
    clock = VirtualClock(on_advance=lambda t: move_app_clock(START + timedelta(seconds=t)))
    rng = random.Random(args.seed)
    phones = {address: Phone(answer_after=0, talk=SEAT_TALK) for address in addresses}
    started = time.monotonic()
    with (
        RecordingServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as recordings,
        requests.Session() as http,
    ):
        emulator = TwilioEmulator(
            public_base_url=PUBLIC_BASE_URL,
            app_url=f"http://127.0.0.1:{server.server_port}",
            auth_token=AUTH_TOKEN,
            account_sid=ACCOUNT_SID,
            recordings=recordings,
            http=http,
        )
        board = Switchboard(
            emulator,
            clock=clock,
            phones=phones,
            rest_requests=lambda: proxy.forwarded[already:],
            queues=[flow.options.queue_name],
        )
        callers = []
        with board:
            horizon = args.hours * 3600
            while True:
                gap = rng.expovariate(args.rate / 3600)
                if clock.now() + gap > horizon:
                    break
                clock.sleep(gap)
                talk = rng.expovariate(1 / args.handling)
                callers.append(
                    board.call(Caller(inputs=["0"], from_number=_number(rng), talk=talk))
                )
            board.wait_idle()
    server.shutdown()
    elapsed = time.monotonic() - started
    report(args, board, callers, elapsed=elapsed, virtual=clock.now())


def _number(rng: random.Random) -> str:
    return f"+86138{rng.randrange(10**8):08d}"


def report(
    args: argparse.Namespace,
    board: Switchboard,
    callers: list[Leg],
    *,
    elapsed: float,
    virtual: float,
) -> None:
    """Print measured against predicted."""
    waits = [
        leg.dequeued_at - leg.enqueued_at
        for leg in callers
        if leg.enqueued_at is not None and leg.dequeued_at is not None
    ]
    unserved = [leg for leg in callers if leg.queue_result != "bridged"]
    seat_times = [
        (leg.ended_at or 0) - (leg.answered_at or 0)
        for leg in board.outbound()
        if leg.bridge is not None and leg.answered_at is not None
    ]
    rate = args.rate / 3600
    nominal = predict(
        seats=args.seats, rate_per_second=rate, handling=args.handling, target=args.target
    )
    measured_h = statistics.fmean(seat_times) if seat_times else args.handling
    effective = predict(
        seats=args.seats, rate_per_second=rate, handling=measured_h, target=args.target
    )
    within = sum(1 for wait in waits if wait <= args.target) / len(waits) if waits else 0.0
    print(
        f"{len(callers)} calls in {args.hours:g} h at {args.rate:g}/h, {args.seats} seats, "
        f"mean talk {args.handling:g} s (seed {args.seed}); {virtual / 3600:.2f} virtual hours "
        f"in {elapsed:.0f} s"
    )
    print(
        f"offered load {rate * args.handling:.2f} erlangs nominal, {rate * measured_h:.2f} "
        f"with the seat time measured ({measured_h:.1f} s a call)"
    )
    print(f"{'':24}{'measured':>10}{'Erlang C':>10}{'(nominal h)':>13}")
    rows = [
        (
            "waited at all",
            sum(1 for w in waits if w > 1e-6) / max(1, len(waits)),
            effective.waits,
            nominal.waits,
        ),
        (
            f"answered within {args.target:g} s",
            within,
            effective.service_level,
            nominal.service_level,
        ),
        (
            "average wait (s)",
            statistics.fmean(waits) if waits else 0.0,
            effective.average_wait,
            nominal.average_wait,
        ),
        (
            "95th pct wait (s)",
            percentile(waits, 0.95) if waits else 0.0,
            effective.p95_wait,
            nominal.p95_wait,
        ),
    ]
    for name, value, erlang, plain in rows:
        print(f"{name:24}{value:>10.3f}{erlang:>10.3f}{plain:>13.3f}")
    if unserved or board.errors:
        print(f"NOT SERVED: {len(unserved)} callers; emulator errors: {len(board.errors)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
