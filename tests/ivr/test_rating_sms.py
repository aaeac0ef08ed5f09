"""The caller rates a resolved case by text: Twilio's signed Messaging webhook, over real HTTP."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from cases import lifecycle, staff
from cases.models import (
    Case,
    CaseStatus,
    Channel,
    DeliveryStatus,
    Department,
    Light,
    utcnow,
)
from emulator import Step, TwilioEmulator
from hotline.db import Database
from ivr.prompts import Prompts
from ivr.sms import RatingText, parse_rating
from tests.conftest import ACCOUNT_SID
from tests.support.factories import make_case
from tests.support.receivers import make_department, new_caller_number

SMS_PATH = "/ivr/sms"


def resolved_case(
    database: Database,
    *,
    caller: str,
    locale: str = "zh-CN",
    category_code: str = "streetlight",
) -> Case:
    """A case accepted and resolved by a department of its own, waiting for the rating."""
    with database.session() as session, session.begin():
        code = make_department(session, email=f"duty-{uuid.uuid4().hex[:8]}@example.test")
        case = make_case(
            session,
            department_code=code,
            category_code=category_code,
            caller_number=caller,
            locale=locale,
            # An old deadline, long past: a reopened case must get a fresh one.
            opened_at=utcnow() - timedelta(days=3),
            deadline_at=utcnow() - timedelta(days=2),
        )
        actor = staff.department_actor(session.get_one(Department, code))
        lifecycle.accept(session, case=case, actor=actor)
        lifecycle.resolve(session, case=case, actor=actor, reply="路灯已修复。")
    return case


def reload(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.deliveries
        return case


def text_in(emulator: TwilioEmulator, *, caller: str, body: str, **options: Any) -> Step:
    """Post an incoming text as Twilio's Messaging webhook does (signed, unless told not to)."""
    message_sid = "SM" + uuid.uuid4().hex
    params = {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "SmsMessageSid": message_sid,
        "AccountSid": ACCOUNT_SID,
        "From": caller,
        "To": "+865374412345",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    return emulator.post(SMS_PATH, params, **options)


def reply_of(step: Step) -> str:
    """The text of the TwiML <Message> the webhook answered with."""
    assert step.status_code == 200, step.body
    root = ET.fromstring(step.body)
    assert root.tag == "Response"
    (message,) = root.findall("Message")
    return message.text or ""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("5", RatingText(5)),
        (" 1 ", RatingText(1)),
        ("３", RatingText(3)),  # full-width, as Chinese keyboards send it
        ("4分", RatingText(4)),
        ("123456789 2", RatingText(2, "123456789")),
        ("１２３４５６７８９，５", RatingText(5, "123456789")),
        ("0", None),
        ("6", None),
        ("10", None),
        ("", None),
        ("very good", None),
        ("1234567895", None),  # a case number and a score need something between them
    ],
)
def test_what_reads_as_a_rating(body: str, expected: RatingText | None) -> None:
    assert parse_rating(body) == expected


