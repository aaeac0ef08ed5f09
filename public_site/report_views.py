"""The web report form (`/report`): a report opens a case, as a call does.

It works without JavaScript: "Text me a code" posts the whole form, which comes back with every
field kept (a chosen photo is held on the server) and the code field open; "Send the report"
checks the code and opens the case. With JavaScript, the code is asked for in place (the same
request, answered in JSON) and the rest is the same. Reports are throttled per address, codes
per number and address (`cases.verification`); the case speaks the page's language.
"""

from __future__ import annotations

import logging
import secrets

from flask import jsonify, redirect, request, url_for
from flask import session as browser_session
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from cases import attachments, phones, throttles, verification, web_reports
from cases.attachments import CheckedPhoto, PhotoRejectedError
from cases.models import Case, utcnow
from cases.privacy import mask_number
from hotline.wiring import current_wiring, db
from public_site.report_form import (
    ReportForm,
    aria,
    code_error,
    photo_error,
    place_groups,
    place_options,
)
from public_site.views import bp, chosen_locale, localised, page_locale, render_public
from routing.tasks import enqueue_routing

log = logging.getLogger("hotline.public")

# The report page runs its own script and asks for a code with fetch; nothing else changes.
REPORT_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Room for the text fields around the largest photo, before the request is read at all.
FORM_OVERHEAD_BYTES = 256 * 1024

VERIFICATION_KEY = "report_verification"
HELD_PHOTO_KEY = "report_photo"
LAST_CASE_KEY = "report_case"


def _remote_addr() -> str:
    return request.remote_addr or "unknown"


def _new_form() -> ReportForm:
    form = ReportForm()
    places = place_options(current_wiring().router.gazetteer)
    form.place.choices = [("", ""), *[(place.code, place.name) for place in places]]
    if not form.submission.data:
        form.submission.data = secrets.token_urlsafe(16)
    return form


def _render_form(
    form: ReportForm, *, status: int = 200, **context: object
) -> tuple[str, int, dict[str, str]]:
    settings = current_wiring().settings
    held = attachments.held_photo(
        browser_session.get(HELD_PHOTO_KEY),
        media_dir=settings.media_dir,
        max_bytes=settings.photo_max_bytes,
    )
    html, code = render_public(
        "public/report.html",
        status=status,
        form=form,
        groups=place_groups(place_options(current_wiring().router.gazetteer), page_locale()),
        held_photo=held,
        max_megabytes=settings.photo_max_bytes // 2**20,
        has_errors=any(field.errors for field in form),
        aria=aria,
        **context,
    )
    return html, code, {"Content-Security-Policy": REPORT_CONTENT_SECURITY_POLICY}


def _wants_json() -> bool:
    # The page's script asks for the code in place; a plain form post wants the page.
    return request.accept_mimetypes.best == "application/json"


def _phone_number(form: ReportForm) -> str | None:
    """The typed number in E.164, None when empty; an error on the field if it is not one."""
    raw = (form.phone.data or "").strip()
    if not raw or form.phone.errors:
        return None
    number = phones.to_e164(raw, region=current_wiring().settings.phone_default_region)
    if number is None:
        form.phone.errors = [_("This is not a phone number we can text: please check it.")]
    return number


def _take_photo(form: ReportForm) -> CheckedPhoto | None:
    """The photo chosen now, else the one held from an earlier post of this form (unless the
    visitor removed it); a chosen file we do not take is an error on the field."""
    settings = current_wiring().settings
    held_token = browser_session.get(HELD_PHOTO_KEY)
    upload = request.files.get(form.photo.name)
    if upload is not None and upload.filename:
        try:
            data = upload.stream.read(settings.photo_max_bytes + 1)
        finally:
            # A large upload is spooled to a temporary file: closed now, not at collection.
            upload.close()
        try:
            photo = attachments.check_photo(data, max_bytes=settings.photo_max_bytes)
        except PhotoRejectedError as error:
            form.photo.errors = [photo_error(error.reason, max_bytes=settings.photo_max_bytes)]
            return attachments.held_photo(
                held_token, media_dir=settings.media_dir, max_bytes=settings.photo_max_bytes
            )
        attachments.release_held_photo(held_token, media_dir=settings.media_dir)
        browser_session.pop(HELD_PHOTO_KEY, None)
        return photo
    if form.remove_photo.data:
        attachments.release_held_photo(held_token, media_dir=settings.media_dir)
        browser_session.pop(HELD_PHOTO_KEY, None)
        form.remove_photo.data = False
        return None
    return attachments.held_photo(
        held_token, media_dir=settings.media_dir, max_bytes=settings.photo_max_bytes
    )


