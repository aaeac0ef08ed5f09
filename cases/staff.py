"""Staff accounts: passwords (argon2id), sign-in with its throttle, signed-in sessions kept
server-side; and how departments receive cases (channels, API keys)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from cases import throttles
from cases.access import Actor
from cases.errors import N_, InvalidInputError
from cases.models import Department, Role, StaffSession, User

MIN_PASSWORD_LENGTH = 10
API_KEY_PREFIX = "hlk_"
# argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: 64 MiB, 3 passes);
# a hash made with weaker parameters, or werkzeug's older pbkdf2/scrypt, is redone at the
# next sign-in, when the password is at hand.
_HASHER = PasswordHasher()
# Checked against when the username is unknown, so that timing does not tell which names exist.
_DUMMY_HASH = _HASHER.hash("not-a-real-password")
# However the session is used, it ends this long after signing in (ASVS 3.3).
SESSION_MAX_AGE = timedelta(hours=12)
# How long a password-reset link works: a working day to pass it on and use it.
RESET_LINK_AGE = timedelta(hours=24)
# Wrong passwords from one address over all accounts, per hour, before that address pauses:
# far above what an office of people mistyping behind one NAT address produces.
SIGN_IN_ADDRESS_CEILING = 100


def hash_password(password: str) -> str:
    """The password's argon2id hash."""
    return _HASHER.hash(password)


def _check_password(stored: str, password: str) -> tuple[bool, bool]:
    """Whether the password matches the stored hash, and whether the hash should be redone."""
    if stored.startswith("$argon2"):
        try:
            _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, False
        return True, _HASHER.check_needs_rehash(stored)
    # A hash from before argon2 (werkzeug's pbkdf2 or scrypt): upgraded once it matches.
    return check_password_hash(stored, password), True


def actor_for(user: User) -> Actor:
    """The actor a signed-in user acts as."""
    return Actor(name=user.username, role=Role(user.role), department_code=user.department_code)


def department_actor(department: Department) -> Actor:
    """The actor a department's own system acts as, through the API."""
    return Actor(
        name=f"api:{department.code}", role=Role.DEPARTMENT, department_code=department.code
    )


