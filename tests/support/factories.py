"""Build cases in a given state without placing a call, for tests of what comes after routing;
and read them back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import intake, lifecycle
from cases.models import Call, Case, CaseStatus, Transcript, utcnow
from cases.numbers import new_case_number
from hotline.db import Database

# The words of a case the factory makes: no street or landmark (config/merging.toml) and no
# place routed, so that a report a later test routes never joins it (并单) by chance. Hundreds
# of these stay open in a test database; a real report about one street would join them.
DEFAULT_WORDS = "鲁城街道有一盏路灯坏了好几天了"


def make_case(
    session: Session,
    *,
    department_code: str = "urban_mgmt",
    category_code: str = "streetlight",
    urgency: str = "normal",
    text: str = DEFAULT_WORDS,
    caller_number: str | None = "+8613800000000",
    locale: str = "zh-CN",
    deadline_at: datetime | None = None,
    opened_at: datetime | None = None,
    triage: bool = False,
) -> Case:
    """A case opened from a (fake) call, transcribed and routed to `department_code`, with its
    push queued in the outbox as routing would. Flushed, not committed."""
    opened_at = opened_at or utcnow()
    call = Call(
        call_sid=f"CA{uuid.uuid4().hex}",
        account_sid="AC" + "1" * 32,
        from_number=caller_number or "anonymous",
        to_number="+865374412345",
        caller_id_withheld=caller_number is None,
        locale=locale,
        started_at=opened_at,
    )
    number = new_case_number()
    case = Case(
        number=number,
        call=call,
        locale=locale,
        caller_number=caller_number,
        status=CaseStatus.OPEN,
        opened_at=opened_at,
    )
    session.add_all([call, case])
    session.add(
        Transcript(
            call=call,
            case=case,
            source="batch",
            text=text,
            engine="test",
            model="test",
        )
    )
    session.flush()
    intake.route_case(
        session,
        case=case,
        outcome=intake.RoutingOutcome(
            category=category_code,
            department=department_code,
            urgency=urgency,
            confidence=0.9 if not triage else 0.1,
            place_code=None,
            deadline=deadline_at or opened_at + timedelta(hours=24),
            needs_triage=triage,
            emergency=None,
            explanation={"test": True},
            model_version="test",
        ),
    )
    lifecycle.deliver_routed_case(session, case=case)
    session.flush()
    return case


@contextmanager
def quiet_session(database: Database) -> Iterator[Session]:
    """A transaction whose outbox rows are not queued after the commit (a broker outage)."""
    with Session(database.engine, expire_on_commit=False) as session, session.begin():
        yield session


def case_named(database: Database, number: str) -> Case:
    """The case with this number, its events and deliveries loaded."""
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.deliveries
        return case
