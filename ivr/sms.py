"""Texts: Twilio's "a message comes in" webhook, and the words of texts to callers.

In: Twilio's signed Messaging webhook (`POST /ivr/sms`). A reply of 1 to 5 (full-width digits
too, or "<case number> <score>") rates the caller's most recently resolved case; two or less
reopens it. The answer is TwiML `<Message>` in the caller's language, and that reply is the
thank-you (or reopened) text itself, so the outbox copy of it is marked delivered rather than
sent a second time. A retried webhook (same MessageSid) gets the same answer and changes nothing.

Out: `caller_text_renderer` writes the texts `delivery` sends to callers, from the prompts, so
that delivery needs no prompt files.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from cases import free_text, lifecycle, outbox, phones, queries
from cases.models import (
    Case,
    CaseEvent,
    CaseStatus,
    Category,
    Channel,
    Delivery,
    DeliveryStatus,
    utcnow,
)
from delivery.messages import CallerTextRenderer, DeliveryError
from hotline.wiring import current_wiring, db
from ivr.prompts import Prompts
from ivr.signatures import twilio_signed
from ivr.steps import MissingParameterError

log = logging.getLogger("hotline.ivr")
bp = Blueprint("ivr_sms", __name__, url_prefix="/ivr")

# Twilio refuses a body longer than this (error 21617).
MAX_SMS_CHARS = 1600
# "5", "５", " 4 ", "5分", "123456789 2", "123456789，2": a score, after an optional case number.
_RATING = re.compile(
    r"^(?:(?P<number>\d{1,12})[\s,.:;#*/-]+)?(?P<score>\d{1,2})\s*(?:分|星|점|stars?|points?)?$",
    re.IGNORECASE,
)


# --- Out: the words of texts to callers -----------------------------------------------------


def _fit(prompts: Prompts, key: str, values: dict[str, str]) -> str:
    """The text, with a long department reply shortened so the whole fits one Twilio message."""
    text = prompts.text(key, **values)
    overflow = len(text) - MAX_SMS_CHARS
    if overflow > 0 and values.get("reply"):
        reply = values["reply"]
        values = {**values, "reply": reply[: max(len(reply) - overflow - 1, 0)] + "…"}
        text = prompts.text(key, **values)
    return text[:MAX_SMS_CHARS]


def caller_text_renderer(
    prompts: Mapping[str, Prompts], *, default_locale: str
) -> CallerTextRenderer:
    """Renders outbox caller texts (`message` "accepted" uses the prompt `sms_accepted`) in the
    caller's locale, or the default one if that locale is no longer offered."""

    def render(locale: str, message: str, values: Mapping[str, Any]) -> str:
        """The text of outbox message `message` for a caller speaking `locale`."""
        chosen = prompts.get(locale) or prompts[default_locale]
        key = f"sms_{message}"
        if key not in chosen.texts:
            raise DeliveryError(
                f"no caller text {key!r} in the {chosen.locale} prompts", permanent=True
            )
        return _fit(chosen, key, {name: str(value) for name, value in values.items()})

    return render


# --- In: the rating text ----------------------------------------------------------------------


@dataclass(frozen=True)
class RatingText:
    """A text that reads as a rating: the score, and the case number if the caller gave one."""

    score: int
    case_number: str | None = None


def parse_rating(body: str) -> RatingText | None:
    """The rating a text gives, if it is one: 1 to 5, optionally after a case number."""
    # NFKC turns full-width digits and punctuation (５, ，) into their ASCII forms.
    normalised = unicodedata.normalize("NFKC", body or "").strip()
    match = _RATING.match(normalised)
    if match is None:
        return None
    score = int(match["score"])
    if score not in lifecycle.RATINGS:
        return None
    return RatingText(score=score, case_number=match["number"])


@dataclass(frozen=True)
class InboundText:
    """Twilio's Messaging webhook, parsed."""

    message_sid: str
    from_number: str
    body: str

    @classmethod
    def from_form(cls, form: Mapping[str, str], *, region: str) -> InboundText:
        """The values Twilio always sends with an incoming text; the sender in E.164, as
        the cases keep their callers' numbers (`cases.phones`)."""
        values = {}
        for name in ("MessageSid", "From"):
            values[name] = form.get(name, "").strip()
            if not values[name]:
                raise MissingParameterError(name)
        return cls(
            message_sid=values["MessageSid"],
            from_number=phones.same_or_raw(values["From"], region=region),
            # A citizen's text is never refused (Twilio is waiting, and it may be a report):
            # what the free-text rule would refuse is replaced, so no NUL or control character
            # goes further than here.
            body=free_text.readable(form.get("Body", "")),
        )


@dataclass(frozen=True)
class Reply:
    """The text to answer with: a prompt key, in a locale, with its values."""

    key: str
    locale: str | None
    values: dict[str, str] = field(default_factory=dict)


def _reply_to_rating(case: Case, score: int) -> Reply:
    reopened = score <= lifecycle.REOPEN_AT_OR_BELOW
    return Reply(
        "sms_reopened" if reopened else "sms_rating_thanks",
        case.locale,
        {"number": case.number},
    )


def _earlier_answer(session: Session, *, text: InboundText) -> Reply | None:
    """The answer already given to this MessageSid, if Twilio is retrying it."""
    event = session.scalars(
        select(CaseEvent)
        .join(Case, CaseEvent.case_id == Case.id)
        .where(
            Case.caller_number == text.from_number,
            CaseEvent.kind == "rated",
            CaseEvent.data["message_sid"].as_string() == text.message_sid,
        )
        .limit(1)
    ).first()
    if event is None:
        return None
    return _reply_to_rating(event.case, int(event.data["score"]))


