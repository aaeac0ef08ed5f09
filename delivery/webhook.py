"""Signed webhooks to departments (DESIGN.md, contract 6).

An HTTP POST of JSON `{"delivery_id", "event", "case", ...}` with the headers
`X-Hotline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">` and
`X-Hotline-Delivery: <delivery id>`. The body is the same on every attempt; only the timestamp
and its signature change, so a receiver drops duplicates by the delivery id.
`verify_signature` shows a receiver how to check one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import requests

from delivery.messages import RETRYABLE_CLIENT_STATUSES, DeliveryError, Outgoing

SIGNATURE_HEADER = "X-Hotline-Signature"
DELIVERY_HEADER = "X-Hotline-Delivery"
EVENT_HEADER = "X-Hotline-Event"
ATTEMPT_HEADER = "X-Hotline-Attempt"
# How far a receiver should let a signature's timestamp stray from its own clock.
SIGNATURE_TOLERANCE_SECONDS = 300


def webhook_body(outgoing: Outgoing) -> bytes:
    """The JSON a department's endpoint receives; identical on every attempt."""
    document = {"delivery_id": outgoing.delivery_id, **outgoing.payload}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The X-Hotline-Signature value for this body at this time."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes,
    tolerance: float = SIGNATURE_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """Whether an X-Hotline-Signature header signs this body with this secret, recently enough.

    For receivers: pass the raw request body, before any JSON parsing. Several `v1=` values
    are accepted (one per secret while a secret is rotated); any match will do.
    """
    if not header or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value.isascii() and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False  # a replay of an old delivery, or a badly wrong clock
    expected = _mac(secret, timestamp, body)
    # Compare against every candidate, without stopping early, in constant time each.
    matches = [hmac.compare_digest(expected, candidate) for candidate in candidates]
    return any(matches)


def send_webhook(
    outgoing: Outgoing, *, timeout: float, now: Callable[[], float] = time.time
) -> str:
    """POST the signed JSON to the department's endpoint; returns "HTTP <status>" on 2xx."""
    if not outgoing.webhook_secret:
        raise DeliveryError("the department's webhook has no secret to sign with", permanent=True)
    body = webhook_body(outgoing)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "DoItNowLine-Delivery/1",
        SIGNATURE_HEADER: sign(outgoing.webhook_secret, body, timestamp=int(now())),
        DELIVERY_HEADER: outgoing.delivery_id,
        EVENT_HEADER: outgoing.event,
        ATTEMPT_HEADER: str(outgoing.attempt),
    }
    try:
        # No redirects: the signed request goes where the department said, or fails.
        response = requests.post(
            outgoing.address, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as error:
        raise DeliveryError(f"{type(error).__name__}: {error}") from error
    status = int(response.status_code)
    if 200 <= status < 300:
        return f"HTTP {status}"
    permanent = 400 <= status < 500 and status not in RETRYABLE_CLIENT_STATUSES
    detail = " ".join(str(response.text or "").split())[:200]
    raise DeliveryError(f"HTTP {status}: {detail}".rstrip(": "), permanent=permanent)
