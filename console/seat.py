"""The operator's seat page (座席): the phone that rings them, their status, the call they are
on with its live assistant (`console.seat_live`), the case they write during it, the wrap-up
code after it, and the callbacks owed; and, for supervisors and the desk, a read-only list of
the seats, the callers waiting and the callbacks owed.

Each request owns one transaction; the phone system (`SeatTelephony`) is asked to act only
after it has committed, so a job never looks for a row that is not there yet.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Response,
    flash,
    make_response,
    redirect,
    render_template,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from cases import callbacks, lifecycle, seats
from cases.access import Actor, require
from cases.callbacks import attempt_under_way, failed_attempts, open_callbacks
from cases.errors import (
    InvalidInputError,
    InvalidTransitionError,
    NotAllowedError,
    UnknownCallError,
    UnknownCaseError,
)
from cases.intake import open_case_for_person
from cases.models import Case, Role, Seat, SeatStatus, User, WrapUpCode, utcnow
from cases.privacy import mask_number
from cases.seats import SeatTelephony, operator_entry, seat_of
from console.auth import runs_own_scripts
from console.blueprint import actor, bp, refusal_text
from console.case_page import directory_now
from console.forms import choices
from console.presenters import NamedDirectory, shows_full_number
from console.seat_forms import (
    CallBackForm,
    EmergencyTransferForm,
    SeatAddressForm,
    SeatCaseForm,
    SeatStatusForm,
    WrapUpForm,
    local_input_value,
)
from console.seat_labels import (
    ATTEMPT_OUTCOME_LABELS,
    CALLBACK_REASON_LABELS,
    EMERGENCY_LABELS,
    LOCALE_LABELS,
    REASON_LABELS,
    SEAT_STATUS_LABELS,
    STATUS_BUTTONS,
    WRAP_UP_LABELS,
)
from console.seat_live import (
    Advice,
    SeatView,
    decide,
    directory_routes,
    is_earlier_case,
    read_seat,
    seat_stream,
    suggest_article,
)
from hotline.wiring import current_wiring, db

log = logging.getLogger("hotline.console")


def telephony() -> SeatTelephony:
    """The phone system's side of the seats, as the shell wired it."""
    return current_wiring().telephony


def operator() -> Actor:
    """The signed-in operator; anyone else is refused (403)."""
    who = actor()
    require(who.role == Role.OPERATOR, _("Only operators have a seat."))
    return who


def _seat_response(page: str, status: int) -> BaseResponse:
    # The seat page runs one script of its own, the live updates.
    return runs_own_scripts(make_response(page, status))


def _category_choices(directory: NamedDirectory) -> list[tuple[str, str]]:
    return [("", str(_("Choose a category"))), *directory.category_choices()]


def _place_choices() -> list[tuple[str, str]]:
    places = {alias.code: alias.name for alias in current_wiring().router.gazetteer.aliases}
    return [("", str(_("No place named"))), *sorted(places.items(), key=lambda p: p[0])]


def case_form(directory: NamedDirectory, **kwargs: Any) -> SeatCaseForm:
    """The case form with the directory's choices."""
    form = SeatCaseForm(**kwargs)
    form.category.choices = choices(_category_choices(directory))
    form.department.choices = choices(
        [("", _("Choose a department")), *directory.handling_departments()]
    )
    form.place.choices = choices(_place_choices())
    return form


def prefill(view: SeatView, advice: Advice) -> dict[str, str]:
    """The case form's values from the words heard and the router's suggestion."""
    timezone = current_wiring().router.calendar.timezone
    values = {"summary": view.call.live_text if view.call else ""}
    decision = advice.decision
    if decision is not None:
        values.update(
            category=decision.category,
            department=decision.department,
            urgency=decision.urgency,
            place=decision.place.code if decision.place else "",
            deadline=local_input_value(decision.deadline, timezone),
            suggested=decision.category,
        )
    return values


def _fresh_case_form(directory: NamedDirectory, view: SeatView, advice: Advice) -> SeatCaseForm:
    assert view.call is not None
    values: dict[str, Any] = prefill(view, advice)
    deadline = values.pop("deadline", "")
    form = case_form(directory, formdata=None, entry=str(view.call.entry_id), **values)
    if deadline:
        form.deadline.raw_data = [deadline]
    return form


