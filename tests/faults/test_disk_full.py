"""Disk full while a recording is stored: the case goes to the desk with a reason in Chinese
(the error itself in the worker's log), nothing is half-written, and once there is space again
the next call is stored normally and the earlier recordings are fetched again.

The recordings folder of the test's own worker is a small tmpfs, filled to the last byte: a
real ENOSPC from the kernel, as on a full volume (RLIMIT_FSIZE would raise another error). It
needs `mount`, so root; without it the test is skipped and says why.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cases import intake
from cases.access import DISPATCH_DESK
from cases.models import Case, CaseStatus, Recording, RecordingStatus
from emulator import RecordingServer
from hotline.db import Database
from ivr.tasks import STORE_FAILED_REASON
from tests.conftest import AUDIO, wait_until
from tests.support.fault_worker import (
    celery_worker_process,
    fault_counts,
    flush_broker,
    isolated_broker_url,
    print_row,
    sender,
)

WAV = (AUDIO / "en_pothole.wav").read_bytes()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs for the worker's recordings, unmounted at the end."""
    recordings = tmp_path / "instance" / "recordings"
    recordings.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(recordings)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {mounted.stderr.strip()}")
    try:
        yield recordings
    finally:
        subprocess.run(["umount", "-l", str(recordings)], check=False)


def fill(folder: Path) -> Path:
    """Write a filler file until the volume refuses another byte (ENOSPC)."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error  # the volume is full
    finally:
        os.close(descriptor)
    return filler


def open_report(database: Database, recordings: RecordingServer) -> tuple[str, int]:
    """What `/ivr/recorded` does for a finished report: the call's case around its recording.
    Returns the case number and the recording's id."""
    recording_sid = "RE" + uuid.uuid4().hex
    url = recordings.add(recording_sid, WAV, not_found_first=0)
    caller = intake.CallerInfo(
        call_sid="CA" + uuid.uuid4().hex,
        account_sid="AC" + "1" * 32,
        from_number="+8613800138000",
        to_number="+865374412345",
        details={},
    )
    with database.session() as session, session.begin():
        opened = intake.open_case_from_recording(
            session,
            caller=caller,
            locale="zh-CN",
            report=intake.RecordingReport(url=url, recording_sid=recording_sid, duration=3),
            region="CN",
        )
        return opened.case.number, opened.recording.id


def state(database: Database, number: str) -> tuple[Case, Recording]:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        (recording,) = case.recordings
        return case, recording


def test_a_caller_whose_recording_meets_a_full_disk_reaches_the_desk_and_nothing_is_half_written(
    environ: dict[str, str],
    app: object,
    database: Database,
    recording_server: RecordingServer,
    full_disk: Path,
    tmp_path: Path,
) -> None:
    calls = fault_counts(ci=3)
    broker = isolated_broker_url(environ["BROKER_URL"], tmp_path)
    flush_broker(broker)
    worker_env = {
        **environ,
        "HOTLINE_INSTANCE_PATH": str(full_disk.parent),
        "BROKER_URL": broker,
        # One retry, fast: the chain gives up while the disk is still full.
        "RECORDING_FETCH_RETRIES": "1",
        "RECORDING_FETCH_BACKOFF": "0.2",
    }
    log_path = tmp_path / "worker.log"
    filler = fill(full_disk)

    with celery_worker_process(worker_env, log_path), sender(broker) as jobs:
        failed = [open_report(database, recording_server) for _ in range(calls)]
        for _, recording_id in failed:
            jobs.send_task("ivr.fetch_recording", args=[recording_id])

        def flagged_and_settled() -> bool:
            return all(
                state(database, number)[0].needs_review
                and state(database, number)[1].fetch_attempts >= 2
                for number, _ in failed
            )

        wait_until(flagged_and_settled, timeout=60, what="the full disk's cases at the desk")
        wait_until(
            lambda: log_path.read_text().count("recording could not be stored") >= 2 * calls,
            timeout=30,
            what="each try's failure in the log",
        )

        for number, _ in failed:
            case, recording = state(database, number)
            assert case.status == CaseStatus.TRIAGE and case.department_code == DISPATCH_DESK
            assert case.review_reason is not None and STORE_FAILED_REASON in case.review_reason
            assert case.review_reason.count(STORE_FAILED_REASON) == 1  # once, not per try
            assert recording.status == RecordingStatus.PENDING  # Twilio keeps it; fetched later
            assert recording.storage_path is None
        assert "No space left on device" in log_path.read_text()
        # Nothing half-written: the filler is the only file on the volume.
        assert [p.name for p in full_disk.rglob("*") if p.is_file()] == ["filler"]

        filler.unlink()  # space returns
        after_number, after_id = open_report(database, recording_server)
        jobs.send_task("ivr.fetch_recording", args=[after_id])
        wait_until(
            lambda: state(database, after_number)[1].status == RecordingStatus.STORED,
            timeout=60,
            what="the next call's recording stored once there is space",
        )

    after_case, after_recording = state(database, after_number)
    assert not after_case.needs_review or STORE_FAILED_REASON not in (
        after_case.review_reason or ""
    )
    assert after_recording.storage_path is not None
    assert (full_disk / after_recording.storage_path).read_bytes() == WAV  # whole, where it says
    assert not list(full_disk.rglob("*.part"))
    # The earlier recordings wait, pending, for the stalled-fetch sweep (15 minutes on): their
    # cases are at the desk meanwhile, none lost and none pointing at a file that isn't there.
    numbers = [after_number, *(number for number, _ in failed)]
    for number in numbers:
        case, recording = state(database, number)
        assert recording.storage_path is None or (full_disk / recording.storage_path).is_file()
    with database.session() as session:
        opened = session.scalars(select(Case).where(Case.number.in_(numbers))).all()
    finished = [
        n
        for n in numbers
        if state(database, n)[0].needs_review
        or state(database, n)[1].status == RecordingStatus.STORED
    ]
    print_row(
        "disk full while storing a recording",
        placed=len(numbers),
        opened=len(opened),
        finished=len(finished),
        lost=len(numbers) - len(finished),
        doubled=len(opened) - len(numbers),
    )
