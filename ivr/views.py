"""The voice webhooks: parse the request, call one service, render TwiML."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from cases import intake, knowledge_links, merging, numbers, outbox, queries
from cases.access import SYSTEM
from cases.errors import InvalidInputError
from cases.intake import CallerInfo
from cases.models import Case, KnowledgeArticle, SmsStatus
from delivery import tasks as delivery_tasks
from hotline.wiring import close_request_session, current_wiring, db
from ivr import menus, tasks
from ivr.checks import CHECKS, Next, Suggester, SuggestionLike, decide, is_confident
from ivr.entry import answer_call
from ivr.menus import GreetingChoice
from ivr.signatures import twilio_signed
from ivr.speech import SpeechRule, recording_has_speech
from ivr.steps import (
    MissingParameterError,
    RecordedStep,
    RecordingStatusStep,
    caller_from_form,
    digits_from_form,
    int_arg,
    seconds_param,
)
from ivr.twiml import CallFlow, empty
from routing import tasks as routing_tasks
from routing.emergency import assess_emergency

log = logging.getLogger("hotline.ivr")
bp = Blueprint("ivr", __name__, url_prefix="/ivr")
# Media Streams sockets are served by their own process (`ivr.stream_server`), not here.


def call_flow() -> CallFlow:
    """The call flow's TwiML, as the shell wired it."""
    return current_wiring().call_flow


# What mimetype="text/xml" makes, spelt out: werkzeug no longer derives it for every answer.
TWIML_CONTENT_TYPE = "text/xml; charset=utf-8"


def twiml(response: VoiceResponse | str) -> Response:
    """A TwiML HTTP answer."""
    return Response(str(response), content_type=TWIML_CONTENT_TYPE)


def phone_region() -> str:
    """Where a phone number keyed without a country code is read (`PHONE_DEFAULT_REGION`)."""
    return current_wiring().settings.phone_default_region


def locale_arg() -> str:
    """The caller's locale, carried in our own URLs so that every step is stateless."""
    return menus.locale_or_default(request.args.get("lang"), enabled=call_flow().locales)


@bp.post("/voice")
@twilio_signed
def voice() -> Response:
    """The call's entry: record the call, greet, offer the languages (`ivr.entry.answer_call`;
    a plain signed request is answered by the same function in front of Flask)."""
    wiring = current_wiring()
    # A plain dict (first value of each name, as MultiDict.get): werkzeug's MultiDict raises
    # and catches an HTTP exception for every absent optional key.
    answer = answer_call(
        form=request.form.to_dict(), writer=wiring.database.group_commit, flow=wiring.call_flow
    )
    return twiml(answer)


@bp.post("/greeting/choice")
@twilio_signed
def greeting_choice() -> Response:
    """A key at the greeting: 1 (or none) records the report, 2 and 3 greet again in English
    or Korean, 9 asks for a case number, 0 asks for a person. A key that means nothing there
    says so and offers the keys again; after three, the caller is put in the queue for a
    person (`ivr.queue_views`)."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    choice = menus.choose_at_greeting(
        digits_from_form(request.form), locale=locale, enabled=flow.locales
    )
    if choice is None:
        misses = int_arg(request.args, "miss") + 1
        if misses >= flow.options.menu_max_misses:
            return twiml(flow.person(locale, reason="menu_misses"))
        return twiml(flow.greeting(locale, greet=False, misses=misses))
    if choice.action is GreetingChoice.LANGUAGE:
        with db().begin():
            intake.choose_locale(db(), caller=caller, locale=choice.locale)
        return twiml(flow.greeting(choice.locale, greet=True))
    if choice.action is GreetingChoice.STATUS:
        return twiml(flow.status_request(locale, misses=0))
    if choice.action is GreetingChoice.OPERATOR:
        return twiml(flow.person(locale, reason="asked"))
    return twiml(flow.record_report(locale, attempt=0, call_sid=caller.call_sid))


@bp.post("/report/start")
@twilio_signed
def report_start() -> Response:
    """No key at the greeting: record the report now (the greeting's own answer is the same
    for every call; this step gives the call its stream token)."""
    caller = caller_from_form(request.form)
    return twiml(call_flow().record_report(locale_arg(), attempt=0, call_sid=caller.call_sid))


@bp.post("/menu")
@twilio_signed
def main_menu() -> Response:
    """The greeting's keys again (after hearing a status); no key records a report."""
    return twiml(call_flow().greeting(locale_arg(), greet=False))


