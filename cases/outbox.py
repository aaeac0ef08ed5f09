"""The outbox: messages written in the same transaction as the change they announce.

Writing the row is the domain's part: it shares the change's transaction. Sending it is
`delivery`'s: a job sends each row after the commit (the shell wires `sent_after_commit`), so a
message is never sent for a change that rolled back, and never lost for one that committed: the
deliveries sweep re-sends any that a broker outage left behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from cases.models import Case, Channel, Delivery, Department, TextOptOut
from cases.serialise import case_snapshot

CALLER = "caller"
_PENDING_KEY = "outbox.new_delivery_ids"


def _free_topic(session: Session, *, case: Case, recipient: str, topic: str) -> str:
    """`topic`, or `topic-2`, `topic-3`... when the case already sent that one to the recipient
    (a case can be assigned to the same department twice, and each time is news)."""
    used = set(
        session.scalars(
            select(Delivery.topic).where(
                Delivery.case_id == case.id,
                Delivery.recipient == recipient,
                Delivery.topic.startswith(topic),
            )
        )
    )
    candidate, n = topic, 1
    while candidate in used:
        n += 1
        candidate = f"{topic}-{n}"
    return candidate


def _add(
    session: Session,
    *,
    case: Case,
    recipient: str,
    channel: Channel,
    topic: str,
    address: str,
    payload: dict[str, Any],
) -> Delivery:
    delivery = Delivery(
        delivery_id=f"dlv_{uuid.uuid4().hex}",
        case=case,
        recipient=recipient,
        channel=channel,
        topic=topic,
        address=address,
        payload=payload,
    )
    session.add(delivery)
    session.flush()
    session.info.setdefault(_PENDING_KEY, []).append(delivery.id)
    return delivery


def push_case(
    session: Session, *, case: Case, department_code: str, topic: str, **extra: Any
) -> list[Delivery]:
    """Queue the case for a department on each channel it has configured (one row each).

    A department with no channel configured still sees the case in its console inbox.
    """
    department = session.get(Department, department_code)
    if department is None:
        return []
    session.flush()
    topic = _free_topic(session, case=case, recipient=department_code, topic=topic)
    snapshot = case_snapshot(case)
    return [
        _add(
            session,
            case=case,
            recipient=department_code,
            channel=channel,
            topic=topic,
            address=address,
            payload={"event": topic.split("-")[0], "case": snapshot, **extra},
        )
        for channel, address in department.channels().items()
    ]


def text_caller(session: Session, *, case: Case, message: str, **values: Any) -> Delivery | None:
    """Queue a text to the caller; `message` names a text in the caller's locale's prompts.
    None when there is no number, or its owner texted STOP (`cases.texts.opt_out`)."""
    if not case.caller_number or session.get(TextOptOut, case.caller_number) is not None:
        return None
    session.flush()
    topic = _free_topic(session, case=case, recipient=CALLER, topic=message)
    return _add(
        session,
        case=case,
        recipient=CALLER,
        channel=Channel.CALLER_SMS,
        topic=topic,
        address=case.caller_number,
        payload={"message": message, "locale": case.locale, "number": case.number, **values},
    )


def sent_after_commit(factory: sessionmaker[Session], send: Callable[[int], None]) -> None:
    """Call `send(delivery_id)` for each outbox row once its transaction has committed."""

    @event.listens_for(factory, "after_commit")
    def _send_new(session: Session) -> None:
        for delivery_id in session.info.pop(_PENDING_KEY, []):
            send(delivery_id)

    @event.listens_for(factory, "after_rollback")
    def _forget_new(session: Session) -> None:
        session.info.pop(_PENDING_KEY, None)
