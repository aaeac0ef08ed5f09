"""An outbox message ready to leave, what can go wrong sending it, and the words departments
read (event titles, labels, the console link), shared by every channel.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cases.models import Channel

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


def deadline_text(value: Any) -> str:
    """A deadline as people in the city read it, in its own time."""
    if not value:
        return "—"
    try:
        deadline = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return deadline.astimezone(CITY_TIMEZONE).strftime("%Y-%m-%d %H:%M") + " (北京时间)"


def event_title(event: str) -> tuple[str, str]:
    """What an event means to the department reading it, in Chinese and English."""
    return EVENT_TITLES.get(event, (event or "工单通知", event or "Case notice"))
