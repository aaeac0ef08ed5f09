"""The staff console: inboxes, case pages, case actions, the desk's and supervisors' queues,
and administration.

Authorisation lives in the queries: every list starts from `cases.access.visible_cases` and
every case is looked up with `get_visible_case`, for the signed-in person's actor. Actions go
through `cases.lifecycle`, which checks who may do what; the forms shown on a page are only a
convenience. Each request owns one transaction; a refused action rolls it back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from cases import lifecycle, staff
from cases.access import (
    DISPATCH_DESK,
    LEADERSHIP,
    Actor,
    get_visible_case,
    holds_case,
    require,
    visible_cases,
)
from cases.errors import (
    InvalidInputError,
    InvalidTransitionError,
    NotAllowedError,
    UnknownCaseError,
)
from cases.lifecycle import SWEPT_STATUSES
from cases.models import (
    ACTIVE_STATUSES,
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Channel,
    Department,
    Light,
    RecordingStatus,
    Role,
    User,
    utcnow,
)
from cases.outbox import mask_number
from console import console_locale, forms
from console.auth import database, harden, login_manager, no_store, safe_next
from routing.decide import TRIAGE_CATEGORY

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
# Status filters on case lists: "active" (the default) is what still needs work.
STATUS_FILTERS: dict[str, tuple[CaseStatus, ...] | None] = {
    "active": ACTIVE_STATUSES,
    "all": None,
    **{str(status): (status,) for status in CaseStatus},
}
STATUS_LABELS = {
    CaseStatus.OPEN: _l("Open"),
    CaseStatus.TRIAGE: _l("Triage"),
    CaseStatus.ASSIGNED: _l("Assigned"),
    CaseStatus.ACCEPTED: _l("Accepted"),
    CaseStatus.SENT_BACK: _l("Sent back"),
    CaseStatus.RESOLVED: _l("Resolved"),
    CaseStatus.CLOSED: _l("Closed"),
}
LIGHT_LABELS = {Light.GREEN: _l("On time"), Light.YELLOW: _l("Due soon"), Light.RED: _l("Overdue")}
URGENCY_LABELS = forms.URGENCY_LABELS
ROLE_LABELS = {
    Role.DISPATCHER: _l("Dispatcher"),
    Role.DEPARTMENT: _l("Department staff"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.ADMIN: _l("Administrator"),
}
EVENT_LABELS = {
    "opened": _l("Case opened from a call"),
    "recording_stored": _l("Recording stored"),
    "flagged_for_review": _l("Flagged for the desk"),
    "transcribed": _l("Transcribed"),
    "routing_suggested": _l("Routing suggested"),
    "routed": _l("Routed"),
    "emergency_transfer": _l("Put through to emergency services"),
    "copied_to_leadership": _l("Copied to leadership"),
    "accepted": _l("Accepted"),
    "note": _l("Note"),
    "transferred": _l("Transferred"),
    "sent_back": _l("Sent back to the desk"),
    "ruling": _l("Desk ruling"),
    "triaged": _l("Triaged"),
    "resolved": _l("Resolved"),
    "rated": _l("Rated by the caller"),
    "closed": _l("Closed"),
    "reopened": _l("Reopened"),
    "escalated": _l("Escalated to leadership"),
    "supervised": _l("Supervision notice"),
    "light": _l("Deadline light changed"),
    "overdue_reminder": _l("Overdue reminder"),
    "sms_sent": _l("Case number texted to the caller"),
    "sms_logged": _l("Case number text logged"),
    "sms_failed": _l("Case number text failed"),
}
DETAIL_LABELS = {
    "reason": _l("Reason"),
    "text": _l("Note"),
    "reply": _l("Reply"),
    "ruling": _l("Ruling"),
    "instruction": _l("Instruction"),
    "department": _l("Department"),
    "from_department": _l("From"),
    "to_department": _l("To"),
    "responsible": _l("First-responsible"),
    "released": _l("Released"),
    "by": _l("By"),
    "sent_back_by": _l("Sent back by"),
    "upheld": _l("Send-back upheld"),
    "category": _l("Category"),
    "suggested": _l("Suggested"),
    "urgency": _l("Urgency"),
    "confidence": _l("Confidence"),
    "score": _l("Rating"),
    "light": _l("Light"),
    "on_time": _l("Resolved on time"),
    "automatic": _l("Automatic"),
    "previous_reply": _l("Previous reply"),
    "source": _l("Source"),
    "service": _l("Service"),
    "number": _l("Number"),
    "duration": _l("Seconds"),
    "duration_seconds": _l("Seconds"),
    "locale": _l("Language"),
    "error": _l("Error"),
    "note": _l("Note"),
}
DEPARTMENT_KEYS = {
    "department",
    "from_department",
    "to_department",
    "responsible",
    "released",
    "by",
    "sent_back_by",
}
# Event data that is bulky or only for machines; the classification section shows routing.
HIDDEN_DETAILS = {
    "explanation",
    "model_version",
    "call_sid",
    "recording_sid",
    "message_sid",
    "deadline",
    "needs_triage",
    "place",
    "emergency",
    "model",
    "size_bytes",
}


def actor() -> Actor:
    """The signed-in person as the domain sees them."""
    return current_user.actor  # type: ignore[no-any-return]


def wiring() -> Any:
    """What the app shares with the worker: settings, database, router."""
    return current_app.extensions["hotline"]


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


def _error_page(message: str, code: int) -> tuple[str, int]:
    return render_template("console/error.html", message=message, code=code), code


@bp.errorhandler(UnknownCaseError)
def unknown_case(error: UnknownCaseError) -> tuple[str, int]:
    """404: no such case, or none this person may see (the same answer, on purpose)."""
    return _error_page(_("No case %(number)s is open to you.", number=error.number), 404)


@bp.errorhandler(NotFound)
def not_found(error: NotFound) -> tuple[str, int]:
    """404 in the console's own words."""
    return _error_page(_("There is nothing here."), 404)


