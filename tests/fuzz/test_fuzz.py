"""The fuzz suites, each run in a process of its own (`tests.fuzz.harness`): the IVR webhooks
(`tests/fuzz/ivr_webhooks.py`) and the department API (`tests/fuzz/department_api.py`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hotline.config import PROJECT_ROOT
from tests.fuzz.conftest import FIGURES, examples

# In CI a surface takes well under this; with FUZZ_EXAMPLES set (`make fuzz`) there is no limit.
CI_TIMEOUT_SECONDS = 240


def fuzz_surface(surface: str, environ: dict[str, str], result: Path) -> dict[str, Any]:
    """Run the harness on one surface; its figures, and its output if it failed."""
    count = examples(surface)
    completed = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.harness", surface, str(result)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **environ, "FUZZ_EXAMPLES": str(count)},
        capture_output=True,
        text=True,
        timeout=None if os.environ.get("FUZZ_EXAMPLES") else CI_TIMEOUT_SECONDS,
        check=False,
    )
    figures: dict[str, Any] = (
        json.loads(result.read_text())
        if result.exists()
        else {
            "inputs": 0,
            "server_errors": 0,
            "crashes": 1,
            "internal_errors": 0,
            "rejected": 0,
            "rows_written_by_rejected": 0,
            "statuses": {},
            "failed": True,
        }
    )
    FIGURES[surface] = figures
    output = completed.stdout[-20_000:] + completed.stderr[-20_000:]
    assert completed.returncode == 0, f"the {surface} fuzzer failed:\n{output}"
    assert figures["inputs"] >= count, figures
    return figures


def test_no_ivr_webhook_input_gets_a_server_error_or_untwiml_or_writes_when_refused(
    fuzz_environ: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    figures = fuzz_surface("ivr", fuzz_environ("ivr"), tmp_path / "ivr.json")
    assert figures["server_errors"] == figures["crashes"] == figures["internal_errors"] == 0
    assert figures["rows_written_by_rejected"] == 0


def test_no_department_api_input_gets_a_server_error_or_breaks_the_contract_or_writes_when_refused(
    fuzz_environ: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    figures = fuzz_surface("api", fuzz_environ("api"), tmp_path / "api.json")
    assert figures["server_errors"] == figures["crashes"] == figures["internal_errors"] == 0
    assert figures["rows_written_by_rejected"] == 0
