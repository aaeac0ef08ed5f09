"""Signatures, bad requests and internal failures: 403 and nothing written, or an apology
that still records the caller."""

from __future__ import annotations

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator

from cases import intake
from cases.models import CaseStatus
from emulator import Speak, TwilioEmulator
from ivr import tasks
from ivr.prompts import Prompts
from ivr.signatures import check_twilio_signature
from ivr.twiml import CallFlow
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, wait_until
from tests.support.calls import SPEECH, Lookups

IVR_PATHS = [
    "/ivr/voice",
    "/ivr/greeting/choice?lang=zh-CN&miss=0",
    "/ivr/report/start?lang=zh-CN",
    "/ivr/recorded?lang=zh-CN&attempt=0",
    "/ivr/recording-status",
    "/ivr/status/lookup?lang=zh-CN&miss=0",
    "/ivr/callback-number?lang=zh-CN",
    "/ivr/person?lang=zh-CN&why=asked",
    "/ivr/person/offer?lang=zh-CN&why=asked",
    "/ivr/queue/wait?lang=zh-CN",
    "/ivr/queue/key?lang=zh-CN",
    "/ivr/queue/left?lang=zh-CN&why=asked",
    "/ivr/queue/connecting?lang=zh-CN",
    "/ivr/seat/answer?seat=1&offer=1",
    "/ivr/seat/done?seat=1&offer=1",
    "/ivr/seat/status?seat=1&offer=1",
    "/ivr/callbacks/connect?attempt=1",
    "/ivr/callbacks/dialled?attempt=1",
    "/ivr/callbacks/status?attempt=1",
    "/ivr/report/check?lang=zh-CN&case=123456789&sms=1&round=0",
    "/ivr/report/answered?lang=zh-CN&case=123456789&sms=1&article=x",
    "/ivr/report/danger?lang=zh-CN&case=123456789&sms=1&kind=fire",
    "/ivr/call-status",
    "/ivr/fallback",
]


def recorded_params(emulator: TwilioEmulator, call_sid: str) -> dict[str, str]:
    return {
        **emulator.base_params(call_sid),
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        "RecordingSid": "RE" + call_sid[2:],
        "RecordingDuration": "7",
        "Digits": "#",
        "RecordingStatus": "completed",
    }


