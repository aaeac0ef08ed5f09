"""Reports by text: Twilio's signed Messaging webhook over real HTTP opens cases (in the
texter's language, joined when typed in parts, answered at once when the knowledge base can),
obeys STOP, START and HELP, and routes through the worker like a call."""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from cases import lifecycle, outbox, staff
from cases.models import (
    Case,
    CaseStatus,
    Channel,
    Delivery,
    Department,
    InboundText,
    Intake,
    TextOptOut,
)
from emulator import Step, TwilioEmulator
from hotline.db import Database
from hotline.wiring import Wiring
from ivr.prompts import Prompts
from ivr.sms import looks_like_a_score, reads_as_report, report_locale
from tests.conftest import wait_until
from tests.ivr.test_rating_sms import reply_of, text_in
from tests.support.factories import make_case
from tests.support.receivers import make_department, new_caller_number, shared_smtp_receiver

LOCALES = ("zh-CN", "en-US", "ko-KR")
REPORTS = {
    "zh-CN": "书院街道春秋路的下水道堵了，污水漫到路上",
    "en-US": "Nobody has collected the rubbish outside 12 Chunqiu Road for a week",
    "ko-KR": "시청 앞 가로등이 고장났어요 밤에 너무 어두워요",
}


@pytest.fixture
def text_settings(wiring: Wiring, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Change the IVR's text settings for one test (join window, hourly cap, keywords)."""

    def change(**values: Any) -> None:
        options = dataclasses.replace(wiring.call_flow.options, **values)
        monkeypatch.setattr(wiring.call_flow, "options", options)

    return change


@pytest.fixture
def slow_routing(text_settings: Callable[..., None]) -> None:
    """A join window long enough that no test's case is routed while the test looks at it."""
    text_settings(sms_join_seconds=60)


def number_in(reply: str) -> str:
    """The case number a reply gives (the only long run of digits in it)."""
    (number,) = re.findall(r"\d{9,12}", reply)
    return str(number)


def case_named(database: Database, number: str) -> Case:
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        _ = case.events, case.deliveries
        return case


def cases_from(database: Database, texter: str) -> list[Case]:
    with database.session() as session:
        return list(
            session.scalars(select(Case).where(Case.caller_number == texter).order_by(Case.id))
        )


def kept_texts(database: Database, texter: str) -> list[InboundText]:
    with database.session() as session:
        return list(
            session.scalars(
                select(InboundText)
                .where(InboundText.from_number == texter)
                .order_by(InboundText.id)
            )
        )


def is_empty_answer(step: Step) -> bool:
    """TwiML that answers nothing (Twilio has answered the keyword itself)."""
    assert step.status_code == 200, step.body
    root = ET.fromstring(step.body)
    return root.tag == "Response" and not list(root)


# --- pure parts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "locale"),
    [
        ("鲁城街道的路灯坏了", "zh-CN"),
        ("가로등이 고장났어요", "ko-KR"),
        ("The light is out", "en-US"),
        ("12345", "en-US"),
    ],
)
def test_a_reports_language_is_its_scripts(body: str, locale: str) -> None:
    assert report_locale(body, locales=LOCALES) == locale


def test_a_language_the_line_does_not_speak_falls_back_to_its_first() -> None:
    assert report_locale("가로등이 고장났어요", locales=("zh-CN", "en-US")) == "zh-CN"


@pytest.mark.parametrize(
    ("body", "report"),
    [
        ("路灯坏了", True),
        ("Light out on Main Street", True),
        ("가로등 고장 신고", True),
        ("hello", False),
        ("thanks!", False),
        ("满意", False),
        ("5 5 5", False),
        ("", False),
    ],
)
def test_what_says_enough_to_be_a_report(body: str, report: bool) -> None:
    assert reads_as_report(body) is report


@pytest.mark.parametrize(
    ("body", "score"),
    [
        ("5 stars please", True),
        ("给 ５ 分", True),
        ("thank you 5 stars please", True),
        ("鼓楼大街5号的路灯坏了", False),
        ("Street light out in front of 12 Oak Road since Monday", False),
    ],
)
def test_a_bare_number_looks_like_a_score_but_a_house_number_does_not(
    body: str, score: bool
) -> None:
    assert looks_like_a_score(body) is score