@bp.errorhandler(NotAllowedError)
def not_allowed(error: NotAllowedError) -> tuple[str, int]:
    """403: this person may not do that."""
    log.info("refused: %s", error, extra={"username": current_user.username})
    reason = str(error).rstrip(".")
    # The lifecycle's own refusals start in lower case; the page shows a sentence.
    reason = reason[:1].upper() + reason[1:]
    return _error_page(_("You may not do that. %(reason)s.", reason=reason), 403)


@bp.errorhandler(InvalidInputError)
def invalid_input(error: InvalidInputError) -> tuple[str, int]:
    """400 for a bad filter or parameter on a list page."""
    return _error_page(str(error), 400)


@bp.context_processor
def labels() -> dict[str, Any]:
    """The translated names of statuses, lights and urgencies, for every console page."""
    return {
        "status_labels": STATUS_LABELS,
        "light_labels": LIGHT_LABELS,
        "urgency_labels": URGENCY_LABELS,
    }


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    """A timestamp on the city's clock, or a dash."""
    return format_datetime(value, "yyyy-MM-dd HH:mm") if value else "—"


# The directory of departments and categories, with names in the page's language.


@dataclass
class Directory:
    """Departments and categories by code, named in the console's language."""

    departments: dict[str, Department]
    categories: dict[str, Category]
    locale: str

    def department_name(self, code: str | None) -> str:
        """A department's name, or a dash."""
        if not code:
            return "—"
        department = self.departments.get(code)
        return department.name(self.locale) if department else code

    def category_name(self, code: str | None) -> str:
        """A category's name, or a dash."""
        if not code:
            return "—"
        category = self.categories.get(code)
        if category is None:
            return code
        return str(category.names.get(self.locale) or category.names.get("zh-CN") or code)

    def handling_departments(self) -> list[tuple[str, str]]:
        """(code, name) of the departments that handle cases: not the desk, not leadership."""
        return [
            (code, self.department_name(code))
            for code in self.departments
            if code not in (DISPATCH_DESK, LEADERSHIP)
        ]

    def category_choices(self) -> list[tuple[str, str]]:
        """(code, name) of every category."""
        return [(code, f"{self.category_name(code)} ({code})") for code in self.categories]


def load_directory(session: Session) -> Directory:
    """The directory as the database holds it now."""
    departments = {d.code: d for d in session.scalars(select(Department).order_by(Department.code))}
    categories = {c.code: c for c in session.scalars(select(Category).order_by(Category.code))}
    return Directory(departments=departments, categories=categories, locale=console_locale())


# Lights and lists.


def display_light(case: Case, *, now: datetime) -> Light:
    """The light as of now for a case still being worked (right between sweeps), else the
    light it ended with."""
    if case.status in SWEPT_STATUSES:
        return lifecycle.light_for(case, now=now)
    return Light(case.light)


@dataclass(frozen=True)
class CaseRow:
    """One line of a case list."""

    case: Case
    light: Light


def _rows(cases: list[Case]) -> list[CaseRow]:
    now = utcnow()
    return [CaseRow(case=case, light=display_light(case, now=now)) for case in cases]


def _by_deadline(query: Any) -> Any:
    # Soonest deadline first; cases without one last (portable: no NULLS LAST needed).
    return query.order_by(Case.deadline_at.is_(None), Case.deadline_at, Case.id)


def _status_filter() -> str:
    key = request.args.get("status", "active")
    if key not in STATUS_FILTERS:
        raise InvalidInputError(
            _(
                "Unknown status filter “%(key)s”; choose one of: %(keys)s.",
                key=key,
                keys=", ".join(STATUS_FILTERS),
            )
        )
    return key


# Far past any real inbox; it keeps OFFSET within what every database accepts.
MAX_PAGE = 100_000


@bp.app_template_global()
def page_url(page: int) -> str:
    """This list at another page, its filters kept (but never url_for's own "_" arguments)."""
    query = {key: value for key, value in request.args.items() if not key.startswith("_")}
    return url_for(
        request.endpoint or ".home", **{**(request.view_args or {}), **query, "page": page}
    )


