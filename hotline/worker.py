"""The workers' and beat's entry: `celery --app hotline.worker worker` and
`celery --app hotline.worker beat` (the Procfile's `worker`, `transcriber` and `beat`).

Batch transcriptions have workers of their own (`transcriber`, `--queues transcription`):
they take seconds of CPU each, and in a burst a worker that also took routes and pushes gave
those only the threads the transcriptions left, so a case waited for the burst's last
transcription before it reached its department. The `worker` (`--queues celery`) takes
everything else.

Beat is not embedded in a worker (`worker --beat`): a worker killed outright left its beat
child running beside the next worker's, so sweeps ran twice. One beat per deployment.

A worker that takes transcriptions loads the speech models as it starts; every worker trains
the routing classifier first if its machine has none.
"""

import logging
import threading
from typing import Any

from celery import signals

from hotline.celery_app import TRANSCRIPTION_QUEUE, declare_queues
from hotline.config import load_settings
from hotline.factory import wire
from routing.router import ensure_classifier
from transcription.models import ModelUnavailableError

log = logging.getLogger("hotline.worker")

settings = load_settings()
wiring = wire(settings)
celery = wiring.celery
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


def _load_speech_models(**_: Any) -> None:
    """Once a worker that transcribes is up: load the speech models its batch jobs will use,
    on a thread. A worker of the other queues never opens one, and keeps the memory."""
    if TRANSCRIPTION_QUEUE not in celery.amqp.queues.consume_from:
        return
    # Loading takes seconds per model (tens on a busy machine): done here, not by the first
    # transcription after a start, and on a thread of its own so routes and pushes flow
    # meanwhile; a transcription that comes first waits on the registry's lock for the load.
    threading.Thread(target=_load_models, name="load-speech-models", daemon=True).start()


def _load_models() -> None:
    for locale in sorted(wiring.models.available()):
        try:
            wiring.models.get(locale)
        except ModelUnavailableError:  # its recordings go to the desk; each job says why
            log.warning("the %s speech model could not be loaded", locale, exc_info=True)
        else:
            log.info("the %s speech model is loaded", locale)


signals.worker_ready.connect(_load_speech_models, weak=False)
