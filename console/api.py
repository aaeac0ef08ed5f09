"""The departments' JSON API: accept, note, resolve, send back; per-department API keys."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
