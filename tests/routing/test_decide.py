"""The routing decision: departments, the development-zone override, urgency, triage, deadlines."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from routing.classifier import Classifier
from routing.deadlines import WorkingCalendar
from routing.decide import Decision, Route, decide, routes_from_file
from routing.places import Gazetteer

OPENED = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # Wednesday 10:00 in Shanghai


@pytest.fixture
def route(
    classifier: Classifier,
    directory: dict[str, Route],
    gazetteer: Gazetteer,
    calendar: WorkingCalendar,
    emergency_numbers: dict[str, str],
) -> Callable[..., Decision]:
    """decide() with the shipped configuration and a fixed opening time."""

    def run(text: str, threshold: float = 0.35) -> Decision:
        return decide(
            text,
            classifier=classifier,
            directory=directory,
            gazetteer=gazetteer,
            calendar=calendar,
            emergency_numbers=emergency_numbers,
            opened_at=OPENED,
            confidence_threshold=threshold,
        )

    return run


def test_directory_matches_the_design(directory: dict[str, Route]) -> None:
    assert len(directory) == 18
    assert directory["streetlight"] == Route("urban_mgmt", 24, None)
    assert directory["road_facility"] == Route("housing", 48, None)
    assert directory["wage_arrears"] == Route("hr_social", None, 5)
    assert directory["other"] == Route("hotline_office", None, 1)


def test_streetlight_in_the_city(route: Callable[..., Decision]) -> None:
    decision = route("鲁城街道鼓楼北街的路灯坏了好几天了 晚上黑乎乎的")
    assert (decision.category, decision.department) == ("streetlight", "urban_mgmt")
    assert decision.place is not None and decision.place.code == "lucheng"
    assert decision.urgency == "normal" and not decision.needs_triage
    assert decision.deadline == OPENED + timedelta(hours=24)
    assert decision.explanation["override"] is None


@pytest.mark.parametrize(
    "text",
    [
        "开发区崇文大道上的路灯坏了一排 晚上下班一片漆黑",
        "The street lights in the development zone have been dark for a week.",
        "개발구 공장 앞 가로등이 며칠째 안 켜져요",
    ],
)
def test_dev_zone_streetlight_goes_to_dev_zone(route: Callable[..., Decision], text: str) -> None:
    decision = route(text)
    assert decision.category == "streetlight"
    assert decision.department == "dev_zone"
    assert decision.explanation["override"] == "dev_zone"
    assert decision.explanation["place"]["kind"] == "dev_zone"


def test_dev_zone_rubbish_goes_to_dev_zone(route: Callable[..., Decision]) -> None:
    decision = route("曲阜经济开发区宿舍区旁边的垃圾一个礼拜没人拉了 臭气熏天")
    assert (decision.category, decision.department) == ("sanitation", "dev_zone")


def test_dev_zone_wage_arrears_stays_with_hr_social(route: Callable[..., Decision]) -> None:
    decision = route("我在开发区一个厂里干了半年 老板拖欠工资三个月不给")
    assert decision.category == "wage_arrears"
    assert decision.department == "hr_social"
    assert decision.explanation["override"] is None
    # Five working days from Wednesday 4 March 2026: Thu, Fri, Mon, Tue, Wed 11 March 18:00.
    assert decision.deadline == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)


def test_missing_manhole_cover_in_the_dev_zone_is_urgent(route: Callable[..., Decision]) -> None:
    decision = route("开发区春秋路上井盖丢了 一个大窟窿 晚上看不见")
    assert decision.category == "road_facility"
    assert decision.department == "dev_zone"
    assert decision.urgency == "urgent"
    assert decision.explanation["urgent_rule"]["rule"] == "zh_manhole_missing"
    assert decision.deadline == OPENED + timedelta(hours=2)


def test_missing_manhole_cover_english(route: Callable[..., Decision]) -> None:
    decision = route("The manhole cover is missing outside the primary school on Dacheng Road.")
    assert decision.category == "road_facility"
    assert decision.department == "housing"
    assert decision.urgency == "urgent"
    assert decision.deadline == OPENED + timedelta(hours=2)


def test_emergency_names_the_service(route: Callable[..., Decision]) -> None:
    decision = route("快来人 我们楼三楼着火了 烟特别大")
    assert decision.urgency == "emergency"
    assert decision.emergency == "fire"
    assert decision.explanation["emergency_rule"]["number"] == "119"
    assert decision.deadline == OPENED + timedelta(hours=2)


def test_hypothetical_fire_is_not_an_emergency(route: Callable[..., Decision]) -> None:
    decision = route("我想咨询一下万一家里着火了应该怎么逃生")
    assert decision.urgency != "emergency"
    assert decision.emergency is None


def test_low_confidence_goes_to_triage(route: Callable[..., Decision]) -> None:
    decision = route("asdf qwer")  # noise from the recogniser, nothing to go on
    assert decision.confidence < 0.35
    assert decision.department == "hotline_office"
    assert decision.needs_triage
    assert decision.explanation["triage"] == "low confidence"
    # The triage time limit: one working day, Thursday 5 March 18:00.
    assert decision.deadline == datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def test_threshold_decides_triage(route: Callable[..., Decision]) -> None:
    text = "静轩路的路灯坏了"
    assert not route(text, threshold=0.0).needs_triage
    decision = route(text, threshold=1.01)
    assert decision.needs_triage and decision.department == "hotline_office"
    assert decision.category == "streetlight"  # the best guess is kept for the desk


def test_category_other_is_triaged(route: Callable[..., Decision]) -> None:
    decision = route("我就是想表扬一下你们 上次的事办得特别快 谢谢")
    assert decision.category == "other"
    assert decision.department == "hotline_office"
    assert decision.needs_triage


def test_explanation_lists_top_classes(route: Callable[..., Decision]) -> None:
    decision = route("我们小区停水两天了")
    top = decision.explanation["top"]
    assert top[0][0] == decision.category
    assert len(top) == 3
    assert set(decision.explanation["urgency_model"]) == {"emergency", "urgent", "normal"}


def test_routes_from_file_reads_the_shipped_file() -> None:
    directory = routes_from_file()
    assert {route.department for route in directory.values()} >= {"urban_mgmt", "hotline_office"}
    assert all((r.hours is None) != (r.working_days is None) for r in directory.values())
