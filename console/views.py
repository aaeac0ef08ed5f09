"""The console's pages: the inbox, the desk's queues, the supervisors' lists, the case page and
its recording.

Authorisation lives in the queries: every list comes from `cases.queries` for the signed-in
person's actor, and every case is looked up with `get_visible_case`. Each request owns its
transactions on the request's session.
"""

from __future__ import annotations

import logging
from pathlib import Path

from flask import redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from sqlalchemy import Select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from cases import queries
from cases.access import get_visible_case, require
from cases.errors import InvalidInputError
from cases.lifecycle import TRANSITIONS
from cases.models import (
    ACTIVE_STATUSES,
    Attachment,
    Case,
    CaseStatus,
    RecordingStatus,
    Role,
    utcnow,
)
from cases.timeline import last_event
from console.auth import no_store
from console.blueprint import (
    PAGE_SIZE,
    actor,
    bp,
    error_page,
    file_link_valid,
    page_argument,
    recording_link_valid,
)
from console.case_page import directory_now, render_case, ruling_form, triage_form
from console.presenters import case_rows, suggestion
from hotline.wiring import current_wiring, db

log = logging.getLogger("hotline.console")

# Status filters on case lists: "active" (the default) is what still needs work.
STATUS_FILTERS: dict[str, tuple[CaseStatus, ...] | None] = {
    "active": ACTIVE_STATUSES,
    "all": None,
    **{str(status): (status,) for status in CaseStatus},
}
# The desk's queues show this many at once, oldest deadline first.
QUEUE_SIZE = PAGE_SIZE * 4


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


def _paginate(session: Session, query: Select[Case], page: int) -> tuple[list[Case], bool]:
    cases = list(session.scalars(query.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)))
    return cases[:PAGE_SIZE], len(cases) > PAGE_SIZE


