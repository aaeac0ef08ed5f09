"""What the emulator's parts share: Twilio's SIDs, error bodies and API version."""

from __future__ import annotations

import json
import secrets

API_VERSION = "2010-04-01"


class EmulatorError(Exception):
    """The call script and the app's TwiML disagree, the app answered badly, or the call looped."""


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: a two-letter prefix and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def twilio_error(code: int, message: str, status: int) -> bytes:
    """An error body as Twilio's REST API writes one."""
    more_info = f"https://www.twilio.com/docs/errors/{code}"
    body = {"code": code, "message": message, "more_info": more_info, "status": status}
    return json.dumps(body).encode()
