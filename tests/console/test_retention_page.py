"""The case page after the retention purge: the case reads as before, with the recording and
transcript said to be removed, and an old link to the recording answers that, not an error."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html import unescape as html_unescape

from flask import Flask
from flask_babel import force_locale, gettext

from cases import retention
from cases.models import CaseStatus
from hotline.db import Database
from hotline.wiring import wiring_of
from tests.support.factories import make_case
from tests.support.staff import Console, store_recording

CLOSED_AT = datetime(1990, 3, 1, 8, tzinfo=UTC)
RECORDING_GONE = "Recording removed after the retention period"
TRANSCRIPT_GONE = "Transcript removed after the retention period"


def in_chinese(app: Flask, message: str) -> str:
    """The message as the console shows it to staff who chose no other language."""
    with app.test_request_context(), force_locale("zh_CN"):
        return str(gettext(message))


def test_a_purged_recording_and_transcript_are_said_to_be_removed(
    app: Flask, database: Database, signed_in: Callable[..., Console]
) -> None:
    settings = wiring_of(app).settings
    with database.session() as session, session.begin():
        case = make_case(session, opened_at=CLOSED_AT - timedelta(days=2))
        recording = store_recording(session, case=case, recordings_dir=settings.recordings_dir)
        case.status, case.closed_at = CaseStatus.CLOSED, CLOSED_AT
        number, recording_id = case.number, recording.id
    browser = signed_in("supervisor")
    html = browser.get(f"/console/cases/{number}").get_data(as_text=True)
    found = re.search(rf'src="(/console/cases/{number}/recordings/{recording_id}\?[^"]+)"', html)
    assert found
    link = html_unescape(found.group(1))

    with database.session() as session, session.begin():
        result = retention.purge_expired(
            session,
            now=CLOSED_AT + timedelta(days=2),
            keep_for=timedelta(days=1),
            recordings_dir=settings.recordings_dir,
            media_dir=settings.media_dir,
        )
    assert number in result.cases

    page = browser.get(f"/console/cases/{number}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert in_chinese(app, RECORDING_GONE) in html
    assert in_chinese(app, TRANSCRIPT_GONE) in html
    assert "<audio" not in html
    gone = browser.get(link)
    assert gone.status_code == 410
    assert in_chinese(app, RECORDING_GONE) in gone.get_data(as_text=True)
