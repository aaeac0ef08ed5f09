"""Logs: in JSON, one object per line with every `extra` field (the call sid, the case
number) and the exception as a field; JSON by default in production only."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from hotline.config import ConfigError, load_settings
from hotline.logs import JsonFormatter, KeyValueFormatter, configure_logging
from tests.hotline.test_config import PRODUCTION_SECRETS


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of the hotline's whose lines go, as JSON, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("hotline.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, buffer
    logger.removeHandler(handler)


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_json_line_carries_the_call_sid_and_the_case_number(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    logger.info("case %s opened", "123", extra={"call_sid": "CA42", "case_number": "2501010001"})
    (entry,) = lines(buffer)
    assert entry["message"] == "case 123 opened"
    assert (entry["level"], entry["logger"]) == ("INFO", "hotline.test_logs")
    assert (entry["call_sid"], entry["case_number"]) == ("CA42", "2501010001")
    assert str(entry["time"]).endswith("+00:00")


def test_an_exception_stays_on_its_line_as_a_field(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    try:
        raise ValueError("第一行\nsecond line")
    except ValueError:
        logger.exception("the fetch failed", extra={"call_sid": "CA7", "attempt": 2})
    (entry,) = lines(buffer)  # one line: the traceback's newlines are escaped
    assert entry["call_sid"] == "CA7" and entry["attempt"] == 2
    assert "Traceback" in str(entry["exception"])
    assert "ValueError: 第一行\nsecond line" in str(entry["exception"])


def test_an_extra_json_cannot_hold_is_logged_as_text(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = logged
    logger.warning("odd", extra={"when": object, "message_sid": None})
    (entry,) = lines(buffer)
    assert entry["when"] == str(object)
    assert "message_sid" not in entry  # unset fields are left out, as in the text format


def test_production_logs_json_and_development_text() -> None:
    assert load_settings({"HOTLINE_ENV": "production", **PRODUCTION_SECRETS}).log_format == "json"
    assert load_settings({}).log_format == "text"
    assert load_settings({"LOG_FORMAT": "JSON"}).log_format == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings({"LOG_FORMAT": "xml"})


def test_configuring_again_switches_the_format() -> None:
    root = logging.getLogger("hotline")
    configure_logging("INFO", "json")
    try:
        ours = [handler for handler in root.handlers if getattr(handler, "_hotline", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, JsonFormatter)
    finally:
        configure_logging("INFO", "text")
    assert isinstance(ours[0].formatter, KeyValueFormatter)
