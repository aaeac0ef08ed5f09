"""The console's blueprint and what every console page shares: sign-in required, security
headers, error pages in the staff member's language, labels and template helpers."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from datetime import datetime
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from cases.access import Actor
from cases.errors import (
    CaseError,
    InvalidInputError,
    InvalidTransitionError,
    NotAllowedError,
    UnknownCaseError,
)
from cases.models import Case, CaseStatus
from console.auth import harden, login_manager
from console.presenters import (
    LANGUAGE_LABELS,
    LIGHT_LABELS,
    STATUS_LABELS,
    TRANSCRIPT_SOURCE_LABELS,
    URGENCY_LABELS,
    actor_label,
    deadline_rule_label,
    problem_text,
    review_reason_text,
)
from console.seat_labels import LOCALE_LABELS
from hotline.wiring import current_wiring

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)
log = logging.getLogger("hotline.console")
bp.after_request(harden)

PAGE_SIZE = 50
# How long a recording's link works: long enough to listen on a page left open for a while,
# short enough that a link copied into a chat or a log is soon worth nothing.
RECORDING_LINK_SECONDS = 3600
# Far past any real inbox; it keeps OFFSET within what every database accepts.
MAX_PAGE = 100_000


def actor() -> Actor:
    """The signed-in person as the domain sees them."""
    return current_user.actor  # type: ignore[no-any-return]


@bp.before_request
def require_sign_in() -> Response | None:
    """Every console page needs a signed-in account; the stylesheet does not."""
    if request.endpoint == "console.static" or current_user.is_authenticated:
        return None
    if request.method == "GET":
        return login_manager.unauthorized()  # type: ignore[no-any-return]
    # After signing in, nobody should land on a POST-only address.
    flash(_("Please sign in to use the console."), "info")
    return redirect(url_for("auth.login"))


def error_page(message: str, code: int) -> tuple[str, int]:
    """The console's error page with this message."""
    return render_template("console/error.html", message=message, code=code), code


@bp.errorhandler(UnknownCaseError)
def unknown_case(error: UnknownCaseError) -> tuple[str, int]:
    """404: no such case, or none this person may see (the same answer, on purpose)."""
    return error_page(_("No case %(number)s is open to you.", number=error.number), 404)


@bp.errorhandler(NotFound)
def not_found(error: NotFound) -> tuple[str, int]:
    """404 in the console's own words."""
    return error_page(_("There is nothing here."), 404)


@bp.errorhandler(NotAllowedError)
def not_allowed(error: NotAllowedError) -> tuple[str, int]:
    """403: this person may not do that, and why (the domain's refusal, translated)."""
    log.info("refused: %s", error, extra={"username": current_user.username})
    reason = refusal_text(error).rstrip(".")
    return error_page(_("You may not do that. %(reason)s.", reason=reason), 403)


@bp.errorhandler(InvalidInputError)
def invalid_input(error: InvalidInputError) -> tuple[str, int]:
    """400 for a bad filter or parameter on a list page."""
    return error_page(refusal_text(error), 400)


def form_expired(error: CSRFError) -> tuple[str, int]:
    """400 for a form whose CSRF token is missing or stale (also for the sign-in pages)."""
    log.info("form rejected: %s", error.description)
    message = _(
        "This form has expired or did not come from this site. "
        "Go back, reload the page and try again."
    )
    return error_page(message, 400)


bp.register_error_handler(CSRFError, form_expired)


def refusal_text(error: CaseError) -> str:
    """A domain refusal in the page's language: the domain marks its messages for translation
    (`cases.errors.N_`); a refusal of the case's state is said with the state's own name."""
    if isinstance(error, InvalidTransitionError) and str(error) == error.generic:
        status = STATUS_LABELS.get(CaseStatus(error.status), error.status)
        return str(_("This cannot be done now: the case is “%(status)s”.", status=status))
    return str(_(str(error)))


@bp.context_processor
def labels() -> dict[str, Any]:
    """The translated names of statuses, lights and urgencies, for every console page."""
    return {
        "status_labels": STATUS_LABELS,
        "light_labels": LIGHT_LABELS,
        "urgency_labels": URGENCY_LABELS,
        "language_labels": LANGUAGE_LABELS,
        "transcript_source_labels": TRANSCRIPT_SOURCE_LABELS,
        # A member of staff's console language, named in itself as the switch names it.
        "ui_language_labels": LOCALE_LABELS,
    }


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    """A timestamp on the city's clock, or a dash."""
    return format_datetime(value, "yyyy-MM-dd HH:mm") if value else "—"


