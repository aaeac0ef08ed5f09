"""Slowing down guessing without locking out the people guessed about.

A failure (a wrong password, a wrong last-four digits) counts against the pair it came from:
the subject guessed at (an account, a case number) and the address that guessed. So an attacker
who hammers an account or a case number slows only themselves: the account's owner, or the
caller, at another address still gets in. After `free` failures of a pair, each further try
waits `base * 2**(failures - free)` seconds after the last failure, at most `cap`; nobody solves
a captcha. A generous ceiling per address, over every subject, stops one address from trying
many accounts or numbers at once, yet lets an office behind one NAT address work.

Failures live in the database (`ThrottleFailure` rows), so the throttle holds across web
processes and machines on SQLite and PostgreSQL alike; they are forgotten after `memory`, and
a success (or an administrator's unlock) clears the pair. A check holds the pair until its
transaction ends (`cases.locks`), so check and record are one step: guesses racing from one
pair, through any number of web processes, wait for each other instead of each slipping past
the curve. The address's ceiling is counted without that lock: racing guesses at different
subjects can pass it by the number of requests in flight, which the pairs' curves still slow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from cases import locks
from cases.models import ThrottleFailure

SIGN_IN = "sign_in"
LOOKUP = "lookup"


@dataclass(frozen=True)
class Policy:
    """How fast one kind of guess slows down."""

    kind: str
    # Failures of one (subject, address) pair that cost nothing.
    free: int
    # The first pause, doubled by every further failure, never longer than `cap`.
    base: timedelta
    cap: timedelta
    # Failures from one address, over every subject, within `ceiling_window`, before a pause.
    address_ceiling: int
    ceiling_window: timedelta
    # How long a failure is remembered.
    memory: timedelta = timedelta(days=1)

    def pause_after(self, failures: int) -> timedelta:
        """How long to wait after the last of `failures` failures of one pair."""
        if failures < self.free:
            return timedelta(0)
        # Capped before the power, so a long attack cannot overflow the float.
        doublings = min(failures - self.free, 40)
        pause: timedelta = self.base * 2**doublings
        return min(self.cap, pause)


@dataclass(frozen=True)
class Verdict:
    """Whether a guess may be tried now, and if not, for how long to wait."""

    wait: timedelta = timedelta(0)

    @property
    def allowed(self) -> bool:
        """True when no pause is running."""
        return self.wait <= timedelta(0)

    @property
    def wait_seconds(self) -> int:
        """The pause in whole seconds, rounded up (for Retry-After)."""
        return max(0, math.ceil(self.wait.total_seconds()))

    @property
    def wait_minutes(self) -> int:
        """The pause in whole minutes, rounded up, at least one (for people)."""
        return max(1, math.ceil(self.wait.total_seconds() / 60))


def check(
    session: Session, *, policy: Policy, subject: str, remote_addr: str, now: datetime
) -> Verdict:
    """Whether `remote_addr` may try `subject` now: the pair's curve, then the address's
    ceiling. Holds the pair until the transaction ends, so record the failure in the same one."""
    subject, remote_addr = _fit(subject, remote_addr)
    _hold_pair(session, kind=policy.kind, subject=subject, remote_addr=remote_addr)
    failures, last = session.execute(
        select(func.count(ThrottleFailure.id), func.max(ThrottleFailure.created_at)).where(
            ThrottleFailure.kind == policy.kind,
            ThrottleFailure.subject == subject,
            ThrottleFailure.remote_addr == remote_addr,
            ThrottleFailure.created_at >= now - policy.memory,
        )
    ).one()
    wait = timedelta(0)
    if failures and last is not None:
        wait = last + policy.pause_after(failures) - now
    # The ceiling: the address's `address_ceiling`-th latest failure must have aged out of
    # the window before it tries anything again.
    oldest_counted = session.scalars(
        select(ThrottleFailure.created_at)
        .where(
            ThrottleFailure.kind == policy.kind,
            ThrottleFailure.remote_addr == remote_addr,
            ThrottleFailure.created_at >= now - policy.ceiling_window,
        )
        .order_by(ThrottleFailure.created_at.desc())
        .offset(policy.address_ceiling - 1)
        .limit(1)
    ).first()
    if oldest_counted is not None:
        wait = max(wait, oldest_counted + policy.ceiling_window - now)
    return Verdict(wait=max(wait, timedelta(0)))


def record_failure(
    session: Session, *, policy: Policy, subject: str, remote_addr: str, now: datetime
) -> None:
    """Count a failure against the pair; forget failures older than the policy's memory."""
    subject, remote_addr = _fit(subject, remote_addr)
    _hold_pair(session, kind=policy.kind, subject=subject, remote_addr=remote_addr)
    session.add(
        ThrottleFailure(kind=policy.kind, subject=subject, remote_addr=remote_addr, created_at=now)
    )
    session.execute(
        delete(ThrottleFailure).where(
            ThrottleFailure.kind == policy.kind,
            ThrottleFailure.created_at < now - policy.memory,
        )
    )


def clear(session: Session, *, kind: str, subject: str, remote_addr: str | None = None) -> int:
    """Forget the failures against `subject`: from one address (a success there), or from
    every address (an administrator's unlock). Returns how many were forgotten."""
    query = delete(ThrottleFailure).where(
        ThrottleFailure.kind == kind, ThrottleFailure.subject == subject[:80]
    )
    if remote_addr is not None:
        query = query.where(ThrottleFailure.remote_addr == remote_addr[:64])
    return session.execute(query).rowcount  # type: ignore[attr-defined, no-any-return]


def paused_subjects(session: Session, *, policy: Policy, now: datetime) -> dict[str, datetime]:
    """The subjects with a pause running for at least one address, each with when the last
    of their pauses ends (for the administrators' page)."""
    rows = session.execute(
        select(
            ThrottleFailure.subject,
            func.count(ThrottleFailure.id),
            func.max(ThrottleFailure.created_at),
        )
        .where(
            ThrottleFailure.kind == policy.kind,
            ThrottleFailure.created_at >= now - policy.memory,
        )
        .group_by(ThrottleFailure.subject, ThrottleFailure.remote_addr)
        .having(func.count(ThrottleFailure.id) >= policy.free)
    ).all()
    paused: dict[str, datetime] = {}
    for subject, failures, last in rows:
        until = last + policy.pause_after(failures)
        if until > now:
            paused[subject] = max(until, paused.get(subject, until))
    return paused


def _fit(subject: str, remote_addr: str) -> tuple[str, str]:
    # The columns' widths: a longer username or address is cut the same way every time.
    return subject[:80], remote_addr[:64]


def _hold_pair(session: Session, *, kind: str, subject: str, remote_addr: str) -> None:
    # Another process's guess from the same pair must see this one's failure before it is
    # checked: without the lock, both read the count before either records.
    locks.one_at_a_time(session, name=f"throttle:{kind}:{subject}:{remote_addr}")
