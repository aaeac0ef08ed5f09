"""The domain's own jobs, registered here because the domain (`cases`) does not import Celery:
the case's clock, every minute from beat."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from celery import shared_task

from cases import clock
from cases.models import utcnow

if TYPE_CHECKING:
    from hotline.wiring import Wiring

log = logging.getLogger("hotline.jobs")


@shared_task(name="cases.sweep_deadlines")  # type: ignore[untyped-decorator]
def sweep_deadlines(wiring: Wiring) -> dict[str, list[str]]:
    """Beat job, every minute: lights, overdue reminders and escalations (`cases.clock`)."""
    with wiring.database.session() as session, session.begin():
        result = clock.sweep_deadlines(
            session, now=utcnow(), escalation_grace=wiring.settings.escalation_grace
        )
    for kind, numbers in asdict(result).items():
        for number in numbers:
            log.info("deadline sweep: %s", kind, extra={"case_number": number})
    return asdict(result)
