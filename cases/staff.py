"""Staff accounts, sign-in throttling, and how departments receive cases (channels, API keys)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from cases.access import Actor
from cases.errors import N_, InvalidInputError
from cases.models import Department, LoginAttempt, Role, User, utcnow

MIN_PASSWORD_LENGTH = 10
API_KEY_PREFIX = "hlk_"
# Checked against when the username is unknown, so that timing does not tell which names exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


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
        password_hash=generate_password_hash(password),
        role=role_value,
        department_code=department_code if role_value == Role.DEPARTMENT else None,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, *, user: User, password: str) -> None:
    """Change a user's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    user.password_hash = generate_password_hash(password)


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
    user.active = active


def is_throttled(
    session: Session, *, username: str, remote_addr: str, since: datetime, limit: int
) -> bool:
    """Whether too many sign-ins failed lately for this account or from this address."""
    failures = session.scalar(
        select(func.count(LoginAttempt.id)).where(
            LoginAttempt.created_at >= since,
            or_(LoginAttempt.username == username, LoginAttempt.remote_addr == remote_addr),
        )
    )
    return (failures or 0) >= limit


def authenticate(
    session: Session,
    *,
    username: str,
    password: str,
    remote_addr: str,
    window: timedelta,
    limit: int,
) -> User | None:
    """The active user with these credentials, or None; failures count towards the throttle.

    The caller checks `is_throttled` first and does not call this while throttled.
    """
    user = session.scalars(select(User).where(User.username == username.strip())).one_or_none()
    valid = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is not None and valid and user.active:
        session.execute(delete(LoginAttempt).where(LoginAttempt.username == user.username))
        return user
    session.add(LoginAttempt(username=username.strip()[:80], remote_addr=remote_addr[:64]))
    # Old failures are of no more use.
    session.execute(delete(LoginAttempt).where(LoginAttempt.created_at < utcnow() - 4 * window))
    return None


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