@bp.post("/callback-number")
@twilio_signed
def callback_number() -> Response:
    """A withheld caller's callback number (or none, if they skipped), keyed once their report
    was kept: the case takes it and texts its number; then the check or the read-back."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    number, sms_follows = case_from_url()
    with db().begin():
        intake.set_callback_number(
            db(), caller=caller, number=digits_from_form(request.form), region=phone_region()
        )
        reachable = intake.reach_case_at_callback_number(db(), call_sid=caller.call_sid)
        case_id = reachable.id if reachable is not None else None
    if case_id is not None:
        sms_follows = True
        tasks.enqueue(delivery_tasks.send_case_number_text, case_id)
    if number is None:
        return twiml(flow.apology_and_record(locale))
    return twiml(flow.after_report(locale, case_number=number, sms_follows=sms_follows))


def case_from_url() -> tuple[str | None, bool]:
    """The case number and SMS flag our own URL carries after a report (signed by Twilio
    with the rest of the URL, so it is this call's; a number not well formed is none)."""
    number = request.args.get("case", "")
    return (number if numbers.is_well_formed(number) else None), request.args.get("sms") == "1"


@bp.post("/report")
@twilio_signed
def report() -> Response:
    """The report prompt again, after a first recording in which nothing was heard."""
    attempt = int_arg(request.args, "attempt", limit=1)
    return twiml(call_flow().record_report(locale_arg(), attempt=attempt))


def _note_ending(caller: CallerInfo, ending: str) -> None:
    """Note how the call ended without a report, for the desk's list. Only a note: a database
    blip must not turn a goodbye into an apology (and a silent caller into a loop)."""
    try:
        with db().begin():
            intake.note_call_ending(db(), caller=caller, ending=ending)
    except SQLAlchemyError:
        close_request_session()
        log.warning(
            "could not note how the call ended (%s)",
            ending,
            exc_info=True,
            extra={"call_sid": caller.call_sid},
        )


def _speech_in(step: RecordedStep, *, streamed: bool) -> bool | None:
    """Whether the report holds speech: the live stream's word if it heard some, else the
    recording itself, fetched within a bounded wait. None: no verdict (the case is opened)."""
    assert step.report is not None
    wiring = current_wiring()
    settings, options = wiring.settings, wiring.call_flow.options
    # A stream hears speech within its first voiced words; its note may trail the Record
    # action by a moment, so a streamed call waits for it briefly before fetching.
    if _stream_heard_speech(step.caller.call_sid, wait=STREAM_VERDICT_WAIT if streamed else 0):
        return True
    if options.speech_check_wait <= 0:  # listening to recordings is turned off
        return None
    return recording_has_speech(
        step.report.url,
        auth=(settings.twilio_account_sid, settings.twilio_auth_token),
        max_bytes=settings.recording_max_bytes,
        rule=SpeechRule(options.speech_threshold_dbfs, options.speech_min_seconds),
        wait=options.speech_check_wait,
    )


# How long a streamed call waits for its stream's "speech heard" (seconds).
STREAM_VERDICT_WAIT = 1.0


def _stream_heard_speech(call_sid: str, *, wait: float) -> bool:
    deadline = time.monotonic() + wait
    try:
        while True:
            with db().begin():
                if intake.speech_heard(db(), call_sid=call_sid):
                    return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
    except SQLAlchemyError:
        close_request_session()  # the recording can still tell
        return False


def _nothing_said(step: RecordedStep, locale: str) -> Response:
    """A recording without speech: ask once more, then a polite goodbye; never a case."""
    flow = call_flow()
    if step.hung_up:
        _note_ending(step.caller, intake.ENDING_SILENCE)
        return twiml(empty())
    if step.to_operator:
        return twiml(flow.person(locale, reason="asked"))
    if int_arg(request.args, "attempt", limit=1) == 0:
        return twiml(flow.record_report(locale, attempt=1))
    _note_ending(step.caller, intake.ENDING_SILENCE)
    return twiml(flow.goodbye(locale, "report_nothing_heard"))


@bp.post("/recorded")
@twilio_signed
def recorded() -> Response:
    """The recording ended: open the case in this request and read its number back.

    A recording with no speech in it opens no case (`_nothing_said`). `0` instead of `#`
    keeps the report all the same and rings a person. A caller who hangs up instead of
    pressing # after speaking gets a case all the same, and the number by text when we know
    theirs: Twilio still posts this action, with `Digits=hangup`, and ignores what we answer.
    """
    flow, locale = call_flow(), locale_arg()
    step = RecordedStep.from_form(request.form)
    if step.report is None:
        if step.hung_up:
            _note_ending(step.caller, intake.ENDING_HANGUP_BEFORE_REPORT)
            return twiml(empty())
        if step.to_operator:
            return twiml(flow.person(locale, reason="asked"))
        # Nothing was heard: re-prompt once, then give up politely.
        attempt = int_arg(request.args, "attempt", limit=1)
        if attempt == 0:
            return twiml(flow.record_report(locale, attempt=1))
        _note_ending(step.caller, intake.ENDING_SILENCE)
        return twiml(flow.goodbye(locale, "report_nothing_heard"))
    live = bool(flow.live and locale in flow.live.locales)
    if _speech_in(step, streamed=live) is False:
        log.info("a recording with no speech: no case", extra={"call_sid": step.caller.call_sid})
        return _nothing_said(step, locale)

    for attempt in (1, 2):
        try:
            with db().begin():
                opened = intake.open_case_from_recording(
                    db(),
                    caller=step.caller,
                    locale=locale,
                    report=step.report,
                    region=phone_region(),
                )
                case_id, recording_id = opened.case.id, opened.recording.id
                case_number = opened.case.number
                sms_follows = opened.case.sms_status != SmsStatus.NONE
                transcript = opened.case.transcript
                transcribed = transcript is not None and transcript.complete
                ask_number = opened.case.call is not None and (
                    opened.case.call.caller_id_withheld and not opened.case.call.callback_number
                )
                if opened.created:
                    # The language the report was made in, chosen by key or by none.
                    intake.choose_locale(db(), caller=step.caller, locale=locale)
                if opened.created and not live and not transcribed:
                    # No model hears this language live: the batch transcript checks it later.
                    intake.note_check_skipped(
                        db(), case=opened.case, checks=CHECKS, reason="no live model for the locale"
                    )
            break
        except IntegrityError:
            # A concurrent request kept this call's case or recording first (a retry, or the
            # recording status callback on PostgreSQL): the second try finds it.
            close_request_session()
            if attempt == 2:
                raise
    # Jobs only after the commit, so a worker never looks for a case that isn't there yet.
    if opened.created:
        tasks.enqueue(tasks.fetch_recording, recording_id)
        if opened.recording_kept_before:
            # The status callback kept it first, and its fetch may have finished before the
            # case existed: transcribe it (a no-op until it is stored; the fetch does it then).
            tasks.enqueue(tasks.transcribe_recording, recording_id)
        if sms_follows:
            tasks.enqueue(delivery_tasks.send_case_number_text, case_id)
        if transcribed:  # the live stream finished before this request: route now
            tasks.enqueue(routing_tasks.route_case, case_id)
    log.info(
        "case opened" if opened.created else "case number repeated for a retried webhook",
        extra={"call_sid": step.caller.call_sid, "case_number": case_number},
    )
    if step.hung_up:
        log.info(
            "the caller hung up after speaking; case kept",
            extra={"call_sid": step.caller.call_sid, "case_number": case_number},
        )
        return twiml(empty())
    if step.to_operator:
        # 0 during the recording: the report is kept, and a person takes the call.
        return twiml(
            flow.person(
                locale,
                reason="report_then_person",
                case_number=case_number,
                sms_follows=sms_follows,
            )
        )
    if ask_number:
        return twiml(
            flow.callback_number_request(locale, case_number=case_number, sms_follows=sms_follows)
        )
    # Where the words were heard live, they are checked for an emergency before anything else.
    return twiml(flow.after_report(locale, case_number=case_number, sms_follows=sms_follows))


@bp.post("/report/nothing-heard")
@twilio_signed
def report_nothing_heard() -> Response:
    """Nothing heard at the report twice: a polite goodbye, noted for the desk's list."""
    _note_ending(caller_from_form(request.form), intake.ENDING_SILENCE)
    return twiml(call_flow().goodbye(locale_arg(), "report_nothing_heard"))


def _note_skipped(call_sid: str, number: str, reason: str) -> None:
    """Record on the case that the checks could not run in the call; only a note, so a
    database that fails here changes nothing the caller hears."""
    try:
        with db().begin():
            case = queries.get_case(db(), number=number)
            intake.note_check_skipped(db(), case=case, checks=CHECKS, reason=reason)
    except SQLAlchemyError:
        close_request_session()
        log.warning(
            "could not note the skipped check (%s)",
            reason,
            exc_info=True,
            extra={"call_sid": call_sid, "case_number": number},
        )
    log.warning(
        "report checks skipped: %s", reason, extra={"call_sid": call_sid, "case_number": number}
    )


@bp.post("/report/check")
@twilio_signed
def report_check() -> Response:
    """Read the live transcript as soon as the recording ends: an emergency is put through to
    119, 120 or 110 at once (the case is kept); a possible one is asked about; a question the
    knowledge base answers is answered; anything else hears its case number.

    A late transcript is waited for a bounded time, in rounds, the caller told that their
    report is being registered; past the last round the checks are skipped and the case says
    so. The number said is the one the database has for this call. If the database cannot be
    reached, it is the one in this URL (see `case_from_url`).
    """
    flow, locale = call_flow(), locale_arg()
    call_sid = caller_from_form(request.form).call_sid
    in_url, sms_follows = case_from_url()
    round_ = int_arg(request.args, "round", limit=flow.options.report_check_rounds)
    try:
        with db().begin():
            number = intake.case_number_of_call(db(), call_sid=call_sid)
        text, decoding = (
            _wait_for_live_transcript(call_sid, seconds=flow.options.emergency_check_wait)
            if number
            else (None, False)
        )
    except SQLAlchemyError:
        close_request_session()
        log.warning(
            "database unreachable at the report check; reading the number from our own URL",
            exc_info=True,
            extra={"call_sid": call_sid, "case_number": in_url},
        )
        number, text, decoding = in_url, None, False
        if number is not None:
            _note_skipped(call_sid, number, "database error")
        return _read_back(locale, number, sms_follows)
    if number is None:
        return _read_back(locale, None, sms_follows)
    if text is None:
        if decoding and round_ + 1 < flow.options.report_check_rounds:
            return twiml(
                flow.still_checking(
                    locale, case_number=number, sms_follows=sms_follows, round_=round_ + 1
                )
            )
        reason = "live transcript late" if decoding else "no live transcript"
        _note_skipped(call_sid, number, reason)
        return _read_back(locale, number, sms_follows)
    return _after_transcript(call_sid, locale, number, sms_follows, text)


def _read_back(locale: str, number: str | None, sms_follows: bool) -> Response:
    flow = call_flow()
    if number is None:
        # No case for this call: there is no number of theirs to say. Keep their words.
        log.error("no case for this call at the report check")
        return twiml(flow.apology_and_record(locale))
    return twiml(flow.case_opened(locale, case_number=number, sms_follows=sms_follows))


def _suggest(call_sid: str, number: str, text: str, locale: str) -> SuggestionLike | None:
    """The knowledge base's suggestion for the words, or None: also when it fails or takes
    longer than `knowledge_wait` (its first question after a change rebuilds its index, which
    is finished in the background for the next caller). The report then goes on as a case,
    and the case says the check was skipped."""
    wiring = current_wiring()
    knowledge: Suggester = wiring.knowledge
    database = wiring.database

    def ask() -> SuggestionLike | None:
        with database.session() as session, session.begin():
            return knowledge.suggest(session, text, locale)

    future = _KNOWLEDGE_POOL.submit(ask)
    try:
        return future.result(timeout=wiring.call_flow.options.knowledge_wait)
    except FutureTimeout:
        _note_skipped(call_sid, number, "knowledge base not ready in time")
    except Exception:  # the knowledge base is a help: a failure must not cost the case
        log.exception("the knowledge base failed", extra={"call_sid": call_sid})
        _note_skipped(call_sid, number, "knowledge base failed")
    return None


# Questions to the knowledge base run here, so a call waits for one only a bounded time.
_KNOWLEDGE_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="knowledge")


