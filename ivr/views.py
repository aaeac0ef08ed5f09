"""The voice webhooks: parse the request, call one service, render TwiML."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, request
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from cases import intake, numbers, queries
from cases.intake import CallerInfo
from cases.models import SmsStatus
from delivery import tasks as delivery_tasks
from hotline.wiring import close_request_session, current_wiring, db
from ivr import menus, tasks
from ivr.entry import answer_call
from ivr.menus import MenuChoice
from ivr.signatures import twilio_signed
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
from routing.emergency import find_emergency

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


@bp.post("/language/choice")
@twilio_signed
def language_choice() -> Response:
    """The language menu's answer: no key is Mandarin; an invalid key repeats the menu."""
    flow = call_flow()
    caller = caller_from_form(request.form)
    misses = int_arg(request.args, "miss")
    locale = menus.choose_language(digits_from_form(request.form), enabled=flow.locales)
    if locale is None:
        if misses + 1 >= flow.options.menu_max_misses:
            return twiml(flow.after_menu_misses(flow.locales[0], call_sid=caller.call_sid))
        return twiml(flow.language_menu(misses=misses + 1))
    with db().begin():
        intake.choose_locale(db(), caller=caller, locale=locale)
    return twiml(flow.main_menu(locale, misses=0, greet=locale != flow.locales[0]))


@bp.post("/menu")
@twilio_signed
def main_menu() -> Response:
    """The main menu again (after hearing a status)."""
    return twiml(call_flow().main_menu(locale_arg(), misses=0))


@bp.post("/menu/choice")
@twilio_signed
def main_menu_choice() -> Response:
    """The main menu's answer; a missing or invalid key repeats it, and after three misses
    the caller is put through to a person (or recorded), never just hung up on."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    choice = menus.choose_from_main_menu(digits_from_form(request.form))
    if choice is None:
        misses = int_arg(request.args, "miss") + 1
        if misses >= flow.options.menu_max_misses:
            return twiml(flow.after_menu_misses(locale, call_sid=caller.call_sid))
        return twiml(flow.main_menu(locale, misses=misses))
    if choice is MenuChoice.STATUS:
        return twiml(flow.status_request(locale, misses=0))
    if choice is MenuChoice.OPERATOR:
        return twiml(flow.operator(locale))
    if caller.caller_id_withheld:
        return twiml(flow.callback_number_request(locale))
    return twiml(flow.record_report(locale, attempt=0, call_sid=caller.call_sid))


@bp.post("/callback-number")
@twilio_signed
def callback_number() -> Response:
    """A withheld caller's callback number (or none, if they skipped); then the report."""
    caller = caller_from_form(request.form)
    with db().begin():
        intake.set_callback_number(
            db(), caller=caller, number=digits_from_form(request.form), region=phone_region()
        )
    return twiml(call_flow().record_report(locale_arg(), attempt=0, call_sid=caller.call_sid))


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


@bp.post("/recorded")
@twilio_signed
def recorded() -> Response:
    """The recording ended: open the case in this request and read its number back.

    A caller who hangs up instead of pressing # after speaking gets a case all the same,
    and the number by text when we know theirs: Twilio still posts this action, with
    `Digits=hangup`, and ignores what we answer.
    """
    flow, locale = call_flow(), locale_arg()
    step = RecordedStep.from_form(request.form)
    if step.report is None:
        if step.hung_up:
            _note_ending(step.caller, intake.ENDING_HANGUP_BEFORE_REPORT)
            return twiml(empty())
        # Nothing was heard: re-prompt once, then give up politely.
        attempt = int_arg(request.args, "attempt", limit=1)
        if attempt == 0:
            return twiml(flow.record_report(locale, attempt=1))
        _note_ending(step.caller, intake.ENDING_SILENCE)
        return twiml(flow.goodbye(locale, "report_nothing_heard"))

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
    if flow.live and locale in flow.live.locales:
        # The words were heard live: check them for an emergency before anything else.
        return twiml(flow.report_ended(locale, case_number=case_number, sms_follows=sms_follows))
    return twiml(flow.case_opened(locale, case_number=case_number, sms_follows=sms_follows))


@bp.post("/report/nothing-heard")
@twilio_signed
def report_nothing_heard() -> Response:
    """Nothing heard at the report twice: a polite goodbye, noted for the desk's list."""
    _note_ending(caller_from_form(request.form), intake.ENDING_SILENCE)
    return twiml(call_flow().goodbye(locale_arg(), "report_nothing_heard"))


