"""One message on its channel: signed webhook, e-mail, the duty officer's SMS, the caller's SMS."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cases.models import LOGGED_RECEIPT, Channel
from cases.privacy import mask_number
from delivery.mail import send_email
from delivery.messages import CallerTextRenderer, DeliveryConfig, DeliveryError, Outgoing, SmsSender
from delivery.sms import caller_text_values, duty_officer_text
from delivery.webhook import send_webhook

log = logging.getLogger("hotline.delivery")


@dataclass(frozen=True)
class Senders:
    """How messages leave, as the shell built it from the environment."""

    config: DeliveryConfig
    # Writes a caller's text in their language, from the prompts.
    render_caller_text: CallerTextRenderer
    # None when Twilio is not configured: texts are then written to the log.
    send_sms: SmsSender | None = None


def send(outgoing: Outgoing, *, senders: Senders) -> str:
    """Send one message on its channel; returns the receipt, or raises DeliveryError.

    With no SMS sender (Twilio not configured) a text is written to the log and counts as
    delivered with the receipt LOGGED_RECEIPT, as the case-number text does.
    """
    config, send_sms = senders.config, senders.send_sms
    if outgoing.channel == Channel.WEBHOOK:
        return send_webhook(outgoing, timeout=config.timeout)
    if outgoing.channel == Channel.EMAIL:
        return send_email(outgoing, config=config)
    if outgoing.channel == Channel.SMS:
        body = duty_officer_text(outgoing, public_base_url=config.public_base_url)
    elif outgoing.channel == Channel.CALLER_SMS:
        locale = str(outgoing.payload.get("locale") or "")
        body = senders.render_caller_text(locale, outgoing.event, caller_text_values(outgoing))
    else:
        raise DeliveryError(f"unknown channel {outgoing.channel!r}", permanent=True)
    if send_sms is None:
        log.info(
            "SMS not configured; would text %s: %s",
            mask_number(outgoing.address),
            body,
            extra={"case_number": outgoing.case_number, "delivery_id": outgoing.delivery_id},
        )
        return LOGGED_RECEIPT
    return send_sms(outgoing.address, body)
