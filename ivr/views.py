"""The voice webhooks: parse the request, call one service, render TwiML."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, request
from flask_sock import Sock
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException

from cases import intake, queries
from cases.errors import UnknownCaseError
from cases.models import SmsStatus
from delivery import tasks as delivery_tasks
from hotline.wiring import close_request_session, current_wiring, db
from ivr import menus, streams, tasks
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
)
from ivr.twiml import CallFlow, empty
from routing import tasks as routing_tasks
from routing.emergency import find_emergency

log = logging.getLogger("hotline.ivr")
bp = Blueprint("ivr", __name__, url_prefix="/ivr")
sock = Sock()

# The Media Streams socket: flask-sock hands each connection a gunicorn thread.
sock.route(streams.STREAM_PATH.removeprefix("/ivr"), bp=bp, endpoint="media_stream")(
    streams.handle_media_stream
)


@bp.before_request
def signed_stream_upgrade() -> None:
    """The upgrade is signed like any webhook: refuse it before the handshake if not."""
    if request.endpoint == "ivr.media_stream":
        streams.check_stream_signature()


def call_flow() -> CallFlow:
    """The call flow's TwiML, as the shell wired it."""
    return current_wiring().call_flow


# What mimetype="text/xml" makes, spelt out: werkzeug no longer derives it for every answer.
TWIML_CONTENT_TYPE = "text/xml; charset=utf-8"


def twiml(response: VoiceResponse | str) -> Response:
    """A TwiML HTTP answer."""
    return Response(str(response), content_type=TWIML_CONTENT_TYPE)


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
            return twiml(flow.goodbye(flow.locales[0], "menu_goodbye"))
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
    """The main menu's answer; a missing or invalid key repeats it, three misses end the call."""
    flow, locale = call_flow(), locale_arg()
    caller = caller_from_form(request.form)
    choice = menus.choose_from_main_menu(digits_from_form(request.form))
    if choice is None:
        misses = int_arg(request.args, "miss") + 1
        if misses >= flow.options.menu_max_misses:
            return twiml(flow.goodbye(locale, "menu_goodbye"))
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
        intake.set_callback_number(db(), caller=caller, number=digits_from_form(request.form))
    return twiml(call_flow().record_report(locale_arg(), attempt=0, call_sid=caller.call_sid))


@bp.post("/report")
@twilio_signed
def report() -> Response:
    """The report prompt again, after a first recording in which nothing was heard."""
    attempt = int_arg(request.args, "attempt", limit=1)
    return twiml(call_flow().record_report(locale_arg(), attempt=attempt))


@bp.post("/recorded")
@twilio_signed
def recorded() -> Response:
    """The recording ended: open the case in this request and read its number back."""
    flow, locale = call_flow(), locale_arg()
    step = RecordedStep.from_form(request.form)
    if step.report is None:
        if step.hung_up:
            return twiml(empty())
        # Nothing was heard: re-prompt once, then give up politely.
        attempt = int_arg(request.args, "attempt", limit=1)
        if attempt == 0:
            return twiml(flow.record_report(locale, attempt=1))
        return twiml(flow.goodbye(locale, "report_nothing_heard"))

    if step.hung_up:
        # The caller hung up instead of pressing #: they never heard a case number, so no case
        # is opened, but the audio is kept with the call for the dispatch desk.
        with db().begin():
            recording = intake.keep_abandoned_recording(
                db(), caller=step.caller, report=step.report
            )
            recording_id = recording.id
        tasks.enqueue(tasks.fetch_recording, recording_id)
        log.info("report abandoned by hang-up", extra={"call_sid": step.caller.call_sid})
        return twiml(empty())

    with db().begin():
        opened = intake.open_case_from_recording(
            db(), caller=step.caller, locale=locale, report=step.report
        )
        case_id, recording_id = opened.case.id, opened.recording.id
        case_number = opened.case.number
        sms_follows = opened.case.sms_status != SmsStatus.NONE
        transcribed = opened.case.transcript is not None and opened.case.transcript.complete
    # Jobs only after the commit, so a worker never looks for a case that isn't there yet.
    if opened.created:
        tasks.enqueue(tasks.fetch_recording, recording_id)
        if sms_follows:
            tasks.enqueue(delivery_tasks.send_case_number_text, case_id)
        if transcribed:  # the live stream finished before this request: route now
            tasks.enqueue(routing_tasks.route_case, case_id)
    log.info(
        "case opened" if opened.created else "case number repeated for a retried webhook",
        extra={"call_sid": step.caller.call_sid, "case_number": case_number},
    )
    if flow.live and locale in flow.live.locales:
        # The words were heard live: check them for an emergency before anything else.
        return twiml(flow.report_ended(locale, case_number=case_number, sms_follows=sms_follows))
    return twiml(flow.case_opened(locale, case_number=case_number, sms_follows=sms_follows))


