"""Many callers recording at once, on the Procfile's processes as `make serve` starts them:
gunicorn `web` (2 workers x 8 threads) and the `streams` process, beside the session's Celery
worker. Media Streams sockets used to hold a web thread for a whole recording, and sixteen of
them left none for the webhooks (issue 12, defect 1). `make load` runs the same calls, 100 at
once and followed to their push and text (`bench/calls.py`)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.calls import Formation, place_calls, read_fates, summarise
from emulator import RecordingServer
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_BASE_URL

pytestmark = pytest.mark.usefixtures("celery_worker")

# More callers than the web process has threads: a socket per thread would starve it.
CALLERS = int(os.environ.get("HOTLINE_STREAMED_CALLERS", 24))


@pytest.fixture(scope="module")
def formation(
    environ: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Formation]:
    """One web and the streams process, started by `make serve` on the session's setup (the
    session's own worker runs the jobs)."""
    logdir = tmp_path_factory.mktemp("load")
    env = {**os.environ, **environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    only_web_and_streams = "web=1,streams=1,worker=0,transcriber=0,beat=0"
    started = Formation("serve", env, logdir, formation=only_web_and_streams)
    try:
        started.wait_ready()
        yield started
    finally:
        started.stop()


def test_callers_recording_at_once_leave_the_webhooks_answering_and_each_gets_a_case(
    formation: Formation,
    recording_server: RecordingServer,
    environ: dict[str, str],
) -> None:
    assert sorted(formation.processes()) == ["streams.1", "web.1"]
    outcomes = place_calls(
        count=CALLERS,
        seconds=6.0,
        webs=formation.web_urls,
        streams_url=formation.streams_url,
        recordings=recording_server,
        public_base_url=PUBLIC_BASE_URL,
        auth_token=AUTH_TOKEN,
        account_sid=ACCOUNT_SID,
    )
    fates = read_fates(environ["DATABASE_URL"], outcomes, pushes=[], texts=[])
    figures = summarise(outcomes, fates)
    print(f"\n{CALLERS} streamed calls at once ({sys.platform}): {figures}")

    assert figures["call_errors"] == []
    assert figures["calls_completed"] == CALLERS
    assert figures["streams_opened"] == CALLERS  # every report was streamed...
    assert figures["cases_opened"] == CALLERS  # ...every caller got a case...
    assert figures["numbers_read_back"] == CALLERS  # ...and heard its number
    assert figures["duplicated_what"].get("case") is None
    assert figures["webhooks_5xx"] == 0
    # Twilio gives up after 15 s (the report check waits up to 3 s for the live words, and
    # the machine is shared: the margin is for its neighbours).
    assert figures["webhooks_over_15s"] == 0
    assert isinstance(figures["webhook"]["max"], float) and figures["webhook"]["max"] < 12
    assert formation.running() == ["streams.1", "web.1"]  # none died under the load
