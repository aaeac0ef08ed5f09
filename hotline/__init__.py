"""The shell: it builds the web app and the worker from the environment and wires them; it
decides nothing. `flask --app hotline ...` and gunicorn's `hotline.wsgi:app` start here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


def create_app(environ: Mapping[str, str] | None = None) -> Flask:
    """The Flask app, configured from the environment (or from `environ` in tests)."""
    # Imported here, not at the top: adapters import `hotline.wiring`, and importing this
    # package must not import them in turn.
    from hotline.factory import build_app

    return build_app(environ)
