"""The staff console: sign-in, inboxes, case pages and their actions, the desk's and
supervisors' queues, and administration.

Authorisation lives in the domain's queries (`cases.access`, `cases.queries`) and its
transition table (`cases.lifecycle`); the console asks them what a person may see and which
actions to offer, and checks nothing of its own.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFError


def init_console(app: Flask) -> None:
    """Register the console's blueprints, with sign-in."""
    # Imported for their routes, which they add to the console's blueprint.
    from console import (  # noqa: F401
        actions,
        admin,
        auth,
        knowledge,
        search,
        seat,
        service_level,
        unreported_calls,
        views,
    )
    from console.blueprint import bp, form_expired

    auth.bp.register_error_handler(CSRFError, form_expired)
    auth.init_auth(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(bp)
