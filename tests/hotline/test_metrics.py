"""Metrics: webhooks timed and calls counted over real HTTP, cases counted by channel once
committed, `/metrics` served to the allowed only, and counters of several processes added up
in multiprocess mode."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import signals
from flask import Flask
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from cases.intake import WrittenReport, open_case_from_writing
from cases.models import CaseStatus, Intake, SmsStatus, utcnow
from cases.timeline import add_event
from delivery.tasks import deliver
from emulator import TwilioEmulator
from hotline.celery_app import create_celery
from hotline.config import PROJECT_ROOT
from hotline.metrics import MULTIPROC_ENV, exposition, process_registry, register_metrics
from hotline.wiring import Wiring
from tests.ivr.test_rating_sms import reply_of, text_in
from tests.support.factories import make_case
from tests.support.receivers import new_caller_number

PUBLIC_ADDRESS = "203.0.113.7"


@pytest.fixture(autouse=True)
def _single_process() -> None:
    if os.environ.get(MULTIPROC_ENV):
        pytest.skip("these read this process's own registry")


def sample(name: str, **labels: str) -> float:
    """A metric's current value in this process (0 before its first count)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counting(name: str, **labels: str) -> Callable[[], float]:
    """How much `name` has grown since this was called."""
    before = sample(name, **labels)
    return lambda: sample(name, **labels) - before


def test_a_first_webhook_is_timed_and_its_call_counted(emulator: TwilioEmulator) -> None:
    calls = counting("hotline_calls_total")
    timed = counting("hotline_webhook_seconds_count", endpoint="ivr.voice", status="2xx")
    step = emulator.post("/ivr/voice", emulator.base_params(emulator.new_call_sid()))
    assert step.status_code == 200
    assert (calls(), timed()) == (1.0, 1.0)


def test_a_refused_webhook_is_timed_as_such_and_counts_no_call(app: Flask) -> None:
    calls = counting("hotline_calls_total")
    refused = counting("hotline_webhook_seconds_count", endpoint="ivr.voice", status="4xx")
    assert app.test_client().post("/ivr/voice", data={"CallSid": "CA1"}).status_code in (400, 403)
    assert (calls(), refused()) == (0.0, 1.0)


def test_a_case_opened_by_text_counts_under_sms(emulator: TwilioEmulator) -> None:
    opened = counting("hotline_cases_opened_total", channel="sms")
    received = counting("hotline_sms_received_total", kind="report")
    body = "Nobody has collected the rubbish outside 12 Chunqiu Road for a week"
    reply = reply_of(text_in(emulator, caller=new_caller_number(), body=body))
    assert any(character.isdigit() for character in reply)
    assert (opened(), received()) == (1.0, 1.0)


def test_a_web_case_counts_once_committed_and_not_when_rolled_back(wiring: Wiring) -> None:
    opened = counting("hotline_cases_opened_total", channel="web")
    report = WrittenReport(
        intake=Intake.WEB, text="A streetlight is out on Jiefang Road", locale="en-US"
    )
    with wiring.database.session() as session:
        with session.begin():
            open_case_from_writing(session, report=report, actor="test")
            assert opened() == 0.0  # flushed, not committed
        assert opened() == 1.0
        session.begin()
        open_case_from_writing(session, report=report, actor="test")
        session.rollback()
    assert opened() == 1.0


def test_metrics_are_served_locally_with_the_state_read_at_scrape(app: Flask) -> None:
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    assert answer.mimetype == "text/plain"
    text = answer.get_data(as_text=True)
    for line_start in (
        "hotline_calls_total ",
        'hotline_cases_active{light="red"} ',
        "hotline_live_streams ",
        "hotline_recordings_pending ",
        'hotline_broker_queue_messages{queue="celery"} ',
        'hotline_broker_queue_messages{queue="transcription"} ',
    ):
        assert any(line.startswith(line_start) for line in text.splitlines()), line_start


