"""Personal data kept from eyes that need not see it: callers' numbers masked."""

from __future__ import annotations

import re
from typing import overload


@overload
def mask_number(number: str) -> str: ...
@overload
def mask_number(number: None) -> None: ...
def mask_number(number: str | None) -> str | None:
    """A phone number with all but its last four digits hidden, for department eyes."""
    if not number:
        return number
    return "*" * max(len(number) - 4, 0) + number[-4:]


# A phone number inside free text, such as a provider's error message.
# International format, or a long run of digits (dates and codes have short ones).
_PHONE_IN_TEXT = re.compile(r"\+\d[\d ()-]{5,}\d|\d{7,}")


def hide_phone_numbers(text: str) -> str:
    """Free text (an error from Twilio or a mail server) with any phone number in it masked:
    it is stored on the case, where department staff read it."""
    return _PHONE_IN_TEXT.sub(lambda match: mask_number(match.group()) or "", text)
