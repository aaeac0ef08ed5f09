"""Texts: the short SMS a department's duty officer gets, the values a caller's text is written
from, and Twilio's REST API (or a local mock of it) that sends them both."""

from __future__ import annotations

from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from delivery.messages import (
    EXTRA_LABELS,
    PRODUCT,
    RETRYABLE_CLIENT_STATUSES,
    DeliveryError,
    Outgoing,
    SmsSender,
    console_link,
    deadline_text,
    event_title,
)


def duty_officer_text(outgoing: Outgoing, *, public_base_url: str) -> str:
    """The short text a department's duty officer gets (one SMS, in Chinese)."""
    chinese, _ = event_title(outgoing.event)
    category = outgoing.category_name or outgoing.case.get("category") or "待分类"
    deadline = deadline_text(outgoing.case.get("deadline_at")).removesuffix(" (北京时间)")
    parts = [f"【{PRODUCT}】{chinese}：工单{outgoing.case_number}，{category}，时限{deadline}。"]
    for key in ("reason", "instruction"):
        if outgoing.payload.get(key):
            parts.append(f"{EXTRA_LABELS[key].split()[0]}：{str(outgoing.payload[key])[:120]}。")
    parts.append(f"详情：{console_link(public_base_url, outgoing.case_number)}")
    return "".join(parts)


def caller_text_values(outgoing: Outgoing) -> dict[str, Any]:
    """What a caller text's template may use: the payload less the routing fields."""
    return {k: v for k, v in outgoing.payload.items() if k not in ("message", "locale")}


def twilio_client(
    *, account_sid: str, auth_token: str, api_base_url: str | None, timeout: float = 10.0
) -> Client:
    """A REST client; `api_base_url` points it at a mock such as Prism instead of Twilio."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    if api_base_url:
        client.api.base_url = api_base_url
    return client


def twilio_sms_sender(
    *,
    account_sid: str,
    auth_token: str,
    from_number: str,
    api_base_url: str | None,
    timeout: float,
) -> SmsSender:
    """An SMS sender through Twilio: its errors become DeliveryErrors, with Twilio's refusals
    (a 4xx such as an invalid number) marked permanent. The MessageSid is the receipt."""

    def send(to: str, body: str) -> str:
        """Send one text through Twilio; its MessageSid is the receipt."""
        client = twilio_client(
            account_sid=account_sid,
            auth_token=auth_token,
            api_base_url=api_base_url,
            timeout=timeout,
        )
        try:
            message = client.messages.create(to=to, from_=from_number, body=body)
        except TwilioRestException as error:
            permanent = 400 <= error.status < 500 and error.status not in RETRYABLE_CLIENT_STATUSES
            raise DeliveryError(
                f"Twilio {error.status} (code {error.code}): {error.msg}", permanent=permanent
            ) from error
        except (TwilioException, OSError) as error:
            raise DeliveryError(f"Twilio: {type(error).__name__}: {error}") from error
        return str(message.sid)

    return send
