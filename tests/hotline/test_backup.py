"""`flask --app hotline backup` and `restore` on a service of their own (an embedded SQLite
database and instance folder, whatever database the rest of the session runs on): a round trip
brings back the same rows and files; a database in use is not overwritten without --force; a
damaged backup is refused; PostgreSQL is pointed to its own tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cases import attachments
from cases.models import CaseStatus, utcnow
from hotline.backup import newest_revision
from hotline.config import PROJECT_ROOT, Settings, load_settings
from hotline.db import Database
from tests.conftest import trained_classifier_path
from tests.support.factories import make_case
from tests.support.staff import store_recording

TABLES = ("calls", "cases", "recordings", "transcripts", "case_events", "attachments", "users")
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077053e"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


def service_environ(instance: Path) -> dict[str, str]:
    """An embedded service of its own in `instance`."""
    return {
        "HOTLINE_ENV": "test",
        "HOTLINE_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'hotline.sqlite'}",
        "BROKER_URL": f"sqla+sqlite:///{instance / 'broker.sqlite'}",
        "CLASSIFIER_PATH": str(trained_classifier_path()),
    }


def flask(instance: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `flask --app hotline` command of that service, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "hotline", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **service_environ(instance)},
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An instance folder after `flask init`, copied by each test (init takes seconds)."""
    instance = tmp_path_factory.mktemp("initialised")
    result = flask(instance, "init")
    assert result.returncode == 0, result.stderr
    return instance


@dataclass
class Service:
    instance: Path
    database: Database

    @property
    def settings(self) -> Settings:
        return load_settings(service_environ(self.instance))


@pytest.fixture
def service(initialised: Path, tmp_path: Path) -> Iterator[Service]:
    """A migrated service with two cases: one with a recording and a photo, one closed."""
    instance = tmp_path / "instance"
    shutil.copytree(initialised, instance)
    service = Service(instance, Database(service_environ(instance)["DATABASE_URL"]))
    settings = service.settings
    with service.database.session() as session, session.begin():
        case = make_case(session)
        store_recording(session, case=case, recordings_dir=settings.recordings_dir)
        attachments.store_photo(
            session,
            case=case,
            photo=attachments.check_photo(TINY_PNG, max_bytes=10_000),
            media_dir=settings.media_dir,
            now=utcnow(),
        )
        closed = make_case(session)
        closed.status, closed.closed_at = CaseStatus.CLOSED, utcnow()
    yield service
    service.database.dispose()


def rows(service: Service) -> dict[str, list[Any]]:
    """Every row of the tables a backup must keep, in id order."""
    with service.database.session() as session:
        return {
            table: [
                tuple(row) for row in session.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            ]
            for table in TABLES
        }


def files(service: Service) -> dict[str, bytes]:
    """Every stored file, by its path under the instance folder."""
    return {
        str(path.relative_to(service.instance)): path.read_bytes()
        for folder in ("recordings", "media")
        for path in sorted((service.instance / folder).rglob("*"))
        if path.is_file()
    }


def wipe(service: Service) -> None:
    """Lose the database and the stored files, as a dead disk would."""
    service.database.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{service.instance / 'hotline.sqlite'}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(service.instance / "recordings")
    shutil.rmtree(service.instance / "media")


def test_a_backup_restored_after_a_wipe_brings_back_the_same_rows_and_files(
    service: Service, tmp_path: Path
) -> None:
    before_rows, before_files = rows(service), files(service)
    assert len(before_rows["cases"]) == 2 and len(before_files) == 2
    folder = tmp_path / "backup"

    made = flask(service.instance, "backup", str(folder))

    assert made.returncode == 0, made.stdout
    assert "2 cases" in made.stdout and "2 files" in made.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["revision"] == newest_revision()  # the schema the database was migrated to
    assert manifest["rows"]["cases"] == 2 and manifest["rows"]["recordings"] == 1
    assert {item["path"].split("/")[0] for item in manifest["files"]} == {
        "hotline.sqlite3",
        "recordings",
        "media",
    }

    wipe(service)
    assert files(service) == {}
    restored = flask(service.instance, "restore", str(folder))

    assert restored.returncode == 0, restored.stdout
    assert "restored the backup taken at" in restored.stdout
    assert rows(service) == before_rows
    assert files(service) == before_files


def test_restore_refuses_a_database_in_use_without_force(service: Service, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    assert flask(service.instance, "backup", str(folder)).returncode == 0
    with service.database.session() as session, session.begin():
        make_case(session)  # taken after the backup
    assert len(rows(service)["cases"]) == 3

    refused = flask(service.instance, "restore", str(folder))

    assert refused.returncode != 0
    assert "already holds calls, cases or staff accounts" in refused.stderr
    assert "--force" in refused.stderr
    assert len(rows(service)["cases"]) == 3

    service.database.dispose()  # as the service is stopped before a restore
    forced = flask(service.instance, "restore", str(folder), "--force")

    assert forced.returncode == 0, forced.stderr
    assert len(rows(service)["cases"]) == 2


def test_a_damaged_backup_is_refused_and_nothing_is_replaced(
    service: Service, tmp_path: Path
) -> None:
    folder = tmp_path / "backup"
    assert flask(service.instance, "backup", str(folder)).returncode == 0
    (recording,) = (folder / "recordings").rglob("*.wav")
    recording.write_bytes(b"RIFF broken")
    before = files(service)

    refused = flask(service.instance, "restore", str(folder), "--force")

    assert refused.returncode != 0
    assert "differs from the backup's manifest" in refused.stderr
    assert files(service) == before


def test_a_backup_into_a_folder_in_use_is_refused(service: Service, tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "notes.txt").write_text("something else")

    refused = flask(service.instance, "backup", str(folder))

    assert refused.returncode != 0 and "is not empty" in refused.stderr


def test_on_postgresql_backup_points_to_pg_dump(tmp_path: Path) -> None:
    environ = {
        **os.environ,
        **service_environ(tmp_path),
        "DATABASE_URL": "postgresql://hotline@127.0.0.1:9/hotline",
    }
    command = [sys.executable, "-m", "flask", "--app", "hotline", "backup", str(tmp_path / "b")]
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=environ, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "pg_dump and pg_restore" in result.stderr and "README" in result.stderr
    assert not (tmp_path / "b").exists()