def _after_transcript(
    call_sid: str, locale: str, number: str, sms_follows: bool, text: str
) -> Response:
    flow = call_flow()
    verdict = assess_emergency(text, locale)
    suggestion = None if verdict.kind else _suggest(call_sid, number, text, locale)
    decision = decide(
        verdict, suggestion, confident=suggestion is not None and is_confident(suggestion)
    )
    if decision.next is Next.EMERGENCY:
        assert verdict.kind is not None
        return _transfer(call_sid, locale, number, sms_follows, verdict.kind, verdict.rule or "")
    if decision.next is Next.ASK_DANGER:
        assert verdict.kind is not None
        return twiml(
            flow.danger_question(
                locale, kind=verdict.kind, case_number=number, sms_follows=sms_follows
            )
        )
    if decision.next is Next.ANSWER and decision.suggestion is not None:
        article_id = decision.suggestion.article.id
        answer = _article_text(article_id, locale, "answer")
        if answer:
            return twiml(
                flow.answer_offered(
                    locale,
                    answer=answer,
                    case_number=number,
                    sms_follows=sms_follows,
                    article_id=article_id,
                )
            )
    if decision.suggestion is not None:
        _attach(call_sid, number, decision.suggestion.article.id, decision.suggestion.confidence)
    return twiml(flow.case_opened(locale, case_number=number, sms_follows=sms_follows))


