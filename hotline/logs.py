"""Logs to stdout, one line per event, with call_sid and case_number when known."""

from __future__ import annotations

import logging
import sys

# Attributes every LogRecord has; anything else was passed in `extra` and is printed as key=value.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value ...`, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\n", " | ")
        extras = {
            k: v for k, v in vars(record).items() if k not in _STANDARD and v not in (None, "")
        }
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(extras.items()))
        return line


def configure_logging(level: str) -> None:
    """Send the hotline's logs to stdout (idempotent)."""
    root = logging.getLogger("hotline")
    root.setLevel(level)
    if not any(getattr(handler, "_hotline", False) for handler in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler._hotline = True  # type: ignore[attr-defined]
        root.addHandler(handler)
