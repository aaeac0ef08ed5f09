"""Finding cases: by number, caller's phone, words, category, department, status and the day
they were opened, within what the person searching may see (`cases.access`).

The search is the desk's first tool when a caller rings again ("I reported this last week"),
and a department's when a citizen walks in: it must find a case from a fragment of what they
remember. Words are matched anywhere in the work order, the caller's own words (transcript
or written report), the address and the reply; a phone number from any of its written forms
(`138 0013 8000`, `+86…`, the last four digits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import Select, exists, false, or_

from cases.access import Actor, visible_cases
from cases.models import Case, CaseStatus, Transcript
from cases.phones import to_e164

# Fewer digits than this match too many numbers to be a search by phone.
MIN_PHONE_DIGITS = 4


@dataclass(frozen=True)
class CaseSearch:
    """What a search asks for; each field left empty (None) matches every case."""

    number: str | None = None
    phone: str | None = None
    text: str | None = None
    category_code: str | None = None
    department_code: str | None = None
    statuses: tuple[CaseStatus, ...] | None = None
    opened_from: date | None = None  # days on the city's clock, both ends included
    opened_to: date | None = None

    @property
    def is_empty(self) -> bool:
        """Whether nothing was asked for (the page then shows the form alone)."""
        return not any(
            (
                self.number,
                self.phone,
                self.text,
                self.category_code,
                self.department_code,
                self.statuses,
                self.opened_from,
                self.opened_to,
            )
        )


def phone_digits(raw: str, *, region: str) -> str | None:
    """The digits a stored number (E.164) must contain to match what was typed: the whole
    number when it is one (a trunk `0` or a `+86` read as the region's), else the digits as
    typed (the last four, say); None if too few to search by."""
    digits = re.sub(r"\D", "", raw)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    # Short runs are fragments: read as a whole number, 1234567 would become +861234567.
    whole = (
        to_e164(raw, region=region) if raw.strip().startswith("+") or len(digits) >= 10 else None
    )
    return whole.lstrip("+") if whole else digits


def search_cases(actor: Actor, search: CaseSearch, *, region: str, zone: tzinfo) -> Select[Case]:
    """The cases the actor may see that match every field given, newest first. `region`
    reads a phone number without its country code; `zone` is the city's clock the dates are
    days of. A phone too short to search by matches nothing (the form says so first)."""
    query = visible_cases(actor)
    if search.number:
        # Part of a number matches too (a caller may read out the first digits only).
        number_digits = re.sub(r"\D", "", search.number)
        query = query.where(
            Case.number.contains(number_digits, autoescape=True) if number_digits else false()
        )
    if search.phone:
        digits = phone_digits(search.phone, region=region)
        query = query.where(
            Case.caller_number.contains(digits, autoescape=True) if digits else false()
        )
    if search.text:
        words = search.text.strip()
        in_transcript = exists().where(
            Transcript.case_id == Case.id, Transcript.text.icontains(words, autoescape=True)
        )
        query = query.where(
            or_(
                Case.work_order.icontains(words, autoescape=True),
                Case.report_text.icontains(words, autoescape=True),
                Case.address.icontains(words, autoescape=True),
                Case.resolution.icontains(words, autoescape=True),
                in_transcript,
            )
        )
    if search.category_code:
        query = query.where(Case.category_code == search.category_code)
    if search.department_code:
        query = query.where(Case.department_code == search.department_code)
    if search.statuses:
        query = query.where(Case.status.in_(search.statuses))
    if search.opened_from:
        query = query.where(Case.opened_at >= _start_of(search.opened_from, zone))
    if search.opened_to:
        query = query.where(Case.opened_at < _start_of(search.opened_to + timedelta(days=1), zone))
    return query.order_by(Case.opened_at.desc(), Case.id.desc())


def _start_of(day: date, zone: tzinfo) -> datetime:
    """Midnight of `day` on the city's clock."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def callers_other_cases(actor: Actor, case: Case) -> Select[Case]:
    """The same caller's other cases the actor may see, newest first (none for a case with
    no caller's number: a web report left anonymous)."""
    query = visible_cases(actor).where(Case.id != case.id)
    if not case.caller_number:
        return query.where(false())
    return query.where(Case.caller_number == case.caller_number).order_by(
        Case.opened_at.desc(), Case.id.desc()
    )