def _article_text(article_id: str, locale: str, field: str) -> str:
    """A field of the article as the desk keeps it, in `locale` (else Mandarin); "" if none."""
    try:
        with db().begin():
            article = db().get(KnowledgeArticle, article_id)
            if article is None or article.retired:
                return ""
            texts = article.texts or {}
            return str((texts.get(locale) or texts.get("zh-CN") or {}).get(field, ""))
    except SQLAlchemyError:
        close_request_session()
        return ""


def _attach(call_sid: str, number: str, article_id: str, confidence: float | None) -> None:
    """Attach the suggested article to the case for the desk; only a help, never an error."""
    try:
        with db().begin():
            case = queries.get_case(db(), number=number)
            knowledge_links.attach_article(
                db(), case=case, article_id=article_id, confidence=confidence
            )
    except (SQLAlchemyError, InvalidInputError):
        close_request_session()
        log.warning(
            "could not attach the suggested article %s",
            article_id,
            exc_info=True,
            extra={"call_sid": call_sid, "case_number": number},
        )


def _transfer(
    call_sid: str, locale: str, number: str, sms_follows: bool, kind: str, rule: str
) -> Response:
    """Put the caller through to the emergency service; the case is kept and says so."""
    flow = call_flow()
    service_number = flow.options.emergency_numbers[kind]
    try:
        with db().begin():
            case = queries.get_case(db(), number=number)
            intake.record_emergency_transfer(db(), case=case, kind=kind, number=service_number)
    except SQLAlchemyError:  # put them through all the same; the transcript keeps the words
        close_request_session()
        log.exception("could not note the emergency transfer", extra={"call_sid": call_sid})
    log.warning(
        "emergency (%s, rule %s): transferring to %s",
        kind,
        rule,
        service_number,
        extra={"call_sid": call_sid, "case_number": number},
    )
    return twiml(
        flow.emergency_transfer(
            locale, number=service_number, case_number=number, sms_follows=sms_follows
        )
    )


