"""Place extraction: official names, aliases, the development zone, and the longest match."""

from __future__ import annotations

import pytest

from routing.places import Gazetteer, Place, build_gazetteer, extract_place


@pytest.mark.parametrize(
    ("text", "code", "kind"),
    [
        ("鲁城街道鼓楼北街的路灯坏了", "lucheng", "subdistrict"),
        ("鲁城这边停水了", "lucheng", "subdistrict"),
        ("书院街道杏坛社区门口", "shuyuan", "subdistrict"),
        ("时庄街道那个桥", "shizhuang", "subdistrict"),
        ("小雪街道新建的小区", "xiaoxue", "subdistrict"),
        ("吴村镇通往高速口", "wucun", "town"),
        ("姚村镇中学门口", "yaocun", "town"),
        ("陵城镇集市", "lingcheng", "town"),
        ("尼山镇政府往南", "nishan", "town"),
        ("尼山那边停电了", "nishan", "town"),
        ("王庄镇主干道", "wangzhuang", "town"),
        ("息陬镇大集", "xizou", "town"),
        ("息邹镇那边", "xizou", "town"),  # an ASR spelling of the rare 陬
        ("石门山镇景区", "shimenshan", "town"),
        ("防山镇有几个村", "fangshan", "town"),
        ("开发区崇文大道", "dev_zone", "dev_zone"),
        ("曲阜经济开发区春秋路", "dev_zone", "dev_zone"),
        ("The street light in the Development Zone is out", "dev_zone", "dev_zone"),
        ("lamps in the dev zone are dark", "dev_zone", "dev_zone"),
        ("개발구 도로에 가로등이 안 들어와요", "dev_zone", "dev_zone"),
        ("I live in Nishan and the water is off", "nishan", "town"),
        ("孔庙附近的公厕", "lucheng", "subdistrict"),  # an example landmark alias
    ],
)
def test_extracts_place(gazetteer: Gazetteer, text: str, code: str, kind: str) -> None:
    place = extract_place(text, gazetteer)
    assert place is not None
    assert (place.code, place.kind) == (code, kind)


@pytest.mark.parametrize(
    "text",
    [
        "下小雪了路很滑",  # weather, not 小雪街道
        "路灯坏了",
        "the streetlight outside my house is out",
        "가로등이 고장났어요",
    ],
)
def test_no_place(gazetteer: Gazetteer, text: str) -> None:
    assert extract_place(text, gazetteer) is None


def test_longest_alias_wins(gazetteer: Gazetteer) -> None:
    place = extract_place("曲阜经济开发区那边井盖丢了", gazetteer)
    assert place == Place(code="dev_zone", name="开发区", kind="dev_zone", matched="曲阜经济开发区")


def test_longest_match_across_places() -> None:
    gazetteer = build_gazetteer(
        {
            "short": {"name": "石门", "kind": "town"},
            "long": {"name": "石门山镇", "kind": "town", "aliases": ["石门山"]},
        }
    )
    place = extract_place("石门山那边的路", gazetteer)
    assert place is not None and place.code == "long"
    place = extract_place("石门这边", gazetteer)
    assert place is not None and place.code == "short"


def test_latin_alias_needs_whole_word(gazetteer: Gazetteer) -> None:
    assert extract_place("the vanishant road", gazetteer) is None


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        build_gazetteer({"x": {"name": "某地", "kind": "county"}})
