"""Texts to the hotline's number: each one kept once by its MessageSid (so a retried webhook
gets the answer already given), the numbers that opted out of our texts, and a report written
in several texts joined into one case.

Service functions take keyword arguments and an explicit session, and never commit.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases import intake, locks
from cases.models import Case, CaseStatus, InboundText, Intake, TextOptOut
from cases.timeline import add_event

# What a text was taken as (`InboundText.kind`).
CLAIMED = "claimed"  # being answered by a request right now
REPORT = "report"  # opened a case
PART = "part"  # joined the case its sender's previous text opened
RATING = "rating"
STOP = "stop"
START = "start"
HELP = "help"
THROTTLED = "throttled"  # a report refused: too many from the number this hour
OTHER = "other"  # not a report (too short to be one), answered with help


@dataclass(frozen=True)
class KeptAnswer:
    """The answer given to a text, as kept for a retry of its webhook."""

    key: str | None  # None: the answer was empty TwiML (Twilio answered the keyword itself)
    locale: str | None
    values: dict[str, str]


def kept_answer(session: Session, *, message_sid: str) -> KeptAnswer | None:
    """The answer already given to this MessageSid, if a request answered it."""
    row = session.scalars(
        select(InboundText).where(
            InboundText.message_sid == message_sid, InboundText.kind != CLAIMED
        )
    ).first()
    if row is None:
        return None
    return KeptAnswer(row.reply_key, row.reply_locale, dict(row.reply_values or {}))


def claim(
    session: Session, *, message_sid: str, from_number: str, body: str, now: datetime
) -> InboundText:
    """Keep the text under its MessageSid before anything else happens to it: a concurrent
    retry of the same webhook then fails on the unique SID (and, once this commits, finds
    the answer) instead of acting twice."""
    row = InboundText(
        message_sid=message_sid, from_number=from_number, body=body, kind=CLAIMED, received_at=now
    )
    session.add(row)
    session.flush()
    return row


def settle(
    row: InboundText,
    *,
    kind: str,
    answer: KeptAnswer,
    case: Case | None = None,
) -> None:
    """Note what the text was taken as and the answer it gets (the same for every retry)."""
    row.kind = kind
    row.case = case
    row.reply_key = answer.key
    row.reply_locale = answer.locale
    row.reply_values = dict(answer.values)


# --- Opting out ---------------------------------------------------------------------------


def opted_out(session: Session, *, number: str | None) -> bool:
    """Whether the number asked us (STOP) to text it nothing."""
    return bool(number) and session.get(TextOptOut, number) is not None


def opt_out(session: Session, *, number: str, now: datetime) -> bool:
    """Text this number nothing more; False if it had already opted out."""
    if session.get(TextOptOut, number) is not None:
        return False
    session.add(TextOptOut(number=number, opted_out_at=now))
    session.flush()
    return True


def opt_in(session: Session, *, number: str) -> bool:
    """Text this number again (START); False if it had not opted out."""
    row = session.get(TextOptOut, number)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


# --- Reports, in one text or several --------------------------------------------------------


@dataclass(frozen=True)
class JoinWindow:
    """How long after a report text the sender's next one is taken as its continuation.

    `join_seconds` runs from the latest part. `lost_after_seconds` is when the routing sweep
    (`routing.tasks.requeue_unrouted_cases`) takes a written case that is still unrouted for
    lost, counted from its opening: a part joins only while the window it opens still ends
    before that, so the sweep never routes a case whose next part may still come.
    """

    join_seconds: float
    lost_after_seconds: float

    def accepts(self, *, case: Case, last_part_at: datetime, now: datetime) -> bool:
        """Whether a text arriving `now` still joins `case`, whose latest part came at
        `last_part_at`."""
        if now - last_part_at > timedelta(seconds=self.join_seconds):
            return False
        open_for = timedelta(seconds=self.lost_after_seconds - self.join_seconds)
        return now - case.opened_at <= open_for


@dataclass(frozen=True)
class ReportOutcome:
    """What a report text did: opened a case, joined one, or was refused as one too many."""

    kind: str  # REPORT, PART or THROTTLED
    case: Case | None


def _serialise_sender(session: Session, *, number: str) -> None:
    """Take the sender's texts one at a time (two parts arriving together must not open two
    cases)."""
    locks.one_at_a_time(session, name=f"inbound-text:{number}")


def _case_to_join(
    session: Session, *, number: str, window: JoinWindow, now: datetime
) -> Case | None:
    """The case the sender's latest report text opened (or joined), if this text continues it:
    within the window, and the case still open and unrouted."""
    latest = session.scalars(
        select(InboundText)
        .where(
            InboundText.from_number == number,
            InboundText.kind.in_((REPORT, PART)),
            InboundText.case_id.is_not(None),
        )
        .order_by(InboundText.received_at.desc(), InboundText.id.desc())
        .limit(1)
    ).first()
    if latest is None or latest.case is None:
        return None
    case = latest.case
    if case.routed_at is not None or case.status != CaseStatus.OPEN or case.merged_into_id:
        return None
    return case if window.accepts(case=case, last_part_at=latest.received_at, now=now) else None


def _is_wide(char: str) -> bool:
    """A character written without spaces between words (Han, kana)."""
    return unicodedata.east_asian_width(char) in ("W", "F") and not ("\uac00" <= char <= "\ud7a3")


def joined(first: str, second: str) -> str:
    """Two parts of one report as one text: nothing between Chinese characters, else a space."""
    first, second = first.rstrip(), second.lstrip()
    if not first or not second:
        return first or second
    if _is_wide(first[-1]) and _is_wide(second[0]):
        return first + second
    return f"{first} {second}"


def reports_this_hour(session: Session, *, number: str, now: datetime) -> int:
    """How many cases the number's texts opened in the last hour."""
    return int(
        session.scalar(
            select(func.count(InboundText.id)).where(
                InboundText.from_number == number,
                InboundText.kind == REPORT,
                InboundText.received_at >= now - timedelta(hours=1),
            )
        )
        or 0
    )


def take_report(
    session: Session,
    *,
    row: InboundText,
    locale: str,
    window: JoinWindow,
    reports_per_hour: int,
    now: datetime,
) -> ReportOutcome:
    """The report text `row` (claimed): the next part of its sender's report still open to
    more, else a new case, unless the number opened `reports_per_hour` cases in the last hour.
    The adapter queues the case's routing after commit, once the join window has passed."""
    number = row.from_number
    _serialise_sender(session, number=number)
    case = _case_to_join(session, number=number, window=window, now=now)
    if case is not None:
        case.report_text = joined(case.report_text or "", row.body)
        add_event(session, case=case, kind="report_part_added", actor="sms", **_part(row))
        return ReportOutcome(PART, case)
    if reports_this_hour(session, number=number, now=now) >= reports_per_hour:
        return ReportOutcome(THROTTLED, None)
    case = intake.open_case_from_writing(
        session,
        report=intake.WrittenReport(
            intake=Intake.SMS, text=row.body, locale=locale, reporter_number=number
        ),
        actor="sms",
    )
    return ReportOutcome(REPORT, case)


def _part(row: InboundText) -> dict[str, Any]:
    return {"message_sid": row.message_sid}
