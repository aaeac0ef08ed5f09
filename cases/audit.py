"""The administrators' audit log: who changed which part of the hotline's set-up, when, and
from what to what. Written in the same transaction as the change, so neither is ever kept
without the other; secrets (a key, a reset link, a webhook secret) are never written here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from cases.models import AdminEvent


def record(session: Session, *, actor: str, action: str, target: str, **data: Any) -> None:
    """Note one administrator's change; `data` says what changed (never a secret)."""
    session.add(AdminEvent(actor=actor, action=action, target=target, data=data))


def newest_first() -> Select[AdminEvent]:
    """The log, the latest change first."""
    return select(AdminEvent).order_by(AdminEvent.created_at.desc(), AdminEvent.id.desc())
