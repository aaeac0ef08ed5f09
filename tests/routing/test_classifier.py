"""The classifier on fresh texts (none of them in the corpus), batch use, speed and artefacts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import sklearn

from routing.classifier import (
    MAGIC,
    Classifier,
    ModelFormatError,
    ModelVersionError,
    train,
)
from routing.corpus import CATEGORIES, Example, load_category_examples
from routing.normalise import normalise

# Written for this test, not taken from or adapted to the corpus.
HELD_OUT: list[tuple[str, str]] = [
    ("streetlight", "喂 我们杏坛路北头那几盏路灯 这一个礼拜天天晚上都不亮 黑咕隆咚的"),
    ("streetlight", "The lamp posts along the canal path have all gone dark since Tuesday."),
    ("streetlight", "우리 동네 골목 가로등이 일주일째 꺼져 있어요"),
    ("road_facility", "嗯 我们村口那条水泥路 让拉沙子的车压得全是大坑 电动车都没法骑"),
    ("road_facility", "There's a deep pothole in the middle of the lane outside the post office."),
    ("road_facility", "집 앞 도로가 움푹 패여서 자전거가 자꾸 넘어져요"),
    ("water_supply", "今天一早拧开水龙头一滴水都没有 问了邻居也都停水了 也没通知"),
    ("water_supply", "Our tap water has been brown and cloudy for three days now."),
    ("water_supply", "아침부터 수돗물이 안 나와요 공지도 없었어요"),
    ("power_supply", "我们这一片下午突然停电了 到现在也没来电 冰箱里的肉都化了"),
    (
        "power_supply",
        "We've had a power outage since this morning and no one knows when it'll be back.",
    ),
    ("power_supply", "오늘 오후부터 정전이 돼서 아직도 전기가 안 들어와요"),
    ("sanitation", "我们楼后头那个垃圾桶一个礼拜没人清了 臭得要命 招苍蝇"),
    ("sanitation", "The rubbish at the corner of our street hasn't been collected for a week."),
    ("sanitation", "골목 쓰레기를 일주일째 아무도 안 치워 가요"),
    ("illegal_construction", "隔壁邻居在楼顶私自加盖了两间彩钢房 也没见有什么审批手续"),
    (
        "illegal_construction",
        "My neighbour is illegally building an extra storey on his house without a permit.",
    ),
    ("illegal_construction", "옆집이 허가도 없이 옥상에 방을 지었어요"),
    ("noise_pollution", "旁边工地每天夜里一两点还在打桩 咣咣响 一家人都睡不着觉"),
    (
        "noise_pollution",
        "The building site behind us works through the night and the noise is unbearable.",
    ),
    ("noise_pollution", "밤새 공사 소음 때문에 잠을 한숨도 못 잤어요"),
    ("public_order", "有几个人天天在小区凉亭里聚众赌博 吵吵嚷嚷 还有人放贷"),
    ("public_order", "Someone stole my bicycle from outside my building last night."),
    ("public_order", "누가 아파트 주차장에서 제 오토바이를 훔쳐 갔어요"),
    ("household_registration", "我想给刚出生的儿子报户口 要带哪些材料去派出所"),
    (
        "household_registration",
        "I need to replace my lost ID card, which police station handles that?",
    ),
    ("household_registration", "신분증을 잃어버려서 다시 만들어야 해요"),
    ("social_assistance", "我老伴常年卧床 我也没有收入 想申请低保 不知道找谁"),
    (
        "social_assistance",
        "My disabled brother gets no allowance at all and we're struggling to eat.",
    ),
    ("social_assistance", "장애가 있는 동생이 수당을 하나도 못 받아서 생활이 너무 어려워요"),
    ("wage_arrears", "我在工地上干了四个月 包工头一分钱工资都没给我们结"),
    (
        "wage_arrears",
        "The factory owes me three months of wages and the boss won't answer my calls.",
    ),
    ("wage_arrears", "공장에서 석 달 치 월급을 안 주고 사장은 연락이 안 돼요"),
    ("social_insurance", "我今年到退休年龄了 想问问养老金怎么领 社保交了二十年"),
    ("social_insurance", "My employer never paid into my pension and social insurance account."),
    ("social_insurance", "회사가 제 연금 보험료를 한 번도 안 냈어요"),
    ("consumer_rights", "在一家超市买的面包长毛了 找他们退 店员说不退"),
    ("consumer_rights", "The shop sold me a fake handbag and refuses to give me a refund."),
    ("consumer_rights", "가게에서 산 빵에 곰팡이가 폈는데 환불을 안 해 줘요"),
    ("transport", "12路公交车老是不按点来 一等就是四十分钟 司机还爱答不理"),
    ("transport", "The taxi driver refused to turn on the meter and demanded a fixed fare."),
    ("transport", "택시 기사가 미터기를 안 켜고 요금을 마음대로 받았어요"),
    ("education", "孩子学校每学期都乱收费 资料费辅导费 老师还让去她家补课"),
    ("education", "My son's school keeps charging extra fees for books and tutoring."),
    ("education", "아이 학교에서 교재비를 자꾸 따로 걷어요"),
    ("healthcare", "我带孩子去医院看急诊 等了两个小时医生也不来 护士态度还很差"),
    (
        "healthcare",
        "I waited four hours at the hospital and the doctor only saw me for one minute.",
    ),
    ("healthcare", "병원에서 네 시간이나 기다렸는데 의사가 일 분만 봤어요"),
    ("consultation", "请问一下 办理营业执照需要准备哪些材料 在哪个窗口办"),
    ("consultation", "Could you tell me how to apply for a business licence for a small café?"),
    ("consultation", "작은 카페를 열려면 영업 허가증은 어디서 신청하나요"),
    ("other", "我就是想表扬一下你们 上回我反映的事情两天就给办好了 谢谢"),
    ("other", "I just wanted to say thank you for sorting out my problem so quickly."),
    ("other", "지난번 민원을 빨리 해결해 주셔서 감사하다고 말씀드리려고요"),
]


def test_held_out_texts_are_not_in_the_corpus() -> None:
    corpus = {normalise(example.text) for example in load_category_examples()}
    assert not [text for _, text in HELD_OUT if normalise(text) in corpus]
    assert {category for category, _ in HELD_OUT} == set(CATEGORIES)


@pytest.mark.parametrize(("category", "text"), HELD_OUT)
def test_recognises_fresh_reports(classifier: Classifier, category: str, text: str) -> None:
    prediction = classifier.predict(text)
    assert prediction.category == category, prediction.top


def test_prediction_shape(classifier: Classifier) -> None:
    prediction = classifier.predict("静轩路的路灯不亮了")
    assert prediction.top[0] == (prediction.category, prediction.confidence)
    assert len(prediction.top) == 3
    assert all(a[1] >= b[1] for a, b in zip(prediction.top, prediction.top[1:], strict=False))
    assert 0.0 < prediction.confidence <= 1.0


def test_fast_path_matches_the_pipeline(classifier: Classifier) -> None:
    texts = [text for _, text in HELD_OUT]
    batch = classifier.predict_many(texts)
    for text, together in zip(texts, batch, strict=True):
        alone = classifier.predict(text)
        assert alone.category == together.category
        assert alone.confidence == pytest.approx(together.confidence, abs=1e-9)
    assert classifier.predict_many([]) == []


def test_urgency_model(classifier: Classifier) -> None:
    urgency = classifier.predict_urgency("春秋路上的井盖被人偷走了 一个大黑洞")
    assert urgency is not None and urgency.urgency == "urgent"
    urgency = classifier.predict_urgency("想问一下公积金怎么提取")
    assert urgency is not None and urgency.urgency == "normal"


def test_speed(classifier: Classifier) -> None:
    texts = [text for _, text in HELD_OUT] * 19  # 1026 texts
    classifier.predict(texts[0])
    started = time.perf_counter()
    for text in texts[:200]:
        classifier.predict(text)
    single = (time.perf_counter() - started) / 200
    started = time.perf_counter()
    classifier.predict_many(texts[:1000])
    batch = time.perf_counter() - started
    # Generous bounds for a busy CI machine; the measured figures are far below.
    assert single < 0.005
    assert batch < 2.0


def test_save_and_load_round_trip(classifier: Classifier, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    classifier.save(path)
    with path.open("rb") as file:
        assert file.readline() == MAGIC
        header = json.loads(file.readline())
    assert header["sklearn_version"] == sklearn.__version__
    assert header["corpus_sha256"] == classifier.header.corpus_sha256
    loaded = Classifier.load(path)
    assert loaded.header == classifier.header
    for _, text in HELD_OUT[:10]:
        assert loaded.predict(text) == classifier.predict(text)


def test_load_refuses_another_sklearn_version(classifier: Classifier, tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    classifier.save(path)
    lines = path.read_bytes().split(b"\n", 2)
    header = json.loads(lines[1])
    header["sklearn_version"] = "0.0.1"
    path.write_bytes(b"\n".join([lines[0], json.dumps(header).encode(), lines[2]]))
    with pytest.raises(ModelVersionError, match=r"scikit-learn 0\.0\.1"):
        Classifier.load(path)


def test_load_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "not-a-model.joblib"
    path.write_bytes(b"hello\n")
    with pytest.raises(ModelFormatError):
        Classifier.load(path)


def test_train_without_urgency_and_with_two_classes() -> None:
    examples = [
        Example("路灯不亮了", "streetlight", "zh-CN"),
        Example("路灯坏了好几天", "streetlight", "zh-CN"),
        Example("停水了没有水", "water_supply", "zh-CN"),
        Example("自来水停了", "water_supply", "zh-CN"),
    ]
    small = train(examples)
    assert small.predict_urgency("路灯") is None
    assert small.predict("我们这停水了").category == "water_supply"
    together = small.predict_many(["我们这停水了"])[0]
    assert small.predict("我们这停水了").confidence == pytest.approx(together.confidence)
    with pytest.raises(ValueError):
        train([])