def test_metrics_are_not_found_from_a_public_address(app: Flask) -> None:
    client = app.test_client()
    answer = client.get("/metrics", environ_base={"REMOTE_ADDR": PUBLIC_ADDRESS})
    assert answer.status_code == 404
    assert "hotline_" not in answer.get_data(as_text=True)


def scrape_app(wiring: Wiring, **settings: object) -> Flask:
    """An app serving only `/metrics`, for these settings."""
    changed = dataclasses.replace(wiring.settings, **settings)  # type: ignore[arg-type]
    app = Flask("metrics-test")
    register_metrics(app, dataclasses.replace(wiring, settings=changed))
    return app


def test_a_scraper_elsewhere_needs_the_token_or_its_network(wiring: Wiring) -> None:
    client = scrape_app(wiring, metrics_token="s3cret", metrics_allow=("10.0.0.0/8",)).test_client()

    def status(address: str, authorization: str | None = None) -> int:
        headers = {"Authorization": authorization} if authorization else {}
        answer = client.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)
        return answer.status_code

    assert status(PUBLIC_ADDRESS, "Bearer s3cret") == 200
    assert status(PUBLIC_ADDRESS, "Bearer wrong") == 404
    assert status(PUBLIC_ADDRESS, "Basic s3cret") == 404
    assert status("10.1.2.3") == 200
    assert status("127.0.0.1") == 404  # the list replaces the default, loopback included


def test_multiprocess_mode_adds_up_every_processs_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = (
        "import sys; from hotline.metrics import CASES_OPENED; "
        "CASES_OPENED.labels(channel='open311').inc(int(sys.argv[1]))"
    )
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path / "metrics")}
    for times in ("3", "4"):
        subprocess.run([sys.executable, "-c", count, times], env=env, cwd=PROJECT_ROOT, check=True)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path / "metrics"))  # type: ignore[no-untyped-call]
    labels = {"channel": "open311"}
    assert registry.get_sample_value("hotline_cases_opened_total", labels) == 7.0
    # And a scrape in that mode reads those files, not this process's registry.
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "metrics"))
    assert process_registry().get_sample_value("hotline_cases_opened_total", labels) == 7.0


def test_what_a_transaction_settles_is_counted_when_it_commits(wiring: Wiring) -> None:
    opened = counting("hotline_cases_opened_total", channel="voice")
    closed = counting("hotline_case_outcomes_total", channel="voice", outcome="closed")
    ended = counting("hotline_calls_ended_total", status="completed")
    delivered = counting("hotline_deliveries_total", channel="webhook", outcome="delivered")
    texted = counting("hotline_case_number_sms_total", outcome="sent")
    with wiring.database.session() as session:
        with session.begin():
            case = make_case(session)
        assert opened() == 1.0
        with session.begin():
            case.status = CaseStatus.CLOSED
            case.sms_status = SmsStatus.SENT
            assert case.call is not None
            case.call.status, case.call.ended_at = "completed", utcnow()
            add_event(session, case=case, kind="delivered", channel="webhook", attempts=2)
            session.flush()
            assert closed() == 0.0  # not yet committed
        with session.begin():
            case.status = CaseStatus.CLOSED  # unchanged: no second outcome
    assert (closed(), ended(), delivered(), texted()) == (1.0, 1.0, 1.0, 1.0)


def test_a_jobs_retry_is_counted_by_its_name() -> None:
    retried = counting("hotline_job_retries_total", task="delivery.deliver")
    signals.task_retry.send(sender=deliver, request=None, reason="the receiver was down")
    assert retried() == 1.0


def test_a_scrape_with_the_broker_down_still_answers_the_rest(wiring: Wiring) -> None:
    settings = dataclasses.replace(wiring.settings, broker_url="redis://127.0.0.1:1/0")
    down = dataclasses.replace(wiring, settings=settings, celery=create_celery(settings))
    text = exposition(down).decode()
    assert 'hotline_cases_active{light="green"}' in text
    assert "hotline_broker_queue_messages" not in text
