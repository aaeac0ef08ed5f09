"""E-mail to departments over SMTP, or to the log when no SMTP server is configured."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from cases.models import LOGGED_RECEIPT
from delivery.messages import (
    EXTRA_LABELS,
    PRODUCT,
    DeliveryConfig,
    DeliveryError,
    Outgoing,
    console_link,
    deadline_text,
    event_title,
)
from delivery.webhook import DELIVERY_HEADER, EVENT_HEADER

log = logging.getLogger("hotline.delivery")


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
        f"办理时限 Deadline:      {deadline_text(case.get('deadline_at'))}",
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
    chinese, english = event_title(outgoing.event)
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
    chinese, english = event_title(outgoing.event)
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
        return LOGGED_RECEIPT
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
