"""Text messages through Twilio's REST API (or a local mock of it)."""

from __future__ import annotations

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client


def twilio_client(
    *, account_sid: str, auth_token: str, api_base_url: str | None, timeout: float = 10.0
) -> Client:
    """A REST client; `api_base_url` points it at a mock such as Prism instead of Twilio."""
    client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
    if api_base_url:
        client.api.base_url = api_base_url
    return client


def send_sms(client: Client, *, to: str, from_number: str, body: str) -> str:
    """Send one text; returns its MessageSid."""
    message = client.messages.create(to=to, from_=from_number, body=body)
    return str(message.sid)