@bp.post("/report/danger")
@twilio_signed
def report_danger() -> Response:
    """The caller's answer to "is someone in danger right now?": 1 puts them through to the
    service the words pointed at; 2 (it is not) or 0 goes to a person, who sorts out what the
    machine could not; no key carries on with the case number."""
    flow, locale = call_flow(), locale_arg()
    call_sid = caller_from_form(request.form).call_sid
    number, sms_follows = case_from_url()
    kind = request.args.get("kind", "")
    if number is None:
        return _read_back(locale, None, sms_follows)
    digits = digits_from_form(request.form)
    if digits == "1" and kind in flow.options.emergency_numbers:
        return _transfer(call_sid, locale, number, sms_follows, kind, "the caller said so")
    if digits in ("2", menus.OPERATOR_KEY):
        # The words sounded like danger and the caller says they are not: the machine cannot
        # tell, so a person sorts it out (the report is kept either way).
        return twiml(
            flow.person(locale, reason="not_emergency", case_number=number, sms_follows=sms_follows)
        )
    return twiml(flow.case_opened(locale, case_number=number, sms_follows=sms_follows))


@bp.post("/report/answered")
@twilio_signed
def report_answered() -> Response:
    """The caller's answer after hearing the knowledge base's answer: 1 closes the case as
    answered at once (当即解答) and texts the longer answer; 2 or no key keeps the case, with
    the article attached for the desk, and reads its number back."""
    flow, locale = call_flow(), locale_arg()
    call_sid = caller_from_form(request.form).call_sid
    number, sms_follows = case_from_url()
    article_id = request.args.get("article", "")[:80]
    if number is None:
        return _read_back(locale, None, sms_follows)
    if digits_from_form(request.form) == "1":
        try:
            with db().begin():
                case = queries.get_case(db(), number=number)
                knowledge_links.answer_at_once(db(), case=case, article_id=article_id, actor=SYSTEM)
                texted = outbox.text_caller(
                    db(),
                    case=case,
                    message="answer",
                    title=_article_field(case, article_id, "title"),
                    details=_article_field(case, article_id, "details"),
                )
            log.info(
                "answered in the call (article %s)",
                article_id,
                extra={"call_sid": call_sid, "case_number": number},
            )
            return twiml(flow.answered(locale, sms_follows=texted is not None))
        except (SQLAlchemyError, InvalidInputError):
            close_request_session()
            log.warning(
                "could not close the case as answered; it goes on",
                exc_info=True,
                extra={"call_sid": call_sid, "case_number": number},
            )
    _attach(call_sid, number, article_id, None)
    return twiml(flow.case_opened(locale, case_number=number, sms_follows=sms_follows))


