"""Backups of the embedded service: a consistent copy of the SQLite database, the recordings
and the reporters' photos, with a manifest to check it by; and bringing such a copy back.

The database is copied with SQLite's online backup API, which reads one consistent snapshot
while the service goes on writing (a file copy of a WAL database can catch half a commit).
The folders are copied after the snapshot: stored files are written once and never changed,
so every file the snapshot names is there unless the retention purge deleted it meanwhile.
On PostgreSQL the database's own tools do this (README, "Retention and backups").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from hotline.config import Settings
from hotline.db import SQLiteWriteGate
from hotline.migrate import alembic_config

DATABASE_FILE = "hotline.sqlite3"
MANIFEST_FILE = "manifest.json"
# The folders copied, by their name in the backup: where each lives in the service.
FOLDERS: dict[str, Callable[[Settings], Path]] = {
    "recordings": lambda settings: settings.recordings_dir,
    "media": lambda settings: settings.media_dir,
}
# Rows counted in the manifest; a database with any calls, cases or staff is not empty.
COUNTED_TABLES = ("calls", "cases", "recordings", "transcripts", "case_events", "attachments")
IN_USE_TABLES = ("calls", "cases", "users")
POSTGRES_ADVICE = (
    "backup and restore here work on the embedded SQLite database only. On PostgreSQL, use "
    "pg_dump and pg_restore and copy the recordings and media folders: see the README, "
    '"Retention and backups".'
)

Progress = Callable[[int], None]


class BackupError(RuntimeError):
    """A backup or restore that cannot go ahead; the message says why in plain words."""


@dataclass(frozen=True)
class StoredFile:
    """One file of the backup, as the manifest lists it."""

    path: str  # relative to the backup folder
    size: int
    sha256: str


def sqlite_path(settings: Settings) -> Path:
    """The service's SQLite file; BackupError on any other database."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(POSTGRES_ADVICE)
    return Path(url.database)


def files_to_copy(settings: Settings) -> list[tuple[Path, str]]:
    """Every stored file of the service and its path in a backup."""
    found = []
    for name, folder_of in FOLDERS.items():
        folder = folder_of(settings)
        if folder.is_dir():
            found += [
                (path, f"{name}/{path.relative_to(folder).as_posix()}")
                for path in sorted(folder.rglob("*"))
                if path.is_file()
            ]
    return found


def back_up(
    settings: Settings, *, target: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Copy the database, then the stored files, into `target`; write the manifest last, so a
    backup without one is known to be unfinished. Returns the manifest."""
    database = sqlite_path(settings)
    if not database.exists():
        raise BackupError(f"there is no database at {database} yet: nothing to back up")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: choose a new folder for each backup")
    target.mkdir(parents=True, exist_ok=True)
    taken_at = datetime.now(UTC)
    copy = target / DATABASE_FILE
    with (
        contextlib.closing(sqlite3.connect(database)) as source,
        contextlib.closing(sqlite3.connect(copy)) as destination,
    ):
        source.backup(destination)
    stored = [_describe(copy, DATABASE_FILE)]
    for path, relative in files_to_copy(settings):
        destination_path = target / relative
        destination_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination_path)
        stored.append(_describe(destination_path, relative))
        if progress is not None:
            progress(1)
    manifest = {
        "taken_at": taken_at.isoformat(),
        "revision": _revision(copy),
        "rows": _counts(copy, COUNTED_TABLES),
        "files": [vars(item) for item in stored],
    }
    (target / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    """The backup's manifest, with every file it lists checked; BackupError if anything differs."""
    path = source / MANIFEST_FILE
    if not path.is_file():
        raise BackupError(f"{source} holds no {MANIFEST_FILE}: not a backup, or an unfinished one")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    for item in manifest["files"]:
        file = source / item["path"]
        if not file.is_file():
            raise BackupError(f"the backup is missing {item['path']}: it cannot be restored")
        if _sha256(file) != item["sha256"]:
            raise BackupError(f"{item['path']} differs from the backup's manifest: it is damaged")
    return manifest


def database_in_use(settings: Settings) -> bool:
    """Whether the service's database already holds calls, cases or staff accounts (the
    departments and articles `flask init` loads do not count)."""
    database = sqlite_path(settings)
    return database.exists() and any(_counts(database, IN_USE_TABLES).values())


def restore(
    settings: Settings, *, source: Path, force: bool, progress: Progress | None = None
) -> dict[str, Any]:
    """Bring a backup back: check it, then replace the database and the stored files.

    Refuses a database that is in use unless `force`: a restore replaces everything in it.
    The service should be stopped; the write gate keeps out any process still writing.
    """
    database = sqlite_path(settings)
    manifest = read_manifest(source)
    if not force and database_in_use(settings):
        raise BackupError(
            "the service's database already holds calls, cases or staff accounts, and a "
            "restore replaces them all: stop the service and run restore again with --force "
            "if that is what you want"
        )
    database.parent.mkdir(parents=True, exist_ok=True)
    with (
        _write_gate(database),
        contextlib.closing(sqlite3.connect(source / DATABASE_FILE)) as backup,
        contextlib.closing(sqlite3.connect(database)) as live,
    ):
        backup.backup(live)
    for name, folder_of in FOLDERS.items():
        _restore_folder(source / name, folder_of(settings), progress)
    return manifest


def newest_revision() -> str | None:
    """The schema revision this version of the service runs on."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def _restore_folder(backup: Path, live: Path, progress: Progress | None) -> None:
    """Replace `live` with the backup's copy: copied beside it first, then swapped in, so a
    failed copy leaves the service's folder as it was."""
    incoming = live.with_name(live.name + ".restoring")
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir(parents=True)
    if backup.is_dir():
        for path in sorted(backup.rglob("*")):
            if path.is_file():
                destination = incoming / path.relative_to(backup)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, destination)
                if progress is not None:
                    progress(1)
    shutil.rmtree(live, ignore_errors=True)
    incoming.rename(live)


@contextlib.contextmanager
def _write_gate(database: Path) -> Iterator[None]:
    """Hold the SQLite write gate (hotline.db) so no other process commits meanwhile."""
    gate = SQLiteWriteGate(str(database))
    gate.acquire()
    try:
        yield
    finally:
        gate.release()


def _describe(path: Path, relative: str) -> StoredFile:
    return StoredFile(path=relative, size=path.stat().st_size, sha256=_sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _revision(database: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(database)) as connection:
        try:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            return None
    return str(row[0]) if row else None


def _counts(database: Path, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows per table (0 for a table the database does not have yet)."""
    counts = {}
    with contextlib.closing(sqlite3.connect(database)) as connection:
        for table in tables:
            try:
                (count,) = connection.execute(f"SELECT count(*) FROM {table}").fetchone()
            except sqlite3.OperationalError:
                count = 0
            counts[table] = int(count)
    return counts
