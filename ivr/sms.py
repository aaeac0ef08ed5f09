"""Texts: Twilio's "a message comes in" webhook, and the words of texts to callers.

In: Twilio's signed Messaging webhook (`POST /ivr/sms`). Every text is kept once under its
MessageSid (`cases.texts`): a retried webhook gets the very answer given before and changes
nothing. The answer is TwiML `<Message>` (or none, below). A text is, in this order:
- a keyword (one word, any case or width; the lists are in config/ivr.toml): STOP and the
  others opt the number out of our texts (`outbox.text_caller` then sends it none), START
  opts it back in, HELP says what the number is and how to report, rate and stop. Twilio's
  STOP filtering answers its own English keywords (STOP ... QUIT, START, YES, UNSTOP) on our
  long codes, and would refuse our reply after STOP (error 21610): with
  `sms_twilio_answers_keywords` we answer those with empty TwiML and confirm only what Twilio
  does not know (退订, TD, 订阅), once. HELP always gets our own text: Twilio's default
  help names only its commands, not the hotline.
- a rating, 1 to 5 (full-width digits too, or "<case number> <score>"): rates the caller's
  most recently resolved case; two or less reopens it. The reply is the thank-you (or
  reopened) text itself, so the outbox copy of it is marked delivered rather than sent twice.
- a report: it opens a case (`intake.open_case_from_writing`) in the language of its script
  (Hangul: Korean, Han: Mandarin, else English) and the reply gives its number. The next text
  from the number within `sms_join_seconds`, while that case is unrouted, is added to it (a
  message typed in several parts); the routing job is queued to run that long after the
  latest part. A question the knowledge base answers with confidence (the call's threshold)
  is answered in the reply and its case closed as answered at once; an emergency's reply says
  whom to call, and the routing job puts the case before the desk. Past
  `sms_reports_per_hour` new cases in an hour a number is refused politely.
- anything else (too short to report anything): help; while the number has a resolved case
  waiting for its rating, help on rating, and so is a text with a bare number in it (a score
  out of range, "5 stars please").

Out: `caller_text_renderer` writes the texts `delivery` sends to callers, from the prompts, so
that delivery needs no prompt files.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from cases import free_text, knowledge_links, lifecycle, outbox, phones, queries, texts
from cases.access import SYSTEM
from cases.errors import InvalidInputError
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
from cases.models import InboundText as KeptText
from delivery.messages import CallerTextRenderer, DeliveryError
from hotline.wiring import close_request_session, current_wiring, db
from ivr.checks import Next, Suggester, decide, is_confident
from ivr.prompts import IVROptions, Prompts, keyword_form
from ivr.signatures import twilio_signed
from ivr.steps import SID_LENGTH, MissingParameterError
from routing import tasks as routing_tasks
from routing.emergency import assess_emergency

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
        # Kept as the text's key (`cases.texts`): no sid is longer than the voice side's
        # sids, nor has characters no sid has (the fuzzer's 400-digit MessageSid was a 500
        # on PostgreSQL, which enforces the column's length where SQLite does not).
        sid = values["MessageSid"]
        if len(sid) > SID_LENGTH or not sid.isascii() or not sid.isalnum():
            raise MissingParameterError("MessageSid")
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
    """The text to answer with: a prompt key, in a locale, with its values. No key: answer
    with empty TwiML (Twilio has answered the keyword itself)."""

    key: str | None
    locale: str | None
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def kept(cls, answer: texts.KeptAnswer) -> Reply:
        """The answer kept for a retry."""
        return cls(answer.key, answer.locale, answer.values)

    def to_kept(self) -> texts.KeptAnswer:
        """The answer as kept for a retry."""
        return texts.KeptAnswer(self.key, self.locale, dict(self.values))


# --- In: what a text is ---------------------------------------------------------------------

# Twilio's own STOP filtering answers these on long codes (see the module docstring).
TWILIO_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "START", "YES", "UNSTOP"}
)
# A report says what is wrong, and usually where: fewer units than this (Han and Hangul
# characters, or Latin words) is a greeting, a thank-you or a stray reply, not a report.
MIN_REPORT_UNITS = 3
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_UNITS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7a3]|[^\W\d_]{2,}")
# A bare number of one or two digits, standing alone ("5 stars"): a score, not an address
# such as 鼓楼大街5号 (the digit there is inside a word).
_BARE_SCORE = re.compile(r"(?<!\w)\d{1,2}(?!\w)")
_KEYWORD_TRIM = " \t\r\n.!。！,，"


def keyword_of(body: str, keywords: Mapping[str, frozenset[str]]) -> str | None:
    """ "stop", "start" or "help" when the whole text is one of that list's words."""
    word = keyword_form(body).strip(_KEYWORD_TRIM)
    for kind, words in keywords.items():
        if word in words:
            return kind
    return None


