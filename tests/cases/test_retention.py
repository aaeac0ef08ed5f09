"""Retention against a real database and real files: the purge deletes the audio, transcripts
and photos of cases closed longer ago than the retention period, and nothing else; it records
what it removed, and a second run changes nothing."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cases import attachments, retention
from cases.models import (
    Attachment,
    Case,
    CaseEvent,
    CaseStatus,
    Recording,
    RecordingStatus,
    Transcript,
)
from hotline.db import Database
from tests.support.factories import DEFAULT_WORDS, make_case
from tests.support.staff import store_recording

KEEP_FOR = timedelta(days=180)
# A day of its own, decades back: no case another test left in the database closed near it.
DAY = datetime(1995, 1, 1, 8, tzinfo=UTC) + timedelta(days=random.randrange(2000))
NOW = DAY + KEEP_FOR + timedelta(days=1)
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077053e"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    """A session whose work is rolled back at the end."""
    with database.session() as session:
        session.begin()
        yield session
        session.rollback()


@dataclass
class Folders:
    recordings: Path
    media: Path


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders(recordings=tmp_path / "recordings", media=tmp_path / "media")


def closed_case(session: Session, folders: Folders, *, closed_at: datetime | None) -> Case:
    """A case with a stored recording, a transcript and a photo; closed then (None: open)."""
    case = make_case(session, opened_at=(closed_at or DAY) - timedelta(days=3))
    store_recording(session, case=case, recordings_dir=folders.recordings)
    attachments.store_photo(
        session,
        case=case,
        photo=attachments.check_photo(TINY_PNG, max_bytes=10_000),
        media_dir=folders.media,
        now=closed_at or DAY,
    )
    if closed_at is not None:
        case.status = CaseStatus.CLOSED
        case.closed_at = closed_at
    session.flush()
    return case


def purge(session: Session, folders: Folders) -> retention.PurgeResult:
    result = retention.purge_expired(
        session,
        now=NOW,
        keep_for=KEEP_FOR,
        recordings_dir=folders.recordings,
        media_dir=folders.media,
    )
    session.flush()
    session.expire_all()
    return result


def files_of(session: Session, case: Case, folders: Folders) -> list[Path]:
    recordings = session.scalars(select(Recording).where(Recording.case_id == case.id)).all()
    photos = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).all()
    return [folders.recordings / str(r.storage_path) for r in recordings] + [
        folders.media / photo.path for photo in photos
    ]


def assert_untouched(session: Session, case: Case, folders: Folders) -> None:
    files = files_of(session, case, folders)
    assert len(files) == 2 and all(path.is_file() for path in files)
    (recording,) = case.recordings
    assert recording.status == RecordingStatus.STORED and recording.purged_at is None
    assert case.transcript is not None and case.transcript.text == DEFAULT_WORDS
    assert case.transcript.purged_at is None
    assert "purged" not in [event.kind for event in case.events]


def assert_purged(session: Session, case: Case, folders: Folders) -> CaseEvent:
    (recording,) = case.recordings
    assert recording.status == RecordingStatus.PURGED and recording.purged_at == NOW
    assert recording.storage_path is None
    assert case.transcript is not None and case.transcript.purged_at == NOW
    assert case.transcript.text == "" and case.transcript.words == []
    (photo,) = session.scalars(select(Attachment).where(Attachment.case_id == case.id)).all()
    assert photo.purged_at == NOW and not (folders.media / photo.path).exists()
    (event,) = [event for event in case.events if event.kind == "purged"]
    return event


def test_a_purge_removes_audio_text_and_photos_past_retention_and_nothing_else(
    session: Session, folders: Folders
) -> None:
    expired = closed_case(session, folders, closed_at=DAY)
    recording_file = folders.recordings / str(expired.recordings[0].storage_path)
    recording_bytes = recording_file.stat().st_size
    recent = closed_case(session, folders, closed_at=NOW - KEEP_FOR + timedelta(hours=1))
    still_open = closed_case(session, folders, closed_at=None)
    still_open.opened_at = DAY - timedelta(days=900)
    events_before = len(expired.events)

    result = purge(session, folders)

    assert result.cases == [expired.number]
    assert (result.recordings, result.transcripts, result.photos) == (1, 1, 1)
    assert result.bytes_removed == recording_bytes + len(TINY_PNG)
    assert result.failures == []
    assert not recording_file.exists()
    event = assert_purged(session, expired, folders)
    assert event.data["recordings"] == [{"id": expired.recordings[0].id, "bytes": recording_bytes}]
    assert event.data["transcript_characters"] == len(DEFAULT_WORDS)
    assert event.data["kept_for_days"] == 180
    # The case and its audit trail stay: one event more, the rest as they were.
    assert len(expired.events) == events_before + 1
    assert expired.status == CaseStatus.CLOSED
    assert_untouched(session, recent, folders)
    assert_untouched(session, still_open, folders)

    again = purge(session, folders)
    assert again.cases == [] and again.failures == []
    assert len([e for e in expired.events if e.kind == "purged"]) == 1


def test_a_report_merged_into_an_expired_case_is_purged_with_it(
    session: Session, folders: Folders
) -> None:
    main = closed_case(session, folders, closed_at=DAY)
    repeat = closed_case(session, folders, closed_at=None)
    repeat.status = CaseStatus.MERGED
    repeat.merged_into = main
    repeat.merged_at = DAY - timedelta(days=1)
    session.flush()

    result = purge(session, folders)

    assert sorted(result.cases) == sorted([main.number, repeat.number])
    assert_purged(session, main, folders)
    assert_purged(session, repeat, folders)


def test_a_file_already_gone_counts_as_removed(session: Session, folders: Folders) -> None:
    case = closed_case(session, folders, closed_at=DAY)
    (folders.recordings / str(case.recordings[0].storage_path)).unlink()

    result = purge(session, folders)

    assert result.cases == [case.number] and result.failures == []
    event = assert_purged(session, case, folders)
    assert event.data["recordings"] == [{"id": case.recordings[0].id, "bytes": 0}]


def test_a_file_that_cannot_be_deleted_is_tried_again_next_run(
    session: Session, folders: Folders
) -> None:
    case = closed_case(session, folders, closed_at=DAY)
    stuck = folders.recordings / str(case.recordings[0].storage_path)
    stuck.unlink()
    stuck.mkdir()  # unlink() fails on a folder, as on a file the service may not delete

    first = purge(session, folders)

    assert [failure.case_number for failure in first.failures] == [case.number]
    (recording,) = case.recordings
    assert recording.status == RecordingStatus.STORED and recording.purged_at is None
    # What could be removed was: the transcript and the photo.
    assert case.transcript is not None and case.transcript.purged_at == NOW
    (event,) = [event for event in case.events if event.kind == "purged"]
    assert "recordings" not in event.data and len(event.data["photos"]) == 1

    stuck.rmdir()
    second = purge(session, folders)

    assert second.cases == [case.number] and second.failures == []
    assert session.get_one(Recording, recording.id).status == RecordingStatus.PURGED
    assert len([event for event in case.events if event.kind == "purged"]) == 2
    assert session.scalars(select(Transcript.text).where(Transcript.case_id == case.id)).one() == ""