@bp.app_template_filter("deadline_rule")
def deadline_rule(value: str | None) -> str:
    """Routing's deadline rule ("5 working days") in the reader's language."""
    return deadline_rule_label(value)


@bp.app_template_filter("review_reason")
def review_reason_filter(reason: str | None) -> str:
    """Why the desk should look at a case, said for people."""
    return review_reason_text(reason)


@bp.app_template_filter("problem")
def problem_filter(case: Case) -> str:
    """What the case is about: the work order, else the caller's own words."""
    return problem_text(case)


@bp.app_template_filter("actor")
def actor_filter(value: str) -> str:
    """Who wrote a timeline entry, in the reader's language."""
    return actor_label(value)


@bp.app_template_global()
def page_url(page: int) -> str:
    """This list at another page, its filters kept (but never url_for's own "_" arguments)."""
    query = {key: value for key, value in request.args.items() if not key.startswith("_")}
    return url_for(
        request.endpoint or ".home", **{**(request.view_args or {}), **query, "page": page}
    )


def page_argument() -> int:
    """The `page` query argument: a whole number from 1."""
    raw = request.args.get("page", "1")
    # isascii: str.isdigit() also accepts superscripts, which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInputError(_("The page must be a whole number from 1."))
    return int(raw)


def _file_signature(*, kind: str, file_id: int, user_id: int, expires: int) -> str:
    # The kind is signed too: a recording's link never opens the photo with the same id.
    key = current_wiring().settings.secret_key.encode()
    message = f"{kind}-link:{file_id}:{user_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _recording_signature(*, recording_id: int, user_id: int, expires: int) -> str:
    return _file_signature(kind="recording", file_id=recording_id, user_id=user_id, expires=expires)


def _signed_file_link(
    endpoint: str, *, kind: str, id_name: str, file_id: int, now: float | None, **values: Any
) -> str:
    expires = int(time.time() if now is None else now) + RECORDING_LINK_SECONDS
    signature = _file_signature(
        kind=kind, file_id=file_id, user_id=current_user.id, expires=expires
    )
    arguments: dict[str, Any] = {id_name: file_id, **values}
    return url_for(endpoint, expires=expires, signature=signature, **arguments)


def _signed_recording_link(
    endpoint: str, recording_id: int, now: float | None, **values: Any
) -> str:
    return _signed_file_link(
        endpoint, kind="recording", id_name="recording_id", file_id=recording_id, now=now, **values
    )


@bp.app_template_global()
def recording_url(number: str, recording_id: int, *, now: float | None = None) -> str:
    """The recording's link for the signed-in person: signed, and expiring after
    RECORDING_LINK_SECONDS. It works only with that person's own session besides."""
    return _signed_recording_link("console.recording", recording_id, now, number=number)


@bp.app_template_global()
def unreported_call_recording_url(call_id: int, recording_id: int) -> str:
    """The same kind of link for a recording on the desk's list of calls without a report."""
    return _signed_recording_link(
        "console.unreported_call_recording", recording_id, None, call_id=call_id
    )


@bp.app_template_global()
def attachment_url(number: str, attachment_id: int) -> str:
    """A reporter's photo's link, signed and expiring like a recording's."""
    return _signed_file_link(
        "console.attachment",
        kind="attachment",
        id_name="attachment_id",
        file_id=attachment_id,
        now=None,
        number=number,
    )


def file_link_valid(kind: str, file_id: int) -> bool:
    """Whether this request's link to a stored file (a recording, a photo) was made for this
    person and has not expired (or been altered: the signature covers the kind, the file, the
    person and the expiry)."""
    raw_expires, signature = request.args.get("expires", ""), request.args.get("signature", "")
    if not (raw_expires.isascii() and raw_expires.isdigit()) or len(raw_expires) > 12:
        return False
    expires = int(raw_expires)
    wanted = _file_signature(kind=kind, file_id=file_id, user_id=current_user.id, expires=expires)
    return hmac.compare_digest(wanted, signature) and time.time() <= expires


def recording_link_valid(recording_id: int) -> bool:
    """Whether this request's recording link is valid (`file_link_valid`)."""
    return file_link_valid("recording", recording_id)
