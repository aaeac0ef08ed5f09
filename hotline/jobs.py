"""The domain's own jobs, registered here because the domain (`cases`) does not import Celery:
the case's clock, every minute from beat; the retention purge, every hour."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from celery import shared_task

from cases import clock, retention
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


@shared_task(name="cases.purge_expired")  # type: ignore[untyped-decorator]
def purge_expired(wiring: Wiring) -> dict[str, int]:
    """Beat job, every hour: delete the audio, transcripts and photos of cases closed longer
    ago than RETENTION_DAYS (`cases.retention`); a file it could not delete is tried again."""
    settings = wiring.settings
    with wiring.database.session() as session, session.begin():
        result = retention.purge_expired(
            session,
            now=utcnow(),
            keep_for=settings.retention,
            recordings_dir=settings.recordings_dir,
            media_dir=settings.media_dir,
        )
    for number in result.cases:
        log.info("retention: purged audio and text", extra={"case_number": number})
    for failure in result.failures:
        log.warning(
            "retention: could not delete %s (%s); trying again next run",
            failure.path,
            failure.reason,
            extra={"case_number": failure.case_number},
        )
    return {
        "cases": len(result.cases),
        "recordings": result.recordings,
        "transcripts": result.transcripts,
        "photos": result.photos,
        "bytes_removed": result.bytes_removed,
        "failures": len(result.failures),
    }
