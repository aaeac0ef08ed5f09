"""Twilio's form posts parsed into small typed values, one per kind of step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cases.intake import CallerInfo, RecordingReport

# Parameters kept on the call record as its details (the rest are per-step or duplicates).
CALL_DETAIL_KEYS = (
    "FromCity",
    "FromState",
    "FromZip",
    "FromCountry",
    "ToCity",
    "ToState",
    "ToZip",
    "ToCountry",
    "Direction",
    "ApiVersion",
    "CallerName",
)


class MissingParameterError(ValueError):
    """A webhook arrived without a parameter Twilio always sends."""

    def __init__(self, name: str) -> None:
        super().__init__(f"missing parameter {name}")
        self.name = name


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise MissingParameterError(name)
    return value


def caller_from_form(form: Mapping[str, str]) -> CallerInfo:
    """The call and caller a webhook is about."""
    return CallerInfo(
        call_sid=_required(form, "CallSid"),
        account_sid=_required(form, "AccountSid"),
        from_number=form.get("From", "").strip(),
        to_number=form.get("To", "").strip(),
        details={key: form[key] for key in CALL_DETAIL_KEYS if form.get(key)},
    )


def digits_from_form(form: Mapping[str, str]) -> str:
    """The keys the caller pressed, digits only (Twilio may include * or a stray #)."""
    return "".join(char for char in form.get("Digits", "") if char.isdigit())


def int_arg(args: Mapping[str, str], name: str, *, default: int = 0, limit: int = 10) -> int:
    """A small counter from our own URL's query string, clamped (URLs can be tampered with)."""
    try:
        return max(0, min(int(args.get(name, default)), limit))
    except ValueError:
        return default


@dataclass(frozen=True)
class RecordedStep:
    """The <Record> action: what was recorded and how the recording ended."""

    caller: CallerInfo
    report: RecordingReport | None  # None when nothing was recorded
    hung_up: bool

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> RecordedStep:
        """Parse the Record action's parameters."""
        url = form.get("RecordingUrl", "").strip()
        try:
            duration = int(form.get("RecordingDuration", "0") or 0)
        except ValueError:
            duration = 0
        # Twilio sends an empty RecordingUrl or a zero duration when nothing was said.
        report = (
            RecordingReport(
                url=url, recording_sid=form.get("RecordingSid") or None, duration=duration
            )
            if url and duration > 0
            else None
        )
        return cls(
            caller=caller_from_form(form),
            report=report,
            hung_up=form.get("Digits", "") == "hangup",
        )


@dataclass(frozen=True)
class RecordingStatusStep:
    """The recording status callback."""

    recording_sid: str
    status: str
    url: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> RecordingStatusStep:
        """Parse the callback's parameters."""
        return cls(
            recording_sid=_required(form, "RecordingSid"),
            status=_required(form, "RecordingStatus"),
            url=form.get("RecordingUrl", "").strip(),
        )
