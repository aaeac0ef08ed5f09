"""Routing wired into the case flow: the job, triage, the dev-zone override, a kept decision,
and an emergency heard in a live call put straight through to 119."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

import pytest
from flask import Flask

from cases import intake
from cases.intake import CallerInfo, RecordingReport, TranscriptText
from cases.models import Call, Case, CaseStatus
from emulator import Speak, TwilioEmulator
from hotline.db import Database
from hotline.wiring import Wiring
from ivr.prompts import Prompts
from routing import tasks
from tests.conftest import AUDIO, wait_until
from tests.support.calls import VOICE, Lookups
from transcription.models import LoadedModel
from transcription.recognizer import Transcript


def case_with_transcript(
    database: Database, emulator: TwilioEmulator, text: str, *, locale: str = "zh-CN"
) -> int:
    """A case opened from a call, with `text` as its complete transcript."""
    call_sid = emulator.new_call_sid()
    caller = CallerInfo(call_sid, emulator.account_sid, "+8613900000000", "+865374412345", {})
    with database.session() as session, session.begin():
        opened = intake.open_case_from_recording(
            session,
            caller=caller,
            locale=locale,
            report=RecordingReport(
                url=f"https://example.test/{call_sid}", recording_sid=None, duration=9
            ),
            region="CN",
        )
        intake.store_transcript(
            session,
            call=cast(Call, opened.case.call),
            source="batch",
            complete=True,
            result=TranscriptText(text, [], 9.0, "vosk 0.3.45", "test", 0.1),
        )
        return opened.case.id


def routed(database: Database, case_id: int) -> Case:
    with database.session() as session:
        case = session.get_one(Case, case_id)
        _ = case.events
        return case


def test_a_transcript_is_routed_to_its_department_with_deadline_and_explanation(
    database: Database, emulator: TwilioEmulator
) -> None:
    # A street no other test reports a light on: an open case about the same light, left in
    # the database by another test, would take this report in as a repeat (并单).
    case_id = case_with_transcript(
        database, emulator, "喂你好我们书院街道有朋路那边有个路灯不亮了好几天了晚上黑乎乎的"
    )

    assert tasks.route_case.apply(args=[case_id]).get() == "routed"

    case = routed(database, case_id)
    assert (case.category_code, case.department_code, case.status) == (
        "streetlight",
        "urban_mgmt",
        CaseStatus.ASSIGNED,
    )
    assert case.deadline_at == case.opened_at + timedelta(hours=24)
    assert case.place_code is not None
    event = case.events[-1]
    assert event.kind == "routed"
    assert event.data["explanation"]["top"][0][0] == "streetlight"
    assert event.data["model_version"] and cast(dict[str, Any], case.routing)["confidence"] >= 0.35


def test_facilities_in_the_development_zone_go_to_the_zone(
    database: Database, emulator: TwilioEmulator
) -> None:
    case_id = case_with_transcript(
        database, emulator, "开发区那条路上的井盖丢了好大一个洞晚上很危险"
    )
    tasks.route_case.apply(args=[case_id]).get()
    case = routed(database, case_id)
    assert case.department_code == "dev_zone" and case.category_code == "road_facility"
    assert case.urgency == "urgent"  # a missing cover: hours matter
    assert case.deadline_at == case.opened_at + timedelta(hours=2)
    assert cast(dict[str, Any], case.routing)["explanation"]["override"] == "dev_zone"


def test_low_confidence_goes_to_the_dispatch_desk_for_triage(
    database: Database, emulator: TwilioEmulator
) -> None:
    case_id = case_with_transcript(database, emulator, "嗯 那个 就是 喂 喂 听得到吗")
    tasks.route_case.apply(args=[case_id]).get()
    case = routed(database, case_id)
    assert (case.department_code, case.status) == ("hotline_office", CaseStatus.TRIAGE)
    assert (
        cast(dict[str, Any], case.routing)["needs_triage"]
        and cast(dict[str, Any], case.routing)["explanation"]["triage"]
    )


def test_a_decision_is_kept_whatever_runs_again(
    database: Database, emulator: TwilioEmulator, app: Flask
) -> None:
    case_id = case_with_transcript(database, emulator, "公司老板拖欠我们工资三个月了一分钱都没发")
    tasks.route_case.apply(args=[case_id]).get()
    before = routed(database, case_id)

    assert tasks.route_case.apply(args=[case_id]).get() == "already routed"

    after = routed(database, case_id)
    assert after.routing == before.routing and after.routed_at == before.routed_at
    assert [e.kind for e in after.events].count("routed") == 1


@pytest.mark.usefixtures("celery_worker")
def test_a_live_call_is_transcribed_and_routed_by_the_worker(
    emulator: TwilioEmulator, lookups: Lookups
) -> None:
    log = emulator.call(["3", "1", Speak((AUDIO / "ko_water.wav").read_bytes())])

    def routed_case() -> Case | None:
        case = lookups.case_of(log.call_sid)
        return case if case.routed_at is not None else None

    case = wait_until(routed_case, timeout=60, what="the case to be routed")
    assert lookups.transcript_of(log.call_sid) is not None
    assert case.status in (CaseStatus.ASSIGNED, CaseStatus.TRIAGE)
    assert "routed" in [event.kind for event in case.events]


class HeardFire:
    """A live recognizer (`ivr.streams.LiveRecognizer`) that hears a report of a fire."""

    def __init__(self, model: LoadedModel) -> None:
        self.model_name, self.frames = model.name, 0

    def put_mulaw(self, payload: bytes) -> None:
        self.frames += 1

    def close(self, timeout: float | None = 60.0) -> Transcript:
        words = "우리 집에 불이 났어요 빨리 와 주세요"
        return Transcript(words, (), self.frames * 0.02, "vosk 0.3.45", self.model_name, 0.01)


def test_an_emergency_heard_in_a_live_call_is_put_through_to_119(
    emulator: TwilioEmulator,
    lookups: Lookups,
    prompts: dict[str, Prompts],
    wiring: Wiring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The only model here (small Korean) cannot make out espeak-ng's synthetic Korean well
    # enough to hear "fire": this fake of our recognizer interface stands in for what a
    # caller's real voice would give. Everything else is real: the socket, the stop, the
    # store, the check.
    monkeypatch.setattr(wiring.live, "open_recognizer", HeardFire)
    log = emulator.call(["3", "1", Speak((AUDIO / "ko_streetlight.wav").read_bytes())])

    transfer = [step for step in log.steps if "/ivr/report/check" in step.url][-1]
    assert transfer.said[0].text == prompts["ko-KR"].text("emergency_transfer", number="119")
    assert (transfer.said[0].language, transfer.said[0].voice) == VOICE["ko-KR"]
    assert log.dialed == [["119"]]
    case = lookups.case_of(log.call_sid)  # kept for the record
    assert case.urgency == "emergency"
    assert "emergency_transfer" in [event.kind for event in case.events]


def test_a_live_call_without_an_emergency_hears_its_number(
    emulator: TwilioEmulator, lookups: Lookups, prompts: dict[str, Prompts]
) -> None:
    log = emulator.call(["3", "1", Speak((AUDIO / "ko_garbage.wav").read_bytes())])
    # The last round of the check (a late transcript is waited for in rounds) reads it back.
    check = [step for step in log.steps if "/ivr/report/check" in step.url][-1]
    case = lookups.case_of(log.call_sid)
    assert prompts["ko-KR"].digits(case.number) in check.said[0].text
    assert log.dialed == []
