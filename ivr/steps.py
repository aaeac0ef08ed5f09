"""Twilio's form posts parsed into small typed values, one per kind of step."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cases.free_text import readable
from cases.intake import CallerInfo, RecordingReport
from cases.models import ROW_ID_MAX
from ivr.menus import went_to_operator

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


# What the call's row can keep of each field (its column widths). Twilio's own values are far
# shorter (a sid is 34 characters, a number at most 16); anything longer is not Twilio's.
SID_LENGTH = 64
NUMBER_LENGTH = 40
DETAIL_LENGTH = 200
URL_LENGTH = 2000


class MissingParameterError(ValueError):
    """A webhook arrived without a parameter Twilio always sends, or with one that is not what
    Twilio sends (too long, or with characters no sid has)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"missing parameter {name}")
        self.name = name


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value or len(value) > SID_LENGTH or not value.isprintable():
        raise MissingParameterError(name)
    return value


def _optional(form: Mapping[str, str], name: str, limit: int) -> str:
    """A parameter we can use only as Twilio sends it (a sid, a URL): one that is too long or
    holds characters Twilio never sends is unknown (""), rather than stored or refused."""
    value = form.get(name, "").strip()
    return value if len(value) <= limit and value.isprintable() else ""


def _kept(value: str, limit: int) -> str:
    """A caller field as the database can keep it: characters no column may hold (PostgreSQL
    refuses NUL) become U+FFFD, and the length is cut to the column's. The caller is never
    refused for what their network sent about them."""
    return readable(value.strip())[:limit]


def caller_from_form(form: Mapping[str, str]) -> CallerInfo:
    """The call and caller a webhook is about."""
    return CallerInfo(
        call_sid=_required(form, "CallSid"),
        account_sid=_required(form, "AccountSid"),
        from_number=_kept(form.get("From", ""), NUMBER_LENGTH),
        to_number=_kept(form.get("To", ""), NUMBER_LENGTH),
        details={key: _kept(form[key], DETAIL_LENGTH) for key in CALL_DETAIL_KEYS if form.get(key)},
    )


def digits_from_form(form: Mapping[str, str]) -> str:
    """The keys the caller pressed, digits only (Twilio may include * or a stray #)."""
    return "".join(char for char in form.get("Digits", "") if char.isdigit())


# A day: far past any recording or call this IVR makes (Twilio caps <Record> at 4 hours).
MAX_SECONDS = 24 * 3600


def seconds_param(form: Mapping[str, str], name: str) -> int | None:
    """A count of seconds Twilio reported, or None if it is not one we can read.

    Twilio sends whole seconds; anything else (a sign, a fraction, other digits than ASCII)
    is unknown rather than an error, and an absurd value is clamped to `MAX_SECONDS`, so it
    never overflows a database integer on its way to the caller's case.
    """
    raw = form.get(name, "").strip()
    if not (raw.isascii() and raw.isdigit()):
        return None
    # Python refuses to parse more than 4,300 digits; nine already pass the clamp.
    return MAX_SECONDS if len(raw) > 9 else min(int(raw), MAX_SECONDS)


def int_arg(args: Mapping[str, str], name: str, *, default: int = 0, limit: int = 10) -> int:
    """A small counter from our own URL's query string, clamped (URLs can be tampered with)."""
    try:
        return max(0, min(int(args.get(name, default)), limit))
    except ValueError:
        return default


def row_id_arg(args: Mapping[str, str], name: str) -> int:
    """A row id from our own URL's query string; 0 (no row) when missing or malformed."""
    return int_arg(args, name, limit=ROW_ID_MAX)


@dataclass(frozen=True)
class RecordedStep:
    """The <Record> action: what was recorded and how the recording ended."""

    caller: CallerInfo
    report: RecordingReport | None  # None when nothing was recorded
    hung_up: bool
    to_operator: bool = False  # ended with 0: the report is kept and a person takes the call

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> RecordedStep:
        """Parse the Record action's parameters."""
        url = _optional(form, "RecordingUrl", URL_LENGTH)
        duration = seconds_param(form, "RecordingDuration")
        # Twilio sends an empty RecordingUrl or a zero duration when nothing was said. A
        # duration we cannot read, with a recording to go with it, is kept as a report: the
        # fetch finds out what is in it, and the desk hears about it if nothing is.
        report = (
            RecordingReport(
                url=url,
                recording_sid=_optional(form, "RecordingSid", SID_LENGTH) or None,
                duration=duration or 0,
            )
            if url and duration != 0
            else None
        )
        return cls(
            caller=caller_from_form(form),
            report=report,
            hung_up=form.get("Digits", "") == "hangup",
            to_operator=went_to_operator(form.get("Digits", "")),
        )


@dataclass(frozen=True)
class RecordingStatusStep:
    """The recording status callback."""

    caller: CallerInfo
    recording_sid: str
    status: str
    url: str
    duration: int | None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> RecordingStatusStep:
        """Parse the callback's parameters."""
        return cls(
            caller=caller_from_form(form),
            recording_sid=_required(form, "RecordingSid"),
            status=_required(form, "RecordingStatus"),
            url=_optional(form, "RecordingUrl", URL_LENGTH),
            duration=seconds_param(form, "RecordingDuration"),
        )