# --- reports ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("slow_routing")
@pytest.mark.parametrize("locale", LOCALES)
def test_a_report_opens_a_case_and_the_reply_gives_its_number_in_the_texters_language(
    locale: str, emulator: TwilioEmulator, database: Database, prompts: dict[str, Prompts]
) -> None:
    texter = new_caller_number()

    step = text_in(emulator, caller=texter, body=REPORTS[locale])

    reply = reply_of(step)
    number = number_in(reply)
    assert reply == prompts[locale].text("sms_report_received", number=number)
    case = case_named(database, number)
    assert (case.intake, case.locale, case.caller_number) == (Intake.SMS, locale, texter)
    assert case.report_text == REPORTS[locale]
    assert case.status == CaseStatus.OPEN and case.call_id is None
    (kept,) = kept_texts(database, texter)
    assert (kept.kind, kept.case_id, kept.message_sid) == (
        "report",
        case.id,
        step.params["MessageSid"],
    )


@pytest.mark.usefixtures("slow_routing")
def test_a_retried_report_gets_the_same_reply_and_opens_one_case(
    emulator: TwilioEmulator, database: Database
) -> None:
    texter = new_caller_number()

    first = text_in(emulator, caller=texter, body=REPORTS["zh-CN"])
    again = emulator.replay(first)

    assert reply_of(again) == reply_of(first)
    assert len(cases_from(database, texter)) == 1
    assert len(kept_texts(database, texter)) == 1


