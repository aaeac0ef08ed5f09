"""The emergency step: where Twilio's call update brings a caller whose report was cut short
because an emergency was heard while they spoke (`ivr.interrupt`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, request
from sqlalchemy.exc import IntegrityError
from twilio.twiml.voice_response import Stop, VoiceResponse

from cases import intake
from cases.intake import CallerInfo
from cases.models import SmsStatus
from delivery import tasks as delivery_tasks
from hotline.wiring import close_request_session, current_wiring, db
from ivr import menus, tasks
from ivr.interrupt import EMERGENCY_STEP_PATH
from ivr.signatures import twilio_signed
from ivr.steps import caller_from_form
from ivr.twiml import STREAM_NAME
from ivr.views import TWIML_CONTENT_TYPE

log = logging.getLogger("hotline.ivr")
# Nested in `ivr.views.bp` (by the factory), whose /ivr prefix and error handlers it shares.
bp = Blueprint("interrupt", __name__)


@bp.post(EMERGENCY_STEP_PATH.removeprefix("/ivr"))
@twilio_signed
def emergency_heard() -> Response:
    """Open (or find) the call's case, note the transfer once, and put the caller through to
    119, 120 or 110; the case number is read and texted as after any report."""
    flow = current_wiring().call_flow
    locale = menus.locale_or_default(request.args.get("lang"), enabled=flow.locales)
    kind = request.args.get("kind", "")
    service_number = flow.options.emergency_numbers.get(kind)
    if service_number is None:
        # Only our own streams process makes this URL, signed by Twilio as it was given.
        return Response(f"Bad request: unknown emergency kind {kind!r}\n", status=400)
    caller = caller_from_form(request.form)
    extra = {"call_sid": caller.call_sid, "kind": kind}
    # The stream has done its work: stopping it makes its transcript final now, and keeps the
    # call with the emergency service out of the report.
    response = VoiceResponse()
    stop = Stop()
    stop.stream(name=STREAM_NAME)
    response.append(stop)
    try:
        opened = _open_case(caller, locale=locale, kind=kind, number=service_number)
    except Exception:  # whatever broke, an emergency is put through
        # The recording and the transcript stay with the call, and the desk's list of calls
        # without a report shows it.
        close_request_session()
        log.exception("could not keep the case of an emergency heard live", extra=extra)
        prompts = flow.prompts[locale]
        text = prompts.text("emergency_transfer", number=service_number)
        response.say(text, language=prompts.language, voice=prompts.voice)
        response.dial(service_number, timeout=30)
        return _twiml(response)
    if opened.created:
        for recording_id in opened.recordings_kept_before:
            # Its fetch may have finished before the case existed: transcribe it too (a
            # no-op until it is stored, and when the live transcript is complete).
            tasks.enqueue(tasks.fetch_recording, recording_id)
            tasks.enqueue(tasks.transcribe_recording, recording_id)
        if opened.sms_follows:
            tasks.enqueue(delivery_tasks.send_case_number_text, opened.case_id)
    log.warning(
        "emergency heard while the caller spoke: transferring to %s",
        service_number,
        extra={**extra, "case_number": opened.case_number},
    )
    transfer = flow.emergency_transfer(
        locale,
        number=service_number,
        case_number=opened.case_number,
        sms_follows=opened.sms_follows,
    )
    for verb in transfer.verbs:
        response.append(verb)
    return _twiml(response)


@dataclass(frozen=True)
class _Opened:
    case_id: int
    case_number: str
    sms_follows: bool
    created: bool
    recordings_kept_before: list[int]


def _open_case(caller: CallerInfo, *, locale: str, kind: str, number: str) -> _Opened:
    region = current_wiring().settings.phone_default_region
    for attempt in (1, 2):
        try:
            with db().begin():
                opened = intake.open_case_for_emergency(
                    db(), caller=caller, locale=locale, region=region, kind=kind, number=number
                )
                case = opened.case
                kept = [recording.id for recording in case.recordings]
                return _Opened(
                    case_id=case.id,
                    case_number=case.number,
                    sms_follows=case.sms_status != SmsStatus.NONE,
                    created=opened.created,
                    recordings_kept_before=kept if opened.recording_kept_before else [],
                )
        except IntegrityError:
            # A retry of this webhook opened the case first: the second try finds it.
            close_request_session()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), content_type=TWIML_CONTENT_TYPE)