@bp.post("/report/check")
@twilio_signed
def report_check() -> Response:
    """Read the live transcript as soon as the recording ends: an emergency is put through to
    119, 120 or 110 at once (the case is kept); anything else hears its case number.

    The number said is the one the database has for this call. If the database cannot be
    reached, it is the one in this URL: the Record action committed the case before writing
    the URL into its answer, and Twilio's signature binds the URL to this call, so it is the
    caller's own (and a number that is not well formed is never said).
    """
    flow, locale = call_flow(), locale_arg()
    call_sid = caller_from_form(request.form).call_sid
    in_url, sms_follows = request.args.get("case", ""), request.args.get("sms") == "1"
    try:
        with db().begin():
            number = intake.case_number_of_call(db(), call_sid=call_sid)
        text = (
            _wait_for_live_transcript(call_sid, seconds=flow.options.emergency_check_wait)
            if number
            else None
        )
    except SQLAlchemyError:
        close_request_session()
        log.warning(
            "database unreachable at the report check; reading the number from our own URL",
            exc_info=True,
            extra={"call_sid": call_sid, "case_number": in_url},
        )
        number, text = (in_url if numbers.is_well_formed(in_url) else None), None
    if number is None:
        # No case for this call: there is no number of theirs to say. Keep their words.
        log.error("no case for this call at the report check", extra={"call_sid": call_sid})
        return twiml(flow.apology_and_record(locale))
    emergency = find_emergency(text) if text else None
    if emergency is None:
        return twiml(flow.case_opened(locale, case_number=number, sms_follows=sms_follows))
    service_number = flow.options.emergency_numbers[emergency.kind]
    try:
        with db().begin():
            case = queries.get_case(db(), number=number)
            intake.record_emergency_transfer(
                db(), case=case, kind=emergency.kind, number=service_number
            )
    except SQLAlchemyError:  # put them through all the same; the transcript keeps the words
        close_request_session()
        log.exception("could not note the emergency transfer", extra={"call_sid": call_sid})
    log.warning(
        "emergency (%s, rule %s): transferring to %s",
        emergency.kind,
        emergency.rule,
        service_number,
        extra={"call_sid": call_sid, "case_number": number},
    )
    return twiml(
        flow.emergency_transfer(
            locale, number=service_number, case_number=number, sms_follows=sms_follows
        )
    )


def _wait_for_live_transcript(call_sid: str, *, seconds: float) -> str | None:
    # The stream's `stop` reaches the streams process about when this request does; its
    # transcript lands within a second or so. Only a call being decoded live is waited for: in
    # a burst, most calls are left to the batch job, and a web thread polling for each of them
    # kept the last callers of 100 waiting past Twilio's 15 s.
    deadline = time.monotonic() + seconds
    while True:
        with db().begin():
            transcript = intake.transcript_of_call(db(), call_sid=call_sid)
            if transcript is not None:
                return transcript.text
            if not intake.live_decoding(db(), call_sid=call_sid):
                return None
        if time.monotonic() >= deadline:
            return None
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
    """Read back the status of the case the caller keyed; an unknown number may be tried again."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    number = digits_from_form(request.form)
    with db().begin():
        case = queries.find_case(db(), number=number) if number else None
        if case is not None:
            intake.mark_call_served(db(), caller=caller, how="status")
            department = case.department.name(locale) if case.department else None
            return twiml(
                flow.status_report(
                    locale,
                    case_number=case.number,
                    status=case.status,
                    department=department,
                    deadline=case.deadline_at,
                )
            )
    misses = int_arg(request.args, "miss") + 1
    if misses >= 2:
        _note_ending(caller, intake.ENDING_STATUS_NOT_FOUND)
        return twiml(flow.goodbye(locale, "status_unknown_goodbye"))
    return twiml(flow.status_request(locale, misses=misses))


@bp.post("/operator/done")
@twilio_signed
def operator_done() -> Response:
    """After ringing the operators: if nobody answered, offer a recording instead."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    if request.form.get("DialCallStatus") == "completed":
        with db().begin():
            intake.mark_call_served(db(), caller=caller, how="operator")
        response = VoiceResponse()
        response.hangup()
        return twiml(response)
    call_sid = caller.call_sid
    return twiml(
        flow.record_report(locale, attempt=0, call_sid=call_sid, prompt_key="operator_unavailable")
    )


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
