"""What every web page shares: the signed cookie session, CSRF, security headers, the language
of the page (Flask-Babel), and the translation catalogues.

The catalogues are kept as text (`hotline/translations/<locale>/LC_MESSAGES/messages.po`, English
msgids) and compiled to `.mo` when the app starts, into the instance folder. So a fresh clone
needs no extra step for `make run` or `make test`, no binary file is committed, and a compiled
catalogue can never lag behind its source. To change a text:

    pybabel extract -F babel.cfg -k _l -k lazy_gettext -k N_ --no-location --sort-output \
        -w 100 -o hotline/translations/messages.pot .
    pybabel update -w 100 -i hotline/translations/messages.pot -d hotline/translations
    # translate in the .po files; the next start compiles them
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, Request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel
from flask_wtf.csrf import CSRFProtect
from werkzeug.routing import IntegerConverter, Map

from cases.locales import DEFAULT_LOCALE
from cases.models import ROW_ID_MAX
from hotline.config import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

csrf = CSRFProtect()
babel = Babel()

TRANSLATIONS_SOURCE = Path(__file__).resolve().parent / "translations"
# The charts' script, built from npm by `make install` (hotline/templates/charts.html).
CHARTS_BUNDLE = Path(__file__).resolve().parent / "static" / "charts.js"

log = logging.getLogger("hotline.web")
# The pages speak the city's language first; English for visitors and foreign staff.
WEB_LOCALES = {"zh-CN": "zh_CN", "en-US": "en_US"}
LOCALE_SESSION_KEY = "locale"


def session_locale() -> str:
    """The locale chosen in this browser (set from the account at sign-in), as the project
    writes locales (`zh-CN`); Chinese unless another was chosen."""
    choice = session.get(LOCALE_SESSION_KEY)
    return choice if choice in WEB_LOCALES else DEFAULT_LOCALE


def select_locale() -> str:
    """Flask-Babel's locale selector: the choice kept in the session. It reads no database, so
    it is safe to call in the middle of a transaction."""
    return WEB_LOCALES[session_locale()]


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, opened empty, without building its signer, for a request
    that brings no session cookie.

    That is every Twilio webhook and API call (neither ever holds our cookie) and a visitor's
    first page, where the signer (a key derivation and a serializer per request) was a visible
    share of a webhook's cost. A session that gets something (a CSRF token, a sign-in) is still
    signed when it is saved, exactly as before.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


# What every answer carries unless its blueprint set its own (the console's and the public
# site's pages have a CSP each that allows their stylesheets). No page runs a script, inline or
# not, and no page may be framed by another site (clickjacking a "resolve" button).
DEFAULT_SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
)
# Browsers that reached us over HTTPS keep to it for a year, subdomains included.
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


class SecurityHeaders:
    """WSGI middleware that puts the security headers on every answer Flask gives: pages, error
    pages, JSON, TwiML (only the voice entry's lane in front of it answers without them).

    HSTS goes only on answers to HTTPS requests; behind a proxy that terminates TLS, the
    request counts as HTTPS when `TRUSTED_PROXIES` lets ProxyFix believe X-Forwarded-Proto
    (ProxyFix rewrites the environ before the answer starts, so this layer sees it).
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> object:
            present = {name.lower() for name, _value in headers}
            wanted = list(DEFAULT_SECURITY_HEADERS)
            if environ.get("wsgi.url_scheme") == "https":
                wanted.append(HSTS)
            headers.extend(header for header in wanted if header[0].lower() not in present)
            return start_response(status, headers, exc_info)  # type: ignore[arg-type]

        return self.app(environ, start)  # type: ignore[arg-type]


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


class RowIdConverter(IntegerConverter):
    """`<row_id:name>` in a route: a row's id, and a 404 for one no row can have (an id past
    what the database's integer holds would make the query fail instead)."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, max=ROW_ID_MAX)


def init_web(app: Flask, *, settings: Settings, timezone: str) -> None:
    """Cookies, CSRF and translations for every page; `timezone` is the city's clock, on which
    deadlines are set and pages show times."""
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
    app.url_map.converters["row_id"] = RowIdConverter
    csrf.init_app(app)
    compiled = settings.instance_path / "translations"
    compile_catalogues(TRANSLATIONS_SOURCE, compiled)
    app.config.update(
        BABEL_DEFAULT_LOCALE=WEB_LOCALES[DEFAULT_LOCALE],
        BABEL_TRANSLATION_DIRECTORIES=str(compiled),
        BABEL_DEFAULT_TIMEZONE=timezone,
    )
    babel.init_app(app, locale_selector=select_locale)
    if not CHARTS_BUNDLE.exists():
        # The pages still work: each chart's figure stays hidden and its table is read instead.
        log.warning(
            "the charts' script %s is not built (make install builds it): pages will show "
            "their tables without charts",
            CHARTS_BUNDLE,
        )
