"""Merging repeat reports (并单): the rules of routing.similarity and the goals on the labelled set.

config/merging/labelled.jsonl is replayed through the real router; the goals are pairwise
precision at least 0.97 and recall at least 0.85 (issue 15).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from routing.classifier import Classifier
from routing.merge_eval import (
    LABELLED_PATH,
    LabelledSetError,
    evaluate_merging,
    format_merge_report,
    load_labelled,
    router_route,
)
from routing.similarity import (
    MergeRules,
    MergeRulesError,
    Report,
    best_match,
    distance_metres,
    load_merge_rules,
)

T0 = datetime(2024, 5, 6, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def rules() -> MergeRules:
    return load_merge_rules()


def report(
    text: str,
    *,
    category: str = "streetlight",
    place: str | None = "lucheng",
    hours: float = 0,
    point: tuple[float, float] | None = None,
) -> Report:
    return Report(text, category, place, T0 + timedelta(hours=hours), point)


def test_three_texts_about_one_street_light_become_one_case_and_another_town_its_own(
    rules: MergeRules,
) -> None:
    cases: list[tuple[int, list[Report]]] = []
    texts = [
        report("鲁城街道鼓楼大街北头的路灯不亮了"),
        report("The street light on Gulou Street in Lucheng is out.", hours=1),
        report("鼓楼大街那个路灯坏了，晚上黑乎乎的", hours=3),
        report("吴村镇前店村的路灯不亮了", place="wucun", hours=4),
    ]
    for each in texts:
        match = best_match(each, cases, rules)
        if match is None:
            cases.append((len(cases), [each]))
        else:
            cases[match][1].append(each)
    assert [len(reports) for _, reports in cases] == [3, 1]
    assert cases[1][1][0].place_code == "wucun"


def test_another_category_never_merges(rules: MergeRules) -> None:
    open_case = report("鼓楼大街路灯不亮")
    new = report("鼓楼大街路灯不亮", category="road_facility", hours=1)
    assert best_match(new, [("A", [open_case])], rules) is None


def test_another_place_never_merges_and_a_missing_place_needs_a_landmark(
    rules: MergeRules,
) -> None:
    open_case = report("前店村村口路灯不亮", place="wucun")
    assert (
        best_match(report("前店村村口路灯不亮", place="yaocun", hours=1), [(1, [open_case])], rules)
        is None
    )
    # No place heard and nothing named in common: kept apart.
    assert (
        best_match(report("我家楼下路灯不亮", place=None, hours=1), [(1, [open_case])], rules)
        is None
    )
    # No place heard, but the same street named: the street stands for the place.
    street = report("静轩路路灯不亮", place=None)
    assert (
        best_match(
            report("Jingxuan Road street lights are out", place=None, hours=1),
            [(1, [street])],
            rules,
        )
        == 1
    )


def test_the_window_runs_from_the_latest_report(rules: MergeRules) -> None:
    window = rules.window_for("streetlight")
    first = report("鼓楼大街路灯不亮")
    late = report("鼓楼大街路灯还是不亮", hours=window / timedelta(hours=1) + 1)
    assert best_match(late, [(1, [first])], rules) is None
    repeat = report("鼓楼大街路灯又黑了", hours=window / timedelta(hours=1) - 1)
    assert best_match(late, [(1, [first, repeat])], rules) == 1
    # A personal matter never merges.
    assert rules.window_for("household_registration") == timedelta(0)
    hukou = report("鲁城派出所办身份证要多久", category="household_registration")
    assert best_match(hukou, [(1, [hukou])], rules) is None


def test_web_form_points_within_the_radius_are_one_spot(rules: MergeRules) -> None:
    here, near, far = (35.5968, 116.9861), (35.5972, 116.9866), (35.6024, 116.9861)
    assert distance_metres(here, near) < rules.radius_metres < distance_metres(here, far)
    pothole = report("路中间一个大坑", category="road_facility", place=None, point=here)
    same = report(
        "Deep pothole in the lane", category="road_facility", place=None, hours=2, point=near
    )
    other = report("路中间一个大坑", category="road_facility", place=None, hours=2, point=far)
    assert best_match(same, [(1, [pothole])], rules) == 1
    assert best_match(other, [(1, [pothole])], rules) is None


def test_text_decides_between_streets_faults_and_names(rules: MergeRules) -> None:
    gulou = report("鼓楼大街路灯不亮")
    chunqiu = report("春秋路路灯不亮", hours=1)
    assert best_match(chunqiu, [(1, [gulou])], rules) is None
    pole = report("鼓楼大街有根路灯杆被撞歪了", hours=1)
    assert best_match(pole, [(1, [gulou])], rules) is None
    village = report("王庄镇大吴村停水了", category="water_supply", place="wangzhuang")
    again = report("大吴村自来水没了，王庄的", category="water_supply", place="wangzhuang", hours=1)
    elsewhere = report(
        "王庄镇东关村路边水管漏水", category="water_supply", place="wangzhuang", hours=1
    )
    assert best_match(again, [(1, [village])], rules) == 1
    assert best_match(elsewhere, [(1, [village])], rules) is None
    # The best of several open cases wins; none matching gives None.
    assert best_match(again, [(1, [gulou]), (2, [village])], rules) == 2
    assert best_match(again, [], rules) is None


def test_the_rules_file_names_a_bad_key(tmp_path: Path) -> None:
    good = Path("config/merging.toml").read_text(encoding="utf-8")
    bad = tmp_path / "merging.toml"
    bad.write_text(good.replace("[windows]\n", "[windows]\nstreetlights = 3\n"), "utf-8")
    with pytest.raises(
        MergeRulesError, match=r"merging.toml:\d+: 'streetlights' is not a category"
    ):
        load_merge_rules(bad)
    bad.write_text(good.replace("threshold = 0.4", "threshold = 4"), "utf-8")
    with pytest.raises(MergeRulesError, match=r"merging.toml:\d+: 'threshold' = 4 is out of range"):
        load_merge_rules(bad)


def test_the_labelled_set_is_big_and_varied() -> None:
    labelled = load_labelled(LABELLED_PATH)
    clusters = Counter(each.cluster for each in labelled)
    assert len(labelled) >= 300
    assert len(clusters) >= 80
    assert {each.locale for each in labelled} == {"zh-CN", "en-US", "ko-KR"}
    assert sum(1 for size in clusters.values() if size >= 3) >= 40
    assert any(each.point for each in labelled)


def test_merging_reaches_the_goals_on_the_labelled_set(
    classifier: Classifier, tmp_path: Path
) -> None:
    path = tmp_path / "classifier.joblib"
    classifier.save(path)
    result = evaluate_merging(load_labelled(), router_route(path))
    printed = format_merge_report(result)
    assert result.overall.precision >= 0.97, printed
    assert result.overall.recall >= 0.85, printed
    assert set(result.per_locale) == {"zh-CN", "en-US", "ko-KR"}
    assert "precision" in printed.splitlines()[0]


def test_a_malformed_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "x", "cluster": "c", "locale": "fr-FR", "text": "t", "minutes": 0}\n', "utf-8"
    )
    with pytest.raises(LabelledSetError, match=r"bad.jsonl:1: unknown locale 'fr-FR'"):
        load_labelled(path)
