"""The worker's entry: `celery --app hotline.worker worker --beat`."""

from hotline import wire
from hotline.config import load_settings

celery = wire(load_settings()).celery
