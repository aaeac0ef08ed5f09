"""Reports from the public site's form: the words, the place the reporter chose, a photo, and a
proved phone number or none; and how fast one address may send them.

The place is written into the report's words as well as kept as its address, so that routing
(which reads the words) finds the town or sub-district the reporter picked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from cases import attachments, throttles
from cases.intake import WrittenReport, open_case_from_writing
from cases.models import Case, Intake

# Five reports a day from one address cost nothing (a family, a shop); then each waits from
# five minutes, doubling, at most an hour; at most twenty an hour from one address.
REPORT_POLICY = throttles.Policy(
    kind="web_report",
    free=5,
    base=timedelta(minutes=5),
    cap=timedelta(hours=1),
    address_ceiling=20,
    ceiling_window=timedelta(hours=1),
)
# One subject for every report: the pair is the address.
_SUBJECT = "report"
WEB_ACTOR = "web"


@dataclass(frozen=True)
class WebReport:
    """What the visitor sent, checked: `number` is in E.164 and proved, or None (anonymous)."""

    description: str
    locale: str
    place_name: str | None = None
    address: str | None = None
    number: str | None = None
    photo: attachments.CheckedPhoto | None = None


def report_wait(session: Session, *, remote_addr: str, now: datetime) -> throttles.Verdict:
    """Whether this address may send a report now, and if not, how long to wait."""
    return throttles.check(
        session, policy=REPORT_POLICY, subject=_SUBJECT, remote_addr=remote_addr, now=now
    )


def report_words(report: WebReport) -> str:
    """The case's words: the description, then the place and address on a line of their own."""
    where = " ".join(part for part in (report.place_name, report.address) if part)
    return f"{report.description}\n{where}" if where else report.description


def open_web_report(
    session: Session, *, report: WebReport, media_dir: Path, remote_addr: str, now: datetime
) -> Case:
    """Open the case (intake web) with its photo, and count the report against the address.
    The caller commits, then queues the case's routing."""
    where = " ".join(part for part in (report.place_name, report.address) if part)
    case = open_case_from_writing(
        session,
        report=WrittenReport(
            intake=Intake.WEB,
            text=report_words(report),
            locale=report.locale,
            reporter_number=report.number,
            address=where[:255] or None,
        ),
        actor=WEB_ACTOR,
    )
    if report.photo is not None:
        attachments.store_photo(
            session, case=case, photo=report.photo, media_dir=media_dir, now=now
        )
    throttles.record_failure(
        session, policy=REPORT_POLICY, subject=_SUBJECT, remote_addr=remote_addr, now=now
    )
    return case
