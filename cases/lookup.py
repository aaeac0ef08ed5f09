"""The public case lookup's rules: a case is found by its number and the last four digits of the
caller's phone, and guessing is throttled.

Failed lookups are kept as LoginAttempt rows, namespaced "lookup:" in both columns so that a
citizen's typos never throttle staff sign-in from the same address, nor the reverse. In the
database rather than in memory, so the limit holds across web processes and machines.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from cases.models import Case, LoginAttempt

LOOKUP_PREFIX = "lookup:"
LOOKUP_WINDOW = timedelta(minutes=15)
# Per address: stops one client from trying the 10,000 possible last-four digits of a number.
LOOKUP_MAX_FAILURES_PER_ADDRESS = 10
# Per case number, from any address: stops the same guessing spread over many addresses.
LOOKUP_MAX_FAILURES_PER_NUMBER = 20


def find_case_for_caller(session: Session, *, number: str, phone_last4: str) -> Case | None:
    """The case with this number if its caller's phone ends with these digits, else None.

    The answer is the same None whether the number or the digits are wrong, so that a guess
    tells nothing about which part missed. A case without a caller number cannot be looked up.
    """
    case = session.scalars(select(Case).where(Case.number == number)).one_or_none()
    caller_digits = re.sub(r"\D", "", (case.caller_number or "") if case else "")
    # Compared in constant time, and even when the case is missing, so timing tells nothing.
    matches = hmac.compare_digest(caller_digits[-4:].rjust(4, "#"), phone_last4)
    if case is None or len(caller_digits) < 4 or not matches:
        return None
    return case


def _key(value: str) -> str:
    return LOOKUP_PREFIX + value


def lookup_throttled(session: Session, *, remote_addr: str, number: str, now: datetime) -> bool:
    """Whether too many lookups failed lately from this address, or for this case number."""
    since = now - LOOKUP_WINDOW
    by_address, by_number = session.execute(
        select(
            func.count(LoginAttempt.id).filter(LoginAttempt.remote_addr == _key(remote_addr)),
            func.count(LoginAttempt.id).filter(LoginAttempt.username == _key(number)),
        ).where(
            LoginAttempt.created_at >= since,
            or_(
                LoginAttempt.remote_addr == _key(remote_addr),
                LoginAttempt.username == _key(number),
            ),
        )
    ).one()
    return (
        by_address >= LOOKUP_MAX_FAILURES_PER_ADDRESS or by_number >= LOOKUP_MAX_FAILURES_PER_NUMBER
    )


def record_failed_lookup(session: Session, *, remote_addr: str, number: str, now: datetime) -> None:
    """Count a failed lookup against the address and the number; forget long-past ones."""
    session.add(
        LoginAttempt(username=_key(number)[:80], remote_addr=_key(remote_addr)[:64], created_at=now)
    )
    session.execute(
        delete(LoginAttempt).where(
            LoginAttempt.username.startswith(LOOKUP_PREFIX),
            LoginAttempt.created_at < now - 4 * LOOKUP_WINDOW,
        )
    )


@dataclass(frozen=True)
class LookupOutcome:
    """What one lookup attempt found: the case, or nothing (and whether it was refused)."""

    case: Case | None
    throttled: bool = False


def look_up_case(
    session: Session, *, number: str, phone_last4: str, remote_addr: str, now: datetime
) -> LookupOutcome:
    """One lookup: refused while throttled (even with the right digits, so guessing on gains
    nothing); a miss counts towards the throttle, a hit does not clear it."""
    if lookup_throttled(session, remote_addr=remote_addr, number=number, now=now):
        return LookupOutcome(case=None, throttled=True)
    case = find_case_for_caller(session, number=number, phone_last4=phone_last4)
    if case is None:
        record_failed_lookup(session, remote_addr=remote_addr, number=number, now=now)
    return LookupOutcome(case=case)
