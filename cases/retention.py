"""Retention: a closed case's recordings, transcript and photos are kept for a set time, then
deleted. The case, its written report and its audit trail stay; the purge is one more event.

`purge_expired` is the body of the beat job the shell runs every hour (`hotline.jobs`).
A written report's own words (`Case.report_text`) are the case's description, as a call's
category and place are, and stay with it; only audio, the speech recognised from it and the
photos sent with a report are purged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from cases.models import Attachment, Case, CaseStatus, Recording, RecordingStatus, Transcript
from cases.timeline import add_event


@dataclass(frozen=True)
class PurgeFailure:
    """A file that could not be deleted: its row stays unpurged, so the next run tries again."""

    case_number: str
    path: str
    reason: str


@dataclass
class PurgeResult:
    """What one run of the purge removed, and what it must try again."""

    cases: list[str] = field(default_factory=list)
    recordings: int = 0
    transcripts: int = 0
    photos: int = 0
    bytes_removed: int = 0
    failures: list[PurgeFailure] = field(default_factory=list)


def purge_expired(
    session: Session,
    *,
    now: datetime,
    keep_for: timedelta,
    recordings_dir: Path,
    media_dir: Path,
) -> PurgeResult:
    """Delete the audio, transcripts and photos of cases closed before `now - keep_for`.

    A report merged into such a case (并单) goes with it. Safe to run twice or side by side:
    purged rows are marked and skipped, a file already gone counts as deleted, and a file that
    cannot be deleted leaves its row as it was for the next run.
    """
    result = PurgeResult()
    for case in _expired_cases(session, cutoff=now - keep_for):
        removed, failures = _purge_case(
            session, case=case, now=now, recordings_dir=recordings_dir, media_dir=media_dir
        )
        result.failures.extend(failures)
        if removed:
            add_event(session, case=case, kind="purged", kept_for_days=keep_for.days, **removed)
            result.cases.append(case.number)
            result.recordings += len(removed.get("recordings", []))
            result.transcripts += 1 if "transcript_characters" in removed else 0
            result.photos += len(removed.get("photos", []))
            result.bytes_removed += sum(
                item["bytes"] for item in removed.get("recordings", []) + removed.get("photos", [])
            )
    return result


def _expired_cases(session: Session, *, cutoff: datetime) -> list[Case]:
    """Cases closed before the cutoff, and reports merged into them, with something to purge."""
    closed_before = select(Case.id).where(Case.status == CaseStatus.CLOSED, Case.closed_at < cutoff)
    unpurged = or_(
        exists().where(
            Recording.case_id == Case.id,
            Recording.purged_at.is_(None),
            Recording.storage_path.is_not(None),
        ),
        exists().where(Transcript.case_id == Case.id, Transcript.purged_at.is_(None)),
        exists().where(Attachment.case_id == Case.id, Attachment.purged_at.is_(None)),
    )
    expired = or_(
        Case.id.in_(closed_before),
        (Case.status == CaseStatus.MERGED) & Case.merged_into_id.in_(closed_before),
    )
    query = select(Case).where(expired, unpurged).order_by(Case.id)
    return list(session.scalars(query.with_for_update(skip_locked=True)).all())


def _purge_case(
    session: Session, *, case: Case, now: datetime, recordings_dir: Path, media_dir: Path
) -> tuple[dict[str, Any], list[PurgeFailure]]:
    """Purge one case's files and words: what was removed (for its audit event), and the files
    that could not be deleted."""
    removed: dict[str, Any] = {}
    failures: list[PurgeFailure] = []
    recordings = [r for r in case.recordings if r.purged_at is None and r.storage_path]
    for recording in recordings:
        assert recording.storage_path is not None
        size = _delete(recordings_dir, recording.storage_path, case.number, failures)
        if size is None:
            continue
        recording.status = RecordingStatus.PURGED
        recording.storage_path = None
        recording.purged_at = now
        removed.setdefault("recordings", []).append({"id": recording.id, "bytes": size})
    photos = session.scalars(
        select(Attachment).where(Attachment.case_id == case.id, Attachment.purged_at.is_(None))
    ).all()
    for photo in photos:
        size = _delete(media_dir, photo.path, case.number, failures)
        if size is None:
            continue
        photo.purged_at = now
        removed.setdefault("photos", []).append({"id": photo.id, "bytes": size})
    transcript = case.transcript
    if transcript is not None and transcript.purged_at is None:
        removed["transcript_characters"] = len(transcript.text)
        transcript.text = ""
        transcript.words = []
        transcript.purged_at = now
    return removed, failures


def _delete(
    folder: Path, relative: str, case_number: str, failures: list[PurgeFailure]
) -> int | None:
    """Delete a stored file and return the bytes it held (0 if it was already gone); None if
    it could not be deleted, with the reason added to `failures`."""
    root = folder.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        # A stored path never leaves its folder; if one does, delete nothing outside it.
        failures.append(PurgeFailure(case_number, relative, "outside the storage folder"))
        return None
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    except OSError as error:
        failures.append(PurgeFailure(case_number, relative, error.strerror or str(error)))
        return None
    return size