@bp.post("/report/check")
@twilio_signed
def report_check() -> Response:
    """Read the live transcript as soon as the recording ends: an emergency is put through to
    119, 120 or 110 at once (the case is kept); anything else hears its case number."""
    flow, locale = call_flow(), locale_arg()
    call_sid = caller_from_form(request.form).call_sid
    number, sms_follows = request.args.get("case", ""), request.args.get("sms") == "1"
    text = _wait_for_live_transcript(call_sid, seconds=flow.options.emergency_check_wait)
    emergency = find_emergency(text) if text else None
    if emergency is None:
        return twiml(flow.case_opened(locale, case_number=number, sms_follows=sms_follows))
    service_number = flow.options.emergency_numbers[emergency.kind]
    with db().begin():
        case = queries.get_case(db(), number=number)
        if case.call is None or case.call.call_sid != call_sid:
            raise UnknownCaseError(number)  # a case number from another call: not ours to act on
        intake.record_emergency_transfer(
            db(), case=case, kind=emergency.kind, number=service_number
        )
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
    # The stream's `stop` reaches the socket (maybe in another worker process) about when this
    # request does; its transcript lands within a second or so.
    deadline = time.monotonic() + seconds
    while True:
        with db().begin():
            transcript = intake.transcript_of_call(db(), call_sid=call_sid)
            if transcript is not None:
                return transcript.text
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
            db(), recording_sid=step.recording_sid, status=step.status
        )
    if recording_id is not None:
        tasks.enqueue(tasks.fetch_recording, recording_id)
    return twiml(empty())


@bp.post("/status/lookup")
@twilio_signed
def status_lookup() -> Response:
    """Read back the status of the case the caller keyed; an unknown number may be tried again."""
    flow, locale = call_flow(), locale_arg()
    number = digits_from_form(request.form)
    with db().begin():
        case = queries.find_case(db(), number=number) if number else None
        if case is not None:
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
        return twiml(flow.goodbye(locale, "status_unknown_goodbye"))
    return twiml(flow.status_request(locale, misses=misses))


@bp.post("/operator/done")
@twilio_signed
def operator_done() -> Response:
    """After ringing the operators: if nobody answered, offer a recording instead."""
    flow, locale = call_flow(), locale_arg()
    if request.form.get("DialCallStatus") == "completed":
        response = VoiceResponse()
        response.hangup()
        return twiml(response)
    call_sid = caller_from_form(request.form).call_sid
    return twiml(
        flow.record_report(locale, attempt=0, call_sid=call_sid, prompt_key="operator_unavailable")
    )


@bp.post("/call-status")
@twilio_signed
def call_status() -> Response:
    """The call's status callback: remember how the call ended."""
    caller = caller_from_form(request.form)
    with db().begin():
        intake.end_call(db(), caller=caller, status=request.form.get("CallStatus", ""))
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
            "could not save a report; recording left at Twilio",
            extra={**extra, "recording_url": form.get("RecordingUrl", "")},
        )
        return twiml(flow.goodbye(locale_arg(), "recording_not_saved"))
    log.exception("webhook failed; answering with an apology and a recording", extra=extra)
    return twiml(flow.apology_and_record(locale_arg()))
