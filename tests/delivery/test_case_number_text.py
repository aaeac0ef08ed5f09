"""The text that gives the caller their case number: sent through Twilio's REST API (Prism
behind a proxy that can fail), once, retried when Twilio is unavailable, never in the call's
way."""

from __future__ import annotations

import re

import pytest

from cases.models import SmsStatus
from delivery import tasks
from emulator import Speak, TwilioEmulator
from ivr.prompts import Prompts
from tests.conftest import wait_until
from tests.support.calls import SPEECH, Lookups
from tests.support.flaky_proxy import FlakyProxy

pytestmark = pytest.mark.usefixtures("celery_worker")


def test_the_case_number_is_texted_through_twilios_api(
    emulator: TwilioEmulator, lookups: Lookups, twilio_api: FlakyProxy
) -> None:
    emulator.from_number = "+8613911110001"
    log = emulator.call(["2", "1", Speak(SPEECH)])
    number = lookups.case_of(log.call_sid).number

    case = wait_until(
        lambda: (c := lookups.case_of(log.call_sid)).sms_status != SmsStatus.PENDING and c,
        timeout=60,
        what="the SMS job",
    )
    assert case.sms_status == SmsStatus.SENT
    assert re.fullmatch(r"SM[0-9a-fA-F]{32}", case.sms_message_sid or "")
    (message,) = twilio_api.messages_to("+8613911110001")
    assert message["status"] == 201  # Prism validated the request against Twilio's spec
    assert number in message["form"]["Body"] and message["form"]["From"] == "+15005550006"
    assert "your report is registered as case" in message["form"]["Body"]  # the caller's language

    # Running the job again sends nothing more.
    assert tasks.send_case_number_text.apply(args=[case.id]).get() == SmsStatus.SENT
    assert len(twilio_api.messages_to("+8613911110001")) == 1


def test_a_failed_sms_is_retried_and_the_call_is_unaffected(
    emulator: TwilioEmulator, lookups: Lookups, twilio_api: FlakyProxy, prompts: dict[str, Prompts]
) -> None:
    emulator.from_number = "+8613911110002"
    twilio_api.fail_next(2, to="+8613911110002")
    log = emulator.call(["1", Speak(SPEECH)])

    assert log.said[-1].text == prompts["zh-CN"].text("sms_will_follow")  # the call went on
    case = wait_until(
        lambda: (c := lookups.case_of(log.call_sid)).sms_status == SmsStatus.SENT and c,
        timeout=60,
        what="the SMS to be retried and sent",
    )
    assert twilio_api.failures_for("+8613911110002") == 2
    assert len(twilio_api.messages_to("+8613911110002")) == 1
    assert case.sms_message_sid