def script_locale(body: str) -> str | None:
    """The language a text's script shows: Korean for Hangul, Mandarin for Han; None for
    anything else (Latin letters, digits, nothing)."""
    if _HANGUL.search(body):
        return "ko-KR"
    if _HAN.search(body):
        return "zh-CN"
    return None


def report_locale(body: str, *, locales: tuple[str, ...]) -> str:
    """The language to open a written report in: its script's, else English, among the
    locales the hotline speaks (else its first)."""
    locale = script_locale(body) or "en-US"
    return locale if locale in locales else locales[0]


def reads_as_report(body: str) -> bool:
    """Whether the text says enough to be a report (`MIN_REPORT_UNITS`)."""
    return len(_UNITS.findall(body)) >= MIN_REPORT_UNITS


# A mistyped rating is short ("thank you 5 stars please"); a longer text with a bare number
# in it ("Street light out in front of 12 Oak Road") is a report.
MISTYPED_RATING_MAX_UNITS = 5


def looks_like_a_score(body: str) -> bool:
    """Whether the text is a short one holding a bare one- or two-digit number, as a mistyped
    rating is."""
    return (
        len(_UNITS.findall(body)) <= MISTYPED_RATING_MAX_UNITS
        and _BARE_SCORE.search(unicodedata.normalize("NFKC", body)) is not None
    )


@dataclass(frozen=True)
class TextRules:
    """What the webhook needs of the settings: the IVR options' text settings, and the
    locales the hotline speaks (the first is the default)."""

    options: IVROptions
    locales: tuple[str, ...]
    jobs_lost_after_seconds: float

    @property
    def window(self) -> texts.JoinWindow:
        """How long a report stays open to its next part."""
        return texts.JoinWindow(
            join_seconds=self.options.sms_join_seconds,
            lost_after_seconds=self.jobs_lost_after_seconds,
        )


@dataclass(frozen=True)
class Advice:
    """What the checks on a report's words found before it was taken: the number to call in
    an emergency, or the knowledge base's confident answer."""

    emergency_number: str | None = None
    article_id: str | None = None


@dataclass(frozen=True)
class Answer:
    """The reply, and the case whose routing to queue after commit (with its delay)."""

    reply: Reply
    route_case_id: int | None = None
    route_after_seconds: float = 0.0


# --- In: answering ----------------------------------------------------------------------------


def _reply_to_rating(case: Case, score: int) -> Reply:
    reopened = score <= lifecycle.REOPEN_AT_OR_BELOW
    return Reply(
        "sms_reopened" if reopened else "sms_rating_thanks",
        case.locale,
        {"number": case.number},
    )


def _earlier_answer(session: Session, *, text: InboundText) -> Reply | None:
    """The answer given to this MessageSid by a rating kept only in the case's events (a text
    rated before texts were kept under their SID), if Twilio is retrying it."""
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


def rate_from_text(
    session: Session,
    *,
    text: InboundText,
    rating: RatingText,
    deadline_for: Callable[[Category, str], datetime],
) -> Reply:
    """Rate the caller's case from their text, or say why not.

    `deadline_for(category, urgency)` gives a reopened case its fresh time limit, from now.
    """
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


