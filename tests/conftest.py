"""Shared fixtures: a migrated database, the app over real HTTP, the Twilio emulator, Prism,
and a real Celery worker.

The suite runs on SQLite and the embedded broker by default; with DATABASE_URL and BROKER_URL
set (as .ci/run does) the same tests run on PostgreSQL and Redis. Tests never clean tables:
each works on its own calls (fresh CallSids), so a job left over from one test can never
touch another's rows.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, TypeVar

import pytest
import requests
import sklearn
from flask import Flask
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from emulator import RecordingServer, TwilioEmulator
from hotline import create_app
from hotline.config import PROJECT_ROOT
from hotline.db import Database
from hotline.wiring import Wiring, wiring_of
from ivr import streams
from ivr.stream_server import StreamsServer
from tests.support.flaky_proxy import FlakyProxy

# Fixtures that tests in several folders use: calls and their look-ups, staff accounts.
pytest_plugins = ["tests.support.calls", "tests.support.staff", "tests.support.seats"]

FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
AUDIO = FIXTURES / "audio"
TWILIO_OPENAPI = FIXTURES / "twilio-oai" / "twilio_api_v2010.yaml"

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
# Deliberately not where the test server listens: signatures must be checked against this.
PUBLIC_BASE_URL = "https://hotline.example.test"

T = TypeVar("T")


def answers_http(url: str) -> bool:
    """Whether a server answers at `url`, whatever the status (for waiting on one to start).

    A refused connection and a read that times out (gunicorn's master accepts before its
    worker has booted) both mean not yet."""
    try:
        requests.get(url, timeout=1)
    except requests.RequestException:
        return False
    return True


def free_port() -> int:
    """A TCP port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T | Literal[False] | None],
    *,
    timeout: float,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll until `predicate()` returns something truthy; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def trained_classifier_path() -> Path:
    """Where the test sessions keep the classifier `flask init` trains when it is missing."""
    # Keyed by what the model is trained from (corpus and lexicon), not by the code that trains
    # it: a code change that makes old artefacts wrong bumps FORMAT_VERSION.
    from routing.classifier import FORMAT_VERSION
    from routing.corpus import training_data_digest

    digest = training_data_digest()[:16]
    name = f"classifier-{digest}-format{FORMAT_VERSION}-sklearn{sklearn.__version__}.joblib"
    return PROJECT_ROOT / ".cache" / name


def _reset_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


