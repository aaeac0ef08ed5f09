"""What the fuzzers found, each kept as its minimal reproducer (see tests/fuzz/test_fuzz.py)."""

from __future__ import annotations

import pytest
from flask import Flask

from emulator import TwilioEmulator
from tests.fuzz.ivr_webhooks import ivr_paths
from tests.support.calls import Lookups


@pytest.mark.parametrize("signed", [False, True])
def test_a_stranger_probing_a_webhook_with_options_is_refused_like_any_other_request(
    app: Flask, signed: bool
) -> None:
    # Found by the IVR fuzzer: Flask answered OPTIONS itself (200, listing the methods) before
    # the signature check ran, on every webhook. Twilio never sends OPTIONS.
    client = app.test_client()
    form = {"CallSid": "CA" + "0" * 32, "AccountSid": "AC" + "1" * 32}
    headers = {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="} if signed else {}
    for path in ivr_paths(app):
        answer = client.options(path, data=form, headers=headers)
        assert answer.status_code in (403, 405), (path, answer.status_code)


@pytest.mark.parametrize(
    "number",
    ["+86" + "1" * 40, "+86139\x0012345678"],
    ids=["longer than any number", "with a NUL"],
)
def test_a_call_whose_network_sends_a_garbled_number_is_still_answered_and_recorded(
    emulator: TwilioEmulator, lookups: Lookups, number: str
) -> None:
    # Found by the IVR fuzzer on PostgreSQL: a From (or To) longer than its column, or with a
    # NUL, failed the call's row behind the greeting (the call was lost) and made the status
    # callback answer the apology. The caller's network sent it; the caller is still a caller.
    call_sid = emulator.new_call_sid()
    base = {**emulator.base_params(call_sid), "From": number, "To": number}
    greeting = emulator.post("/ivr/voice", {**base, "CallStatus": "ringing"})
    assert greeting.status_code == 200 and "Gather" in greeting.verbs
    ended = emulator.post("/ivr/call-status", {**base, "CallStatus": "completed"})
    assert ended.status_code == 200 and "Say" not in ended.verbs
    call = lookups.call(call_sid)
    assert call is not None, "the call was recorded"
    assert 0 < len(call.from_number) <= 40 and "\x00" not in call.from_number


def test_a_status_callback_with_a_status_twilio_never_sends_changes_nothing(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    # Found by the IVR fuzzer on PostgreSQL: CallStatus="\x00" was written to the call's row
    # (PostgreSQL refuses NUL), and the callback answered the apology.
    call_sid = emulator.new_call_sid()
    base = emulator.base_params(call_sid)
    assert emulator.post("/ivr/voice", {**base, "CallStatus": "ringing"}).status_code == 200
    for odd in ("\x00", "x" * 30, "ended"):
        answer = emulator.post("/ivr/call-status", {**base, "CallStatus": odd})
        assert answer.status_code == 200 and "Say" not in answer.verbs
    call = lookups.call(call_sid)
    assert call is not None and call.status == "in-progress" and call.ended_at is None
