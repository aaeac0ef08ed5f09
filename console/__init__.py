"""The staff console, the public pages and the departments' JSON API.

Translations: the catalogues are kept as text (`console/translations/<locale>/LC_MESSAGES/
messages.po`, English msgids) and compiled to `.mo` when the app starts, into the instance
folder. So a fresh clone needs no extra step for `make run` or `make test`, no binary file is
committed, and a compiled catalogue can never lag behind its source. To change a text:

    pybabel extract -F babel.cfg -o console/translations/messages.pot .
    pybabel update -i console/translations/messages.pot -d console/translations
    # translate in the .po files; the next start compiles them
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Request, render_template, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel, gettext
from flask_wtf.csrf import CSRFError, CSRFProtect

csrf = CSRFProtect()
babel = Babel()
log = logging.getLogger("hotline.console")

TRANSLATIONS_SOURCE = Path(__file__).resolve().parent / "translations"
# The console speaks the city's language first; English for visitors and foreign staff.
CONSOLE_LOCALES = {"zh-CN": "zh_CN", "en-US": "en_US"}
DEFAULT_LOCALE = "zh-CN"
LOCALE_SESSION_KEY = "locale"


def console_locale() -> str:
    """The locale this request's pages are in, as the project writes locales (`zh-CN`)."""
    choice = session.get(LOCALE_SESSION_KEY)
    return choice if choice in CONSOLE_LOCALES else DEFAULT_LOCALE


def select_locale() -> str:
    """Flask-Babel's locale selector: the choice kept in the session (set from the account at
    sign-in). It reads no database, so it is safe to call in the middle of a transaction."""
    return CONSOLE_LOCALES[console_locale()]


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened empty, without building its signer, for a request
    that brings no session cookie.

    That is every Twilio webhook and API call (neither ever holds our cookie) and a visitor's
    first page: the signer (a key derivation and a serializer per request) cost ~30 us, a sixth
    of what a voice webhook does besides its database write. A session that gets something
    (a CSRF token, a sign-in) is still signed when it is saved, exactly as before.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def compile_catalogues(source: Path, target: Path) -> list[Path]:
    """Compile every `.po` under `source` to a `.mo` under `target`, in the folder Babel looks
    in for that locale (`zh_CN` is filed as `zh_Hans_CN`); returns the files written."""
    written = []
    for po_path in sorted(source.glob("*/LC_MESSAGES/*.po")):
        folder = po_path.parent.parent.name
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=folder)
        # Babel asks for a locale by its full identifier (zh_Hans_CN), so file it under that.
        out_dir = target / str(Locale.parse(folder)) / "LC_MESSAGES"
        out_dir.mkdir(parents=True, exist_ok=True)
        out_path = out_dir / (po_path.stem + ".mo")
        # Several processes start at once (gunicorn workers, Celery): write aside, then rename.
        handle, partial = tempfile.mkstemp(dir=out_dir, suffix=".mo.part")
        try:
            with os.fdopen(handle, "wb") as mo_file:
                write_mo(mo_file, catalog)
            os.replace(partial, out_path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
        written.append(out_path)
    return written


def init_console(app: Flask) -> None:
    """Register the console, public and API blueprints, with sign-in, CSRF and translations."""
    from console import api, auth, public, views

    wiring = app.extensions["hotline"]
    settings = wiring.settings
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Cookies travel over HTTPS only, except on a developer's own machine.
        SESSION_COOKIE_SECURE=settings.env == "production",
        REMEMBER_COOKIE_SECURE=settings.env == "production",
        REMEMBER_COOKIE_HTTPONLY=True,
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = CookieSessionInterface()
    csrf.init_app(app)
    # Twilio and departments' systems cannot hold a CSRF token: Twilio's requests are signed,
    # and the API authenticates every request by key, with no cookie to ride on.
    # Flask-WTF exempts a blueprint only when given the object (a string names a single view),
    # and the console may not import ivr, so the registered blueprint is looked up by name.
    ivr_blueprint = app.blueprints.get("ivr")
    if ivr_blueprint is not None:
        csrf.exempt(ivr_blueprint)
    csrf.exempt(api.bp)

    compiled = settings.instance_path / "translations"
    compile_catalogues(TRANSLATIONS_SOURCE, compiled)
    app.config.update(
        BABEL_DEFAULT_LOCALE=CONSOLE_LOCALES[DEFAULT_LOCALE],
        BABEL_TRANSLATION_DIRECTORIES=str(compiled),
        # Deadlines are set on the city's clock, so staff read times on it too.
        BABEL_DEFAULT_TIMEZONE=wiring.router.calendar.timezone,
    )
    babel.init_app(app, locale_selector=select_locale)

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> tuple[str, int]:
        log.info("form rejected: %s", error.description)
        message = gettext(
            "This form has expired or did not come from this site. "
            "Go back, reload the page and try again."
        )
        return render_template("console/error.html", message=message, code=400), 400

    auth.init_auth(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(views.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(public.bp)