def _article_field(case: Case, article_id: str, field: str) -> str:
    """A field of the case's article in the case's language (else Mandarin), in the
    transaction that closes it."""
    article = db().get(KnowledgeArticle, article_id)
    texts = (article.texts if article is not None else None) or {}
    return str((texts.get(case.locale) or texts.get("zh-CN") or {}).get(field, ""))


def _wait_for_live_transcript(call_sid: str, *, seconds: float) -> tuple[str | None, bool]:
    """The live transcript, if it comes within `seconds`; and whether the decode is still
    running (so another round may be worth it)."""
    # The stream's `stop` reaches the streams process about when this request does; its
    # transcript lands within a second or so. Only a call being decoded live is waited for: in
    # a burst, most calls are left to the batch job, and a web thread polling for each of them
    # kept the last callers of 100 waiting past Twilio's 15 s.
    deadline = time.monotonic() + seconds
    while True:
        with db().begin():
            transcript = intake.transcript_of_call(db(), call_sid=call_sid)
            if transcript is not None:
                return transcript.text, False
            if not intake.live_decoding(db(), call_sid=call_sid):
                return None, False
        if time.monotonic() >= deadline:
            return None, True
        time.sleep(0.05)


@bp.post("/recording-status")
@twilio_signed
def recording_status() -> Response:
    """Twilio's word that a recording is ready (or failed): fetch it, or flag its case."""
    step = RecordingStatusStep.from_form(request.form)
    with db().begin():
        recording_id = intake.note_recording_status(
            db(),
            caller=step.caller,
            recording_sid=step.recording_sid,
            status=step.status,
            url=step.url,
            duration=step.duration,
        )
    if recording_id is not None:
        tasks.enqueue(tasks.fetch_recording, recording_id)
    return twiml(empty())


