"""Sending outbox messages: signed webhooks and e-mail to departments, texts to duty officers
and callers.

The senders take plain data and either return the receiver's receipt or raise DeliveryError,
which says whether trying again could help. They know no session and no Celery: the job in
routing.tasks claims a row, sends outside any transaction, and records what happened.

Webhook contract (DESIGN.md, contract 6): an HTTP POST of JSON
`{"delivery_id", "event", "case", ...}` with the headers
`X-Hotline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">` and
`X-Hotline-Delivery: <delivery id>`. The body is the same on every attempt; only the timestamp
and its signature change, so a receiver drops duplicates by the delivery id.

What counts as delivered, and what is worth retrying:
- 2xx acknowledges.
- 408, 425 and 429, any 5xx or 3xx, a timeout and a refused connection are retried: the receiver
  is busy, down or being deployed.
- Any other 4xx is permanent: the receiver is up and refuses this request (a wrong secret, an
  endpoint that is gone). Resending the same thing for a day would only hide that, so the
  delivery fails at once and the dispatch desk is alerted to fix it with the department.
- For e-mail and texts the same split holds: SMTP 5xx and Twilio 4xx refusals are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any
from zoneinfo import ZoneInfo

import requests

from cases.models import Channel
from cases.outbox import mask_number

log = logging.getLogger("hotline.delivery")

SIGNATURE_HEADER = "X-Hotline-Signature"
DELIVERY_HEADER = "X-Hotline-Delivery"
EVENT_HEADER = "X-Hotline-Event"
ATTEMPT_HEADER = "X-Hotline-Attempt"
# How far a receiver should let a signature's timestamp stray from its own clock.
SIGNATURE_TOLERANCE_SECONDS = 300
# Client errors that say "not now" rather than "never".
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
MAX_BACKOFF = timedelta(hours=1)
MAX_ERROR_CHARS = 500
# Deadlines are written for people in the city, in its own time.
CITY_TIMEZONE = ZoneInfo("Asia/Shanghai")
PRODUCT = "马上就办一线通"

# What each outbox event means to the department reading it: (Chinese, English).
EVENT_TITLES: dict[str, tuple[str, str]] = {
    "assigned": ("新派工单", "New case"),
    "copy": ("重大紧急事项抄送", "Copy of a major or urgent case"),
    "escalated": ("督办升级", "Escalated to leadership"),
    "overdue": ("超期提醒", "Overdue reminder"),
    "supervision": ("督办通知", "Supervision notice"),
    "sent_back": ("退单待裁定", "Sent back: the desk must rule"),
    "reopened": ("市民不满意，工单重办", "Reopened: the caller was not satisfied"),
    "delivery_failed": ("工单推送失败", "A delivery failed"),
}
# Extra payload fields a department should read, with their labels.
EXTRA_LABELS: dict[str, str] = {
    "reason": "原因 Reason",
    "instruction": "督办要求 Instruction",
    "rating": "市民评分 Caller's rating",
    "previous_reply": "原答复 Previous reply",
    "failed_delivery": "失败的推送 Failed delivery",
    "automatic": "自动 Automatic",
}

SmsSender = Callable[[str, str], str]
"""Sends a text `(to, body)` and returns its reference (a MessageSid); raises DeliveryError."""

CallerTextRenderer = Callable[[str, str, Mapping[str, Any]], str]
"""Renders a caller text `(locale, message name, values)` in the caller's language."""


class DeliveryError(Exception):
    """A send did not go through; `permanent` when trying again cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message[:MAX_ERROR_CHARS])
        self.permanent = permanent


@dataclass(frozen=True)
class SMTPConfig:
    """Where and how e-mail leaves."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    starttls: bool = False


@dataclass(frozen=True)
class DeliveryConfig:
    """The settings deliveries need (the shell builds this from the environment)."""

    public_base_url: str
    mail_from: str = "hotline@localhost"
    timeout: float = 10.0
    # The first retry waits `backoff` seconds; each next one twice as long, up to an hour.
    backoff: float = 30.0
    # After this long since the row was queued, a failed try is the last one.
    retry_window: timedelta = timedelta(hours=24)
    # None: e-mail is written to the log instead of sent (a local run never calls out).
    smtp: SMTPConfig | None = None


