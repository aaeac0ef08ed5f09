"""The worker's entry: `celery --app hotline.worker worker --beat`."""

from hotline.config import load_settings
from hotline.factory import wire

celery = wire(load_settings()).celery
