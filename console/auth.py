"""Sign-in for staff: Flask-Login sessions, hashed passwords, throttled failures."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("auth", __name__, url_prefix="/console")


def init_auth(app: Flask) -> None:
    """Set up Flask-Login and translations (filled in by the console's sign-in work)."""