@dataclass(frozen=True)
class Outgoing:
    """One outbox message, ready to send: the row's data plus what the job looked up."""

    delivery_id: str
    channel: Channel
    recipient: str
    address: str
    payload: Mapping[str, Any]
    attempt: int
    webhook_secret: str | None = None
    category_name: str | None = None

    @property
    def event(self) -> str:
        """Why the message is sent: "assigned", "overdue", ... (a caller text's message name)."""
        return str(self.payload.get("event") or self.payload.get("message") or "")

    @property
    def case(self) -> Mapping[str, Any]:
        """The case snapshot a department push carries."""
        case = self.payload.get("case")
        return case if isinstance(case, Mapping) else {}

    @property
    def case_number(self) -> str:
        """The case's number, whichever kind of message this is."""
        return str(self.case.get("number") or self.payload.get("number") or "")


def next_attempt_at(
    *,
    attempts: int,
    last_attempt_at: datetime | None,
    created_at: datetime,
    backoff: float,
    retry_window: timedelta,
) -> datetime:
    """When a pending delivery is next due: at once if never tried, then after exponential
    backoff capped at an hour, and never later than the end of its retry window (so the last
    try falls on the deadline)."""
    if last_attempt_at is None:
        return created_at
    exponent = min(max(attempts - 1, 0), 32)
    delay = min(timedelta(seconds=backoff * 2**exponent), MAX_BACKOFF)
    return min(last_attempt_at + delay, created_at + retry_window)


def console_link(public_base_url: str, case_number: str) -> str:
    """Where staff open the case in the console."""
    return f"{public_base_url.rstrip('/')}/console/cases/{case_number}"


def _deadline_text(value: Any) -> str:
    if not value:
        return "—"
    try:
        deadline = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return deadline.astimezone(CITY_TIMEZONE).strftime("%Y-%m-%d %H:%M") + " (北京时间)"


def _title(event: str) -> tuple[str, str]:
    return EVENT_TITLES.get(event, (event or "工单通知", event or "Case notice"))


# --- Webhook -----------------------------------------------------------------------------------


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


# --- E-mail ------------------------------------------------------------------------------------


def message_id(delivery_id: str, mail_from: str) -> str:
    """The Message-ID of a delivery's e-mail: the same on every re-send, so a mail client (or a
    person) sees a repeat as the same message."""
    address = parseaddr(mail_from)[1]
    domain = address.rpartition("@")[2] or "hotline.invalid"
    return f"<{delivery_id}@{domain}>"


def _case_lines(outgoing: Outgoing) -> list[str]:
    case = outgoing.case
    category = case.get("category") or "—"
    if outgoing.category_name:
        category = f"{outgoing.category_name} ({category})"
    urgency = str(case.get("urgency") or "—")
    if case.get("major"):
        urgency += "（重大 major）"
    lines = [
        f"工单编号 Case number:   {outgoing.case_number}",
        f"事项类别 Category:      {category}",
        f"紧急程度 Urgency:       {urgency}",
        f"办理时限 Deadline:      {_deadline_text(case.get('deadline_at'))}",
        f"承办单位 Department:    {case.get('department') or '—'}",
        f"首问负责 Responsible:   {case.get('responsible_department') or '—'}",
        f"地点 Place:             {case.get('place') or '—'}",
        f"来电号码 Caller:        {case.get('caller_number') or '—'}",
    ]
    for key, label in EXTRA_LABELS.items():
        value = outgoing.payload.get(key)
        if value in (None, "", False):
            continue
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        lines.append(f"{label}: {value}")
    return lines


def email_text(outgoing: Outgoing, *, public_base_url: str) -> str:
    """The plain-text body of a department's e-mail."""
    chinese, english = _title(outgoing.event)
    transcript = str(outgoing.case.get("transcript") or "（无文字记录 no transcript）")
    return "\n".join(
        [
            f"{PRODUCT} · {chinese} ({english})",
            "",
            *_case_lines(outgoing),
            "",
            "市民反映 What the caller said:",
            transcript,
            "",
            "在控制台办理 Open it in the console:",
            console_link(public_base_url, outgoing.case_number),
            "",
            f"投递编号 Delivery id: {outgoing.delivery_id}",
            "本邮件由系统发送；请在控制台或通过接口签收办理。",
            "Sent by the hotline; accept and work the case in the console or through the API.",
            "",
        ]
    )


