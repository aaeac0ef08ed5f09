"""Whole calls through the Twilio emulator over real HTTP: every path from the greeting, in every
locale (DESIGN.md, contract 2)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import cast

import pytest
from sqlalchemy import select

from cases import numbers
from cases.locales import LOCALES
from cases.models import Call, Case, CaseStatus, SmsStatus
from emulator import CallLog, Speak, Step, TwilioEmulator
from hotline.db import Database
from ivr.prompts import Prompts
from tests.conftest import wait_until
from tests.support.calls import GREET_IN, SPEECH, VOICE, Lookups, fresh_mobile_number

EACH_LOCALE = pytest.mark.parametrize("locale", LOCALES)


def answers_to(log: CallLog, path: str) -> list[Step]:
    """The app's answers to the requests made to `path`, in call order."""
    return [step for step in log.steps if path in step.url]


def test_greeting_warns_of_emergencies_and_offers_its_keys_and_each_language_in_its_own_voice(
    emulator: TwilioEmulator, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([])  # the caller listens, then hangs up at the greeting
    greeting, keys, *options = log.steps[0].said
    assert greeting.text == prompts["zh-CN"].text("greeting")
    assert "一一零" in greeting.text and "一一九" in greeting.text and "一二零" in greeting.text
    assert keys.text == prompts["zh-CN"].text("greeting_keys")
    others = [loc for loc in LOCALES if loc != "zh-CN"]
    assert [(s.language, s.voice) for s in options] == [VOICE[loc] for loc in others]
    assert [s.text for s in options] == [prompts[loc].text("language_option") for loc in others]
    # One short <Gather> of single keys; with no key, the report is recorded next.
    gather = log.steps[0].twiml.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert log.steps[0].verbs == ["Gather", "Redirect"]
    assert log.ended_by == "caller-hangup"


def test_no_key_records_a_mandarin_report_straight_after_the_greeting(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([None, Speak(SPEECH)])
    # The greeting, then at once the report prompt and the beep: no menu between.
    assert [step.url.split("?")[0].removeprefix(emulator.public_base_url) for step in log.steps][
        :3
    ] == ["/ivr/voice", "/ivr/report/start", "/ivr/recorded"]
    assert log.steps[1].said[0].text == prompts["zh-CN"].text("report_prompt")
    case = lookups.case_of(log.call_sid)
    assert case.locale == "zh-CN"


@pytest.mark.parametrize(("key", "locale"), [("2", "en-US"), ("3", "ko-KR")])
def test_a_language_key_greets_again_in_that_language_and_no_key_then_records(
    key: str, locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([key, None, Speak(SPEECH)])
    again = log.steps[1]
    assert [s.text for s in again.said] == [
        prompts[locale].text("greeting"),
        prompts[locale].text("greeting_keys"),
    ]
    assert all((s.language, s.voice) == VOICE[locale] for s in again.said)
    assert lookups.case_of(log.call_sid).locale == locale


@EACH_LOCALE
def test_report_opens_a_case_and_reads_its_number_back_digit_by_digit(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([*GREET_IN[locale], "1", Speak(SPEECH)])

    case = lookups.case_of(log.call_sid)
    assert numbers.is_well_formed(case.number)
    assert case.locale == locale
    # Opened; a worker left running by an earlier test may already have routed it.
    assert case.status in (CaseStatus.OPEN, CaseStatus.TRIAGE, CaseStatus.ASSIGNED)
    assert case.caller_number == emulator.from_number
    assert case.events[0].kind == "opened"  # (a worker may already have added more)
    assert case.recordings[0].recording_sid == log.recordings[0]["RecordingSid"]
    assert cast(Call, case.call).locale == locale

    record = answers_to(log, "/ivr/greeting/choice")[-1].twiml.find("Record")
    assert record is not None
    assert (record.get("finishOnKey"), record.get("maxLength"), record.get("timeout")) == (
        "#0",
        "180",
        "5",
    )
    assert record.get("recordingStatusCallback", "").endswith("/ivr/recording-status")

    # Read back by the Record action, or (where the words were heard live) after the
    # emergency check that follows it.
    (readback,) = [
        step.said
        for step in log.steps
        if step.said and step.said[0].text.startswith(prompts[locale].text("case_opened"))
    ]
    spoken_number = prompts[locale].digits(case.number)
    assert readback[0].text == f"{prompts[locale].text('case_opened')} {spoken_number}"
    assert spoken_number in readback[1].text
    assert readback[2].text == prompts[locale].text("sms_will_follow")
    assert all((s.language, s.voice) == VOICE[locale] for s in readback)
    assert log.ended_by == "hangup-verb"


@EACH_LOCALE
def test_every_prompt_after_the_language_choice_is_in_that_language(
    locale: str, emulator: TwilioEmulator
) -> None:
    log = emulator.call([*GREET_IN[locale], "1", Speak(SPEECH)])
    after_choice = [spoken for step in log.steps[1:] for spoken in step.said]
    assert after_choice and all((s.language, s.voice) == VOICE[locale] for s in after_choice)


def test_an_invalid_key_at_the_greeting_offers_the_keys_again(
    emulator: TwilioEmulator, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call(["7", "2"])
    assert log.steps[1].said[0].text == prompts["zh-CN"].text("menu_invalid")
    assert log.steps[1].said[1].text == prompts["zh-CN"].text("greeting_keys")
    assert log.steps[2].said[-1].text == prompts["en-US"].text("greeting_keys")


def test_three_invalid_keys_at_the_greeting_ask_for_a_person_and_with_no_seat_open_offer_a_callback(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    # No operator has taken a seat in this session's IVR tests: nobody can answer.
    emulator.from_number = fresh_mobile_number()
    log = emulator.call(["7", "8", "4", "1"])
    texts = [spoken.text for spoken in log.said]
    assert prompts["zh-CN"].text("person_unavailable_offer") in texts
    assert texts[-1] == prompts["zh-CN"].text("queue_callback_confirmed")
    assert log.ended_by == "hangup-verb"
    entry = lookups.queue_entry(log.call_sid)
    assert entry is not None and (entry.reason, entry.result) == ("menu_misses", "no_seat")
    task = lookups.callback_of(log.call_sid)
    assert task is not None and task.caller_number == emulator.from_number
    assert (task.reason, task.status) == ("no_seat", "open")


@EACH_LOCALE
def test_invalid_keys_repeat_the_greetings_keys_and_three_misses_reach_a_person(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    misses = ["4", "5", "6"] if locale == "zh-CN" else ["4", "2", "5"]  # 2 is Mandarin's only
    emulator.from_number = fresh_mobile_number()
    log = emulator.call([*GREET_IN[locale], *misses])
    texts = [spoken.text for spoken in log.said]
    assert texts.count(prompts[locale].text("menu_invalid")) == 2
    assert texts.count(prompts[locale].text("greeting_keys")) == 3
    assert prompts[locale].text("person_unavailable_offer") in texts
    assert lookups.cases_of(log.call_sid) == []
    # Hanging up at the offer (no key) is a callback too: they reached nobody.
    assert lookups.callback_of(log.call_sid) is not None


@EACH_LOCALE
def test_a_miss_then_a_valid_key_still_reaches_the_report(
    locale: str, emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call([*GREET_IN[locale], "4", "1", Speak(SPEECH)])
    assert lookups.case_of(log.call_sid).locale == locale


def settled_by_the_worker(database: Database, number: str) -> bool:
    """Whether the worker is done with a new case: routed, or sent to the desk to listen to."""
    with database.session() as session:
        case = session.scalars(select(Case).where(Case.number == number)).one()
        return case.routed_at is not None or case.needs_review


@EACH_LOCALE
@pytest.mark.usefixtures("celery_worker")
def test_status_reads_back_status_department_and_deadline(
    locale: str,
    emulator: TwilioEmulator,
    lookups: Lookups,
    database: Database,
    prompts: dict[str, Prompts],
) -> None:
    opened = lookups.case_of(emulator.call([*GREET_IN[locale], "1", Speak(SPEECH)]).call_sid)
    # The worker first, then the hand: a worker still busy with the case would write its own
    # status, department and deadline over the ones set here (PostgreSQL, CI).
    wait_until(
        lambda: settled_by_the_worker(database, opened.number),
        timeout=120,
        what="the worker to route the case or send it to the desk",
    )
    deadline = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    with database.session() as session, session.begin():
        case = session.scalars(select(Case).where(Case.number == opened.number)).one()
        case.status, case.department_code, case.deadline_at = (
            cast(CaseStatus, "assigned"),
            "water",
            deadline,
        )
        case.routed_at = deadline  # routed by hand: the routing job must leave it be

    log = emulator.call([*GREET_IN[locale], "9", opened.number])

    said = answers_to(log, "/ivr/status/lookup")[-1].said[0]
    assert (said.language, said.voice) == VOICE[locale]
    assert prompts[locale].digits(opened.number) in said.text
    assert prompts[locale].status("assigned") in said.text
    water = {"zh-CN": "水务", "en-US": "Water Authority", "ko-KR": "수도국"}[locale]
    assert prompts[locale].text("status_department", department=water) in said.text
    assert prompts[locale].deadline(deadline) in said.text
    # After the status, the caller hears the greeting's keys again (no key: a report).
    again = answers_to(log, "/ivr/menu")[0]
    assert prompts[locale].text("greeting_keys") in [spoken.text for spoken in again.said]
    assert again.verbs == ["Gather", "Redirect"]


@EACH_LOCALE
def test_status_of_a_fresh_case_says_it_is_being_dispatched(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    opened = lookups.case_of(emulator.call([*GREET_IN[locale], "1", Speak(SPEECH)]).call_sid)
    log = emulator.call([*GREET_IN[locale], "9", opened.number + "#"])
    said = answers_to(log, "/ivr/status/lookup")[0].said[0].text
    # Open, or already with the desk or a department if a worker got to it first.
    assert any(prompts[locale].status(status) in said for status in ("open", "triage", "assigned"))


@EACH_LOCALE
def test_unknown_case_number_lets_the_caller_try_once_more(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    opened = lookups.case_of(emulator.call([*GREET_IN[locale], "1", Speak(SPEECH)]).call_sid)
    wrong = opened.number[:-1] + str((int(opened.number[-1]) + 1) % 10)  # one key off

    log = emulator.call([*GREET_IN[locale], "9", wrong, opened.number])

    first, second = answers_to(log, "/ivr/status/lookup")
    assert first.said[0].text == prompts[locale].text("status_unknown_retry")
    assert prompts[locale].digits(opened.number) in second.said[0].text


@EACH_LOCALE
def test_unknown_case_number_twice_goes_to_a_person(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([*GREET_IN[locale], "9", "123456789", "999", "1"])
    assert prompts[locale].text("person_unavailable_offer") in [s.text for s in log.said]
    entry = lookups.queue_entry(log.call_sid)
    assert entry is not None and entry.reason == "status_lookup"


@EACH_LOCALE
def test_zero_with_no_seat_open_offers_a_callback_or_a_recording_and_2_records(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    emulator.from_number = fresh_mobile_number()
    log = emulator.call([*GREET_IN[locale], "0", "2", Speak(SPEECH)])
    assert prompts[locale].text("person_unavailable_offer") in [s.text for s in log.said]
    assert lookups.case_of(log.call_sid).locale == locale
    entry = lookups.queue_entry(log.call_sid)
    assert entry is not None and (entry.result, entry.wrap_up) == ("no_seat", "no_operator")
    task = lookups.callback_of(log.call_sid)
    assert task is not None and task.status == "withdrawn"  # they chose to record instead


def test_zero_at_the_status_prompt_asks_for_a_person(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call(["9", "0", "1"])
    assert log.said[-1].text == prompts["zh-CN"].text("queue_callback_confirmed")
    entry = lookups.queue_entry(log.call_sid)
    assert entry is not None and entry.reason == "status_lookup"


@EACH_LOCALE
def test_withheld_caller_id_is_asked_for_a_callback_number(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    emulator.from_number = "anonymous"
    log = emulator.call([*GREET_IN[locale], "1", Speak(SPEECH), "13912345678#"])

    # Asked after the report, not before it: no menu stands before the caller's words.
    texts = [spoken.text for spoken in log.said]
    asked = texts.index(prompts[locale].text("callback_number_request"))
    assert texts.index(prompts[locale].text("report_prompt")) < asked
    case = lookups.case_of(log.call_sid)
    assert case.caller_number == "+8613912345678"  # in E.164, as texts and replies are
    assert case.sms_status in (SmsStatus.PENDING, SmsStatus.SENT)  # a text is due, or went
    assert cast(Call, case.call).caller_id_withheld


@EACH_LOCALE
def test_withheld_caller_who_skips_the_callback_number_still_reports(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    emulator.from_number = ""
    log = emulator.call([*GREET_IN[locale], "1", Speak(SPEECH), "#"])

    case = lookups.case_of(log.call_sid)
    assert case.caller_number is None and case.sms_status == SmsStatus.NONE
    assert log.said[-1].text == prompts[locale].text("no_sms")


@EACH_LOCALE
def test_a_silent_recording_is_reprompted_once(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([*GREET_IN[locale], "1", Speak(None), Speak(SPEECH)])
    assert prompts[locale].text("report_silent_retry") in [s.text for s in log.said]
    assert lookups.case_of(log.call_sid).locale == locale


@EACH_LOCALE
def test_two_silent_recordings_end_the_call_without_a_case(
    locale: str, emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call([*GREET_IN[locale], "1", Speak(None), Speak(None)])
    assert log.said[-1].text == prompts[locale].text("report_nothing_heard")
    assert lookups.cases_of(log.call_sid) == []


def test_a_hang_up_during_recording_after_speaking_opens_the_case_with_its_audio(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call(["1", Speak(SPEECH, end="hangup")])
    assert log.ended_by == "caller-hangup"
    case = lookups.case_of(log.call_sid)
    (kept,) = lookups.recordings_of(log.call_sid)
    assert kept.case_id == case.id and kept.recording_sid == log.recordings[0]["RecordingSid"]


def test_a_hang_up_before_saying_anything_keeps_nothing(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call(["1", Speak(None, end="hangup")])
    assert lookups.cases_of(log.call_sid) == []
    assert lookups.recordings_of(log.call_sid) == []


def test_a_repeated_record_action_gives_the_same_number_and_one_case(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call(["2", "1", Speak(SPEECH)])
    (recorded,) = answers_to(log, "/ivr/recorded")

    with ThreadPoolExecutor(max_workers=4) as pool:
        replays = list(pool.map(lambda _: emulator.replay(recorded), range(6)))

    assert {replay.body for replay in replays} == {recorded.body}
    assert len(lookups.cases_of(log.call_sid)) == 1


def test_a_repeated_voice_webhook_gives_the_same_answer_and_one_call(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call([])
    replay = emulator.replay(log.steps[0])
    assert replay.body == log.steps[0].body
    assert lookups.count_calls(log.call_sid) == 1


def test_call_details_are_kept(emulator: TwilioEmulator, lookups: Lookups) -> None:
    log = emulator.call(["1", Speak(SPEECH)], extra_params={"FromCity": "QUFU"})
    call = cast(Call, lookups.case_of(log.call_sid).call)
    assert call.from_number == emulator.from_number and call.to_number == emulator.to_number
    assert call.details["FromCity"] == "QUFU" and call.details["Direction"] == "inbound"