def add_user(
    session: Session, *, username: str, password: str, role: str, department_code: str | None
) -> User:
    """Create a staff account; department staff must name their department, others must not."""
    username = username.strip()
    if not username or len(username) > 80:
        raise InvalidInputError("a username of 1 to 80 characters is required")
    try:
        role_value = Role(role)
    except ValueError as error:
        raise InvalidInputError(f"unknown role {role!r}") from error
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if role_value == Role.DEPARTMENT:
        if not department_code or session.get(Department, department_code) is None:
            raise InvalidInputError(
                f"department staff need a known department, not {department_code!r}"
            )
    elif department_code:
        raise InvalidInputError(f"a {role_value} account belongs to no department")
    if session.scalars(select(User.id).where(User.username == username)).first() is not None:
        raise InvalidInputError(f"user {username!r} exists already")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role_value,
        department_code=department_code if role_value == Role.DEPARTMENT else None,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, *, user: User, password: str) -> None:
    """Change a user's password; every session signed in with the old one ends."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = hash_password(password)
    end_all_sessions(session, user_id=user.id)


def issue_reset_token(session: Session, *, user: User, now: datetime) -> str:
    """A one-time password-reset token for an administrator to pass on (only its hash is
    kept). It works until RESET_LINK_AGE passes or it is used, and replaces any earlier one."""
    token = secrets.token_urlsafe(32)
    user.reset_token_hash, user.reset_expires_at = _token_hash(token), now + RESET_LINK_AGE
    return token


def user_for_reset_token(session: Session, *, token: str, now: datetime) -> User | None:
    """The active account a reset token opens, if it is still good."""
    user = session.scalars(
        select(User).where(User.reset_token_hash == _token_hash(token), User.active)
    ).one_or_none()
    if user is None or user.reset_expires_at is None or user.reset_expires_at <= now:
        return None
    return user


def reset_password(session: Session, *, token: str, password: str, now: datetime) -> User | None:
    """Set a new password through a reset link: the link is used up, the sign-in pauses on the
    account are lifted, and every session signed in before ends. None if the link is not good
    (used, expired, replaced, or never issued); InvalidInputError for a password too short."""
    user = user_for_reset_token(session, token=token, now=now)
    if user is None:
        return None
    set_password(session, user=user, password=password)
    user.reset_token_hash = user.reset_expires_at = None
    unlock(session, user=user)
    return user


def set_active(session: Session, *, actor: Actor, user: User, active: bool) -> None:
    """Activate or deactivate an account; its sessions end at their next request. Nobody
    deactivates themselves, and the last active administrator stays active, so that someone
    can always administer the hotline."""
    if not active:
        if user.username == actor.name:
            raise InvalidInputError(N_("You cannot deactivate yourself."))
        other_admins = session.scalar(
            select(func.count(User.id)).where(
                User.role == Role.ADMIN, User.active, User.id != user.id
            )
        )
        if user.role == Role.ADMIN and not other_admins:
            raise InvalidInputError(N_("The last active administrator stays active."))
        end_all_sessions(session, user_id=user.id)
    user.active = active


def sign_in_policy(*, free_failures: int, longest_pause: timedelta) -> throttles.Policy:
    """How wrong passwords slow down: `free_failures` per (account, address) pair cost nothing,
    then a pause from one minute, doubling, at most `longest_pause`."""
    return throttles.Policy(
        kind=throttles.SIGN_IN,
        free=free_failures,
        base=timedelta(minutes=1),
        cap=longest_pause,
        address_ceiling=SIGN_IN_ADDRESS_CEILING,
        ceiling_window=timedelta(hours=1),
    )


@dataclass(frozen=True)
class SignInOutcome:
    """One sign-in attempt: the user, or None; `wait` is the pause now running for this
    account from this address (refused without a check while it runs)."""

    user: User | None
    wait: throttles.Verdict
    refused: bool = False


def sign_in(
    session: Session,
    *,
    username: str,
    password: str,
    remote_addr: str,
    policy: throttles.Policy,
    now: datetime,
) -> SignInOutcome:
    """Check a username and password, throttled per (account, address) pair.

    While a pause runs for the pair (or the address is over its ceiling), the password is not
    even checked, so guessing on gains nothing. The pause is the guesser's own: the same
    account from another address is unaffected. A success clears the pair's failures.
    """
    username = username.strip()
    verdict = throttles.check(
        session, policy=policy, subject=username, remote_addr=remote_addr, now=now
    )
    if not verdict.allowed:
        return SignInOutcome(user=None, wait=verdict, refused=True)
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    valid, outdated = _check_password(user.password_hash if user else _DUMMY_HASH, password)
    if user is not None and valid and user.active:
        if outdated:
            user.password_hash = hash_password(password)
        throttles.clear(session, kind=policy.kind, subject=username, remote_addr=remote_addr)
        return SignInOutcome(user=user, wait=throttles.Verdict())
    throttles.record_failure(
        session, policy=policy, subject=username, remote_addr=remote_addr, now=now
    )
    after = throttles.check(
        session, policy=policy, subject=username, remote_addr=remote_addr, now=now
    )
    return SignInOutcome(user=None, wait=after)


def unlock(session: Session, *, user: User) -> int:
    """An administrator's unlock: forget every failed sign-in to this account, from every
    address. Returns how many failures were forgotten."""
    return throttles.clear(session, kind=throttles.SIGN_IN, subject=user.username)


def paused_accounts(session: Session, *, policy: throttles.Policy, now: datetime) -> set[str]:
    """The usernames with a sign-in pause running for at least one address."""
    return set(throttles.paused_subjects(session, policy=policy, now=now))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, *, user: User, now: datetime) -> str:
    """A new signed-in session for the user; returns the token for the cookie (only its hash
    is stored). Sessions past their age are cleared out on the way."""
    session.execute(delete(StaffSession).where(StaffSession.created_at < now - SESSION_MAX_AGE))
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(token_hash=_token_hash(token), user_id=user.id, created_at=now))
    return token


def user_for_session(session: Session, *, token: str, now: datetime) -> User | None:
    """The active user signed in with this session token, if the session has not ended."""
    return session.scalars(
        select(User)
        .join(StaffSession, StaffSession.user_id == User.id)
        .where(
            StaffSession.token_hash == _token_hash(token),
            StaffSession.created_at >= now - SESSION_MAX_AGE,
            User.active,
        )
    ).one_or_none()


def end_session(session: Session, *, token: str) -> None:
    """Sign one session out: its cookie, and every copy of it, opens nothing from now on."""
    session.execute(delete(StaffSession).where(StaffSession.token_hash == _token_hash(token)))


def end_all_sessions(session: Session, *, user_id: int) -> None:
    """Sign the user out everywhere (deactivation, a new password)."""
    session.execute(delete(StaffSession).where(StaffSession.user_id == user_id))


def set_department_channels(
    session: Session,
    *,
    code: str,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    email: str | None = None,
    sms_number: str | None = None,
) -> Department:
    """Set the channels given (an empty string clears one); the others stay as they are."""
    department = session.get(Department, code)
    if department is None:
        raise InvalidInputError(f"unknown department {code!r}")
    if webhook_url is not None:
        if webhook_url and not webhook_url.startswith(("https://", "http://")):
            raise InvalidInputError("the webhook URL must be http(s)")
        department.webhook_url = webhook_url or None
    if webhook_secret is not None:
        department.webhook_secret = webhook_secret or None
    if department.webhook_url and not department.webhook_secret:
        raise InvalidInputError("a webhook needs a secret to sign its deliveries")
    if email is not None:
        if email and "@" not in email:
            raise InvalidInputError(f"not an e-mail address: {email!r}")
        department.email = email or None
    if sms_number is not None:
        department.sms_number = sms_number or None
    return department


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_api_key(session: Session, *, code: str) -> str:
    """A new API key for the department's own system (any earlier key stops working)."""
    department = session.get(Department, code)
    if department is None:
        raise InvalidInputError(f"unknown department {code!r}")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    department.api_key_hash = _key_hash(key)
    return key


def department_for_api_key(session: Session, *, key: str) -> Department | None:
    """The department this API key belongs to, if any."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    return session.scalars(
        select(Department).where(Department.api_key_hash == _key_hash(key))
    ).one_or_none()