def _hold(photo: CheckedPhoto | None) -> None:
    """Keep the photo for the next post of the form, unless it is held already."""
    if photo is None or browser_session.get(HELD_PHOTO_KEY):
        return
    token = attachments.hold_photo(
        photo, media_dir=current_wiring().settings.media_dir, now=utcnow()
    )
    if token is not None:
        browser_session[HELD_PHOTO_KEY] = token


def _text_code(number: str, code: str) -> bool:
    """Text the code in the page's language; False if it could not be sent. Without a Twilio
    account (or a mock) the text is written to the log, as caller texts are."""
    body = _("Do-It-Now Line: your code is %(code)s. It works for 10 minutes.", code=code)
    send_sms = current_wiring().senders.send_sms
    if send_sms is None:
        log.info("SMS not configured; would text %s: %s", mask_number(number), body)
        return True
    try:
        send_sms(number, body)
    except Exception:
        # Whatever went wrong, the visitor is told the text did not go and may try again.
        log.exception("verification code not sent to %s", mask_number(number))
        return False
    return True


def _send_code(form: ReportForm, number: str | None) -> ResponseReturnValue:
    """Step one: text a code to the number, and show the form again with the code field."""
    if number is None and not form.phone.errors:
        form.phone.errors = [_("Enter your mobile number to get a code.")]
    if number is None:
        return _code_answer(form, sent=False, status=400)
    with db().begin():
        outcome = verification.request_code(
            db(), number=number, remote_addr=_remote_addr(), now=utcnow()
        )
    if isinstance(outcome, verification.SendRefused):
        form.phone.errors = [
            _(
                "Too many codes were asked for. Please try again in %(minutes)s minutes.",
                minutes=outcome.wait.wait_minutes,
            )
        ]
        return _code_answer(form, sent=False, status=429)
    if not _text_code(number, outcome.code):
        form.phone.errors = [_("We could not text this number just now. Please try again.")]
        return _code_answer(form, sent=False, status=503)
    browser_session[VERIFICATION_KEY] = outcome.verification_id
    form.code.data = ""
    return _code_answer(form, sent=True, status=200)


def _code_answer(form: ReportForm, *, sent: bool, status: int) -> ResponseReturnValue:
    message = (
        _("We have texted a code to %(number)s. Type it below.", number=form.phone.data)
        if sent
        else form.phone.errors[0]
    )
    if _wants_json():
        return jsonify({"sent": sent, "message": message}), status
    # The other fields are not checked yet: the visitor has not sent the report.
    for field in (form.description, form.address, form.code):
        field.errors = []
    return _render_form(form, status=status, code_sent=sent, code_message=message)


def _check_phone(form: ReportForm, number: str | None) -> bool:
    """Whether the number (if any) is proved: earlier in this browser, or by the typed code.
    A wrong code is spent (and committed) even though no case is opened."""
    if number is None:
        return not form.phone.errors
    verification_id = browser_session.get(VERIFICATION_KEY)
    now = utcnow()
    with db().begin():
        if verification.is_verified(db(), verification_id=verification_id, number=number, now=now):
            return True
        typed = (form.code.data or "").strip()
        if not typed:
            form.code.errors = [
                _(
                    "Ask for a code and type it here, or leave the mobile number empty to "
                    "report without it."
                )
            ]
            return False
        confirmation = verification.confirm_code(
            db(), verification_id=verification_id, number=number, code=typed, now=now
        )
    if confirmation.outcome == verification.Outcome.VERIFIED:
        return True
    form.code.errors = [code_error(confirmation.outcome, confirmation.tries_left)]
    return False


