"""The outbox: messages written in the same transaction as the change they announce.

A job sends each one after the commit (hotline wires `sent_after_commit`), so a message is never
sent for a change that rolled back, and never lost for one that committed: the deliveries sweep
re-sends any that a broker outage left behind.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from cases.models import Case, Channel, Delivery, Department

CALLER = "caller"
_PENDING_KEY = "outbox.new_delivery_ids"


def mask_number(number: str | None) -> str | None:
    """A phone number with all but its last four digits hidden, for department eyes."""
    if not number:
        return number
    return "*" * max(len(number) - 4, 0) + number[-4:]


# A phone number inside free text, such as a provider's error message.
# International format, or a long run of digits (dates and codes have short ones).
_PHONE_IN_TEXT = re.compile(r"\+\d[\d ()-]{5,}\d|\d{7,}")


def hide_phone_numbers(text: str) -> str:
    """Free text (an error from Twilio or a mail server) with any phone number in it masked:
    it is stored on the case, where department staff read it."""
    return _PHONE_IN_TEXT.sub(lambda match: mask_number(match.group()) or "", text)


def case_snapshot(case: Case) -> dict[str, Any]:
    """What a department receives about a case: no unmasked personal data."""
    transcript = case.transcript
    return {
        "number": case.number,
        "status": str(case.status),
        "department": case.department_code,
        "responsible_department": case.responsible_department_code,
        "category": case.category_code,
        "urgency": case.urgency,
        "major": case.major,
        "place": case.place_code,
        "deadline_at": case.deadline_at.isoformat() if case.deadline_at else None,
        "opened_at": case.opened_at.isoformat() if case.opened_at else None,
        "locale": case.locale,
        "caller_number": mask_number(case.caller_number),
        "transcript": transcript.text if transcript is not None else None,
    }


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
    """Queue a text to the caller; `message` names a text in the caller's locale's prompts."""
    if not case.caller_number:
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
