"""The web app with a 30 s write-behind linger, served by gunicorn in the graceful-stop test:
the first webhooks' rows stay queued until the worker exits, so only the exit can commit them."""

from hotline.wiring import wiring_of
from hotline.wsgi import app

wiring_of(app).database.group_commit.linger_seconds = 30.0

__all__ = ["app"]