def _page() -> int:
    raw = request.args.get("page", "1")
    # isascii: str.isdigit() also accepts superscripts, which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidInputError(_("The page must be a whole number from 1."))
    return int(raw)


def _paginate(session: Session, query: Any, page: int) -> tuple[list[Case], bool]:
    cases = list(session.scalars(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)))
    return cases[:PAGE_SIZE], len(cases) > PAGE_SIZE


@bp.get("/")
def home() -> tuple[str, int] | str:
    """The inbox: department staff see their department's cases, the others every case they
    may see; soonest deadline first, with a status filter."""
    who = actor()
    status_key = _status_filter()
    page = _page()
    department_filter = request.args.get("department") or None
    with database().session() as session, session.begin():
        directory = load_directory(session)
        query = visible_cases(who)
        statuses = STATUS_FILTERS[status_key]
        if statuses is not None:
            query = query.where(Case.status.in_(statuses))
        if department_filter is not None:
            if department_filter not in directory.departments:
                raise InvalidInputError(_("Unknown department “%(code)s”.", code=department_filter))
            query = query.where(Case.department_code == department_filter)
        cases, more = _paginate(session, _by_deadline(query), page)
        department_name = (
            directory.department_name(who.department_code) if who.department_code else None
        )
        return render_template(
            "console/inbox.html",
            rows=_rows(cases),
            directory=directory,
            status_key=status_key,
            status_filters=list(STATUS_FILTERS),
            department_filter=department_filter,
            department_name=department_name,
            page=page,
            more=more,
        )


@bp.get("/triage")
def triage_queue() -> str:
    """The desk's triage queue: cases the machine could not place, and cases flagged for a
    person, with the classifier's suggestion and a triage form for each."""
    who = actor()
    require(who.is_desk, _("Only the dispatch desk triages cases"))
    with database().session() as session, session.begin():
        directory = load_directory(session)
        query = visible_cases(who).where(
            or_(
                Case.status.in_((CaseStatus.TRIAGE, CaseStatus.OPEN)),
                and_(Case.needs_review, Case.status.in_(ACTIVE_STATUSES)),
            )
        )
        # Cases waiting for a category first: a flagged case already with a department (a
        # failed delivery, say) is worth a look but must not push them off the page.
        waiting_first = Case.status.not_in((CaseStatus.TRIAGE, CaseStatus.OPEN))
        query = _by_deadline(query.order_by(waiting_first))
        cases = list(session.scalars(query.limit(PAGE_SIZE * 4)))
        entries = [
            (row, suggestion(row.case), _triage_form(directory, row.case, formdata=None))
            for row in _rows(cases)
        ]
        return render_template("console/triage.html", entries=entries, directory=directory)


@bp.get("/sent-back")
def sent_back_queue() -> str:
    """The desk's send-backs (退单) awaiting a ruling, with the department's reason."""
    who = actor()
    require(who.is_desk, _("Only the dispatch desk rules on send-backs"))
    with database().session() as session, session.begin():
        directory = load_directory(session)
        query = visible_cases(who).where(Case.status == CaseStatus.SENT_BACK)
        cases = list(session.scalars(_by_deadline(query).limit(PAGE_SIZE * 4)))
        entries = [
            (row, last_event(row.case, "sent_back"), _ruling_form(directory, formdata=None))
            for row in _rows(cases)
        ]
        return render_template("console/sent_back.html", entries=entries, directory=directory)


@bp.get("/overdue")
def overdue() -> str:
    """Cases still being worked that are past their deadline (red), most overdue first."""
    now = utcnow()
    page = _page()
    with database().session() as session, session.begin():
        directory = load_directory(session)
        query = (
            visible_cases(actor())
            .where(Case.status.in_(SWEPT_STATUSES))
            .where(or_(Case.light == Light.RED, Case.deadline_at <= now))
        )
        cases, more = _paginate(session, _by_deadline(query), page)
        return render_template(
            "console/case_list.html",
            title=_("Overdue cases"),
            list_id="overdue",
            rows=_rows(cases),
            directory=directory,
            page=page,
            more=more,
        )


@bp.get("/escalated")
def escalated() -> str:
    """Cases escalated to leadership (督办), most recent first."""
    page = _page()
    with database().session() as session, session.begin():
        directory = load_directory(session)
        query = (
            visible_cases(actor())
            .where(Case.escalated_at.is_not(None))
            .order_by(Case.escalated_at.desc(), Case.id.desc())
        )
        cases, more = _paginate(session, query, page)
        return render_template(
            "console/case_list.html",
            title=_("Escalated cases"),
            list_id="escalated",
            rows=_rows(cases),
            directory=directory,
            page=page,
            more=more,
        )


# The case page.