def _keyword_locale(session: Session, *, text: InboundText, rules: TextRules) -> str:
    """The language to answer a keyword or a stray text in: its script's, else the caller's
    latest case's, else English for Latin letters, else the default."""
    locale = script_locale(text.body) or _caller_locale(session, from_number=text.from_number)
    if locale is None and re.search(r"[A-Za-z]", text.body):
        locale = "en-US"
    return locale if locale in rules.locales else rules.locales[0]


def answer_keyword(session: Session, *, text: InboundText, kind: str, rules: TextRules) -> Reply:
    """STOP, START or HELP: opt the number out or in, or say how the line works."""
    locale = _keyword_locale(session, text=text, rules=rules)
    word = keyword_form(text.body).strip(_KEYWORD_TRIM)
    twilio_answered = rules.options.sms_twilio_answers_keywords and word in TWILIO_KEYWORDS
    if kind == texts.STOP:
        new = texts.opt_out(session, number=text.from_number, now=utcnow())
        log.info("number opted out of texts", extra={"message_sid": text.message_sid})
        # Confirmed once: by Twilio, or by us the first time.
        return Reply("sms_opted_out" if new and not twilio_answered else None, locale)
    if kind == texts.START:
        texts.opt_in(session, number=text.from_number)
        log.info("number opted back in to texts", extra={"message_sid": text.message_sid})
        return Reply(None if twilio_answered else "sms_opted_in", locale)
    return Reply("sms_help", locale)


def answer_stray(session: Session, *, text: InboundText, rules: TextRules) -> Reply:
    """A text too short to report anything, or a mistyped rating: help on rating while a
    resolved case waits for the number's rating, else help on the line."""
    awaiting = queries.case_awaiting_rating(session, caller_number=text.from_number)
    # Not a report; kept in the log so that a person can still read what the caller wrote.
    log.info("text is not a report: %r", text.body[:200], extra={"message_sid": text.message_sid})
    if awaiting is not None:
        return Reply("sms_rating_help", _caller_locale(session, from_number=text.from_number))
    return Reply("sms_help", _keyword_locale(session, text=text, rules=rules))


def take_report(
    session: Session,
    *,
    text: InboundText,
    row: KeptText,
    rules: TextRules,
    advice: Advice,
) -> tuple[str, Answer, Case | None]:
    """Open a case from the report text, or add it to the case its previous part opened; a
    question the knowledge base answers closes its case at once. Returns the text's kind, the
    answer and the case."""
    locale = report_locale(text.body, locales=rules.locales)
    outcome = texts.take_report(
        session,
        row=row,
        locale=locale,
        window=rules.window,
        reports_per_hour=rules.options.sms_reports_per_hour,
        now=row.received_at,
    )
    case = outcome.case
    extra = {"message_sid": text.message_sid, "case_number": case.number if case else None}
    if case is None:
        log.warning("too many reports from one number this hour; refused", extra=extra)
        return outcome.kind, Answer(Reply("sms_too_many", locale)), None
    join_seconds = rules.options.sms_join_seconds
    if outcome.kind == texts.PART and not advice.emergency_number:
        log.info("text added to its sender's case", extra=extra)
        reply = Reply("sms_report_added", case.locale, {"number": case.number})
        return outcome.kind, Answer(reply, case.id, join_seconds), case
    log.info("case opened from a text" if outcome.kind != texts.PART else "text added", extra=extra)
    if advice.emergency_number:
        # An emergency in any part, the first or a later one: whom to call, and routed at
        # once (the routing job flags an emergency heard after the fact for the desk).
        values = {"number": case.number, "service": advice.emergency_number}
        answer = Answer(Reply("sms_report_emergency", locale, values), case.id, 0.0)
        return outcome.kind, answer, case
    if advice.article_id and _answered_at_once(session, case=case, article_id=advice.article_id):
        log.info("answered at once (article %s)", advice.article_id, extra=extra)
        values = {"number": case.number, "reply": case.resolution or ""}
        return outcome.kind, Answer(Reply("sms_report_answered", locale, values)), case
    reply = Reply("sms_report_received", locale, {"number": case.number})
    return outcome.kind, Answer(reply, case.id, join_seconds), case


