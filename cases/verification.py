"""Proving a phone is the web reporter's own, so that updates about their case go to them.

A six-digit code is texted to the number; only a salted hash of it is kept. It works for ten
minutes and for five tries, and a number once proved stays good for a report for half an hour
(the visitor may still be fixing other fields). Sending is throttled per (number, address) pair
and per address over every number (`cases.throttles`), and per number over every address, so
nobody can use the form to flood a stranger's phone with texts.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import locks, throttles
from cases.models import PhoneVerification

CODE_DIGITS = 6
CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5
# How long a proved number may be used for reports after it was proved.
VERIFIED_FOR = timedelta(minutes=30)
# Codes texted to one number, from every address, within the window: a stranger's phone gets
# at most this many texts an hour through the form.
CODES_PER_NUMBER = 5
NUMBER_WINDOW = timedelta(hours=1)

# Each code sent counts like a failure of the (number, address) pair: three resends are free
# (a slow text, a typo in the number), then a pause from a minute, doubling, at most half an
# hour; one address sends at most ten codes an hour over every number.
SEND_POLICY = throttles.Policy(
    kind="sms_code",
    free=3,
    base=timedelta(minutes=1),
    cap=timedelta(minutes=30),
    address_ceiling=10,
    ceiling_window=timedelta(hours=1),
)


@dataclass(frozen=True)
class CodeSent:
    """A code to text: the visitor keeps `verification_id` (in their session), the phone the
    code; the code itself is stored nowhere."""

    verification_id: int
    code: str


@dataclass(frozen=True)
class SendRefused:
    """No code now: too many were sent to this number or from this address."""

    wait: throttles.Verdict


class Outcome(enum.StrEnum):
    """What typing a code did."""

    VERIFIED = "verified"
    WRONG = "wrong"
    EXPIRED = "expired"
    TOO_MANY_TRIES = "too_many_tries"
    # No code was sent to this number in this browser (or the number was changed since).
    NOT_SENT = "not_sent"


@dataclass(frozen=True)
class Confirmation:
    """The outcome of one typed code, and how many tries the code has left."""

    outcome: Outcome
    tries_left: int = 0


def hash_code(code: str, *, salt: str | None = None) -> str:
    """`salt$hex`: the code's HMAC-SHA256 under a random salt, so a copied table gives no
    code without trying all million for each row."""
    salt = salt if salt is not None else secrets.token_hex(16)
    digest = hmac.new(salt.encode(), code.encode(), hashlib.sha256).hexdigest()
    return f"{salt}${digest}"


def code_matches(code: str, code_hash: str) -> bool:
    """Whether `code` is the one hashed, compared in constant time."""
    salt, _, _digest = code_hash.partition("$")
    return hmac.compare_digest(hash_code(code, salt=salt), code_hash)


def new_code() -> str:
    """Six random digits, leading zeros included."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def number_wait(session: Session, *, number: str, now: datetime) -> throttles.Verdict:
    """The pause before another code may go to `number`, from any address."""
    recent = session.scalars(
        select(PhoneVerification.created_at)
        .where(
            PhoneVerification.number == number,
            PhoneVerification.created_at >= now - NUMBER_WINDOW,
        )
        .order_by(PhoneVerification.created_at.desc())
        .offset(CODES_PER_NUMBER - 1)
        .limit(1)
    ).first()
    if recent is None:
        return throttles.Verdict()
    return throttles.Verdict(wait=max(timedelta(0), recent + NUMBER_WINDOW - now))


def request_code(
    session: Session, *, number: str, remote_addr: str, now: datetime
) -> CodeSent | SendRefused:
    """A new code for `number` (E.164), unless a pause runs for the number or the address.
    The caller texts the code after committing, and never stores it."""
    # Requests for one number from several addresses (and web processes) count the number's
    # codes one at a time, so together they never text it more than CODES_PER_NUMBER.
    locks.one_at_a_time(session, name=f"sms-code-number:{number}")
    verdict = throttles.check(
        session, policy=SEND_POLICY, subject=number, remote_addr=remote_addr, now=now
    )
    per_number = number_wait(session, number=number, now=now)
    if per_number.wait > verdict.wait:
        verdict = per_number
    if not verdict.allowed:
        return SendRefused(wait=verdict)
    code = new_code()
    row = PhoneVerification(
        number=number,
        code_hash=hash_code(code),
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    session.add(row)
    throttles.record_failure(
        session, policy=SEND_POLICY, subject=number, remote_addr=remote_addr, now=now
    )
    session.flush()
    return CodeSent(verification_id=row.id, code=code)


def _verification_for(
    session: Session, *, verification_id: int | None, number: str
) -> PhoneVerification | None:
    if verification_id is None:
        return None
    row = session.scalars(
        select(PhoneVerification)
        .where(PhoneVerification.id == verification_id)
        # Two tries racing must not both spend the same attempt.
        .with_for_update()
    ).one_or_none()
    return row if row is not None and row.number == number else None


def confirm_code(
    session: Session, *, verification_id: int | None, number: str, code: str, now: datetime
) -> Confirmation:
    """Check a typed code against the code sent to `number`; every wrong try spends one of
    the code's tries, and a code past its time or its tries never works again."""
    row = _verification_for(session, verification_id=verification_id, number=number)
    if row is None:
        return Confirmation(Outcome.NOT_SENT)
    if row.verified_at is not None:
        return Confirmation(Outcome.VERIFIED, MAX_ATTEMPTS - row.attempts)
    if now >= row.expires_at:
        return Confirmation(Outcome.EXPIRED)
    if row.attempts >= MAX_ATTEMPTS:
        return Confirmation(Outcome.TOO_MANY_TRIES)
    row.attempts += 1
    tries_left = MAX_ATTEMPTS - row.attempts
    if code_matches(code.strip(), row.code_hash):
        row.verified_at = now
        return Confirmation(Outcome.VERIFIED, tries_left)
    if tries_left == 0:
        return Confirmation(Outcome.TOO_MANY_TRIES)
    return Confirmation(Outcome.WRONG, tries_left)


def is_verified(
    session: Session, *, verification_id: int | None, number: str, now: datetime
) -> bool:
    """Whether `number` was proved with this verification, recently enough to report with."""
    if verification_id is None:
        return False
    row = session.get(PhoneVerification, verification_id)
    return (
        row is not None
        and row.number == number
        and row.verified_at is not None
        and now - row.verified_at <= VERIFIED_FOR
    )
