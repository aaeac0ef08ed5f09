"""Emergency and urgent rules in three languages, with negation, past and hypotheticals."""

from __future__ import annotations

import pytest

from routing.emergency import find_emergency, find_urgent, load_emergency_numbers


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("楼下着火了快来人", "fire"),
        ("我家厨房着火了怎么办啊", "fire"),
        ("喂 仓库 失火 了", "fire"),
        ("三楼冒烟了好大的烟", "fire"),
        ("有人被困火场出不来", "fire"),
        ("闻到很大的煤气味", "fire"),
        ("燃气泄漏了 快来", "fire"),
        ("天然气管道漏气了", "fire"),
        ("我爸晕倒了叫不醒", "medical"),
        ("他没有呼吸了", "medical"),
        ("老人昏迷了", "medical"),
        ("有人倒在路边不省人事", "medical"),
        ("有人拿刀砍人", "police"),
        ("有人持刀抢劫", "police"),
        ("门口有人打人 打得很凶", "police"),
        ("有人掉河里了", "police"),
        ("有个小孩溺水了", "police"),
        # The past in one clause does not guard a present fire in the next.
        ("去年着火了 现在又着火了", "fire"),
        ("上次是误报 但是这次真的着火了", "fire"),
        ("There is a fire in my building", "fire"),
        ("my neighbour's house is on fire", "fire"),
        ("smoke is pouring out of the flat upstairs", "fire"),
        ("I smell gas in the hallway", "fire"),
        ("there's a gas leak in the kitchen", "fire"),
        ("my father collapsed and is not breathing", "medical"),
        ("she is unconscious", "medical"),
        ("a man is stabbing people", "police"),
        ("someone is attacking people with a knife", "police"),
        ("someone fell into the river", "police"),
        ("a kid is drowning in the pond", "police"),
        ("집에 불이 났어요", "fire"),
        ("옆 건물에 화재가 났어요", "fire"),
        ("가스 냄새가 나요", "fire"),
        ("가스 냄새가 나요 불은 안 났어요", "fire"),
        ("할아버지가 쓰러졌어요", "medical"),
        ("의식이 없어요", "medical"),
        ("남편이 숨을 안 쉬어요", "medical"),
        ("칼을 들고 있어요", "police"),
        ("아이가 물에 빠졌어요", "police"),
    ],
)
def test_emergency_found(text: str, kind: str) -> None:
    match = find_emergency(text)
    assert match is not None, text
    assert match.kind == kind
    assert match.matched


@pytest.mark.parametrize(
    "text",
    [
        # Negation.
        "没有着火",
        "没着火 就是有点烟味",
        "不是火灾 是烧烤摊的烟",
        "他没晕倒 就是有点头晕",
        # The past.
        "上次着火是因为电线老化",
        "上个月小区着火了 物业到现在没赔偿",
        "去年我们楼着火了",
        "以前这里发生过火灾",
        "我上个月晕倒住院 医保报销的事",
        "之前有人在这打人 派出所也没处理",
        # Hypotheticals and advice.
        "怎么预防火灾",
        "如何防止燃气泄漏",
        "万一着火了怎么办",
        "万一哪天楼道里堆的东西着火了怎么办",
        "如果燃气泄漏应该打什么电话",
        "楼道堆满杂物有火灾隐患",
        # Pollution, not fire.
        "工厂烟囱冒黑烟",
        "烧烤摊冒烟 呛死人了",
        "there is no fire",
        "the house is not on fire",
        "there was a fire last month",
        "last year my neighbour had a fire",
        "how to prevent gas leaks",
        "what if there is a fire",
        "in case of fire what should we do",
        "the fire hydrant is leaking",
        "they threatened to fire me",
        "fire alarm test this afternoon",
        "black smoke coming from the factory chimney",
        "the lamp is burning all day",
        "불이 안 났어요",
        "가스 냄새는 없어요",
        "지난달에 불이 났었어요",
        "작년에 화재가 있었어요",
        "화재 예방 방법을 알고 싶어요",
        "만약 불이 나면 어떻게 해요",
        "가로등 불이 안 들어와요",
        "칼국수집 위생이 안 좋아요",
        "공장 굴뚝에서 연기가 나요",
    ],
)
def test_emergency_guarded(text: str) -> None:
    assert find_emergency(text) is None, find_emergency(text)


def test_every_kind_has_its_number_in_the_shipped_file() -> None:
    assert load_emergency_numbers() == {"fire": "119", "medical": "120", "police": "110"}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("春秋路上井盖丢了", "zh_manhole_missing"),
        ("路上没有井盖 一个大窟窿", "zh_manhole_missing"),
        ("景盖被人偷了", "zh_manhole_missing"),  # ASR homophone of 井盖
        ("the manhole cover is missing on Dacheng Road", "en_manhole_missing"),
        ("there's an open manhole outside the school", "en_manhole_missing"),
        ("맨홀 뚜껑이 없어요", "ko_manhole_missing"),
        ("有人困在电梯里了", "zh_trapped_in_lift"),
        ("two people are stuck in the lift", "en_trapped_in_lift"),
        ("엘리베이터에 사람이 갇혔어요", "ko_trapped_in_lift"),
        ("路上自来水管爆了", "zh_burst_main"),
        ("a water main burst on our street", "en_burst_main"),
        ("电线掉在地上了", "zh_live_wire_down"),
    ],
)
def test_urgent_found(text: str, rule: str) -> None:
    match = find_urgent(text)
    assert match is not None and match.rule == rule


@pytest.mark.parametrize(
    "text",
    [
        "井盖没有丢 就是一直响",
        "上个月井盖丢了 后来补上了",
        "the manhole cover rattles but it's there",
        "맨홀 뚜껑이 덜컹거려요",
        "路灯坏了",
    ],
)
def test_urgent_guarded_or_absent(text: str) -> None:
    assert find_urgent(text) is None
