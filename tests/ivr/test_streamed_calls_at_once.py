"""Many callers recording at once, on the Procfile's processes: gunicorn `web` (2 workers x 8
threads), the `streams` process, a Celery worker. Media Streams sockets used to hold a web
thread for a whole recording, and sixteen of them left none for the webhooks (issue 12,
defect 1). `make load` runs the same with 100 callers (`bench/streamed_calls.py`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.streamed_calls import (
    Process,
    place_calls,
    settle,
    start_streams,
    start_web,
    summarise,
)
from emulator import RecordingServer
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL, free_port

pytestmark = pytest.mark.usefixtures("celery_worker")

# More callers than the web process has threads: a socket per thread would starve it.
CALLERS = int(os.environ.get("HOTLINE_STREAMED_CALLERS", 24))


@pytest.fixture(scope="module")
def processes(
    environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Process]]:
    """gunicorn with the Procfile's settings and the streams process, on the session's setup."""
    logdir = tmp_path_factory.mktemp("load")
    env = {**os.environ, **environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    web_port, streams_port = free_port(), free_port()
    started: list[Process] = []
    try:
        started.append(start_web(env, logdir, web_port))
        started.append(start_streams(env, logdir, streams_port))
        yield f"http://127.0.0.1:{web_port}", f"ws://127.0.0.1:{streams_port}", started[1]
    finally:
        for process in reversed(started):
            process.stop()


def test_callers_recording_at_once_leave_the_webhooks_answering_and_each_gets_a_case(
    processes: tuple[str, str, Process],
    recording_server: RecordingServer,
    environ: dict[str, str],
) -> None:
    web, streams, streams_process = processes
    outcomes = place_calls(
        count=CALLERS,
        seconds=6.0,
        app_url=web,
        streams_url=streams,
        recordings=recording_server,
        public_base_url=PUBLIC_BASE_URL,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
    )
    settled = settle(environ["DATABASE_URL"], [o.call_sid for o in outcomes], timeout=0)
    figures = summarise(outcomes, settled)
    print(f"\n{CALLERS} streamed calls at once ({sys.platform}): {figures}")

    assert figures["errors"] == []
    assert figures["calls_completed"] == CALLERS
    assert figures["streams_opened"] == CALLERS  # every report was streamed...
    assert figures["cases_opened"] == CALLERS  # ...and every caller got a case
    # Twilio gives up after 15 s (the report check waits up to 3 s for the live words, and
    # the machine is shared: the margin is for its neighbours).
    assert figures["webhooks_over_15s"] == 0
    assert isinstance(figures["webhook_max_s"], float) and figures["webhook_max_s"] < 12
    assert streams_process.proc.poll() is None