@bp.post("/status/lookup")
@twilio_signed
def status_lookup() -> Response:
    """Read back the status of the case the caller keyed; an unknown number may be tried
    again once, then a person helps (0 asks for one at once)."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    number = digits_from_form(request.form)
    if number == menus.OPERATOR_KEY:
        return twiml(flow.person(locale, reason="status_lookup"))
    with db().begin():
        case = queries.find_case(db(), number=number) if number else None
        if case is not None:
            intake.mark_call_served(db(), caller=caller, how="status")
            # A report merged into another case (并单) stands where that case stands.
            followed = merging.followed_case(case)
            department = followed.department.name(locale) if followed.department else None
            return twiml(
                flow.status_report(
                    locale,
                    case_number=case.number,
                    status=followed.status,
                    department=department,
                    deadline=followed.deadline_at,
                )
            )
    misses = int_arg(request.args, "miss") + 1
    if misses >= 2:
        # Two numbers that match nothing: the machine cannot help; a person can.
        _note_ending(caller, intake.ENDING_STATUS_NOT_FOUND)
        return twiml(flow.person(locale, reason="status_lookup"))
    return twiml(flow.status_request(locale, misses=misses))


@bp.post("/call-status")
@twilio_signed
def call_status() -> Response:
    """The call's status callback (set on the Twilio number, README "Connect a real Twilio
    number"): remember how the call ended. A call that ended without a report is then on
    the desk's list (`cases.queries.unreported_calls`)."""
    caller = caller_from_form(request.form)
    with db().begin():
        intake.end_call(
            db(),
            caller=caller,
            status=request.form.get("CallStatus", "").strip()[:20],
            duration=seconds_param(request.form, "CallDuration"),
        )
    return twiml(empty())


@bp.post("/fallback")
@twilio_signed
def fallback() -> Response:
    """Twilio's fallback URL, used when a webhook failed: apologise and still record."""
    log.error(
        "Twilio used the fallback URL",
        extra={
            "call_sid": request.form.get("CallSid", ""),
            "error_code": request.form.get("ErrorCode", ""),
            "error_url": request.form.get("ErrorUrl", ""),
        },
    )
    return twiml(call_flow().apology_and_record(locale_arg()))


@bp.errorhandler(MissingParameterError)
def missing_parameter(error: MissingParameterError) -> tuple[str, int]:
    """A webhook without a parameter Twilio always sends is not from Twilio: say what's missing."""
    return f"Bad request: {error}\n", 400


@bp.errorhandler(Exception)
def unexpected_error(error: Exception) -> Any:
    """Never an error page to a caller: apologise, and keep the caller's words if we can."""
    if isinstance(error, HTTPException):
        return error
    close_request_session()
    form = request.form
    extra = {"call_sid": form.get("CallSid", ""), "path": request.path}
    flow = call_flow()
    if request.path.endswith("/recorded"):
        # Saving the report itself failed. Twilio still holds the audio: log where it is.
        log.exception(
            "could not save a report; handing it to a job",
            extra={**extra, "recording_url": form.get("RecordingUrl", "")},
        )
        # The database is out (a restart): a job opens the case once it is back, and the
        # caller is asked to record again, as at any failure; the same CallSid makes both one
        # case. Only if the broker is out too is the report left at Twilio.
        if tasks.hand_over_report(form.to_dict(), locale_arg()):
            return twiml(flow.apology_and_record(locale_arg()))
        return twiml(flow.goodbye(locale_arg(), "recording_not_saved"))
    log.exception("webhook failed; answering with an apology and a recording", extra=extra)
    return twiml(flow.apology_and_record(locale_arg()))
