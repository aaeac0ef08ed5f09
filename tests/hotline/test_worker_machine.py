"""A worker started on a machine of its own (hotline.worker): it has what routing needs, and
decides as the other machines do."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import Flask

from hotline.wiring import Wiring
from routing.router import Router
from tests.support.fault_worker import celery_worker_process

REPORTS = (
    "鲁城街道五马祠街的路灯不亮了",
    "开发区的井盖丢了，很危险",
    "我们小区停水两天了",
    "老板拖欠工资三个月",
)


def test_a_worker_on_a_machine_without_the_classifier_trains_one_that_decides_alike(
    environ: dict[str, str], app: Flask, wiring: Wiring, tmp_path: Path
) -> None:
    # Another machine: its own disk (no classifier there; `flask init` ran elsewhere) and, so
    # that it takes none of this session's jobs, a broker of its own.
    own_disk = tmp_path / "instance"
    classifier_path = own_disk / "classifier.joblib"
    machine = {
        **environ,
        "HOTLINE_INSTANCE_PATH": str(own_disk),
        "CLASSIFIER_PATH": str(classifier_path),
        "BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}",
    }
    log_path = tmp_path / "worker.log"

    # Ready means consuming: the classifier is there before the first job could be taken.
    with celery_worker_process(machine, log_path, what="the other machine's worker"):
        assert classifier_path.exists()
    assert "training one before taking jobs" in log_path.read_text()
    assert not list(own_disk.glob("*.part")), "a partial file was left behind"

    theirs = Router(classifier_path=classifier_path)
    ours = wiring.router
    opened_at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    for text in REPORTS:
        mine, other = (
            ours.decide(text, opened_at=opened_at),
            theirs.decide(text, opened_at=opened_at),
        )
        assert (other.category, other.department, other.urgency) == (
            mine.category,
            mine.department,
            mine.urgency,
        ), text
        assert abs(other.confidence - mine.confidence) < 1e-9, text