def _answered_at_once(session: Session, *, case: Case, article_id: str) -> bool:
    """Close the case as answered at once by the article; False (the case goes on to routing)
    if the desk retired the article meanwhile."""
    try:
        knowledge_links.answer_at_once(session, case=case, article_id=article_id, actor=SYSTEM)
    except InvalidInputError:
        return False
    return True


def answer_text(
    session: Session,
    *,
    text: InboundText,
    rules: TextRules,
    deadline_for: Callable[[Category, str], datetime],
    advice: Advice | None = None,
) -> Answer:
    """Answer an incoming text (a keyword, a rating, a report, or help); a retried text gets
    the answer already given and changes nothing."""
    kept = texts.kept_answer(session, message_sid=text.message_sid)
    if kept is not None:
        return Answer(Reply.kept(kept))
    row = texts.claim(
        session,
        message_sid=text.message_sid,
        from_number=text.from_number,
        body=text.body,
        now=utcnow(),
    )
    answer, kind, case = _answer_new(
        session,
        text=text,
        row=row,
        rules=rules,
        deadline_for=deadline_for,
        advice=advice or Advice(),
    )
    texts.settle(row, kind=kind, answer=answer.reply.to_kept(), case=case)
    return answer


def _answer_new(
    session: Session,
    *,
    text: InboundText,
    row: KeptText,
    rules: TextRules,
    deadline_for: Callable[[Category, str], datetime],
    advice: Advice,
) -> tuple[Answer, str, Case | None]:
    keyword = keyword_of(text.body, rules.options.sms_keywords)
    if keyword is not None:
        return Answer(answer_keyword(session, text=text, kind=keyword, rules=rules)), keyword, None
    rating = parse_rating(text.body)
    if rating is not None:
        # A retry of a rating given before texts were kept under their SID.
        earlier = _earlier_answer(session, text=text)
        reply = earlier or rate_from_text(
            session, text=text, rating=rating, deadline_for=deadline_for
        )
        return Answer(reply), texts.RATING, None
    awaiting = queries.case_awaiting_rating(session, caller_number=text.from_number)
    if not reads_as_report(text.body) or (awaiting is not None and looks_like_a_score(text.body)):
        return Answer(answer_stray(session, text=text, rules=rules)), texts.OTHER, None
    kind, answer, case = take_report(session, text=text, row=row, rules=rules, advice=advice)
    return answer, kind, case


def render_reply(reply: Reply, *, prompts: Mapping[str, Prompts], default_locale: str) -> str:
    """The answer as TwiML `<Response><Message>…</Message></Response>`, or an empty
    `<Response/>` when there is nothing to say."""
    response = MessagingResponse()
    if reply.key is not None:
        chosen = prompts.get(reply.locale or "") or prompts[default_locale]
        response.message(_fit(chosen, reply.key, dict(reply.values)))
    return str(response)


# --- In: the webhook --------------------------------------------------------------------------

# Questions to the knowledge base run here, so a text waits for one only a bounded time.
_KNOWLEDGE_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sms-knowledge")