def _callback_rows(*, full_numbers: bool = True) -> list[dict[str, Any]]:
    """The open callbacks as `_callbacks.html` shows them; the number whole for those who call
    (operators, the desk), masked for the rest."""
    return [
        {
            "task": task,
            "number": task.caller_number if full_numbers else mask_number(task.caller_number),
            "reason": CALLBACK_REASON_LABELS.get(task.reason, task.reason),
            "attempts": [
                (attempt, ATTEMPT_OUTCOME_LABELS.get(attempt.outcome, attempt.outcome))
                for attempt in task.attempt_rows
            ],
            "failed": failed_attempts(task),
            "most": callbacks.MAX_ATTEMPTS,
            "under_way": attempt_under_way(task) is not None,
        }
        for task in open_callbacks(db())
    ]


def render_seat(
    *,
    address_form: SeatAddressForm | None = None,
    posted_case_form: SeatCaseForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> BaseResponse:
    """The seat page as the database holds it now; `posted_*` are forms shown again with
    what was posted, after a refusal."""
    wiring = current_wiring()
    with db().begin():
        view = read_seat(db(), user_id=current_user.id)
        call = view.call if view is not None else None
        article = suggest_article(wiring, db(), call.live_text, call.locale) if call else None
        routes = directory_routes(db()) if call else {}
    # The classifier runs between the transactions: on SQLite each one holds the write gate.
    decision = decide(wiring, call.live_text, routes) if call else None
    advice = Advice(decision=decision, article=article)
    with db().begin():
        directory = directory_now(db())
        form = posted_case_form
        if form is None and view is not None and view.call and not view.opened_case:
            form = _fresh_case_form(directory, view, advice)
        if address_form is None:
            address_form = SeatAddressForm(formdata=None, address=view.address if view else "")
        page = render_template(
            "console/seat.html",
            view=view,
            advice=advice,
            shown=advice.shown(),
            directory=directory,
            address_form=address_form,
            case_form=form,
            error=error,
            **_page_parts(view),
            callbacks=_callback_rows(),
            # One form for every row's button: they carry the same CSRF token.
            callback_form=CallBackForm(formdata=None) if view is not None else None,
        )
    return _seat_response(page, status)


def _page_parts(view: SeatView | None) -> dict[str, Any]:
    """What the page and the live stream's fragments both need."""
    entry_id = str(view.call.entry_id) if view and view.call else ""
    return {
        "status_form": SeatStatusForm(formdata=None),
        "status_labels_seat": SEAT_STATUS_LABELS,
        "status_buttons": STATUS_BUTTONS,
        "reason_labels": REASON_LABELS,
        "locale_labels": LOCALE_LABELS,
        "emergency_form": EmergencyTransferForm(formdata=None, entry=entry_id),
        "wrap_up_form": WrapUpForm(formdata=None, entry=entry_id),
        "wrap_up_labels": WRAP_UP_LABELS,
        "emergency_labels": EMERGENCY_LABELS,
    }


@bp.get("/seat")
def seat_page() -> BaseResponse:
    """The operator's seat: phone, status, the call with its live assistant, callbacks."""
    operator()
    return render_seat()


def _refused(error: Exception) -> BaseResponse:
    """Show a refusal on the seat page (after a redirect, so a reload posts nothing again)."""
    if isinstance(error, InvalidInputError | NotAllowedError | InvalidTransitionError):
        message = refusal_text(error)
    else:
        message = str(error)
    flash(message, "error")
    return redirect(url_for("console.seat_page"), code=303)


@bp.post("/seat/address")
def seat_address() -> BaseResponse:
    """Take a seat with the phone that rings the operator, or change that phone."""
    operator()
    form = SeatAddressForm()
    if not form.validate_on_submit():
        return render_seat(address_form=form, status=400)
    region = current_wiring().settings.phone_default_region
    try:
        with db().begin():
            user = db().get_one(User, current_user.id)
            seats.take_seat(db(), user=user, address=form.address.data or "", region=region)
    except InvalidInputError as error:
        form.address.errors = [refusal_text(error)]
        return render_seat(address_form=form, status=400)
    flash(_("Your seat rings %(address)s.", address=form.address.data), "success")
    return redirect(url_for("console.seat_page"), code=303)


@bp.post("/seat/status")
def seat_status() -> BaseResponse:
    """The operator sets themselves available, busy, on a break or signed out."""
    operator()
    form = SeatStatusForm()
    if not form.validate_on_submit():
        return _refused(InvalidInputError(_("Choose one of the status buttons.")))
    status = SeatStatus(form.status.data)
    try:
        with db().begin():
            seat = seat_of(db(), user_id=current_user.id)
            if seat is None:
                raise NotAllowedError(_("Give the phone that rings you first."))
            seats.set_seat_status(db(), seat=seat, status=status)
    except NotAllowedError as error:
        return _refused(error)
    if status == SeatStatus.AVAILABLE:
        telephony().ring_free_seats()
    flash(_("You are now: %(status)s.", status=SEAT_STATUS_LABELS[status]), "success")
    return redirect(url_for("console.seat_page"), code=303)


@bp.post("/seat/case")
def seat_case() -> BaseResponse:
    """Open the caller's case as written at the seat, send it to its department, and text the
    caller its number; the page then shows the number to read out."""
    who = operator()
    wiring = current_wiring()
    with db().begin():
        directory = directory_now(db())
    form = case_form(directory)
    if not form.validate_on_submit():
        return render_seat(posted_case_form=form, status=400)
    timezone = wiring.router.calendar.timezone
    try:
        with db().begin():
            entry = operator_entry(db(), actor=who, entry_id=_entry_id(form.entry.data))
            category = lifecycle.get_category(db(), form.category.data or "")
            urgency = form.urgency.data or "normal"
            deadline = form.deadline_utc(timezone) or wiring.router.deadline_for(
                category=category, urgency=urgency, start=utcnow()
            )
            case = open_case_for_person(
                db(),
                call_sid=entry.call_sid,
                locale=entry.locale,
                region=wiring.settings.phone_default_region,
            )
            lifecycle.route_at_seat(
                db(),
                case=case,
                actor=who,
                summary=form.summary.data or "",
                category_code=category.code,
                department_code=form.department.data or "",
                urgency=urgency,
                deadline_at=deadline,
                place_code=form.place.data or None,
                suggestion={"category": form.suggested.data or None},
            )
            case_id, number = case.id, case.number
    except (InvalidInputError, InvalidTransitionError) as error:
        return render_seat(posted_case_form=form, error=refusal_text(error), status=409)
    except UnknownCallError:
        log.error("no call record for a seat's entry", extra={"username": who.name})
        message = _("This call has no record to open a case from: tell the dispatch desk.")
        return render_seat(posted_case_form=form, error=message, status=409)
    telephony().text_case_number(case_id)
    log.info("case opened at a seat", extra={"case_number": number, "username": who.name})
    flash(_("Case %(number)s is open; read its number to the caller.", number=number), "success")
    return redirect(url_for("console.seat_page", _anchor="seat-case-number"), code=303)


def _entry_id(raw: str | None) -> int:
    if not raw or not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise NotAllowedError(_("That call was not put through to you"))
    return int(raw)


@bp.post("/seat/wrap-up")
def seat_wrap_up() -> BaseResponse:
    """The operator's wrap-up code for the call; their seat is free again."""
    who = operator()
    form = WrapUpForm()
    if not form.validate_on_submit():
        return _refused(InvalidInputError(_("Choose how the call ended.")))
    with db().begin():
        entry = operator_entry(db(), actor=who, entry_id=_entry_id(form.entry.data))
        seats.wrap_up(db(), entry=entry, actor=who, code=WrapUpCode(form.code.data))
    telephony().ring_free_seats()
    flash(
        _("Call wrapped up: %(code)s.", code=WRAP_UP_LABELS[WrapUpCode(form.code.data)]), "success"
    )
    return redirect(url_for("console.seat_page"), code=303)


@bp.post("/seat/emergency")
def seat_emergency() -> BaseResponse:
    """One click: put the caller on this seat's call through to the emergency service the
    line heard (110/119/120)."""
    who = operator()
    form = EmergencyTransferForm()
    if not form.validate_on_submit():
        return _refused(InvalidInputError(_("This form has expired: reload the page.")))
    with db().begin():
        entry = operator_entry(db(), actor=who, entry_id=_entry_id(form.entry.data))
        emergency = dict(entry.emergency or {})
        call_sid, locale = entry.call_sid, entry.locale
    if not emergency.get("kind"):
        return _refused(NotAllowedError(_("No emergency was heard on this call.")))
    telephony().transfer_to_emergency(call_sid=call_sid, kind=emergency["kind"], locale=locale)
    log.warning("operator put a caller through to emergency services", extra={"call_sid": call_sid})
    number = emergency.get("number") or emergency["kind"]
    flash(_("Putting the caller through to %(number)s.", number=number), "success")
    return redirect(url_for("console.seat_page"), code=303)


@bp.post("/seat/callbacks/<row_id:task_id>")
def seat_call_back(task_id: int) -> BaseResponse:
    """Call a citizen back: the operator's phone rings first, then the citizen's."""
    who = operator()
    form = CallBackForm()
    if not form.validate_on_submit():
        return _refused(InvalidInputError(_("This form has expired: reload the page.")))
    try:
        with db().begin():
            seat = seat_of(db(), user_id=current_user.id)
            if seat is None:
                raise NotAllowedError(_("Give the phone that rings you first."))
            attempt = callbacks.start_attempt(db(), task_id=task_id, operator=who.name, seat=seat)
            attempt_id = attempt.id
    except NotAllowedError as error:
        return _refused(error)
    telephony().call_back(attempt_id)
    flash(_("Calling back: your phone rings first, then the citizen's."), "success")
    return redirect(url_for("console.seat_page", _anchor="seat-callbacks"), code=303)


@bp.get("/seat/live")
def seat_live() -> BaseResponse:
    """Server-sent events of the seat page's live parts (see `console.seat_live`)."""
    operator()
    wiring = current_wiring()
    with db().begin():
        directory = directory_now(db())

    def render(view: SeatView, advice: Advice) -> dict[str, Any]:
        parts = _page_parts(view)
        common = {"view": view, "directory": directory, **parts}
        return {
            "entry": view.call.entry_id if view.call else None,
            "case": view.opened_case,
            "status": str(view.status),
            "status_html": render_template("console/_seat_status.html", **common),
            "live_html": render_template(
                "console/_seat_live.html", advice=advice, shown=advice.shown(), **common
            ),
            "prefill": prefill(view, advice),
        }

    stream = seat_stream(wiring, user_id=current_user.id, token=current_user.token, render=render)
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    # Proxies must pass each event on at once (nginx buffers unless told not to).
    response.headers["X-Accel-Buffering"] = "no"
    return response


@bp.get("/seat/earlier/<number>")
def seat_earlier_case(number: str) -> BaseResponse:
    """One of the earlier cases of the caller on the operator's call, read-only; any other
    case they do not own is not found, as for every case hidden from someone."""
    operator()
    with db().begin():
        if not is_earlier_case(db(), user_id=current_user.id, number=number):
            raise UnknownCaseError(number)
        case = db().scalars(select(Case).where(Case.number == number)).one()
        page = render_template("console/seat_case.html", case=case, directory=directory_now(db()))
    return _seat_response(page, 200)


@bp.get("/seats")
def seats_overview() -> str:
    """The seats, the callers waiting and the callbacks owed, for supervisors and the desk
    (read-only)."""
    who = actor()
    require(who.supervises, _("Only supervisors and the dispatch desk see the seats."))
    now = utcnow()
    with db().begin():
        rows = db().scalars(select(Seat).order_by(Seat.id)).all()
        seat_rows = [
            {
                "seat": seat,
                "operator": seat.user.username,
                "status": SEAT_STATUS_LABELS.get(SeatStatus(seat.status), seat.status),
            }
            for seat in rows
        ]
        waiting = [
            {
                "entry": entry,
                "caller": mask_number(entry.caller_number) or _("withheld"),
                "seconds": max(int((now - entry.enqueued_at).total_seconds()), 0),
                "reason": REASON_LABELS.get(entry.reason, entry.reason),
            }
            for entry in seats.waiting(db())
        ]
        return render_template(
            "console/seats.html",
            seat_rows=seat_rows,
            waiting=waiting,
            locale_labels=LOCALE_LABELS,
            callbacks=_callback_rows(full_numbers=shows_full_number(who)),
        )
