"""Logs to stdout, one line per event, with call_sid and case_number when known.

Two shapes of the same line: `text` (key=value, for a person at a terminal) and `json` (one
JSON object per line, for a log collector: every `extra` field is a key of its own, so
`call_sid` and `case_number` can be searched without parsing the message).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed in `extra` and is printed as key=value.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """What the call site passed in `extra` (the call sid, the case number, ...), set ones only."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and v not in (None, "")}


class KeyValueFormatter(logging.Formatter):
    """`time level logger message key=value ...`, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record).replace("\n", " | ")
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{key}={value}" for key, value in sorted(extras.items()))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, each `extra`
    field, and the exception with its traceback as one string field `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # An extra never overwrites the four fields above: a collector relies on them.
        entry.update({k: v for k, v in _extras(record).items() if k not in entry})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # `default=str`: an extra that JSON cannot hold (a date, a Decimal, an enum) is still
        # logged, as text, rather than losing the line.
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT (`json` or `text`)."""
    return JsonFormatter() if log_format == "json" else KeyValueFormatter(TEXT_FORMAT)


def configure_logging(level: str, log_format: str = "text") -> None:
    """Send the hotline's logs to stdout (idempotent; a second call may change the format)."""
    root = logging.getLogger("hotline")
    root.setLevel(level)
    ours = [handler for handler in root.handlers if getattr(handler, "_hotline", False)]
    if ours:
        for handler in ours:
            handler.setFormatter(formatter_for(log_format))
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter_for(log_format))
    handler._hotline = True  # type: ignore[attr-defined]
    root.addHandler(handler)
