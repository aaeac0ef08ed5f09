"""The staff console, the public pages and the departments' JSON API."""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def init_console(app: Flask) -> None:
    """Register the console, public and API blueprints, with sign-in, CSRF and translations."""
    from console import api, auth, public, views

    settings = app.extensions["hotline"].settings
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Cookies travel over HTTPS only, except on a developer's own machine.
        SESSION_COOKIE_SECURE=settings.env == "production",
        REMEMBER_COOKIE_SECURE=settings.env == "production",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
    )
    csrf.init_app(app)
    # Twilio and departments' systems cannot hold a CSRF token: Twilio's requests are signed,
    # and the API authenticates every request by key, with no cookie to ride on.
    csrf.exempt("ivr")
    csrf.exempt(api.bp)
    auth.init_auth(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(public.bp)