@pytest.mark.usefixtures("slow_routing")
@pytest.mark.parametrize(
    ("parts", "joined"),
    [
        (
            ["时庄街道幸福路的自来水管", "爆了，水流了一地"],
            "时庄街道幸福路的自来水管爆了，水流了一地",
        ),
        (
            ["The water main on Xingfu Road", "in Shizhuang burst this morning"],
            "The water main on Xingfu Road in Shizhuang burst this morning",
        ),
    ],
    ids=["zh-CN", "en-US"],
)
def test_parts_sent_within_the_window_make_one_case_with_the_whole_text(
    parts: list[str],
    joined: str,
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    texter = new_caller_number()

    first = text_in(emulator, caller=texter, body=parts[0])
    second = text_in(emulator, caller=texter, body=parts[1])

    number = number_in(reply_of(first))
    case = case_named(database, number)
    assert reply_of(second) == prompts[case.locale].text("sms_report_added", number=number)
    assert case.report_text == joined
    assert [c.number for c in cases_from(database, texter)] == [number]
    assert [t.kind for t in kept_texts(database, texter)] == ["report", "part"]
    assert "report_part_added" in [e.kind for e in case.events]


def test_a_text_after_the_window_opens_a_case_of_its_own(
    emulator: TwilioEmulator, database: Database, text_settings: Callable[..., None]
) -> None:
    text_settings(sms_join_seconds=0)
    texter = new_caller_number()

    first = text_in(emulator, caller=texter, body=REPORTS["zh-CN"])
    second = text_in(emulator, caller=texter, body="另外春秋路的路灯也不亮")

    assert number_in(reply_of(first)) != number_in(reply_of(second))
    assert len(cases_from(database, texter)) == 2


def test_a_number_past_the_hourly_cap_is_refused_politely(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
    text_settings: Callable[..., None],
) -> None:
    text_settings(sms_join_seconds=0, sms_reports_per_hour=2)
    texter = new_caller_number()
    for body in ("春秋路的路灯坏了", "鼓楼大街的井盖没了"):
        text_in(emulator, caller=texter, body=body)

    third = text_in(emulator, caller=texter, body="五马祠街的垃圾没人清")

    assert reply_of(third) == prompts["zh-CN"].text("sms_too_many")
    assert len(cases_from(database, texter)) == 2
    assert kept_texts(database, texter)[-1].kind == "throttled"


@pytest.mark.usefixtures("slow_routing")
def test_a_question_the_knowledge_base_answers_is_answered_in_the_reply_and_closed(
    emulator: TwilioEmulator, database: Database, wiring: Wiring, prompts: dict[str, Prompts]
) -> None:
    wiring.knowledge.ready(timeout=120)  # built, as a web process builds it at start
    texter = new_caller_number()

    step = text_in(emulator, caller=texter, body="身份证丢了怎么补办")

    reply = reply_of(step)
    (case,) = cases_from(database, texter)
    case = case_named(database, case.number)
    assert case.status == CaseStatus.CLOSED and case.resolution
    assert reply == prompts["zh-CN"].text(
        "sms_report_answered", reply=case.resolution, number=case.number
    )
    (answered,) = [e for e in case.events if e.kind == "answered_at_once"]
    assert answered.data["article"] == case.article_id
    # Answered: nothing to route, and no department is told.
    assert case.department_code is None and not case.deliveries


@pytest.mark.usefixtures("slow_routing")
def test_an_emergency_by_text_is_told_whom_to_call_and_kept(
    emulator: TwilioEmulator, database: Database, prompts: dict[str, Prompts]
) -> None:
    texter = new_caller_number()

    step = text_in(emulator, caller=texter, body="我家楼下着火了，火很大，有人被困在里面")

    (case,) = cases_from(database, texter)
    assert reply_of(step) == prompts["zh-CN"].text(
        "sms_report_emergency", service="119", number=case.number
    )


# --- keywords ---------------------------------------------------------------------------------


def test_stop_opts_the_number_out_and_it_is_texted_nothing_more(
    emulator: TwilioEmulator, database: Database
) -> None:
    texter, other = new_caller_number(), new_caller_number()

    step = text_in(emulator, caller=texter, body="STOP")

    # Twilio answered STOP itself (and would refuse our reply): we say nothing.
    assert is_empty_answer(step)
    with database.session() as session, session.begin():
        assert session.get(TextOptOut, texter) is not None
        code = make_department(session)
        actor = staff.department_actor(session.get_one(Department, code))
        stopped = make_case(session, department_code=code, caller_number=texter)
        control = make_case(session, department_code=code, caller_number=other)
        for case in (stopped, control):
            lifecycle.accept(session, case=case, actor=actor)
        assert outbox.text_caller(session, case=stopped, message="accepted") is None
    texts_to = {
        case.caller_number: [
            d.topic
            for d in case_named(database, case.number).deliveries
            if d.channel == Channel.CALLER_SMS
        ]
        for case in (stopped, control)
    }
    assert texts_to == {texter: [], other: ["accepted"]}


def test_chinese_unsubscribe_is_confirmed_once_in_chinese(
    emulator: TwilioEmulator, database: Database, prompts: dict[str, Prompts]
) -> None:
    texter = new_caller_number()

    first = text_in(emulator, caller=texter, body="退订")
    again = text_in(emulator, caller=texter, body="TD")

    assert reply_of(first) == prompts["zh-CN"].text("sms_opted_out")
    assert is_empty_answer(again)  # already out: confirmed once
    with database.session() as session:
        assert session.get(TextOptOut, texter) is not None


def test_without_twilio_filtering_we_confirm_stop_and_start_ourselves(
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
    text_settings: Callable[..., None],
) -> None:
    text_settings(sms_twilio_answers_keywords=False)
    texter = new_caller_number()

    stop = text_in(emulator, caller=texter, body="stop")
    start = text_in(emulator, caller=texter, body="Start")

    assert reply_of(stop) == prompts["en-US"].text("sms_opted_out")
    assert reply_of(start) == prompts["en-US"].text("sms_opted_in")
    with database.session() as session:
        assert session.get(TextOptOut, texter) is None


def test_start_opts_the_number_back_in(emulator: TwilioEmulator, database: Database) -> None:
    texter = new_caller_number()
    text_in(emulator, caller=texter, body="UNSUBSCRIBE")

    step = text_in(emulator, caller=texter, body="START")

    assert is_empty_answer(step)  # Twilio confirms START on its numbers
    with database.session() as session, session.begin():
        assert session.get(TextOptOut, texter) is None
        case = make_case(session, caller_number=texter)
        assert outbox.text_caller(session, case=case, message="accepted") is not None


@pytest.mark.parametrize(
    ("body", "locale"), [("HELP", "en-US"), ("帮助", "zh-CN"), ("info.", "en-US")]
)
def test_help_says_how_the_line_works(
    body: str,
    locale: str,
    emulator: TwilioEmulator,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    texter = new_caller_number()

    step = text_in(emulator, caller=texter, body=body)

    assert reply_of(step) == prompts[locale].text("sms_help")
    assert cases_from(database, texter) == []


def test_a_text_too_short_to_report_anything_gets_help_and_opens_nothing(
    emulator: TwilioEmulator, database: Database, prompts: dict[str, Prompts]
) -> None:
    texter = new_caller_number()

    step = text_in(emulator, caller=texter, body="hello")

    assert reply_of(step) == prompts["en-US"].text("sms_help")
    assert cases_from(database, texter) == []


# --- bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_a_text_missing_a_parameter_is_a_bad_request_and_writes_nothing(
    missing: str, emulator: TwilioEmulator, database: Database
) -> None:
    texter = new_caller_number()
    params = {"MessageSid": "SM" + "a" * 32, "From": texter, "Body": REPORTS["zh-CN"]}
    del params[missing]

    step = emulator.post("/ivr/sms", params)

    assert step.status_code == 400 and missing in step.body
    assert cases_from(database, texter) == [] and kept_texts(database, texter) == []


@pytest.mark.parametrize("sid", ["9" * 400, "SM" + "a" * 63, "SM-../../etc", "SM伍"])
def test_a_text_whose_message_sid_no_sid_could_be_is_a_bad_request_and_writes_nothing(
    sid: str, emulator: TwilioEmulator, database: Database
) -> None:
    # The fuzzer's: a 400-digit MessageSid was a 500 on PostgreSQL (longer than its column).
    texter = new_caller_number()
    params = {"MessageSid": sid, "From": texter, "Body": REPORTS["zh-CN"]}

    step = emulator.post("/ivr/sms", params)

    assert step.status_code == 400 and "MessageSid" in step.body
    assert cases_from(database, texter) == [] and kept_texts(database, texter) == []


def test_a_forged_text_is_refused_and_writes_nothing(
    emulator: TwilioEmulator, database: Database
) -> None:
    texter = new_caller_number()

    forged = text_in(
        emulator, caller=texter, body=REPORTS["zh-CN"], signature="c2lnbmF0dXJlIGZvcmdlZA=="
    )

    assert forged.status_code == 403
    assert cases_from(database, texter) == [] and kept_texts(database, texter) == []


# --- the must-show: three texts, one department case ------------------------------------------


@pytest.fixture
def urban_mgmt_by_email(database: Database, environ: dict[str, str]) -> Iterator[None]:
    """urban_mgmt pushed by e-mail (to the session's SMTP receiver), so its pushes are outbox
    rows to count; put back as it was afterwards."""
    shared_smtp_receiver(int(environ["SMTP_PORT"]))
    with database.session() as session, session.begin():
        before = session.get_one(Department, "urban_mgmt").email
        staff.set_department_channels(session, code="urban_mgmt", email="duty@urban.example.test")
    yield
    with database.session() as session, session.begin():
        staff.set_department_channels(session, code="urban_mgmt", email=before or "")


# A street no other test reports a street light on: the three must find each other, not an
# open case another test left in the database.
LIGHT_IN_LUCHENG = [
    "鲁城街道五马祠街的路灯坏了，晚上一片漆黑",
    "五马祠街（鲁城街道）路灯不亮好几天了，请尽快修",
    "我们鲁城街道五马祠街那个路灯一直不亮",
]
LIGHT_IN_WUCUN = "吴村镇政府门口的路灯坏了，晚上看不见路"


@pytest.mark.usefixtures("celery_worker", "urban_mgmt_by_email")
def test_three_texts_about_one_street_light_make_one_department_case_with_one_push(
    emulator: TwilioEmulator,
    database: Database,
    app: Flask,
    text_settings: Callable[..., None],
) -> None:
    text_settings(sms_join_seconds=1)

    numbers = [
        number_in(reply_of(text_in(emulator, caller=new_caller_number(), body=body)))
        for body in LIGHT_IN_LUCHENG
    ]
    elsewhere = number_in(
        reply_of(text_in(emulator, caller=new_caller_number(), body=LIGHT_IN_WUCUN))
    )

    assert len(set(numbers)) == 3 and elsewhere not in numbers

    def all_routed() -> list[Case] | None:
        cases = [case_named(database, n) for n in [*numbers, elsewhere]]
        return cases if all(c.routed_at is not None for c in cases) else None

    *lucheng, wucun = wait_until(all_routed, timeout=90, what="the worker to route the texts")
    with database.session() as session:
        ids = [c.id for c in lucheng]
        kept = session.scalars(select(Case).where(Case.id.in_(ids), Case.merged_into_id.is_(None)))
        (department_case,) = kept.all()
        assert department_case.reporters == 3
        assert department_case.department_code == "urban_mgmt"
        assert {c.merged_into_id for c in lucheng if c.id != department_case.id} == {
            department_case.id
        }
        pushes = session.scalar(
            select(func.count(Delivery.id)).where(
                Delivery.case_id.in_(ids),
                Delivery.recipient == "urban_mgmt",
                Delivery.topic.startswith("assigned"),
            )
        )
        assert pushes == 1
    # Another town's street light is a problem of its own.
    assert wucun.merged_into_id is None and wucun.id != department_case.id
    assert wucun.reporters == 1 and wucun.department_code == "urban_mgmt"
