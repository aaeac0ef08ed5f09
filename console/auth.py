"""Sign-in for staff: Flask-Login over server-side sessions, argon2 passwords, wrong passwords
slowed per (account, address) pair; and the language switch, which works signed in or not.

The session cookie carries a random token, not the account's id (Flask-Login's "alternative
token"): the token names a `StaffSession` row, which sign-out, deactivation and a new password
delete. So a copy of the cookie, taken before any of those, opens nothing afterwards; and each
sign-in starts a new cookie with a new token and CSRF token (no session fixation)."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from cases import seats, staff, throttles
from cases.access import Actor
from cases.locales import DEFAULT_LOCALE
from cases.models import Role, User, utcnow
from console.forms import LocaleForm, LoginForm, LogoutForm, ResetPasswordForm
from hotline.web import LOCALE_SESSION_KEY, WEB_LOCALES, session_locale
from hotline.wiring import current_wiring, db

bp = Blueprint("auth", __name__, url_prefix="/console")
login_manager = LoginManager()
log = logging.getLogger("hotline.console")


class StaffUser(UserMixin):
    """The signed-in staff member for one request: a plain copy of the account, so that no
    database session has to stay open for Flask-Login's sake."""

    def __init__(self, *, user: User, token: str) -> None:
        self.id = user.id
        self.token = token
        self.username = user.username
        self.role = Role(user.role)
        self.department_code = user.department_code
        self.locale = user.locale
        self.actor: Actor = staff.actor_for(user)

    def get_id(self) -> str:
        """What Flask-Login keeps in the cookie: the session's token, not the account's id."""
        return self.token

    @property
    def is_desk(self) -> bool:
        """Whether this person works the dispatch desk's queues."""
        return self.actor.is_desk

    @property
    def sees_everything(self) -> bool:
        """Whether every case is open to this person (desk, supervisors, admins)."""
        return self.actor.sees_everything

    @property
    def is_admin(self) -> bool:
        """Whether this person administers departments, staff and time limits."""
        return self.role == Role.ADMIN

    @property
    def supervises(self) -> bool:
        """Whether this person may escalate and issue supervision notices."""
        return self.actor.supervises


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None: `next` must never send a signed-in
    person to another site (//evil.example, https://evil.example, /\\evil.example)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(character) < 0x20 for character in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@login_manager.user_loader  # type: ignore[untyped-decorator]  # Flask-Login is untyped
def load_user(token: str) -> StaffUser | None:
    """The active account behind a session token, read in a short transaction of its own;
    None once the session has ended (signed out, expired, deactivated, password changed)."""
    with db().begin():
        user = staff.user_for_session(db(), token=token, now=utcnow())
        if user is None:
            return None
        return StaffUser(user=user, token=token)


def init_auth(app: Flask) -> None:
    """Set up Flask-Login: strong session protection, the sign-in page, users loaded early."""
    login_manager.init_app(app)
    # A session cookie replayed from another address or browser is dropped.
    login_manager.session_protection = "strong"
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to use the console.")
    login_manager.login_message_category = "info"
    # The message is a lazy string: make it plain text before it is flashed into the session.
    login_manager.localize_callback = str

    @app.before_request
    def load_signed_in_user() -> None:
        # Load the account before any view opens its transaction: on SQLite one thread cannot
        # hold two transactions (the write gate), and templates may touch current_user late.
        if "_user_id" in session:
            current_user._get_current_object()

    @app.context_processor
    def chrome_forms() -> dict[str, object]:
        # Only the console's own pages carry these (each form puts a CSRF token in the session).
        if request.blueprint not in ("auth", "console"):
            return {}
        return {
            "locale_form": LocaleForm(formdata=None, locale=session_locale()),
            "logout_form": LogoutForm(formdata=None),
            "console_locale": session_locale(),
        }


def _login_page(form: LoginForm, *, status: int, error: str | None = None) -> tuple[str, int]:
    return render_template("console/login.html", form=form, error=error), status


def sign_in_policy() -> throttles.Policy:
    """The sign-in throttle, from the settings."""
    settings = current_wiring().settings
    return staff.sign_in_policy(
        free_failures=settings.login_max_failures,
        longest_pause=timedelta(seconds=settings.login_window_seconds),
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int]:
    """Sign in; while a pause runs for this account from this address, 429 with the wait."""
    target = safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(target or url_for("console.home"))
    form = LoginForm()
    if not form.is_submitted():
        form.next.data = target or ""
        return _login_page(form, status=200)
    if not form.validate():
        return _login_page(form, status=400)

    username = (form.username.data or "").strip()
    remote_addr = request.remote_addr or "unknown"
    chosen_locale = session.get(LOCALE_SESSION_KEY)
    signed_in: StaffUser | None = None
    db_session = db()
    with db_session.begin():
        now = utcnow()
        outcome = staff.sign_in(
            db_session,
            username=username,
            password=form.password.data or "",
            remote_addr=remote_addr,
            policy=sign_in_policy(),
            now=now,
        )
        if outcome.user is not None:
            # A language picked on the sign-in page is this person's choice from now on.
            if chosen_locale in WEB_LOCALES:
                outcome.user.locale = chosen_locale
            token = staff.start_session(db_session, user=outcome.user, now=now)
            signed_in = StaffUser(user=outcome.user, token=token)

    if outcome.refused:
        log.warning(
            "sign-in refused: paused after failures",
            extra={"username": username, "remote_addr": remote_addr},
        )
        page, status = _login_page(form, status=429, error=_wait_text(outcome.wait.wait_minutes))
        response = current_app.make_response((page, status))
        response.headers["Retry-After"] = str(outcome.wait.wait_seconds)
        return response
    if signed_in is None:
        log.info("sign-in failed", extra={"username": username, "remote_addr": remote_addr})
        error = _("Wrong username or password.")
        if not outcome.wait.allowed:
            error = f"{error} {_wait_text(outcome.wait.wait_minutes)}"
        return _login_page(form, status=200, error=error)

    # Nothing from before signing in carries over into the signed-in session but the language:
    # a new cookie, with a new CSRF token (no session fixation).
    session.clear()
    locale = signed_in.locale if signed_in.locale in WEB_LOCALES else DEFAULT_LOCALE
    session[LOCALE_SESSION_KEY] = locale
    login_user(signed_in)
    log.info("signed in", extra={"username": username, "remote_addr": remote_addr})
    return redirect(safe_next(form.next.data) or url_for("console.home"))


def _wait_text(minutes: int) -> str:
    return str(
        _(
            "Too many failed sign-ins for this account from here. "
            "Try again in %(minutes)s minutes, or ask an administrator to unlock it.",
            minutes=minutes,
        )
    )


@bp.post("/logout")
def logout() -> BaseResponse | tuple[str, int]:
    """Sign out (POST with a token only); the language choice stays."""
    form = LogoutForm()
    if not form.validate_on_submit():
        message = _("Could not sign out: reload the page and try again.")
        return render_template("console/error.html", message=message, code=400), 400
    if current_user.is_authenticated:
        # The session ends on the server: a copy of this cookie signs nobody in afterwards.
        with db().begin():
            staff.end_session(db(), token=current_user.token)
            # An operator who signs out is not there to answer: their seat rings no more.
            seats.leave_seat(db(), user_id=current_user.id)
        log.info("signed out", extra={"username": current_user.username})
    locale = session.get(LOCALE_SESSION_KEY)
    logout_user()
    session.clear()
    if locale in WEB_LOCALES:
        session[LOCALE_SESSION_KEY] = locale
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> BaseResponse | tuple[str, int]:
    """Set a new password through an administrator's one-time link (signed in or not). A link
    used, expired or replaced opens nothing, and says so."""
    gone = _(
        "This link no longer works: it was used, it expired, or a newer one replaced it. "
        "Ask an administrator for a new one."
    )
    form = ResetPasswordForm()
    db_session = db()
    with db_session.begin():
        # Tokens are URL-safe base64: anything else is not one, and is not looked up.
        user = (
            staff.user_for_reset_token(db_session, token=token, now=utcnow())
            if token.isascii() and len(token) <= 100
            else None
        )
        if user is None:
            return render_template("console/error.html", message=gone, code=404), 404
        username = user.username
        if not form.validate_on_submit():
            status = 400 if form.is_submitted() else 200
            page = render_template("console/reset_password.html", form=form, username=username)
            return no_store(current_app.make_response((page, status)))
        staff.reset_password(
            db_session, token=token, password=form.password.data or "", now=utcnow()
        )
    log.info("password reset through a link", extra={"username": username})
    if current_user.is_authenticated:
        logout_user()
        session.clear()
    flash(_("Your password is set: sign in with it."), "success")
    return redirect(url_for("auth.login"))


@bp.post("/locale")
def set_locale() -> BaseResponse | tuple[str, int]:
    """Switch the console's language; kept in the session and, signed in, on the account."""
    form = LocaleForm()
    if not form.validate_on_submit():
        message = _("Choose one of: %(locales)s.", locales=", ".join(WEB_LOCALES))
        return render_template("console/error.html", message=message, code=400), 400
    locale = form.locale.data
    session[LOCALE_SESSION_KEY] = locale
    if current_user.is_authenticated:
        with db().begin():
            user = db().get(User, current_user.id)
            if user is not None:
                user.locale = locale
    fallback = url_for("console.home") if current_user.is_authenticated else url_for("auth.login")
    return redirect(safe_next(form.next.data) or fallback)


def no_store(response: Response) -> Response:
    """Mark a response that shows a secret or personal data as never to be cached."""
    response.headers["Cache-Control"] = "private, no-store"
    return response


# The console loads nothing from elsewhere and most pages run no script, so the policy can be
# strict; it also keeps the console out of other sites' frames (clickjacking a "resolve"
# button).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# A page that runs scripts of our own (the seat's live updates, the charts) and nothing else:
# still no inline script and nothing from another site.
OWN_SCRIPTS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'none'", "script-src 'self'"
)


def runs_own_scripts(response: Response) -> Response:
    """Let this page run the site's own scripts (`OWN_SCRIPTS_CONTENT_SECURITY_POLICY`)."""
    response.headers["Content-Security-Policy"] = OWN_SCRIPTS_CONTENT_SECURITY_POLICY
    return response


def harden(response: Response) -> Response:
    """Security headers for every console page; pages with personal data are not cached."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "private, no-store"
    return response


bp.after_request(harden)