# The fixtures through which the suite's database and broker reach a test.
SETUP_FIXTURES = frozenset({"environ", "instance_path"})
# A test module that reads these itself is given them another way.
SETUP_VARIABLES = ("os.environ", "DATABASE_URL", "BROKER_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the second setup (DATABASE_URL names PostgreSQL), run only the tests that reach it.

    `make test` has just run every test on SQLite and the embedded broker; a test that takes
    neither the database nor the broker (the classifier, the emulator, Kaldi, the pure
    decisions: about 900 of the suite) gives the same answer on PostgreSQL and Redis, and
    running it again cost CI minutes. Anything that uses `environ` or `instance_path`, or
    whose module reads the environment itself, runs on both.
    """
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    sources: dict[str, bool] = {}
    kept: list[pytest.Item] = []
    independent: list[pytest.Item] = []
    for item in items:
        path = str(item.path)
        if path not in sources:
            text = item.path.read_text(encoding="utf-8")
            sources[path] = any(variable in text for variable in SETUP_VARIABLES)
        uses_setup = SETUP_FIXTURES & set(getattr(item, "fixturenames", ())) or sources[path]
        (kept if uses_setup else independent).append(item)
    if independent:
        config.hook.pytest_deselected(items=independent)
        items[:] = kept


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def prism() -> Iterator[str]:
    """Prism serving Twilio's own OpenAPI description of its REST API."""
    binary = PROJECT_ROOT / "node_modules" / ".bin" / "prism"
    if not binary.exists():
        pytest.fail("Prism is not installed: run `make test`, which runs `npm ci` first")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "mock", "--host", "127.0.0.1", "--port", str(port), str(TWILIO_OPENAPI)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers_http(url), timeout=90, interval=0.5, what="Prism to start")
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def twilio_api(prism: str) -> Iterator[FlakyProxy]:
    """The REST API the app talks to: Prism behind a proxy that can be told to fail."""
    with FlakyProxy(upstream=prism) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def environ(instance_path: Path, twilio_api: FlakyProxy) -> dict[str, str]:
    """The service's environment for the whole session (app and worker alike)."""
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'test.sqlite'}"
    if database_url.startswith("postgres"):
        _reset_postgres(database_url)
    env = {
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance_path),
        "DATABASE_URL": database_url,
        "BROKER_URL": os.environ.get("BROKER_URL")
        or f"sqla+sqlite:///{instance_path / 'broker.sqlite'}",
        "SECRET_KEY": "test-secret",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": twilio_api.url,
        "HOTLINE_ENABLED_LOCALES": "zh-CN,en-US,ko-KR",
        # Fast retries, so "404 first" and "never arrives" play out in seconds.
        "RECORDING_FETCH_BACKOFF": "0.2",
        "RECORDING_FETCH_RETRIES": "4",
        "SMS_BACKOFF": "0.3",
        "SMS_RETRIES": "4",
        # Deliveries: fast backoff, so a receiver that is down and comes back plays out in
        # seconds; a short timeout, so a dead one fails fast. The retry window stays a day.
        "DELIVERY_BACKOFF": "0.2",
        "DELIVERY_TIMEOUT": "5",
        # E-mail goes to a local aiosmtpd server on this port (tests.support.receivers
        # .shared_smtp_receiver starts it in the test process; the worker sends to it too).
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "MAIL_FROM": "hotline@hotline.example.test",
        "LOG_LEVEL": "INFO",
        # Trained once per corpus and scikit-learn version, then shared by later sessions.
        "CLASSIFIER_PATH": str(trained_classifier_path()),
    }
    if env["BROKER_URL"].startswith("redis"):
        import redis

        redis.Redis.from_url(env["BROKER_URL"]).flushdb()
    return env


@pytest.fixture(scope="session")
def app(environ: dict[str, str]) -> Iterator[Flask]:
    """The app, migrated and with the default directory loaded (by `flask init`)."""
    application = create_app(environ)
    result = application.test_cli_runner().invoke(args=["init"])
    assert result.exit_code == 0, result.output
    yield application
    application.extensions["hotline"].database.dispose()


@pytest.fixture(scope="session")
def wiring(app: Flask) -> Wiring:
    """What the session's app wired: its settings, database, router, senders..."""
    return wiring_of(app)


@pytest.fixture(scope="session")
def database(wiring: Wiring) -> Database:
    return wiring.database


@pytest.fixture(scope="session")
def live_server(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on a free port, threaded like gunicorn's gthread workers."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="session")
def streams_server(wiring: Wiring) -> Iterator[str]:
    """The Media Streams server (the `streams` process's asyncio server) on a free port, on a
    thread of this process: it shares the session's wiring, so a test can give it a recognizer
    of its own. Its ws:// URL is where the emulator connects `<Stream>`s."""
    with StreamsServer(wiring) as server:
        yield server.url
    # Stopping waits for the streams' transcripts: Kaldi aborts a process torn down mid-decode.
    assert streams.active_streams() == 0


@pytest.fixture(scope="session")
def recording_server() -> Iterator[RecordingServer]:
    with RecordingServer(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def emulator(
    live_server: str, streams_server: str, recording_server: RecordingServer
) -> TwilioEmulator:
    """A Twilio that calls the live server (and its streams server); each call gets a fresh
    CallSid."""
    return TwilioEmulator(
        public_base_url=PUBLIC_BASE_URL,
        app_url=live_server,
        streams_url=streams_server,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
        recordings=recording_server,
    )


@pytest.fixture(scope="session")
def celery_worker(
    environ: dict[str, str], app: Flask, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A real Celery worker process (threads pool) on the session's database and broker."""
    # Imported here: the module takes `wait_until` from this one.
    from tests.support.fault_worker import celery_worker_process

    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with celery_worker_process(environ, log_path, what="the Celery worker"):
        yield log_path
    if os.environ.get("HOTLINE_KEEP_WORKER_LOG"):
        shutil.copy(log_path, PROJECT_ROOT / "worker.log")