def check_report(text: InboundText, *, rules: TextRules) -> Advice:
    """Before a report is taken: an emergency in its words (whom to call), else the knowledge
    base's answer if it is confident, as the call checks a report. The knowledge base is a
    help: slow (past `knowledge_wait`) or failing, the report goes on as a case."""
    wiring = current_wiring()
    locale = report_locale(text.body, locales=rules.locales)
    verdict = assess_emergency(text.body, locale)
    suggestion = None
    if verdict.kind is None:
        knowledge: Suggester = wiring.knowledge
        database = wiring.database

        def ask() -> Any:
            with database.session() as session, session.begin():
                return knowledge.suggest(session, text.body, locale)

        try:
            suggestion = _KNOWLEDGE_POOL.submit(ask).result(timeout=rules.options.knowledge_wait)
        except FutureTimeout:
            log.warning("knowledge base not ready in time", extra={"message_sid": text.message_sid})
        except Exception:
            log.exception("the knowledge base failed", extra={"message_sid": text.message_sid})
    decision = decide(
        verdict, suggestion, confident=suggestion is not None and is_confident(suggestion)
    )
    if decision.next in (Next.EMERGENCY, Next.ASK_DANGER) and verdict.kind is not None:
        return Advice(emergency_number=rules.options.emergency_numbers[verdict.kind])
    if decision.next is Next.ANSWER and decision.suggestion is not None:
        return Advice(article_id=decision.suggestion.article.id)
    return Advice()


def _needs_checks(text: InboundText, rules: TextRules) -> bool:
    """Whether the text may be a new report (so its words are checked before it is taken)."""
    return (
        keyword_of(text.body, rules.options.sms_keywords) is None
        and parse_rating(text.body) is None
        and reads_as_report(text.body)
    )


def _route_later(case_id: int, seconds: float) -> None:
    """Queue the case's routing `seconds` from now; with the broker down the text is still
    answered, and the sweep re-queues the case (`requeue_unrouted_cases`)."""
    try:
        routing_tasks.route_case.apply_async(args=[case_id], countdown=seconds)
    except Exception:
        log.exception("could not enqueue routing of case %s; the sweep will retry", case_id)


def _failure_reply(text: InboundText) -> Reply:
    if parse_rating(text.body) is not None:
        return Reply("sms_rating_failed", None)
    return Reply("sms_report_failed", script_locale(text.body))


@bp.post("/sms")
@twilio_signed
def inbound_sms() -> Response:
    """An incoming text: a keyword, a rating, a report (or its next part), or help."""
    wiring = current_wiring()
    text = InboundText.from_form(request.form, region=wiring.settings.phone_default_region)
    rules = TextRules(
        options=wiring.call_flow.options,
        locales=tuple(wiring.prompts),
        jobs_lost_after_seconds=wiring.settings.jobs_lost_after_seconds,
    )

    def deadline_for(category: Category, urgency: str) -> datetime:
        """A fresh time limit from now, as a person routing the matter would set."""
        return wiring.router.deadline_for(category=category, urgency=urgency, start=utcnow())

    try:
        with db().begin():
            kept = texts.kept_answer(db(), message_sid=text.message_sid)
        if kept is not None:
            answer = Answer(Reply.kept(kept))
        else:
            advice = check_report(text, rules=rules) if _needs_checks(text, rules) else Advice()
            with db().begin():
                answer = answer_text(
                    db(), text=text, rules=rules, deadline_for=deadline_for, advice=advice
                )
    except IntegrityError:
        # A retry raced this request and kept the text first: give the answer it gave.
        close_request_session()
        with db().begin():
            kept = texts.kept_answer(db(), message_sid=text.message_sid)
        answer = Answer(Reply.kept(kept) if kept else _failure_reply(text))
    except Exception:
        # Twilio is waiting: answer, and keep the caller's text in the log for the desk.
        log.exception(
            "could not take a text: %r",
            text.body[:200],
            extra={"message_sid": text.message_sid},
        )
        answer = Answer(_failure_reply(text))
    if answer.route_case_id is not None:
        _route_later(answer.route_case_id, answer.route_after_seconds)
    body = render_reply(
        answer.reply, prompts=wiring.prompts, default_locale=wiring.settings.default_locale
    )
    return Response(body, mimetype="text/xml")


@bp.errorhandler(MissingParameterError)
def missing_parameter(error: MissingParameterError) -> tuple[str, int]:
    """A text without a parameter Twilio always sends is not from Twilio: say what's missing."""
    return f"Bad request: {error}\n", 400
