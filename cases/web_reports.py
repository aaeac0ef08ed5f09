"""Reports from the public site's form: the words, the place the reporter chose, a photo, and a
proved phone number or none; and how fast one address may send them.

The place is written into the report's words as well as kept as its address, so that routing
(which reads the words) finds the town or sub-district the reporter picked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import attachments, locks, throttles
from cases.intake import WrittenReport, open_case_from_writing
from cases.models import Case, CaseEvent, Intake

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
    # The one-time token the form carried: a second post of the same form (a double click, a
    # reload that posts again) finds the case the first opened.
    submission: str | None = None


class ReportThrottledError(Exception):
    """This address sent too many reports lately; `wait` says for how long to hold off."""

    def __init__(self, wait: throttles.Verdict) -> None:
        super().__init__(f"too many reports; wait {wait.wait_seconds} s")
        self.wait = wait


@dataclass(frozen=True)
class OpenedReport:
    """The case a report opened, and whether this post opened it (False: an earlier post of
    the same form did)."""

    case: Case
    created: bool


def report_wait(session: Session, *, remote_addr: str, now: datetime) -> throttles.Verdict:
    """Whether this address may send a report now, and if not, how long to wait."""
    return throttles.check(
        session, policy=REPORT_POLICY, subject=_SUBJECT, remote_addr=remote_addr, now=now
    )


def _where(report: WebReport) -> str:
    return " ".join(part for part in (report.place_name, report.address) if part)


def report_words(report: WebReport) -> str:
    """The case's words: the description, then the place and address on a line of their own."""
    where = _where(report)
    return f"{report.description}\n{where}" if where else report.description


def _opened_by(session: Session, *, submission: str) -> Case | None:
    """The case an earlier post of the same form opened, if one did."""
    return session.scalars(
        select(Case)
        .join(CaseEvent, CaseEvent.case_id == Case.id)
        .where(
            CaseEvent.kind == "opened",
            CaseEvent.data["submission"].as_string() == submission,
        )
        .limit(1)
    ).first()


def open_web_report(
    session: Session, *, report: WebReport, media_dir: Path, remote_addr: str, now: datetime
) -> OpenedReport:
    """Open the case (intake web) with its photo, and count the report against the address;
    a form posted again gets the case it opened. ReportThrottledError if the address must wait.
    The caller commits, then queues the case's routing (for a new case)."""
    if report.submission:
        locks.one_at_a_time(session, name=f"web-report:{report.submission}")
        earlier = _opened_by(session, submission=report.submission)
        if earlier is not None:
            return OpenedReport(case=earlier, created=False)
    # Checked again here, in the transaction that counts the report: the check holds the
    # address until the commit, so posts racing through several web processes take turns
    # (the form's own check, earlier, only spares a throttled visitor the phone check).
    wait = report_wait(session, remote_addr=remote_addr, now=now)
    if not wait.allowed:
        raise ReportThrottledError(wait)
    where = _where(report)
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
        **({"submission": report.submission} if report.submission else {}),
    )
    if report.photo is not None:
        attachments.store_photo(
            session, case=case, photo=report.photo, media_dir=media_dir, now=now
        )
    throttles.record_failure(
        session, policy=REPORT_POLICY, subject=_SUBJECT, remote_addr=remote_addr, now=now
    )
    return OpenedReport(case=case, created=True)
