"""The worker's and beat's entry: `celery --app hotline.worker worker` and
`celery --app hotline.worker beat`, two processes (the Procfile's `worker` and `beat`).

Beat is not embedded in a worker (`worker --beat`): a worker killed outright left its beat
child running beside the next worker's, so sweeps ran twice. One beat per deployment.
"""

import logging
from typing import Any

from celery import signals

from hotline.celery_app import declare_queues
from hotline.config import load_settings
from hotline.factory import wire
from routing.router import ensure_classifier

log = logging.getLogger("hotline.worker")

settings = load_settings()
celery = wire(settings).celery
# Before any consumer or the scheduler touches the broker (see `declare_queues`).
declare_queues(celery)


def _train_classifier_if_missing(**_: Any) -> None:
    """Before the worker takes a job: a machine without the classifier trains its own."""
    # `flask init` (the Procfile's release) trains on its own machine only; without this a
    # worker elsewhere flags every case for the desk. Beat routes nothing and skips it.
    path = settings.classifier_path
    if not path.exists():
        log.warning("no routing classifier at %s: training one before taking jobs", path)
    if ensure_classifier(path):
        log.warning("routing classifier trained at %s", path)


signals.worker_init.connect(_train_classifier_if_missing, weak=False)
