"""The web app with a 30 s write-behind linger, served by gunicorn in the graceful-stop test:
the first webhooks' rows stay queued until the worker exits, so only the exit can commit them."""

from cases import database

database.WRITE_BEHIND_LINGER_SECONDS = 30.0

from hotline.wsgi import app  # noqa: E402  (after the linger is set)

__all__ = ["app"]