def test_twilios_published_signature_vector_validates_against_the_rebuilt_url() -> None:
    app = Flask(__name__)
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    # The app sits behind a proxy on plain HTTP; Twilio signed the public HTTPS URL.
    with app.test_request_context(
        "/myapp.php?foo=1&bar=2",
        base_url="http://10.0.0.7:8000",
        method="POST",
        data=params,
        headers={"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
    ):
        assert check_twilio_signature(RequestValidator("12345"), "https://mycompany.com")
        assert not check_twilio_signature(RequestValidator("12345"), "https://evil.example")
        assert not check_twilio_signature(RequestValidator("54321"), "https://mycompany.com")


@pytest.mark.parametrize("path", IVR_PATHS)
@pytest.mark.parametrize("how", ["missing", "forged", "other-url"])
def test_unsigned_or_forged_requests_get_403_and_write_nothing(
    path: str, how: str, emulator: TwilioEmulator, lookups: Lookups
) -> None:
    call_sid = emulator.new_call_sid()
    params = recorded_params(emulator, call_sid)
    if how == "missing":
        step = emulator.post(path, params, sign=False)
    elif how == "forged":
        step = emulator.post(path, params, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    else:  # signed, but for the URL the app listens on rather than the public one
        signature = RequestValidator(AUTH_TOKEN).compute_signature(emulator.app_url + path, params)
        step = emulator.post(path, params, signature=signature)
    assert step.status_code == 403
    assert lookups.count_calls(call_sid) == 0
    assert lookups.recordings_of(call_sid) == []


def test_a_signature_for_other_parameters_is_rejected(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    call_sid = emulator.new_call_sid()
    params = recorded_params(emulator, call_sid)
    signed = emulator.post("/ivr/voice", params)
    assert signed.status_code == 200
    tampered = emulator.post(
        "/ivr/recorded?lang=zh-CN&attempt=0",
        {**params, "RecordingDuration": "99"},
        signature=signed.signature,
    )
    assert tampered.status_code == 403
    assert lookups.cases_of(call_sid) == []


@pytest.mark.parametrize("missing", ["CallSid", "AccountSid"])
def test_a_webhook_without_callsid_or_accountsid_is_a_clear_400_and_writes_nothing(
    missing: str, emulator: TwilioEmulator, lookups: Lookups
) -> None:
    call_sid = emulator.new_call_sid()
    params = recorded_params(emulator, call_sid)
    del params[missing]
    step = emulator.post("/ivr/recorded?lang=zh-CN&attempt=0", params)
    assert step.status_code == 400
    assert f"missing parameter {missing}" in step.body
    assert lookups.recordings_of(call_sid) == []


def test_recording_status_without_a_recording_sid_is_a_clear_400(emulator: TwilioEmulator) -> None:
    params = emulator.base_params(emulator.new_call_sid())
    step = emulator.post("/ivr/recording-status", {**params, "RecordingStatus": "completed"})
    assert step.status_code == 400 and "RecordingSid" in step.body


def test_an_internal_error_apologises_and_still_records_the_caller(
    emulator: TwilioEmulator,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: CallFlow, *args: object, **kwargs: object) -> None:
        raise RuntimeError("prompt store unavailable")

    monkeypatch.setattr(CallFlow, "greeting", broken)
    log = emulator.call(["3", Speak(SPEECH)])

    failed = log.steps[1]
    assert failed.status_code == 200
    assert failed.said[0].text == prompts["zh-CN"].text("error_apology")
    assert failed.twiml.find("Record") is not None
    case = lookups.case_of(log.call_sid)  # the caller's words were kept as a case
    assert case.status in (CaseStatus.OPEN, CaseStatus.TRIAGE, CaseStatus.ASSIGNED)


@pytest.mark.usefixtures("celery_worker")
def test_a_report_the_database_cannot_take_is_opened_by_a_job_once_it_can(
    emulator: TwilioEmulator,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is down")

    # Broken in the web process only: the worker, its own process, stands for the database
    # being back by the time the handed-over job runs.
    monkeypatch.setattr(intake, "open_case_from_recording", broken)
    log = emulator.call(["1", Speak(SPEECH)])

    apology = prompts["zh-CN"].text("error_apology")
    failed = next(step for step in log.steps if step.said and step.said[0].text == apology)
    assert failed.twiml.find("Record") is not None  # the caller is recorded again
    case = wait_until(
        lambda: lookups.cases_of(log.call_sid), timeout=60, what="the handed-over report's case"
    )
    assert len(case) == 1
    assert case[0].recordings[0].recording_sid == log.recordings[0]["RecordingSid"]


def test_a_report_neither_the_database_nor_the_broker_can_take_is_logged_with_its_url(
    emulator: TwilioEmulator,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(intake, "open_case_from_recording", broken)
    monkeypatch.setattr(tasks.open_case_later, "delay", broken)  # no broker to hand it to
    log = emulator.call(["1", Speak(SPEECH)])

    assert log.said[-1].text == prompts["zh-CN"].text("recording_not_saved")
    # Twilio still holds the audio; the log line says where, so it can be recovered.
    logged = [getattr(record, "recording_url", None) for record in caplog.records]
    assert log.recordings[0]["RecordingUrl"] in logged
    assert lookups.cases_of(log.call_sid) == []


def test_the_fallback_url_apologises_and_records(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    call_sid = emulator.new_call_sid()
    params = {
        **emulator.base_params(call_sid),
        "ErrorCode": "11200",
        "ErrorUrl": f"{PUBLIC_BASE_URL}/ivr/voice",
    }
    step = emulator.post("/ivr/fallback", params)
    assert step.status_code == 200
    assert step.said[0].text == prompts["zh-CN"].text("error_apology")
    record = step.twiml.find("Record")
    assert record is not None and "/ivr/recorded" in record.get("action", "")


def test_the_call_status_callback_records_how_the_call_ended(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call(["1", Speak(SPEECH)])
    params = {**emulator.base_params(log.call_sid), "CallStatus": "completed", "CallDuration": "42"}
    assert emulator.post("/ivr/call-status", params).status_code == 200
    call = lookups.call(log.call_sid)
    assert call is not None and call.status == "completed"


def test_the_call_status_callback_records_a_call_it_has_no_row_for(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    # The first webhook's row is written behind its answer: a worker killed in those 20 ms
    # loses it, and the call's end must still be on record.
    call_sid = emulator.new_call_sid()
    params = {**emulator.base_params(call_sid), "CallStatus": "completed", "CallDuration": "3"}
    assert emulator.post("/ivr/call-status", params).status_code == 200
    assert emulator.post("/ivr/call-status", params).status_code == 200  # Twilio retries
    call = lookups.call(call_sid)
    assert call is not None
    assert (call.status, call.from_number) == ("completed", params["From"])
    assert lookups.count_calls(call_sid) == 1


def test_tampered_locale_in_our_own_url_falls_back_to_the_default(
    emulator: TwilioEmulator, prompts: dict[str, Prompts]
) -> None:
    params = {**emulator.base_params(emulator.new_call_sid()), "Digits": "7"}
    step = emulator.post("/ivr/greeting/choice?lang=xx-XX&miss=abc", params)
    assert step.status_code == 200
    assert step.said[0].text == prompts["zh-CN"].text("menu_invalid")
