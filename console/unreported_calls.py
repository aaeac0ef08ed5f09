"""The desk's list of calls that ended without a report (未留下报告的来电): callers whose menus
timed out, who hung up before speaking, or who were not heard. The dispatcher calls them
back, listens to what was kept, and opens a case or marks the call handled.

Who may see the list and act on it is the domain's (`cases.queries.unreported_calls`,
`cases.followup`); this module only renders and posts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Response
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from cases import followup, queries
from cases.access import require
from cases.free_text import MAX_TEXT, PROSE
from cases.intake import (
    ENDING_HANGUP_BEFORE_REPORT,
    ENDING_SILENCE,
    ENDING_STATUS_NOT_FOUND,
)
from cases.models import Call, Recording, RecordingStatus
from cases.privacy import mask_number
from console.auth import no_store
from console.blueprint import actor, bp, recording_link_valid
from console.forms import FreeText
from console.presenters import shows_full_number
from hotline.wiring import current_wiring, db

log = logging.getLogger("hotline.console")

# The list shows this many at once, most recent first: older ones wait behind them.
LIST_SIZE = 200

ENDING_LABELS = {
    ENDING_SILENCE: _l("Nothing was heard at the report, twice"),
    ENDING_HANGUP_BEFORE_REPORT: _l("Hung up at the report before speaking"),
    ENDING_STATUS_NOT_FOUND: _l("Could not find the case number they keyed"),
    None: _l("Hung up in the menus"),
}


class OpenCaseForm(FlaskForm):
    """Open a case for the call; the note says what the caller wanted (optional)."""

    note = TextAreaField(
        _l("What the caller wanted"),
        validators=[Optional(), Length(max=MAX_TEXT), FreeText(PROSE)],
    )


class HandledForm(FlaskForm):
    """Mark the call handled: nothing to open."""


@dataclass(frozen=True)
class UnreportedCall:
    """One row of the list, as the page shows it."""

    id: int
    ended_at: datetime | None
    duration_seconds: int | None
    number: str
    locale: str | None
    ending: str
    recordings: list[int]


def _row(call: Call, *, full_number: bool) -> UnreportedCall:
    number = call.reachable_number or ""
    return UnreportedCall(
        id=call.id,
        ended_at=call.ended_at,
        duration_seconds=call.duration_seconds,
        number=(number if full_number else mask_number(number)) or "—",
        locale=call.locale,
        ending=str(ENDING_LABELS.get(call.ending, ENDING_LABELS[None])),
        recordings=[r.id for r in call.recordings if r.status == RecordingStatus.STORED],
    )


@bp.get("/unreported-calls")
def unreported_calls() -> str:
    """The list, each call with its recordings and the two actions."""
    who = actor()
    require(who.is_desk, followup.NOT_THE_DESK)
    with db().begin():
        calls = list(db().scalars(queries.unreported_calls(who).limit(LIST_SIZE)))
        rows = [_row(call, full_number=shows_full_number(who)) for call in calls]
    return render_template(
        "console/unreported_calls.html",
        rows=rows,
        open_form=OpenCaseForm(formdata=None),
        handled_form=HandledForm(formdata=None),
    )


@bp.post("/unreported-calls/<row_id:call_id>/open-case")
def open_case_from_call(call_id: int) -> Response | tuple[str, int]:
    """Open a case for the call and go to it."""
    form = OpenCaseForm()
    if not form.validate():
        errors = "; ".join(str(error) for error in form.note.errors)
        flash(errors or _("The form could not be read."), "error")
        return redirect(url_for("console.unreported_calls"))
    settings = current_wiring().settings
    with db().begin():
        case = followup.open_case(
            db(),
            call_id=call_id,
            actor=actor(),
            note=form.note.data or None,
            region=settings.phone_default_region,
            locale=settings.default_locale,
        )
        number = case.number
    flash(_("Case %(number)s opened; it is in the triage queue.", number=number), "success")
    return redirect(url_for("console.case_page", number=number))


@bp.post("/unreported-calls/<row_id:call_id>/handled")
def mark_call_handled(call_id: int) -> Response:
    """Take the call off the list: nothing to open."""
    form = HandledForm()
    if not form.validate():
        flash(_("The form could not be read."), "error")
        return redirect(url_for("console.unreported_calls"))
    with db().begin():
        followup.mark_handled(db(), call_id=call_id, actor=actor())
    flash(_("The call is marked handled."), "success")
    return redirect(url_for("console.unreported_calls"))


@bp.get("/unreported-calls/<row_id:call_id>/recordings/<row_id:recording_id>")
def unreported_call_recording(call_id: int, recording_id: int) -> Response:
    """A recording of a call on the list, for the desk only (others get a 404)."""
    who = actor()
    if not who.is_desk:
        raise NotFound()
    if not recording_link_valid(recording_id):
        # Same as on the case page: a link is made for one person and expires.
        raise Forbidden()
    with db().begin():
        recording = (
            db()
            .scalars(
                select(Recording).where(Recording.id == recording_id, Recording.call_id == call_id)
            )
            .first()
        )
        if recording is None or recording.status != RecordingStatus.STORED:
            raise NotFound()
        relative = recording.storage_path or ""
    path = safe_join(str(current_wiring().settings.recordings_dir), relative)
    if not relative or path is None:
        raise NotFound()
    try:
        response = send_file(
            path,
            mimetype="audio/wav",
            conditional=True,
            download_name=f"call-{call_id}-{recording_id}.wav",
            max_age=0,
        )
    except FileNotFoundError as error:
        raise NotFound() from error
    if not request.range or request.range.ranges[0][0] == 0:  # an audit line per listen
        log.info(
            "recording played",
            extra={"call_id": call_id, "recording_id": recording_id, "username": who.name},
        )
    return no_store(response)
