"""Public pages: case lookup and the disclosure page; no personal data."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("public", __name__, template_folder="templates")