@bp.get("/")
def home() -> str | Response:
    """The inbox: department staff see their department's cases, the others every case they
    may see; soonest deadline first, with a status filter. Operators have no inbox: their
    home is their seat."""
    who = actor()
    if who.role == Role.OPERATOR:
        return redirect(url_for("console.seat_page"))
    status_key = _status_filter()
    page = page_argument()
    department_filter = request.args.get("department") or None
    with db().begin():
        directory = directory_now(db())
        if department_filter is not None and department_filter not in directory.departments:
            raise InvalidInputError(_("Unknown department “%(code)s”.", code=department_filter))
        query = queries.inbox(
            who, statuses=STATUS_FILTERS[status_key], department_code=department_filter
        )
        cases, more = _paginate(db(), query, page)
        department_name = (
            directory.department_name(who.department_code) if who.department_code else None
        )
        return render_template(
            "console/inbox.html",
            rows=case_rows(cases),
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
    require(who.is_desk, TRANSITIONS["triage"].refusal)
    with db().begin():
        directory = directory_now(db())
        cases = list(db().scalars(queries.triage_queue(who).limit(QUEUE_SIZE)))
        entries = [
            (row, suggestion(row.case), triage_form(directory, row.case, formdata=None))
            for row in case_rows(cases)
        ]
        return render_template("console/triage.html", entries=entries, directory=directory)


@bp.get("/sent-back")
def sent_back_queue() -> str:
    """The desk's send-backs (退单) awaiting a ruling, with the department's reason."""
    who = actor()
    require(who.is_desk, TRANSITIONS["ruling"].refusal)
    with db().begin():
        directory = directory_now(db())
        cases = list(db().scalars(queries.sent_back_queue(who).limit(QUEUE_SIZE)))
        entries = [
            (row, last_event(row.case, "sent_back"), ruling_form(directory, formdata=None))
            for row in case_rows(cases)
        ]
        return render_template("console/sent_back.html", entries=entries, directory=directory)


def _case_list(title: str, list_id: str, query: Select[Case]) -> str:
    page = page_argument()
    with db().begin():
        cases, more = _paginate(db(), query, page)
        return render_template(
            "console/case_list.html",
            title=title,
            list_id=list_id,
            rows=case_rows(cases),
            directory=directory_now(db()),
            page=page,
            more=more,
        )


@bp.get("/extension-requests")
def extension_requests() -> str:
    """The desk's requests for more time (延期申请) to rule on."""
    who = actor()
    require(who.is_desk, TRANSITIONS["decide_extension"].refusal)
    return _case_list(
        _("Requests for more time"), "extension-requests", queries.extension_requests(who)
    )


@bp.get("/overdue")
def overdue() -> str:
    """Cases still being worked that are past their deadline (red), most overdue first."""
    return _case_list(_("Overdue cases"), "overdue", queries.overdue(actor(), now=utcnow()))


@bp.get("/escalated")
def escalated() -> str:
    """Cases escalated to leadership (督办), most recent first."""
    return _case_list(_("Escalated cases"), "escalated", queries.escalated(actor()))


@bp.get("/cases/<number>")
def case_page(number: str) -> tuple[str, int]:
    """One case: recording, transcript, classification, timeline, deliveries, actions."""
    with db().begin():
        case = get_visible_case(db(), actor=actor(), number=number)
        return render_case(db(), case)


def _send_stored_file(
    *, folder: Path, relative: str, mimetype: str, download_name: str, number: str
) -> Response:
    """A stored file (a recording, a photo) of a case the person may see, once the route has
    checked the case and the signed link; a file missing on disk is a 404, and logged."""
    path = safe_join(str(folder), relative)
    if path is None:
        raise NotFound()
    try:
        response = send_file(
            path, mimetype=mimetype, conditional=True, download_name=download_name, max_age=0
        )
    except FileNotFoundError as error:
        log.error("stored file missing: %s", path, extra={"case_number": number})
        raise NotFound() from error
    return no_store(response)


@bp.get("/cases/<number>/recordings/<row_id:recording_id>")
def recording(number: str, recording_id: int) -> Response | tuple[str, int]:
    """The caller's recording, streamed (with range requests) only to those who may see the
    case, through the expiring link the case page gave them; anyone else gets the same 404 as
    for a case that does not exist."""
    who = actor()
    with db().begin():
        case = get_visible_case(db(), actor=who, number=number)
        stored = next((r for r in case.recordings if r.id == recording_id), None)
        if stored is not None and stored.status == RecordingStatus.PURGED:
            return error_page(_("Recording removed after the retention period"), 410)
        if stored is None or stored.status != RecordingStatus.STORED or not stored.storage_path:
            raise NotFound()
        relative = stored.storage_path
    if not recording_link_valid(recording_id):
        message = _("This recording link has expired or is not valid: reload the case page.")
        return error_page(message, 403)
    if not request.range or request.range.ranges[0][0] == 0:
        # An audit line per listen, not per byte range the player asks for.
        log.info(
            "recording played",
            extra={"case_number": number, "recording_id": recording_id, "username": who.name},
        )
    return _send_stored_file(
        folder=current_wiring().settings.recordings_dir,
        relative=relative,
        mimetype="audio/wav",
        download_name=f"case-{number}-{recording_id}.wav",
        number=number,
    )


@bp.get("/cases/<number>/attachments/<row_id:attachment_id>")
def attachment(number: str, attachment_id: int) -> Response | tuple[str, int]:
    """A reporter's photo, under the same rule as recordings: only to those who may see the
    case, through the expiring link the case page gave them."""
    who = actor()
    with db().begin():
        case = get_visible_case(db(), actor=who, number=number)
        stored = db().get(Attachment, attachment_id)
        if stored is None or stored.case_id != case.id:
            raise NotFound()
        if stored.purged_at is not None:
            return error_page(_("Photo removed after the retention period"), 410)
        relative, content_type = stored.path, stored.content_type
    if not file_link_valid("attachment", attachment_id):
        message = _("This link has expired or is not valid: reload the case page.")
        return error_page(message, 403)
    log.info(
        "photo viewed",
        extra={"case_number": number, "attachment_id": attachment_id, "username": who.name},
    )
    return _send_stored_file(
        folder=current_wiring().settings.media_dir,
        relative=relative,
        mimetype=content_type,
        download_name=f"case-{number}-{attachment_id}{Path(relative).suffix}",
        number=number,
    )