def _caller_locale(session: Session, *, from_number: str) -> str | None:
    """The language of the caller's latest case, for texts about none in particular."""
    return session.scalars(
        select(Case.locale)
        .where(Case.caller_number == from_number)
        .order_by(Case.opened_at.desc(), Case.id.desc())
        .limit(1)
    ).first()


def _case_to_rate(session: Session, *, text: InboundText, rating: RatingText) -> Case | None:
    if rating.case_number is None:
        return queries.case_awaiting_rating(session, caller_number=text.from_number)
    case = queries.find_case(session, number=rating.case_number)
    # Only the caller's own case: anyone else learns nothing, not even that the number exists.
    if case is None or case.caller_number != text.from_number:
        return None
    return case if case.status == CaseStatus.RESOLVED else None


def _mark_answered_in_reply(session: Session, *, case: Case, message_sid: str) -> None:
    """The TwiML reply is the text the rating queued: mark that outbox row delivered by it, so
    the caller is not texted the same words twice."""
    delivery = session.scalars(
        select(Delivery)
        .where(
            Delivery.case_id == case.id,
            Delivery.recipient == outbox.CALLER,
            Delivery.channel == Channel.CALLER_SMS,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.topic.startswith("reopened") | Delivery.topic.startswith("rating_thanks"),
        )
        .order_by(Delivery.id.desc())
        .limit(1)
    ).first()
    if delivery is not None:
        now = utcnow()
        delivery.status = DeliveryStatus.DELIVERED
        delivery.attempts += 1
        delivery.last_attempt_at = delivery.delivered_at = now
        delivery.receipt = f"TwiML reply to {message_sid}"


def answer_text(
    session: Session,
    *,
    text: InboundText,
    deadline_for: Callable[[Category, str], datetime],
) -> Reply:
    """Rate the caller's case from their text, or say why not; a retried text changes nothing.

    `deadline_for(category, urgency)` gives a reopened case its fresh time limit, from now.
    """
    earlier = _earlier_answer(session, text=text)
    if earlier is not None:
        return earlier
    rating = parse_rating(text.body)
    if rating is None:
        # Not a rating; kept in the log so that a person can still read what the caller wrote.
        log.info(
            "text is not a rating: %r",
            text.body[:200],
            extra={"message_sid": text.message_sid},
        )
        return Reply("sms_rating_help", _caller_locale(session, from_number=text.from_number))
    case = _case_to_rate(session, text=text, rating=rating)
    if case is None:
        return Reply("sms_no_case_to_rate", _caller_locale(session, from_number=text.from_number))
    # Lock the case: a retry racing this request waits, then finds the rating already given.
    case = session.scalars(
        select(Case)
        .where(Case.id == case.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if case.status != CaseStatus.RESOLVED:
        earlier = _earlier_answer(session, text=text)
        return earlier or Reply("sms_no_case_to_rate", case.locale)
    reopen_deadline_at = None
    if rating.score <= lifecycle.REOPEN_AT_OR_BELOW and case.category_code:
        category = session.get(Category, case.category_code)
        if category is not None:
            reopen_deadline_at = deadline_for(category, case.urgency or "normal")
    outcome = lifecycle.rate(
        session,
        case=case,
        score=rating.score,
        message_sid=text.message_sid,
        reopen_deadline_at=reopen_deadline_at,
    )
    _mark_answered_in_reply(session, case=case, message_sid=text.message_sid)
    log.info(
        "caller rated %d%s",
        rating.score,
        "; case reopened" if outcome.reopened else "; case closed",
        extra={"case_number": case.number, "message_sid": text.message_sid},
    )
    return _reply_to_rating(case, rating.score)


def render_reply(reply: Reply, *, prompts: Mapping[str, Prompts], default_locale: str) -> str:
    """The answer as TwiML `<Response><Message>…</Message></Response>`."""
    chosen = prompts.get(reply.locale or "") or prompts[default_locale]
    response = MessagingResponse()
    response.message(chosen.text(reply.key, **reply.values))
    return str(response)


@bp.post("/sms")
@twilio_signed
def inbound_sms() -> Response:
    """An incoming text: a rating of the caller's resolved case, or help on how to rate."""
    wiring = current_wiring()
    text = InboundText.from_form(request.form, region=wiring.settings.phone_default_region)

    def deadline_for(category: Category, urgency: str) -> datetime:
        """A fresh time limit from now, as a person routing the matter would set."""
        return wiring.router.deadline_for(category=category, urgency=urgency, start=utcnow())

    try:
        with db().begin():
            reply = answer_text(db(), text=text, deadline_for=deadline_for)
    except Exception:
        # Twilio is waiting: answer, and keep the caller's text in the log for the desk.
        log.exception(
            "could not take a text: %r",
            text.body[:200],
            extra={"message_sid": text.message_sid},
        )
        reply = Reply("sms_rating_failed", None)
    body = render_reply(
        reply, prompts=wiring.prompts, default_locale=wiring.settings.default_locale
    )
    return Response(body, mimetype="text/xml")


@bp.errorhandler(MissingParameterError)
def missing_parameter(error: MissingParameterError) -> tuple[str, int]:
    """A text without a parameter Twilio always sends is not from Twilio: say what's missing."""
    return f"Bad request: {error}\n", 400