def _phone_verified(number: str | None) -> bool:
    if number is None:
        return False
    with db().begin():
        return verification.is_verified(
            db(),
            verification_id=browser_session.get(VERIFICATION_KEY),
            number=number,
            now=utcnow(),
        )


def _refuse_throttled(form: ReportForm, photo: CheckedPhoto | None) -> ResponseReturnValue | None:
    with db().begin():
        wait = web_reports.report_wait(db(), remote_addr=_remote_addr(), now=utcnow())
    if wait.allowed:
        return None
    return _throttled(form, photo, wait)


def _throttled(
    form: ReportForm, photo: CheckedPhoto | None, wait: throttles.Verdict
) -> ResponseReturnValue:
    _hold(photo)
    html, status, headers = _render_form(
        form, status=429, throttled=True, wait_minutes=wait.wait_minutes
    )
    return html, status, {**headers, "Retry-After": str(wait.wait_seconds)}


def _open_case(form: ReportForm, number: str | None, photo: CheckedPhoto | None) -> str:
    """Open the case, queue its routing, and forget the held photo; returns the case number."""
    settings = current_wiring().settings
    places = {p.code: p for p in place_options(current_wiring().router.gazetteer)}
    place = places.get(form.place.data or "")
    report = web_reports.WebReport(
        description=form.description.data or "",
        locale=page_locale(),
        place_name=place.name if place else None,
        address=form.address.data or None,
        number=number,
        photo=photo,
        submission=(form.submission.data or "").strip()[:64] or None,
    )
    with db().begin():
        opened = web_reports.open_web_report(
            db(),
            report=report,
            media_dir=settings.media_dir,
            remote_addr=_remote_addr(),
            now=utcnow(),
        )
        case_id, case_number = opened.case.id, opened.case.number
    if opened.created:
        enqueue_routing(case_id)
    attachments.release_held_photo(
        browser_session.pop(HELD_PHOTO_KEY, None), media_dir=settings.media_dir
    )
    log.info("web report opened a case", extra={"case_number": case_number})
    return case_number


def _too_large() -> bool:
    limit = current_wiring().settings.photo_max_bytes + FORM_OVERHEAD_BYTES
    return request.content_length is not None and request.content_length > limit


@bp.route("/report", methods=["GET", "POST"])
@localised
def report() -> ResponseReturnValue:
    """Report a problem in writing: a case is opened at once and its number shown."""
    form = _new_form()
    if request.method == "GET":
        return _render_form(form)
    if _too_large():
        max_megabytes = current_wiring().settings.photo_max_bytes // 2**20
        message = _("This photo is too large: at most %(megabytes)s MB.", megabytes=max_megabytes)
        html, status = render_public("public/error.html", status=413, message=message)
        return html, status
    form.validate()
    number = _phone_number(form)
    photo = _take_photo(form)
    if form.send_code.data:
        if not _wants_json():
            _hold(photo)
        return _send_code(form, number)
    throttled = _refuse_throttled(form, photo)
    if throttled is not None:
        return throttled
    phone_ok = _check_phone(form, number)
    if any(field.errors for field in form) or not phone_ok:
        _hold(photo)
        return _render_form(
            form, status=400, verified=_phone_verified(number), code_sent=number is not None
        )
    try:
        browser_session[LAST_CASE_KEY] = _open_case(form, number, photo)
    except web_reports.ReportThrottledError as refused:
        # Another post from this address (through any web process) was counted meanwhile.
        return _throttled(form, photo, refused.wait)
    return redirect(url_for("public.report_sent", lang=chosen_locale()), code=303)


@bp.get("/report/sent")
@localised
def report_sent() -> ResponseReturnValue:
    """The case number of the report this browser sent last, and how to follow the case."""
    number = browser_session.get(LAST_CASE_KEY)
    if not number:
        return redirect(url_for("public.report", lang=chosen_locale()))
    with db().begin():
        case = db().query(Case).filter_by(number=number).one_or_none()
        with_phone = case is not None and case.caller_number is not None
    html, status = render_public("public/report_sent.html", number=number, with_phone=with_phone)
    return html, status, {"Cache-Control": "no-store"}