def test_a_high_rating_closes_the_case_and_thanks_the_caller(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    caller = new_caller_number()
    number = resolved_case(database, caller=caller, locale="en-US").number

    step = text_in(emulator, caller=caller, body="5")

    assert reply_of(step) == prompts["en-US"].text("sms_rating_thanks", number=number)
    case = reload(database, number)
    assert (case.status, case.rating) == (CaseStatus.CLOSED, 5)
    assert case.closed_at is not None
    rated = [e for e in case.events if e.kind == "rated"]
    assert [(e.data["score"], e.data["message_sid"]) for e in rated] == [
        (5, step.params["MessageSid"])
    ]
    # The TwiML reply is the thank-you text: its outbox row is settled, not sent again.
    (thanks,) = [d for d in case.deliveries if d.topic.startswith("rating_thanks")]
    assert thanks.status == DeliveryStatus.DELIVERED
    assert thanks.receipt == f"TwiML reply to {step.params['MessageSid']}"


def test_a_low_rating_reopens_the_case_to_its_responsible_department(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    caller = new_caller_number()
    resolved = resolved_case(database, caller=caller)
    before = utcnow()

    step = text_in(emulator, caller=caller, body="２")  # full-width two

    assert reply_of(step) == prompts["zh-CN"].text("sms_reopened", number=resolved.number)
    case = reload(database, resolved.number)
    assert case.status == CaseStatus.ASSIGNED
    assert case.department_code == resolved.responsible_department_code
    assert (case.rating, case.reopen_count, case.resolved_at) == (2, 1, None)
    # A fresh time limit for the street light (24 h) from now, and the light back to green.
    assert case.deadline_at is not None and case.deadline_at >= before + timedelta(hours=23)
    assert case.light == Light.GREEN
    (reopened,) = [e for e in case.events if e.kind == "reopened"]
    assert reopened.data["score"] == 2 and reopened.data["previous_reply"] == "路灯已修复。"
    # The department is told again, on its channel.
    pushes = [d for d in case.deliveries if d.recipient == case.department_code]
    assert [d.topic for d in pushes if d.topic.startswith("reopened")] == ["reopened"]
    (text,) = [
        d for d in case.deliveries if d.channel == Channel.CALLER_SMS and d.topic == "reopened"
    ]
    assert text.status == DeliveryStatus.DELIVERED


def test_a_retried_text_gets_the_same_answer_and_rates_once(
    emulator: TwilioEmulator,
    database: Database,
) -> None:
    caller = new_caller_number()
    number = resolved_case(database, caller=caller).number

    first = text_in(emulator, caller=caller, body="1")
    again = emulator.replay(first)

    assert reply_of(again) == reply_of(first)
    case = reload(database, number)
    assert [e.kind for e in case.events].count("rated") == 1
    assert [e.kind for e in case.events].count("reopened") == 1
    assert case.reopen_count == 1


def test_a_forged_or_unsigned_text_is_refused_and_changes_nothing(
    emulator: TwilioEmulator,
    database: Database,
) -> None:
    caller = new_caller_number()
    number = resolved_case(database, caller=caller).number

    forged = text_in(emulator, caller=caller, body="1", signature="c2lnbmF0dXJlIGZvcmdlZA==")
    unsigned = text_in(emulator, caller=caller, body="1", sign=False)

    assert forged.status_code == unsigned.status_code == 403
    case = reload(database, number)
    assert case.status == CaseStatus.RESOLVED and case.rating is None
    assert "rated" not in [e.kind for e in case.events]


@pytest.mark.parametrize("body", ["hello", "6", "0", "", "thank you 5 stars please"])
def test_anything_else_gets_help_in_the_callers_language(
    body: str,
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    caller = new_caller_number()
    number = resolved_case(database, caller=caller, locale="ko-KR").number

    step = text_in(emulator, caller=caller, body=body)

    assert reply_of(step) == prompts["ko-KR"].text("sms_rating_help")
    case = reload(database, number)
    assert case.status == CaseStatus.RESOLVED and case.rating is None


def test_a_rating_with_a_case_number_rates_that_case(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    caller = new_caller_number()
    older = resolved_case(database, caller=caller).number
    newer = resolved_case(database, caller=caller).number

    step = text_in(emulator, caller=caller, body=f"{older} 4")

    assert reply_of(step) == prompts["zh-CN"].text("sms_rating_thanks", number=older)
    assert reload(database, older).status == CaseStatus.CLOSED
    assert reload(database, newer).status == CaseStatus.RESOLVED  # the latest, left alone


def test_no_case_to_rate_is_said_and_nobody_elses_case_is_touched(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    someone = new_caller_number()
    theirs = resolved_case(database, caller=someone).number
    stranger = new_caller_number()

    plain = text_in(emulator, caller=stranger, body="5")
    aimed = text_in(emulator, caller=stranger, body=f"{theirs} 1")

    # A stranger has no case: the default language, and no hint that the number exists.
    expected = prompts["zh-CN"].text("sms_no_case_to_rate")
    assert reply_of(plain) == reply_of(aimed) == expected
    case = reload(database, theirs)
    assert case.status == CaseStatus.RESOLVED and case.rating is None


def test_a_text_after_the_case_is_closed_says_nothing_is_waiting(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    caller = new_caller_number()
    number = resolved_case(database, caller=caller, locale="en-US").number
    text_in(emulator, caller=caller, body="5")

    second = text_in(emulator, caller=caller, body="1")  # a new message, not a retry

    assert reply_of(second) == prompts["en-US"].text("sms_no_case_to_rate")
    case = reload(database, number)
    assert (case.status, case.rating, case.reopen_count) == (CaseStatus.CLOSED, 5, 0)


def test_a_text_without_its_message_sid_is_a_bad_request(emulator: TwilioEmulator) -> None:
    step = emulator.post(SMS_PATH, {"From": new_caller_number(), "Body": "5"})

    assert step.status_code == 400
    assert "MessageSid" in step.body


@pytest.mark.parametrize("status", ["sent_back", "resolved", "closed"])
def test_the_ivr_status_path_reads_the_state_the_feedback_left(
    status: str,
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    caller = new_caller_number()
    if status == "sent_back":
        with database.session() as session, session.begin():
            code = make_department(session)
            case = make_case(session, department_code=code, caller_number=caller, locale="en-US")
            actor = staff.department_actor(session.get_one(Department, code))
            lifecycle.send_back(session, case=case, actor=actor, reason="Not ours: a road matter.")
        number = case.number
    else:
        number = resolved_case(database, caller=caller, locale="en-US").number
        if status == "closed":
            text_in(emulator, caller=caller, body="5")

    log = emulator.call(["2", "9", number + "#"])

    (lookup,) = [step for step in log.steps if "/ivr/status/lookup" in step.url]
    said = lookup.said[0].text
    assert reload(database, number).status == status
    assert prompts["en-US"].status(status) in said
    others = {"open", "triage", "assigned", "accepted", "sent_back", "resolved", "closed"} - {
        status
    }
    assert not [other for other in others if prompts["en-US"].status(other) in said]
