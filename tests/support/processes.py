"""The service's processes as the Procfile runs them, for tests that start, kill and restart
them: the worker and beat (tests/hotline/test_jobs.py, tests/faults/)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from hotline.config import PROJECT_ROOT


def procfile_commands() -> dict[str, str]:
    """The Procfile's entries, by name."""
    lines = (PROJECT_ROOT / "Procfile").read_text().splitlines()
    entries = [line.split(":", 1) for line in lines if line.strip() and not line.startswith("#")]
    return {name.strip(): command.strip() for name, command in entries}


def start_procfile_entry(
    name: str, environ: dict[str, str], log_path: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """Run a Procfile entry as honcho does (through a shell, with the venv on PATH), in a
    process group of its own, its output to `log_path`."""
    command = " ".join([procfile_commands()[name], *extra])
    env = {**os.environ, **environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    with log_path.open("w") as log:
        return subprocess.Popen(
            ["/bin/sh", "-c", f"exec {command}"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def started(process: subprocess.Popen[bytes], log_path: Path, marker: str) -> bool:
    """Whether the process logged `marker` (it is up) or ended (it never will be)."""
    return marker in log_path.read_text(errors="replace") or process.poll() is not None


def stop(process: subprocess.Popen[bytes], *, graceful: bool = False) -> None:
    """Stop a process group a test started (SIGTERM first if `graceful`), and reap it."""
    if graceful and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def descendants(pid: int) -> set[int]:
    """The live processes below `pid` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
