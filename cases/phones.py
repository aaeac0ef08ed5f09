"""Phone numbers as the hotline stores and compares them: E.164 (`+8613912345678`).

A caller with a withheld ID keys `13912345678`; Twilio reports the same person texting back as
`From=+8613912345678`. Both must be one string, or the case-number text and the rating reply
never find the case. libphonenumber's port (`phonenumbers`) reads a number without a country
code in the deployment's region (`PHONE_DEFAULT_REGION`, CN by default), never by hand.
"""

from __future__ import annotations

import phonenumbers


def to_e164(raw: str | None, *, region: str) -> str | None:
    """The number in E.164, or None if it is not a possible phone number (empty, `anonymous`,
    a couple of stray keys)."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def same_or_raw(raw: str, *, region: str) -> str:
    """E.164 when the text is a phone number, else the text unchanged (for comparing a sender
    that may be a short code or an alphanumeric name)."""
    return to_e164(raw, region=region) or raw.strip()
