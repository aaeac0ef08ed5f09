"""The public case lookup's rules: a case is found by its number and the last four digits of the
caller's phone, and guessing is slowed per (case number, address) pair (`cases.throttles`).

Per pair, not per number: twenty strangers guessing at one number must not lock its caller out.
Per pair, not only per address: one address may look up several cases (a family, an office).
A ceiling per address over every number stops one client from sweeping numbers; it is
generous, since many citizens can share one carrier-grade NAT address.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import throttles
from cases.models import Case

# Five misses at one number from one address cost nothing (typos); then a pause from a minute,
# doubling to a quarter of an hour: about a hundred guesses a day at the 10,000 last-fours.
LOOKUP_POLICY = throttles.Policy(
    kind=throttles.LOOKUP,
    free=5,
    base=timedelta(minutes=1),
    cap=timedelta(minutes=15),
    address_ceiling=50,
    ceiling_window=timedelta(hours=1),
)


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


@dataclass(frozen=True)
class LookupOutcome:
    """What one lookup attempt found: the case, or nothing; `wait` is the pause running for this
    number from this address (the attempt was refused unchecked if `throttled`)."""

    case: Case | None
    wait: throttles.Verdict
    throttled: bool = False


def look_up_case(
    session: Session, *, number: str, phone_last4: str, remote_addr: str, now: datetime
) -> LookupOutcome:
    """One lookup: refused while a pause runs for this number from this address (even with the
    right digits, so guessing on gains nothing); a miss counts against the pair."""
    verdict = throttles.check(
        session, policy=LOOKUP_POLICY, subject=number, remote_addr=remote_addr, now=now
    )
    if not verdict.allowed:
        return LookupOutcome(case=None, wait=verdict, throttled=True)
    case = find_case_for_caller(session, number=number, phone_last4=phone_last4)
    if case is None:
        throttles.record_failure(
            session, policy=LOOKUP_POLICY, subject=number, remote_addr=remote_addr, now=now
        )
        verdict = throttles.check(
            session, policy=LOOKUP_POLICY, subject=number, remote_addr=remote_addr, now=now
        )
    return LookupOutcome(case=case, wait=verdict)