def suggestion(case: Case) -> dict[str, Any]:
    """What the classifier said about the case, in the shape the templates show."""
    routing = case.routing or {}
    explanation = routing.get("explanation") or {}
    rule = None
    if explanation.get("emergency_rule"):
        rule = explanation["emergency_rule"]
    elif explanation.get("urgent_rule"):
        rule = explanation["urgent_rule"]
    return {
        "category": routing.get("category"),
        "department": routing.get("department"),
        "urgency": routing.get("urgency"),
        "confidence": routing.get("confidence"),
        "top": [(item[0], item[1]) for item in explanation.get("top") or [] if len(item) == 2],
        "rule": rule,
        "override": explanation.get("override"),
        "triage": explanation.get("triage"),
        "threshold": explanation.get("threshold"),
        "place": explanation.get("place"),
        "deadline_rule": explanation.get("deadline_rule"),
        "model_version": routing.get("model_version"),
    }


def last_event(case: Case, kind: str) -> CaseEvent | None:
    """The case's latest event of a kind."""
    return next((event for event in reversed(case.events) if event.kind == kind), None)


def event_details(event: CaseEvent, directory: Directory) -> list[tuple[str, str]]:
    """An event's data as (label, value) lines, department codes as names."""
    details = []
    for key, value in (event.data or {}).items():
        if key in HIDDEN_DETAILS or value is None or value == "":
            continue
        if key in DEPARTMENT_KEYS and isinstance(value, str):
            shown = directory.department_name(value)
        elif key in ("category", "suggested") and isinstance(value, str):
            shown = directory.category_name(value)
        elif isinstance(value, bool):
            shown = _("yes") if value else _("no")
        elif key == "confidence" and isinstance(value, int | float):
            shown = f"{value:.0%}"
        else:
            shown = str(value)
        details.append((str(DETAIL_LABELS.get(key, key)), shown))
    return details


def shows_full_number(who: Actor) -> bool:
    """Dispatchers and admins may call the citizen back; everyone else sees a masked number."""
    return who.role in (Role.DISPATCHER, Role.ADMIN)


def may_note(who: Actor, case: Case) -> bool:
    """Notes are for those working the case: the department holding it, the one still
    first-responsible for it, and the desk. Supervisors' pages are read-only."""
    return (
        who.is_desk
        or holds_case(who, case)
        or (who.role == Role.DEPARTMENT and who.department_code == case.responsible_department_code)
    )


def _supervises(who: Actor, case: Case) -> bool:
    return who.supervises


def _holds_or_desk(who: Actor, case: Case) -> bool:
    return holds_case(who, case) or who.is_desk


def _desk(who: Actor, case: Case) -> bool:
    return who.is_desk


# Who may take each action, whatever state the case is in, and the refusal otherwise. The
# console checks this before reading the form, so that a refusal is a 403 and not a form
# error; cases.lifecycle checks it again.
WHO_MAY: dict[str, tuple[Callable[[Actor, Case], bool], Any]] = {
    "accept": (holds_case, _l("Only the department holding the case can accept it")),
    "note": (may_note, _l("Only those working the case add notes to it")),
    "transfer": (
        _holds_or_desk,
        _l("Only the department holding the case or the desk can transfer it"),
    ),
    "send_back": (holds_case, _l("Only the department holding the case can send it back")),
    "resolve": (holds_case, _l("Only the department holding the case can resolve it")),
    "triage": (_desk, _l("Only the dispatch desk triages cases")),
    "ruling": (_desk, _l("Only the dispatch desk rules on send-backs")),
    "escalate": (_supervises, _l("Only the desk or a supervisor escalates")),
    "supervise": (_supervises, _l("Only the desk or a supervisor issues supervision notices")),
}
# The states in which each action is offered (the lifecycle refuses the others with a 400).
WHEN: dict[str, Callable[[Case], bool]] = {
    "accept": lambda case: case.status == CaseStatus.ASSIGNED,
    "note": lambda case: True,
    "transfer": lambda case: (
        case.status in (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED, CaseStatus.TRIAGE)
    ),
    "send_back": lambda case: case.status == CaseStatus.ASSIGNED,
    "resolve": lambda case: case.status in (CaseStatus.ASSIGNED, CaseStatus.ACCEPTED),
    "triage": lambda case: case.status in (CaseStatus.TRIAGE, CaseStatus.OPEN),
    "ruling": lambda case: case.status == CaseStatus.SENT_BACK,
    "escalate": lambda case: case.status in ACTIVE_STATUSES and case.escalated_at is None,
    "supervise": lambda case: case.status in ACTIVE_STATUSES,
}


def allowed_actions(who: Actor, case: Case) -> set[str]:
    """The actions to offer on the case page; the server checks them again when posted."""
    return {
        name for name, (may, _refusal) in WHO_MAY.items() if may(who, case) and WHEN[name](case)
    }


def _transfer_form(directory: Directory, case: Case, **kwargs: Any) -> forms.TransferForm:
    form = forms.TransferForm(**kwargs)
    form.department.choices = forms.choices(
        [
            ("", _("Choose a department")),
            *[c for c in directory.handling_departments() if c[0] != case.department_code],
        ]
    )
    return form


