"""Twilio request signatures, checked against the URL Twilio saw (rebuilt from PUBLIC_BASE_URL)."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any

from flask import abort, request
from twilio.request_validator import RequestValidator

from hotline.wiring import current_wiring

log = logging.getLogger("hotline.ivr")


def public_url_of_request(public_base_url: str) -> str:
    """The URL Twilio requested: behind a proxy the app sees another scheme and host."""
    query = request.query_string.decode("latin-1")
    return f"{public_base_url}{request.path}" + (f"?{query}" if query else "")


def signature_matches(expected: str, signature: str) -> bool:
    """Whether a MAC we were sent is the one we computed, in constant time; any text is a fair
    answer no (comparing non-ASCII strings would raise instead)."""
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))


def check_twilio_signature(validator: RequestValidator, public_base_url: str) -> bool:
    """Whether the current request carries a valid X-Twilio-Signature."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = public_url_of_request(public_base_url)
    # One HMAC over the URL as we rebuilt it settles nearly every request; the library's full
    # check (two HMACs, with and without the default port) runs only when that one fails.
    expected = validator.compute_signature(url, request.form)
    return signature_matches(expected, signature) or bool(
        validator.validate(url, request.form, signature)
    )


def twilio_signed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 403, having written nothing, unless Twilio signed the request."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        wiring = current_wiring()
        if not check_twilio_signature(wiring.twilio_validator, wiring.settings.public_base_url):
            log.warning(
                "rejected request with a missing or invalid Twilio signature",
                extra={"path": request.path, "call_sid": request.form.get("CallSid", "")},
            )
            abort(403)
        return view(*args, **kwargs)

    # Flask answers OPTIONS itself, before any view or check runs; Twilio never sends it, and
    # an unsigned request must not get a 200 (with the path's methods) from a webhook.
    wrapper.provide_automatic_options = False  # type: ignore[attr-defined]
    return wrapper
