"""Clear, borderline or none: emergencies told without trigger words, and the near misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.emergency import (
    DEFAULT_RULES_PATH,
    EmergencyRulesError,
    assess_emergency,
    find_emergency,
    load_rules,
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # Described, not named, as a Vosk transcript would have it (spaces, no punctuation).
        ("我 外婆 躺 在 地上 叫 她 也 不 答应", "medical"),
        ("老头 不 喘气 了 你们 快 来", "medical"),
        ("孩子 嘴唇 都 紫 了 喘 不 上 气", "medical"),
        ("我 哥 吃 了 一 整瓶 安眠药", "medical"),
        ("楼下 有 人 一直 在 打 他 媳妇", "police"),
        ("有 个 人 在 水库 里 扑腾", "police"),
        ("一 辆 车 冲 进 河 里 了", "police"),
        ("对门 门缝 里 冒 着 烟", "fire"),
        ("煤气 罐 在 嘶嘶 的 漏气", "fire"),
        ("工地 上 有 人 被 埋 了", "fire"),
        ("uh my uncle is on the floor and he wont wake up", "medical"),
        ("the baby is choking and turning blue", "medical"),
        ("a man keeps hitting his girlfriend in the street", "police"),
        ("a kid is in the canal and he cant swim", "police"),
        ("there's a baby locked in a hot car outside the mall", "fire"),
        ("삼촌이 바닥에 쓰러져서 일어나지 않아요", "medical"),
        ("누가 우리 집 문을 부수고 들어오려고 해요", "police"),
        ("할아버지가 저수지에 빠졌어요", "police"),
    ],
)
def test_clear_emergencies_told_without_trigger_words(text: str, kind: str) -> None:
    verdict = assess_emergency(text)
    assert (verdict.certainty, verdict.kind) == ("clear", kind), verdict
    match = find_emergency(text)
    assert match is not None and match.kind == kind and match.rule == verdict.rule


@pytest.mark.parametrize(
    "text",
    [
        # A past event with a present request: never an emergency.
        "火灾之后的补助什么时候发",
        "着火那栋楼的外墙什么时候修",
        "前两天有人在这落水了 能不能装个护栏",
        "the fire damaged shop on our street is still boarded up",
        "지난주에 불났던 집 철거는 언제 해요",
        # A stove that will not light, a phone in the river, figures of speech.
        "燃气灶打不着火了找谁修",
        "我的钥匙掉河里了",
        "有人一直在打我电话推销",
        "热得我都快晕倒了 公交站没有遮阳棚",
        "im drowning in homework can the library open later",
        "they are shooting a music video in the square",
        "휴대폰이 강에 빠졌어요",
        # Reported speech, prevention, the gas bill.
        "听说昨天河里有人溺水了",
        "燃气泄漏报警器谁来装",
        "how do i pay the gas bill online",
        "가스비가 너무 많이 나왔어요",
    ],
)
def test_near_misses_are_not_emergencies(text: str) -> None:
    assert assess_emergency(text).certainty == "none", assess_emergency(text)
    assert find_emergency(text) is None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("外面好像有人打架", "police"),
        ("我闻到一股焦糊味", "fire"),
        ("my neighbour fell down the stairs", "police"),
        ("옆방에서 타는 냄새가 나요", "police"),
    ],
)
def test_borderline_is_asked_not_transferred(text: str, kind: str) -> None:
    verdict = assess_emergency(text, "zh-CN")
    assert (verdict.certainty, verdict.kind) == ("borderline", kind), verdict
    # find_emergency keeps its contract: only clear emergencies are transferred.
    assert find_emergency(text) is None


def test_no_emergency_has_no_kind_and_no_rule() -> None:
    verdict = assess_emergency("路灯不亮了", "zh-CN")
    assert (verdict.kind, verdict.certainty, verdict.rule) == (None, "none", None)


def test_a_fire_that_is_out_is_not_an_emergency() -> None:
    assert assess_emergency("厨房冒烟了 不过已经扑灭了 抽油烟机坏了找谁修").certainty == "none"
    assert assess_emergency("厨房冒烟了 快来").certainty == "clear"


def _rules_with(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_RULES_PATH.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "rules.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('kind = "fire"', 'kind = "flood"', "kind 'flood'"),
        ('certainty = "borderline"', 'certainty = "maybe"', "certainty 'maybe'"),
        ("$pollution_smoke", "$no_such_fragment", "unknown $fragment"),
        ("pattern = '''(?<![打点]不)", "pattern = '''((?<![打点]不)", "zh_fire"),
        ("[guards.ko]", "[guards.korean]", "[guards.ko]"),
    ],
)
def test_a_malformed_rules_file_is_named(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(EmergencyRulesError, match=str(tmp_path)) as raised:
        load_rules(_rules_with(tmp_path, old, new))
    assert message in str(raised.value)


def test_assess_takes_another_rules_file(tmp_path: Path) -> None:
    # A city can change a rule in the data: here 路灯 becomes a (silly) clear fire word.
    rules = load_rules(
        _rules_with(tmp_path, "pattern = '''(?<![打点]不)", "pattern = '''路灯|(?<![打点]不)")
    )
    assert assess_emergency("路灯不亮", rules=rules).certainty == "clear"
    assert assess_emergency("路灯不亮").certainty == "none"