def _triage_form(directory: Directory, case: Case, **kwargs: Any) -> forms.TriageForm:
    if kwargs.get("formdata", True) is None:
        # A fresh form starts from the classifier's best guess that names a real matter:
        # "other" is where it puts what it cannot place, so its runner-up is the better start.
        top = [code for code, _p in suggestion(case)["top"] if code != TRIAGE_CATEGORY]
        kwargs.setdefault("category", top[0] if top else (case.routing or {}).get("category"))
        kwargs.setdefault("urgency", case.urgency or "normal")
    form = forms.TriageForm(**kwargs)
    form.category.choices = forms.choices(directory.category_choices())
    form.department.choices = forms.choices(
        [("", _("The category's department")), *directory.handling_departments()]
    )
    return form


def _ruling_form(directory: Directory, **kwargs: Any) -> forms.RulingForm:
    form = forms.RulingForm(**kwargs)
    # No default: a ruling names its department on purpose.
    form.department.choices = forms.choices(
        [("", _("Choose a department")), *directory.handling_departments()]
    )
    form.category.choices = forms.choices(
        [("", _("Keep the case's category")), *directory.category_choices()]
    )
    return form


FormFactory = Callable[..., FlaskForm]
FORM_FACTORIES: dict[str, Callable[[Directory, Case], FormFactory]] = {
    "accept": lambda d, c: forms.AcceptForm,
    "note": lambda d, c: forms.NoteForm,
    "transfer": lambda d, c: lambda **kw: _transfer_form(d, c, **kw),
    "send_back": lambda d, c: forms.SendBackForm,
    "resolve": lambda d, c: forms.ResolveForm,
    "triage": lambda d, c: lambda **kw: _triage_form(d, c, **kw),
    "ruling": lambda d, c: lambda **kw: _ruling_form(d, **kw),
    "escalate": lambda d, c: forms.EscalateForm,
    "supervise": lambda d, c: forms.SuperviseForm,
}


