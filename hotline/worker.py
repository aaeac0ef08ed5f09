"""The worker's and beat's entry: `celery --app hotline.worker worker` and
`celery --app hotline.worker beat`, two processes (the Procfile's `worker` and `beat`).

Beat is not embedded in a worker (`worker --beat`): a worker killed outright left its beat
child running beside the next worker's, so sweeps ran twice. One beat per deployment.
"""

from hotline.celery_app import declare_queues
from hotline.config import load_settings
from hotline.factory import wire

celery = wire(load_settings()).celery
# Before any consumer or the scheduler touches the broker (see `declare_queues`).
declare_queues(celery)
