"""Run a command-line Python program (a Celery worker) with its wall clock shifted by a file.

    python -m tests.support.shifted_clock CLOCK_FILE celery --app hotline.worker worker ...

The program runs in this process under time-machine, which moves `time.time()`,
`datetime.now()` and their kin (at the C level, so names imported before the shift move too)
but leaves `time.monotonic()` and `time.sleep()` real. A thread reads CLOCK_FILE (seconds to
add to the real wall clock, a float) a few times a second, shifts the clock to match, and then
writes the offset it applied to CLOCK_FILE + ".applied", so the test knows the worker now
lives at the new time before it asks anything of it.

Why not libfaketime: it hangs `time.sleep` here (it fakes the monotonic clocks too, which the
worker's timers and Celery's countdowns wait on). Why the wall clock only: that is the clock the
service reasons with (`utcnow()` for due times and retry windows, `time.time()` for webhook
signatures), while a Celery countdown is turned into a monotonic deadline as it arrives, so a
retry still waits its real seconds, as it would on a host whose clock is correct.
"""

from __future__ import annotations

import runpy
import sys
import threading
import time
from pathlib import Path

import time_machine

POLL_SECONDS = 0.1


def read_offset(clock_file: Path) -> float:
    """The offset the test asks for; 0 until it writes one (or while it is half-written)."""
    try:
        return float(clock_file.read_text().strip() or 0.0)
    except (OSError, ValueError):
        return 0.0


def follow(clock_file: Path, traveller: time_machine.Traveller) -> None:
    """Keep the shifted clock at the file's offset, and acknowledge each change."""
    applied = 0.0
    acknowledged = Path(f"{clock_file}.applied")
    acknowledged.write_text(f"{applied}\n")
    while True:
        wanted = read_offset(clock_file)
        if wanted != applied:
            traveller.shift(wanted - applied)
            applied = wanted
            acknowledged.write_text(f"{applied}\n")
        time.sleep(POLL_SECONDS)


def main() -> None:
    """Shift the clock, start following the file, then run the module named next."""
    clock_file, module, *arguments = sys.argv[1:]
    traveller = time_machine.travel(time.time(), tick=True).start()
    # time-machine starts ticking at the first read, not at `start()`: read now, or the clock
    # would lag by however long the worker takes to import before it first asks.
    time.time()
    threading.Thread(target=follow, args=(Path(clock_file), traveller), daemon=True).start()
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