def render_case(
    session: Session,
    case: Case,
    *,
    posted: tuple[str, FlaskForm] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """The case page; `posted` is a refused action's form, shown again with its input."""
    who = actor()
    directory = load_directory(session)
    allowed = allowed_actions(who, case)
    action_forms: dict[str, FlaskForm] = {
        name: FORM_FACTORIES[name](directory, case)(formdata=None) for name in sorted(allowed)
    }
    if posted is not None:
        action_forms[posted[0]] = posted[1]
    full_number = shows_full_number(who)
    caller_number = case.caller_number if full_number else mask_number(case.caller_number)
    deliveries = [
        {
            "delivery": delivery,
            "address": (
                delivery.address
                if full_number or delivery.channel != Channel.CALLER_SMS
                else mask_number(delivery.address)
            ),
        }
        for delivery in case.deliveries
    ]
    timeline = [
        (event, EVENT_LABELS.get(event.kind, event.kind), event_details(event, directory))
        for event in case.events
    ]
    page = render_template(
        "console/case.html",
        case=case,
        light=display_light(case, now=utcnow()),
        directory=directory,
        caller_number=caller_number,
        recordings=case.recordings,
        suggestion=suggestion(case),
        timeline=timeline,
        deliveries=deliveries,
        forms=action_forms,
        error=error,
        failed_action=posted[0] if posted and error else None,
        sent_back=last_event(case, "sent_back") if case.status == CaseStatus.SENT_BACK else None,
    )
    return page, status


@bp.get("/cases/<number>")
def case_page(number: str) -> tuple[str, int]:
    """One case: recording, transcript, classification, timeline, deliveries, actions."""
    with database().session() as session, session.begin():
        case = get_visible_case(session, actor=actor(), number=number)
        return render_case(session, case)


@bp.get("/cases/<number>/recordings/<int:recording_id>")
def recording(number: str, recording_id: int) -> Response:
    """The caller's recording, streamed (with range requests) only to those who may see the
    case; anyone else gets the same 404 as for a case that does not exist."""
    who = actor()
    with database().session() as session, session.begin():
        case = get_visible_case(session, actor=who, number=number)
        stored = next((r for r in case.recordings if r.id == recording_id), None)
        if stored is None or stored.status != RecordingStatus.STORED or not stored.storage_path:
            raise NotFound()
        relative = stored.storage_path
    path = safe_join(str(wiring().settings.recordings_dir), relative)
    if path is None:
        raise NotFound()
    if not request.range or request.range.ranges[0][0] == 0:
        # An audit line per listen, not per byte range the player asks for.
        log.info(
            "recording played",
            extra={"case_number": number, "recording_id": recording_id, "username": who.name},
        )
    try:
        response = send_file(
            path,
            mimetype="audio/wav",
            conditional=True,
            download_name=f"case-{number}-{recording_id}.wav",
            max_age=0,
        )
    except FileNotFoundError as error:
        log.error("recording file missing: %s", path, extra={"case_number": number})
        raise NotFound() from error
    return no_store(response)


# Case actions.


@dataclass(frozen=True)
class Action:
    """A case action: what it does and what the page says afterwards."""

    perform: Callable[[Session, Case, Any, Actor], None]
    done: Any  # a lazy message


def _accept(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.accept(session, case=case, actor=who)


def _note(session: Session, case: Case, form: Any, who: Actor) -> None:
    # add_note checks no one; `act` has checked WHO_MAY["note"].
    lifecycle.add_note(session, case=case, actor=who, text=form.text.data)


def _transfer(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.transfer(
        session,
        case=case,
        actor=who,
        department_code=form.department.data,
        reason=form.reason.data,
    )


def _send_back(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.send_back(session, case=case, actor=who, reason=form.reason.data)


def _resolve(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.resolve(session, case=case, actor=who, reply=form.reply.data)


def _category(session: Session, code: str | None) -> Category:
    category = session.get(Category, code) if code else None
    if category is None:
        raise InvalidInputError(f"unknown category {code!r}")
    return category


def _triage(session: Session, case: Case, form: Any, who: Actor) -> None:
    category = _category(session, form.category.data)
    department_code = form.department.data or category.department_code
    if department_code == DISPATCH_DESK:
        # Assigning to the desk puts the case straight back in this queue (cases.lifecycle
        # files anything at the desk as triage), so it would look triaged and not be.
        raise InvalidInputError(
            _("The desk cannot triage a case to itself: choose the department that will handle it.")
        )
    deadline_at = wiring().router.deadline_for(
        category=category, urgency=form.urgency.data, start=utcnow()
    )
    lifecycle.triage(
        session,
        case=case,
        actor=who,
        category_code=category.code,
        department_code=department_code,
        urgency=form.urgency.data,
        deadline_at=deadline_at,
        note=form.note.data,
    )


def _rule(session: Session, case: Case, form: Any, who: Actor) -> None:
    category_code = form.category.data or None
    code = category_code or case.category_code
    deadline_at = None
    if code:
        category = _category(session, code)
        # The department now assigned gets a fresh clock for the matter.
        deadline_at = wiring().router.deadline_for(
            category=category, urgency=case.urgency or "normal", start=utcnow()
        )
    lifecycle.rule_on_send_back(
        session,
        case=case,
        actor=who,
        department_code=form.department.data,
        ruling=form.ruling.data,
        deadline_at=deadline_at,
        category_code=category_code,
    )


def _escalate(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.escalate(session, case=case, actor=who, reason=form.reason.data)


def _supervise(session: Session, case: Case, form: Any, who: Actor) -> None:
    lifecycle.supervise(session, case=case, actor=who, instruction=form.instruction.data)


ACTIONS: dict[str, Action] = {
    "accept": Action(_accept, _l("You have accepted the case; you are first-responsible.")),
    "note": Action(_note, _l("Note added.")),
    "transfer": Action(_transfer, _l("Case transferred.")),
    "send_back": Action(_send_back, _l("Case sent back to the dispatch desk.")),
    "resolve": Action(_resolve, _l("Case resolved; the caller will be told.")),
    "triage": Action(_triage, _l("Case triaged and assigned.")),
    "ruling": Action(_rule, _l("Ruling recorded; the case is assigned.")),
    "escalate": Action(_escalate, _l("Case escalated to leadership.")),
    "supervise": Action(_supervise, _l("Supervision notice sent.")),
}


def act(number: str, name: str) -> Response | tuple[str, int]:
    """Run one case action in one transaction. Who may see the case is checked first (404),
    then who may act (403), then the form (400), then the lifecycle's own rules (403, or 400
    with nothing changed)."""
    who = actor()
    action = ACTIONS[name]
    may, refusal = WHO_MAY[name]
    try:
        with database().session() as session, session.begin():
            case = get_visible_case(session, actor=who, number=number, for_update=True)
            require(may(who, case), str(refusal))
            directory = load_directory(session)
            form = FORM_FACTORIES[name](directory, case)()
            if not form.validate_on_submit():
                return render_case(session, case, posted=(name, form), status=400)
            action.perform(session, case, form, who)
    except (InvalidInputError, InvalidTransitionError) as error:
        # The transaction has rolled back; show the page as it stands, with the refusal.
        with database().session() as session, session.begin():
            case = get_visible_case(session, actor=who, number=number)
            return render_case(session, case, posted=(name, form), error=str(error), status=400)
    log.info("case %s", name, extra={"case_number": number, "username": who.name})
    flash(str(action.done), "success")
    return redirect(safe_next(form.next.data) or url_for(".case_page", number=number))


@bp.post("/cases/<number>/accept")
def accept(number: str) -> Response | tuple[str, int]:
    """Accept the case (the department becomes first-responsible)."""
    return act(number, "accept")


@bp.post("/cases/<number>/note")
def note(number: str) -> Response | tuple[str, int]:
    """Add a note to the timeline."""
    return act(number, "note")


@bp.post("/cases/<number>/transfer")
def transfer(number: str) -> Response | tuple[str, int]:
    """Transfer the case to another department, with a reason."""
    return act(number, "transfer")


@bp.post("/cases/<number>/send-back")
def send_back(number: str) -> Response | tuple[str, int]:
    """Send the case back to the dispatch desk, with a reason."""
    return act(number, "send_back")


@bp.post("/cases/<number>/resolve")
def resolve(number: str) -> Response | tuple[str, int]:
    """Resolve the case with a reply to the caller."""
    return act(number, "resolve")


@bp.post("/cases/<number>/triage")
def triage(number: str) -> Response | tuple[str, int]:
    """Triage: category, department and urgency; the deadline follows from them."""
    return act(number, "triage")


@bp.post("/cases/<number>/ruling")
def ruling(number: str) -> Response | tuple[str, int]:
    """Rule on a send-back and assign the case."""
    return act(number, "ruling")


@bp.post("/cases/<number>/escalate")
def escalate(number: str) -> Response | tuple[str, int]:
    """Escalate the case to leadership."""
    return act(number, "escalate")


@bp.post("/cases/<number>/supervise")
def supervise(number: str) -> Response | tuple[str, int]:
    """Send a supervision notice to the department holding the case."""
    return act(number, "supervise")


# Administration.


def _require_admin() -> Actor:
    who = actor()
    require(who.role == Role.ADMIN, _("Only administrators manage the hotline's set-up"))
    return who


def _channels_form(department: Department, **kwargs: Any) -> forms.ChannelsForm:
    if kwargs.get("formdata", True) is None:
        kwargs.setdefault("webhook_url", department.webhook_url)
        kwargs.setdefault("email", department.email)
        kwargs.setdefault("sms_number", department.sms_number)
    return forms.ChannelsForm(**kwargs)


def _departments_page(
    session: Session,
    *,
    posted: tuple[str, forms.ChannelsForm] | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    directory = load_directory(session)
    entries = []
    for code, department in directory.departments.items():
        if posted and posted[0] == code:
            entries.append((department, posted[1]))
        else:
            entries.append((department, _channels_form(department, formdata=None)))
    page = render_template(
        "console/admin_departments.html",
        entries=entries,
        directory=directory,
        api_key_form=forms.ApiKeyForm(formdata=None),
        error=error,
        failed_code=posted[0] if posted else None,
    )
    return page, status


@bp.get("/admin/departments")
def admin_departments() -> tuple[str, int]:
    """Departments and how each receives its cases."""
    _require_admin()
    with database().session() as session, session.begin():
        return _departments_page(session)


@bp.post("/admin/departments/<code>/channels")
def admin_department_channels(code: str) -> Response | tuple[str, int]:
    """Set a department's webhook, e-mail and SMS channels (validated)."""
    who = _require_admin()
    try:
        with database().session() as session, session.begin():
            department = session.get(Department, code)
            if department is None:
                raise NotFound()
            form = _channels_form(department)
            if not form.validate_on_submit():
                return _departments_page(session, posted=(code, form), status=400)
            staff.set_department_channels(
                session,
                code=code,
                webhook_url=(form.webhook_url.data or "").strip(),
                # An empty secret field keeps the secret: it is never sent back to the page.
                webhook_secret=form.webhook_secret.data or None,
                email=(form.email.data or "").strip(),
                sms_number=(form.sms_number.data or "").strip(),
            )
            channels = sorted(str(channel) for channel in department.channels())
    except InvalidInputError as error:
        with database().session() as session, session.begin():
            return _departments_page(session, posted=(code, form), error=str(error), status=400)
    log.info(
        "department channels set",
        extra={"department": code, "channels": ",".join(channels), "username": who.name},
    )
    flash(_("Channels saved."), "success")
    return redirect(url_for(".admin_departments") + f"#department-{code}")


@bp.post("/admin/departments/<code>/api-key")
def admin_department_api_key(code: str) -> Response | tuple[str, int]:
    """Issue a new API key and show it once; the earlier key stops working."""
    who = _require_admin()
    form = forms.ApiKeyForm()
    if not form.validate_on_submit():
        return _error_page(_("The form could not be read; try again."), 400)
    with database().session() as session, session.begin():
        department = session.get(Department, code)
        if department is None:
            raise NotFound()
        key = staff.issue_api_key(session, code=code)
        name = department.name(console_locale())
    log.info("API key issued", extra={"department": code, "username": who.name})
    response = current_app.make_response(
        render_template("console/api_key.html", code=code, name=name, key=key)
    )
    return no_store(response)


def _staff_page(
    session: Session,
    *,
    form: forms.AddUserForm | None = None,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    directory = load_directory(session)
    users = list(session.scalars(select(User).order_by(User.role, User.username)))
    page = render_template(
        "console/admin_staff.html",
        users=users,
        directory=directory,
        form=form or _add_user_form(directory, formdata=None),
        active_form=forms.UserActiveForm(formdata=None),
        role_labels=ROLE_LABELS,
        error=error,
    )
    return page, status


def _add_user_form(directory: Directory, **kwargs: Any) -> forms.AddUserForm:
    form = forms.AddUserForm(**kwargs)
    form.role.choices = forms.choices((str(role), label) for role, label in ROLE_LABELS.items())
    form.department.choices = forms.choices(
        [
            ("", _("None")),
            *[(code, directory.department_name(code)) for code in directory.departments],
        ]
    )
    return form


@bp.get("/admin/staff")
def admin_staff() -> tuple[str, int]:
    """Staff accounts."""
    _require_admin()
    with database().session() as session, session.begin():
        return _staff_page(session)


@bp.post("/admin/staff")
def admin_add_user() -> Response | tuple[str, int]:
    """Add a staff account (the password is hashed by cases.staff)."""
    who = _require_admin()
    try:
        with database().session() as session, session.begin():
            form = _add_user_form(load_directory(session))
            if not form.validate_on_submit():
                return _staff_page(session, form=form, status=400)
            user = staff.add_user(
                session,
                username=form.username.data or "",
                password=form.password.data or "",
                role=form.role.data,
                department_code=form.department.data or None,
            )
            username = user.username
    except InvalidInputError as error:
        with database().session() as session, session.begin():
            return _staff_page(session, form=form, error=str(error), status=400)
    log.info(
        "staff account added",
        extra={"account": username, "role": form.role.data, "username": who.name},
    )
    flash(_("Account %(username)s added.", username=username), "success")
    return redirect(url_for(".admin_staff"))


def _set_active(user_id: int, active: bool) -> Response | tuple[str, int]:
    who = _require_admin()
    form = forms.UserActiveForm()
    if not form.validate_on_submit():
        return _error_page(_("The form could not be read; try again."), 400)
    with database().session() as session, session.begin():
        user = session.get(User, user_id)
        if user is None:
            raise NotFound()
        if not active:
            if user.username == who.name:
                return _staff_page(session, error=_("You cannot deactivate yourself."), status=400)
            other_admins = session.scalar(
                select(func.count(User.id)).where(
                    User.role == Role.ADMIN, User.active, User.id != user.id
                )
            )
            if user.role == Role.ADMIN and not other_admins:
                return _staff_page(
                    session, error=_("The last active administrator stays active."), status=400
                )
        user.active = active
        username = user.username
    log.info(
        "staff account %s",
        "activated" if active else "deactivated",
        extra={"account": username, "username": who.name},
    )
    flash(
        _("Account %(username)s activated.", username=username)
        if active
        else _("Account %(username)s deactivated; it is signed out.", username=username),
        "success",
    )
    return redirect(url_for(".admin_staff"))


@bp.post("/admin/staff/<int:user_id>/deactivate")
def admin_deactivate_user(user_id: int) -> Response | tuple[str, int]:
    """Deactivate an account; its sessions end at their next request."""
    return _set_active(user_id, False)


@bp.post("/admin/staff/<int:user_id>/activate")
def admin_activate_user(user_id: int) -> Response | tuple[str, int]:
    """Reactivate an account."""
    return _set_active(user_id, True)


def _limit_text(hours: int | None, working_days: int | None) -> str:
    return f"{hours} h" if hours is not None else f"{working_days} working days"


def _time_limits_page(
    session: Session,
    *,
    posted: tuple[str, forms.TimeLimitForm] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    directory = load_directory(session)
    entries = []
    for code, category in directory.categories.items():
        if posted and posted[0] == code:
            form = posted[1]
        else:
            form = forms.TimeLimitForm(
                formdata=None,
                hours=category.time_limit_hours,
                working_days=category.time_limit_working_days,
            )
        entries.append((category, form))
    page = render_template(
        "console/admin_time_limits.html",
        entries=entries,
        directory=directory,
        failed_code=posted[0] if posted else None,
    )
    return page, status


@bp.get("/admin/time-limits")
def admin_time_limits() -> tuple[str, int]:
    """Each category's time limit."""
    _require_admin()
    with database().session() as session, session.begin():
        return _time_limits_page(session)


@bp.post("/admin/time-limits/<code>")
def admin_set_time_limit(code: str) -> Response | tuple[str, int]:
    """Set a category's time limit: hours or working days, a positive whole number. New
    cases are routed with it; cases already open keep their deadline."""
    who = _require_admin()
    with database().session() as session, session.begin():
        category = session.get(Category, code)
        if category is None:
            raise NotFound()
        form = forms.TimeLimitForm()
        if not form.validate_on_submit():
            return _time_limits_page(session, posted=(code, form), status=400)
        before = _limit_text(category.time_limit_hours, category.time_limit_working_days)
        category.time_limit_hours = form.hours.data
        category.time_limit_working_days = form.working_days.data
        after = _limit_text(category.time_limit_hours, category.time_limit_working_days)
    # The record of who changed which limit, from what to what.
    log.info(
        "time limit changed",
        extra={"category": code, "before": before, "after": after, "username": who.name},
    )
    flash(_("Time limit saved."), "success")
    return redirect(url_for(".admin_time_limits") + f"#category-{code}")
