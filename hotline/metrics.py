"""Prometheus metrics for whoever runs the service, served at `/metrics` to the allowed only.

Counted at a few central points of the shell, so that no adapter and nothing of the domain
imports prometheus-client:

- the WSGI layer (`WebhookMetrics`): every `/ivr/...` webhook's latency, and the calls whose
  first webhook was answered (it sees the voice lane that answers before Flask, too);
- the database sessions (`count_domain_changes`): cases opened by channel, their outcomes,
  calls ended, case-number texts, inbound texts and deliveries settled, counted once their
  transaction has committed (a rolled-back change counts nothing);
- Celery's signals (`count_jobs`): jobs retried (a delivery's retries among them) and failed;
- at scrape time (`StateCollector`): the deadline lights of active cases, live streams in
  use, recordings waiting for the batch path, and the broker's queue depth, read from the
  database and the broker, which every process shares.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn's workers, the Celery worker and the streams
process each write their counters there), a scrape adds up every process's files; without
it, this process's own registry is served. The directory must exist, empty, before the
processes start (`make run` does that).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from celery import signals
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, attributes, sessionmaker
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from cases import texts
from cases.models import (
    ACTIVE_STATUSES,
    Call,
    Case,
    CaseEvent,
    CaseStatus,
    InboundText,
    Recording,
    RecordingStatus,
    SmsStatus,
)
from hotline.health import broker_queue_depth

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

    from hotline.wiring import Wiring

log = logging.getLogger("hotline.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
WEBHOOK_PREFIX = "/ivr/"
VOICE_ENDPOINT = "ivr.voice"

# Each process writes its counters' files there: the directory must exist before the first.
if os.environ.get(MULTIPROC_ENV):
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

CALLS = Counter("hotline_calls", "Calls whose first webhook (POST /ivr/voice) was answered")
CALLS_ENDED = Counter(
    "hotline_calls_ended", "Calls ended, by Twilio's final call status", ["status"]
)
WEBHOOK_SECONDS = Histogram(
    "hotline_webhook_seconds",
    "Time to answer a Twilio webhook, by endpoint and status class",
    ["endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0),
)
CASES_OPENED = Counter("hotline_cases_opened", "Cases opened, by channel", ["channel"])
CASE_OUTCOMES = Counter(
    "hotline_case_outcomes",
    "Cases that reached an outcome (resolved, closed, merged, sent back), by channel",
    ["channel", "outcome"],
)
DELIVERIES = Counter(
    "hotline_deliveries",
    "Outbox messages settled (delivered, or failed for good), by channel",
    ["channel", "outcome"],
)
CASE_NUMBER_TEXTS = Counter(
    "hotline_case_number_sms",
    "Texts telling a caller the case number, by outcome (sent, logged, failed, opted_out)",
    ["outcome"],
)
TEXTS_RECEIVED = Counter(
    "hotline_sms_received", "Texts to the hotline's number, by what they were taken as", ["kind"]
)
JOB_RETRIES = Counter(
    "hotline_job_retries", "Celery jobs retried (delivery.deliver: a delivery's retries)", ["task"]
)
JOB_FAILURES = Counter("hotline_job_failures", "Celery jobs that raised", ["task"])

# Outcomes of a case worth counting: where the work on it ended, or bounced.
OUTCOMES = frozenset(
    {CaseStatus.RESOLVED, CaseStatus.CLOSED, CaseStatus.MERGED, CaseStatus.SENT_BACK}
)
TEXT_OUTCOMES = frozenset({SmsStatus.SENT, SmsStatus.LOGGED, SmsStatus.FAILED, SmsStatus.OPTED_OUT})
DELIVERY_EVENTS = {"delivered": "delivered", "delivery_failed": "failed"}
_PENDING = "hotline_metrics_pending"

Observation = tuple[Counter, tuple[str, ...]]


# --- Webhooks ---------------------------------------------------------------------------------


class WebhookMetrics:
    """WSGI middleware, outermost: times each request under `/ivr/` and labels it with its
    Flask endpoint (from the app's URL map, so the labels are bounded by its routes)."""

    def __init__(self, app: WSGIApplication, url_map: Map) -> None:
        self.app = app
        self.url_map = url_map

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(WEBHOOK_PREFIX):
            return self.app(environ, start_response)
        started = time.perf_counter()
        status = ["5xx"]

        def noting_status(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = status_line[:1] + "xx"
            return start_response(status_line, headers, exc_info)

        try:
            return self.app(environ, noting_status)
        finally:
            self._observe(environ, status[0], time.perf_counter() - started)

    def _observe(self, environ: WSGIEnvironment, status: str, seconds: float) -> None:
        endpoint = self._endpoint(environ)
        WEBHOOK_SECONDS.labels(endpoint=endpoint, status=status).observe(seconds)
        if endpoint == VOICE_ENDPOINT and status == "2xx":
            CALLS.inc()

    def _endpoint(self, environ: WSGIEnvironment) -> str:
        try:
            endpoint, _arguments = self.url_map.bind_to_environ(environ).match()
        except HTTPException:  # no such route (404/405), or a redirect to one
            return "unmatched"
        return str(endpoint)


# --- Domain changes, from the database sessions -----------------------------------------------


def count_domain_changes(factory: sessionmaker[Session]) -> None:
    """Count what the sessions of `factory` commit: cases opened and settled, calls ended,
    texts, deliveries. Noted at each flush, counted after the commit, forgotten on rollback."""

    @event.listens_for(factory, "before_flush")
    def _note(session: Session, _context: Any, _instances: Any) -> None:
        noted = session.info.setdefault(_PENDING, [])
        noted.extend(_observations(session))

    @event.listens_for(factory, "after_commit")
    def _count(session: Session) -> None:
        for counter, labels in session.info.pop(_PENDING, []):
            (counter.labels(*labels) if labels else counter).inc()

    @event.listens_for(factory, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop(_PENDING, None)


def _observations(session: Session) -> Iterator[Observation]:
    for row in session.new:
        if isinstance(row, Case):
            yield CASES_OPENED, (_channel(row),)
        elif isinstance(row, CaseEvent) and row.kind in DELIVERY_EVENTS:
            channel = str((row.data or {}).get("channel") or "unknown")
            yield DELIVERIES, (channel, DELIVERY_EVENTS[row.kind])
        elif isinstance(row, InboundText) and row.kind != texts.CLAIMED:
            yield TEXTS_RECEIVED, (str(row.kind or "unknown"),)
    for row in session.dirty:
        if isinstance(row, Case):
            yield from _case_changes(row)
        elif isinstance(row, Call) and _newly_set(row, "ended_at"):
            yield CALLS_ENDED, (str(row.status),)
        elif isinstance(row, InboundText) and _changed_to(row, "kind") not in (None, texts.CLAIMED):
            # Claimed first (a retried webhook then finds the row), taken as something after.
            yield TEXTS_RECEIVED, (str(row.kind),)


def _case_changes(case: Case) -> Iterator[Observation]:
    status = _changed_to(case, "status")
    if status in OUTCOMES:
        yield CASE_OUTCOMES, (_channel(case), str(status))
    text = _changed_to(case, "sms_status")
    if text in TEXT_OUTCOMES:
        yield CASE_NUMBER_TEXTS, (str(text),)


def _channel(case: Case) -> str:
    # A new call's case has no intake until the insert applies the column's default.
    return str(case.intake or "voice")


def _changed_to(row: object, name: str) -> object | None:
    """The attribute's new value if this flush changes it to another value, else None."""
    history = attributes.get_history(row, name)
    added, deleted = list(history.added or ()), list(history.deleted or ())
    if not added:
        return None
    return added[0] if not deleted or deleted[0] != added[0] else None


def _newly_set(row: object, name: str) -> bool:
    history = attributes.get_history(row, name)
    added, deleted = list(history.added or ()), list(history.deleted or ())
    return bool(added) and added[0] is not None and not any(deleted)


# --- Jobs, from Celery's signals ---------------------------------------------------------------

_jobs_counted = False


def count_jobs() -> None:
    """Count retried and failed jobs in this process (once, however many apps it wires)."""
    global _jobs_counted
    if _jobs_counted:
        return
    _jobs_counted = True
    signals.task_retry.connect(_on_retry, weak=False)
    signals.task_failure.connect(_on_failure, weak=False)


def _task_name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or "unknown")


def _on_retry(sender: Any = None, **_: Any) -> None:
    JOB_RETRIES.labels(task=_task_name(sender)).inc()


def _on_failure(sender: Any = None, **_: Any) -> None:
    JOB_FAILURES.labels(task=_task_name(sender)).inc()


# --- State, read at scrape time ---------------------------------------------------------------


class StateCollector(Collector):
    """Gauges of shared state, read from the database and the broker when scraped: what every
    process sees alike, so no process has to keep them."""

    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring

    def collect(self) -> Iterator[Metric]:
        for part in (self._database_gauges, self._broker_gauges):
            try:
                yield from part()
            except Exception:  # a scrape answers with what it could read; the log says why
                log.warning("a metrics source could not be read", exc_info=True)

    def _database_gauges(self) -> Iterator[Metric]:
        with self.wiring.database.session() as session:
            lights: dict[str, int] = dict(
                session.execute(
                    select(Case.light, func.count())
                    .where(Case.status.in_(ACTIVE_STATUSES))
                    .group_by(Case.light)
                ).all()
            )
            live = session.scalar(
                select(func.count()).where(Call.live_decoding.is_(True), Call.ended_at.is_(None))
            )
            waiting = session.scalar(
                select(func.count()).where(Recording.status == RecordingStatus.PENDING)
            )
        cases = GaugeMetricFamily(
            "hotline_cases_active", "Active cases, by deadline light", labels=["light"]
        )
        for light in ("green", "yellow", "red"):
            cases.add_metric([light], float(lights.get(light, 0)))
        yield cases
        yield GaugeMetricFamily(
            "hotline_live_streams", "Calls being transcribed live right now", value=live or 0
        )
        yield GaugeMetricFamily(
            "hotline_recordings_pending",
            "Recordings not yet fetched from Twilio (the batch path's backlog)",
            value=waiting or 0,
        )

    def _broker_gauges(self) -> Iterator[Metric]:
        celery = self.wiring.celery
        depth = GaugeMetricFamily(
            "hotline_broker_queue_messages", "Jobs waiting in the broker's queues", labels=["queue"]
        )
        for queue in sorted(celery.amqp.queues):  # the jobs' queue and batch transcription's
            depth.add_metric([queue], float(broker_queue_depth(celery, queue)))
        yield depth


# --- Serving -----------------------------------------------------------------------------------


def process_registry() -> CollectorRegistry:
    """The counters of every process (PROMETHEUS_MULTIPROC_DIR), or of this one alone."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def exposition(wiring: Wiring) -> bytes:
    """The text a scrape gets: the processes' counters, then the state read now."""
    state = CollectorRegistry(auto_describe=False)
    state.register(StateCollector(wiring))
    return generate_latest(process_registry()) + generate_latest(state)


def may_scrape(remote_addr: str | None, authorization: str | None, wiring: Wiring) -> bool:
    """From an allowed network (METRICS_ALLOW), or with the bearer token (METRICS_TOKEN)."""
    return _has_token(authorization, wiring.settings.metrics_token) or _from_allowed_network(
        remote_addr, wiring.settings.metrics_allow
    )


def _has_token(authorization: str | None, token: str | None) -> bool:
    scheme, _, offered = (authorization or "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(offered.strip().encode(), token.encode())


def _from_allowed_network(remote_addr: str | None, networks: Iterable[str]) -> bool:
    try:
        address = ipaddress.ip_address(remote_addr or "")
    except ValueError:
        return False
    # An IPv4 client seen through an IPv6 socket (::ffff:127.0.0.1) is judged as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network) for network in networks)


def register_metrics(app: Flask, wiring: Wiring) -> None:
    """Serve `/metrics`, with a 404 to anyone not allowed: that it exists is nobody else's
    business. (The webhooks are timed by `WebhookMetrics`, which the factory puts outermost.)"""
    from flask import Response, abort, request

    @app.get("/metrics")
    def metrics() -> Response:
        if not may_scrape(request.remote_addr, request.headers.get("Authorization"), wiring):
            abort(404)
        return Response(exposition(wiring), content_type=CONTENT_TYPE_LATEST)