def email_message(outgoing: Outgoing, *, mail_from: str, public_base_url: str) -> EmailMessage:
    """The e-mail for a department delivery."""
    chinese, english = _title(outgoing.event)
    message = EmailMessage()
    message["Subject"] = f"[{PRODUCT}] {chinese} {outgoing.case_number} ({english})"
    message["From"] = mail_from
    message["To"] = outgoing.address
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(outgoing.delivery_id, mail_from)
    message[DELIVERY_HEADER] = outgoing.delivery_id
    message[EVENT_HEADER] = outgoing.event
    message.set_content(email_text(outgoing, public_base_url=public_base_url))
    return message


def send_email(outgoing: Outgoing, *, config: DeliveryConfig) -> str:
    """Send the department's e-mail over SMTP; returns its Message-ID."""
    message = email_message(
        outgoing, mail_from=config.mail_from, public_base_url=config.public_base_url
    )
    if config.smtp is None:
        # A department that set an address expects mail: say loudly that none is sent.
        log.warning(
            "SMTP not configured; would e-mail %s: %s",
            outgoing.address,
            message["Subject"],
            extra={"case_number": outgoing.case_number, "delivery_id": outgoing.delivery_id},
        )
        return "logged"
    smtp = config.smtp
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=config.timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise DeliveryError(
            f"SMTP refused every recipient: {error.recipients}",
            permanent=all(code >= 500 for code in codes),
        ) from error
    except smtplib.SMTPResponseException as error:
        text = (
            error.smtp_error.decode("utf-8", "replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        raise DeliveryError(
            f"SMTP {error.smtp_code}: {text}", permanent=error.smtp_code >= 500
        ) from error
    except smtplib.SMTPNotSupportedError as error:
        raise DeliveryError(f"SMTP server: {error}", permanent=True) from error
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"SMTP {type(error).__name__}: {error}") from error
    receipt = str(message["Message-ID"])
    if refused:
        # Some of several addresses took it; the others are named for the desk to see.
        receipt += f" (refused: {', '.join(sorted(refused))})"
    return receipt


# --- Texts -------------------------------------------------------------------------------------


def duty_officer_text(outgoing: Outgoing, *, public_base_url: str) -> str:
    """The short text a department's duty officer gets (one SMS, in Chinese)."""
    chinese, _ = _title(outgoing.event)
    category = outgoing.category_name or outgoing.case.get("category") or "待分类"
    deadline = _deadline_text(outgoing.case.get("deadline_at")).removesuffix(" (北京时间)")
    parts = [f"【{PRODUCT}】{chinese}：工单{outgoing.case_number}，{category}，时限{deadline}。"]
    for key in ("reason", "instruction"):
        if outgoing.payload.get(key):
            parts.append(f"{EXTRA_LABELS[key].split()[0]}：{str(outgoing.payload[key])[:120]}。")
    parts.append(f"详情：{console_link(public_base_url, outgoing.case_number)}")
    return "".join(parts)


def caller_text_values(outgoing: Outgoing) -> dict[str, Any]:
    """What a caller text's template may use: the payload less the routing fields."""
    return {k: v for k, v in outgoing.payload.items() if k not in ("message", "locale")}


# --- Dispatch ----------------------------------------------------------------------------------


def send(
    outgoing: Outgoing,
    *,
    config: DeliveryConfig,
    render_caller_text: CallerTextRenderer,
    send_sms: SmsSender | None,
) -> str:
    """Send one message on its channel; returns the receipt, or raises DeliveryError.

    With no SMS sender (Twilio not configured) a text is written to the log and counts as
    delivered with the receipt "logged", as the case-number text does.
    """
    if outgoing.channel == Channel.WEBHOOK:
        return send_webhook(outgoing, timeout=config.timeout)
    if outgoing.channel == Channel.EMAIL:
        return send_email(outgoing, config=config)
    if outgoing.channel == Channel.SMS:
        body = duty_officer_text(outgoing, public_base_url=config.public_base_url)
    elif outgoing.channel == Channel.CALLER_SMS:
        locale = str(outgoing.payload.get("locale") or "")
        body = render_caller_text(locale, outgoing.event, caller_text_values(outgoing))
    else:
        raise DeliveryError(f"unknown channel {outgoing.channel!r}", permanent=True)
    if send_sms is None:
        log.info(
            "SMS not configured; would text %s: %s",
            mask_number(outgoing.address),
            body,
            extra={"case_number": outgoing.case_number, "delivery_id": outgoing.delivery_id},
        )
        return "logged"
    return send_sms(outgoing.address, body)
