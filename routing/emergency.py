"""Emergency and urgent rules in Mandarin, English and Korean, guarded against negation.

Kinds decide the number the call is transferred to (`load_emergency_numbers` reads them from
config/ivr.toml's [emergency_numbers] table):
- `fire` → 119: fire, smoke from a building, someone trapped by fire, and gas leaks (in China
  the fire service answers gas leaks and rescues, e.g. a person fallen into a shaft);
- `medical` → 120: someone unconscious, not breathing, collapsed, bleeding heavily, poisoned;
- `police` → 110: violence, weapons, robbery, kidnapping, and a person in the water (110
  coordinates water rescue).

Urgent rules (`find_urgent`) mark cases where hours matter but nobody is transferred: a missing
manhole cover, someone trapped in a lift, a burst main, live wires down, a sinkhole, a lost child.

Every match is checked against guards in its own clause (clauses are split on punctuation and on
"now/but" words, because ASR text has little punctuation) and within a short window of the match:
negations (没有着火, "no fire", 불이 안), the past (去年, "last month", 지난달) and hypotheticals or
advice (万一, 怎么预防, "what if", 만약, 예방). A guarded match is ignored; another, unguarded
match of any rule still fires.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from routing.normalise import normalise

EmergencyKind = Literal["fire", "medical", "police"]

_KINDS: dict[str, EmergencyKind] = {"fire": "fire", "medical": "medical", "police": "police"}
DEFAULT_IVR_PATH = Path(__file__).resolve().parent.parent / "config" / "ivr.toml"


class EmergencyNumbersError(ValueError):
    """The emergency numbers are missing or malformed; the message names the file and line."""


def load_emergency_numbers(path: Path = DEFAULT_IVR_PATH) -> dict[str, str]:
    """Kind → the number its calls are put through to, from the [emergency_numbers] table of a
    file such as config/ivr.toml: exactly fire, medical and police, each a string of digits."""
    raw = path.read_text(encoding="utf-8")
    try:
        data: dict[str, Any] = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as error:
        raise EmergencyNumbersError(f"{path}: {error}") from error
    # Where the table is set: its [emergency_numbers] header (or an inline or dotted key).
    table_at = re.search(
        r"^[ \t]*(?:\[[ \t]*emergency_numbers[ \t]*\]|emergency_numbers[ \t]*[.=])", raw, re.M
    )

    def fail(kind: str | None, message: str) -> EmergencyNumbersError:
        # Named at the line of the kind's `key = ` in the table, else at the table's own line.
        found = table_at
        if table_at and kind is not None:
            table_end = re.compile(r"^[ \t]*\[", re.M).search(raw, table_at.end())
            key = re.compile(rf"^[ \t]*{re.escape(kind)}[ \t]*=", re.M)
            end = table_end.start() if table_end else len(raw)
            found = key.search(raw, table_at.end(), end) or table_at
        if found is None:
            return EmergencyNumbersError(f"{path}: {message}")
        line = raw.count("\n", 0, found.start()) + 1
        return EmergencyNumbersError(f"{path}:{line}: {message}")

    table = data.get("emergency_numbers")
    if not isinstance(table, dict):
        raise fail(None, "needs an [emergency_numbers] table: fire, medical and police")
    for kind, number in table.items():
        if kind not in _KINDS:
            raise fail(kind, f"unknown emergency kind {kind!r}: fire, medical or police")
        if not isinstance(number, str) or not re.fullmatch(r"[0-9]+", number):
            raise fail(kind, f"{kind} = {number!r} is not a string of digits")
    missing = [kind for kind in _KINDS if kind not in table]
    if missing:
        raise fail(None, f"[emergency_numbers] lacks {', '.join(missing)}")
    return {kind: table[kind] for kind in _KINDS}


@dataclass(frozen=True)
class EmergencyMatch:
    """An unguarded emergency rule match: its kind (the number), the rule and the words."""

    kind: EmergencyKind
    rule: str
    matched: str


@dataclass(frozen=True)
class UrgentMatch:
    """An unguarded urgent rule match: the rule and the words."""

    rule: str
    matched: str


@dataclass(frozen=True)
class _Rule:
    name: str
    kind: str
    pattern: re.Pattern[str]
    # Words in the same clause that make the match something else (chimney smoke is pollution).
    unless: re.Pattern[str] | None = None


def _rule(name: str, kind: str, pattern: str, unless: str | None = None) -> _Rule:
    return _Rule(name, kind, re.compile(pattern), re.compile(unless) if unless else None)


_PERSON_EN = (
    r"(?:he|she|someone|somebody|a man|a woman|man|woman|person|guy|lady|kid|child|boy|girl|baby"
    r"|grandma|grandpa|grandmother|grandfather|father|mother|dad|mom|mum|husband|wife|son"
    r"|daughter|neighbou?r|worker|friend|old man|old lady|student|customer|passenger)"
)
_WATER_EN = r"(?:river|lake|water|pond|canal|sea|reservoir|pool|moat|ditch)"
_POLLUTION_SMOKE = (
    r"烟囱|油烟|烧烤|烤串|秸秆|焚烧|工厂|厂子|厂里|锅炉"
    r"|chimney|factory|barbecue|bbq|grill|exhaust|굴뚝|공장|고기집"
)

EMERGENCY_RULES: tuple[_Rule, ...] = (
    # Fire (119).
    _rule("zh_fire", "fire", r"着火|失火|起火|火灾|烧起来了|烧着了|火烧起来|大火|火势|着了火"),
    _rule("zh_trapped_fire", "fire", r"被困火场|困在火里|火里出不来|被火困住|被烟困住"),
    _rule("zh_smoke", "fire", r"冒烟|冒黑烟|浓烟|烟很大|全是烟|都是烟", unless=_POLLUTION_SMOKE),
    _rule(
        "en_fire",
        "fire",
        r"\bon fire\b|\bcaught fire\b|\bcatching fire\b|\bfire\b(?!\s*(?:hydrants?|works|fighters?"
        r"|station|extinguishers?|exits?|doors?|escapes?|alarms?|safety|hazards?|code|drills?"
        r"|insurance|department|service|me\b|us\b|him\b|her\b|them\b|people|workers|staff))",
    ),
    _rule(
        "en_burning",
        "fire",
        r"\b(?:is|are|was) burning\b"
        r"(?!\s*(?:rubbish|garbage|trash|leaves|straw|waste|plastic|coal))"
        r"|\bburning down\b|\bflames\b",
        # A lamp "burning all day" is lit, and incense burns at the temples.
        unless=r"\b(?:lamps?|lights?|bulbs?|candles?|incense)\b",
    ),
    _rule(
        "en_smoke",
        "fire",
        r"\bsmoke (?:is )?(?:coming|pouring|billowing)\b|\b(?:full|filled) (?:of|with) smoke\b"
        r"|\btrapped (?:in|by) (?:the )?(?:fire|flames|smoke)\b",
        unless=_POLLUTION_SMOKE,
    ),
    _rule(
        "ko_fire",
        "fire",
        r"불이\s*났|불났|불이\s*붙|불타|불길|화재|타고\s*있어|연기가\s*(?:많이\s*)?(?:나|차|자욱)",
        unless=_POLLUTION_SMOKE,
    ),
    # Gas leaks (119 in China).
    _rule(
        "zh_gas_leak",
        "fire",
        r"(?:煤气|燃气|天然气|液化气)(?:罐|管道?|灶|阀门?)?(?:泄漏|泄露|漏气|漏了|在漏|味)"
        r"|闻到(?:一股)?(?:很大的)?(?:煤气|燃气|天然气|液化气)|(?:煤气|燃气)中毒",
    ),
    _rule(
        "en_gas_leak",
        "fire",
        r"\bgas leak(?:s|ing)?\b|\bleaking gas\b|\bgas is leaking\b|\bsmell(?:s|ing)? (?:of )?gas\b"
        r"|\bsmells like gas\b|\bgas smell\b",
    ),
    _rule("ko_gas_leak", "fire", r"가스\s*(?:누출|누설|냄새)|가스가\s*(?:새|샌|누출)"),
    # Medical (120).
    _rule(
        "zh_medical",
        "medical",
        r"晕倒|昏倒|晕过去|昏过去|昏迷|没有呼吸|没呼吸|没了呼吸|呼吸停止|不省人事|没有意识|没意识"
        r"|失去意识|叫不醒|心脏骤停|心跳停|口吐白沫|抽搐|休克|倒地不起|大出血|流血不止|血流不止"
        r"|喘不上气|上不来气|心梗|心脏病(?:犯了|发作)|喝了农药|喝药了|服毒|吃了安眠药",
    ),
    _rule(
        "en_medical",
        "medical",
        rf"\bunconscious\b|\bnot breathing\b|\bisn't breathing\b|\bstopped breathing\b"
        rf"|\bcan't breathe\b|\bcannot breathe\b|\bunresponsive\b|\bheart attack\b"
        rf"|\bhaving a (?:seizure|stroke)\b|\bbleeding (?:heavily|badly|a lot)\b|\boverdosed?\b"
        rf"|\b{_PERSON_EN}(?:'s| has| had| just| suddenly| is| was)*\s+(?:collapsed|passed out"
        rf"|fainted|fell unconscious)\b",
    ),
    _rule(
        "ko_medical",
        "medical",
        r"의식이\s*없|의식을\s*잃|정신을\s*잃|숨을\s*(?:안|못)\s*쉬|숨을\s*쉬지\s*않|호흡이\s*없"
        r"|쓰러졌|쓰러져\s*있|기절|심장마비|경련|피를\s*많이|발작",
    ),
    # Violence and water rescue (110).
    _rule(
        "zh_violence",
        "police",
        r"打人|殴打|在打我|打起来了|打架斗殴|斗殴|群殴|持刀|拿刀|拿着刀|动刀|砍人|砍伤|捅人|捅伤"
        r"|杀人|行凶|抢劫|抢包|绑架|持枪|开枪|家暴|要跳楼|想跳楼|要自杀",
    ),
    _rule(
        "zh_water_rescue",
        "police",
        r"落水|溺水|掉(?:进|到)?(?:河|湖|水|水库|池塘|护城河)里|跳河|跳湖|被水冲走",
    ),
    _rule(
        "en_violence",
        "police",
        r"\bstabb(?:ing|ed)\b|\bbeing (?:attacked|beaten|robbed)\b"
        r"|\battacking (?:people|someone|me|us|him|her|them)\b"
        r"|\bbeating (?:him|her|someone|me|us|them|up)\b"
        r"|\b(?:with|has|holding|pulled) a (?:knife|gun|machete)\b"
        r"|\bgunman\b|\bshooting\b|\bshots fired\b|\barmed robbery\b|\bkidnapp(?:ed|ing)\b",
    ),
    _rule(
        "en_water_rescue",
        "police",
        rf"\bdrowning\b|\b(?:fell|fallen|jumped) in(?:to)? the {_WATER_EN}\b"
        rf"|\bsomeone in the {_WATER_EN}\b",
    ),
    _rule(
        "ko_violence",
        "police",
        r"칼(?!국수)(?:을|로|이|\s*들)|흉기|폭행|때리고\s*있|맞고\s*있|강도|납치|총을|뛰어내리려",
    ),
    _rule("ko_water_rescue", "police", r"물에\s*빠|익사|물에\s*떠내려"),
)

_COVER_ZH = r"(?:井盖子?|景盖|警盖|窨井盖|下水道盖子?|下水井盖|雨水井盖|污水井盖|马葫芦盖)"
_COVER_KO = r"맨홀\s*뚜껑"

URGENT_RULES: tuple[_Rule, ...] = (
    _rule(
        "zh_manhole_missing",
        "urgent",
        rf"{_COVER_ZH}(?:被人|被|让人)?(?:偷走|偷了|丢了|丢失|没了|不见了|缺失|掉下去了?|掉进去|被偷"
        rf"|拿走|撬走|少了|都没有|翻了|碎了|塌了|陷下去)|(?:没有|没|缺了?|少了?)(?:个|一个)?{_COVER_ZH}"
        r"|井口(?:敞着|露着|开着)|敞口的井",
    ),
    _rule(
        "en_manhole_missing",
        "urgent",
        r"\b(?:missing|stolen|no|open|uncovered|broken) manhole\b|\bmanhole cover (?:is |has been "
        r"|was |got )?(?:missing|stolen|gone|removed|broken|taken)\b"
        r"|\bmanhole (?:is )?(?:open|uncovered)\b",
    ),
    _rule(
        "ko_manhole_missing",
        "urgent",
        rf"{_COVER_KO}(?:이|을|가)?\s*(?:없|사라|도난|훔쳐|깨졌|열려)|뚜껑\s*없는\s*맨홀|맨홀이\s*열려",
    ),
    _rule(
        "zh_trapped_in_lift",
        "urgent",
        r"困在电梯|被困电梯|困电梯里|电梯里困|关在电梯|电梯困人|卡在电梯|电梯里出不来|电梯.{0,4}困住",
    ),
    _rule(
        "en_trapped_in_lift",
        "urgent",
        r"\b(?:trapped|stuck) in (?:the |an |a )?(?:lift|elevator)\b",
    ),
    _rule("ko_trapped_in_lift", "urgent", r"엘리베이터.{0,8}갇"),
    _rule(
        "zh_burst_main",
        "urgent",
        r"主管道?爆|自来水管(?:道)?爆|水管(?:子)?爆了|爆管|管道爆裂|水管炸了|水管破裂.{0,6}(?:淹|喷)",
    ),
    _rule("en_burst_main", "urgent", r"\bburst (?:water )?main\b|\bwater main (?:has )?burst\b"),
    _rule("ko_burst_main", "urgent", r"수도관이?\s*(?:터졌|터져|파열)|상수도관"),
    _rule(
        "zh_live_wire_down",
        "urgent",
        r"电线(?:掉|垂|耷拉|断)(?:下来|在地上|到地上|了)|高压线(?:断|掉)|电线杆(?:倒|歪倒|断)|漏电|电线.{0,3}打火",
    ),
    _rule(
        "en_live_wire_down",
        "urgent",
        r"\b(?:power|electric|live) (?:lines?|wires?|cables?) (?:is |are )?(?:down|hanging|dangling"
        r"|on the ground|sparking)\b|\bdowned power lines?\b",
    ),
    _rule("ko_live_wire_down", "urgent", r"전선이?\s*(?:끊어|늘어져|떨어져)|전봇대가?\s*쓰러|누전"),
    _rule("zh_sinkhole", "urgent", r"路面塌陷|地面塌陷|塌陷了|路塌了|地陷"),
    _rule("en_sinkhole", "urgent", r"\bsinkhole\b|\broad (?:has )?(?:collapsed|caved in)\b"),
    _rule("ko_sinkhole", "urgent", r"싱크홀|(?:도로|땅)이\s*꺼졌"),
    _rule("zh_lost_person", "urgent", r"孩子(?:丢了|走丢|不见了)|走失|找不到(?:孩子|老人)"),
    _rule("en_lost_person", "urgent", r"\b(?:lost|missing) (?:child|kid|boy|girl|son|daughter)\b"),
    _rule("ko_lost_person", "urgent", r"아이를\s*잃어|아이가\s*없어졌|실종"),
)

# Clauses end at punctuation and at words that move the story to "now" or turn it ("but").
_CLAUSE_BREAK = re.compile(
    r"[，,。.!！?？;；:：\n…]|但是|可是|不过|然而|结果|现在|刚才|刚刚|这会儿|这次|这回|今天"
    r"|\bbut\b|\bnow\b|\btoday\b|\bthis time\b|근데|그런데|하지만|지금|방금|오늘|이번에"
)

_ZH_NEGATION = re.compile(r"没有|没|不是|并非|未|无|不会")
_ZH_CONTEXT = re.compile(
    r"万一|如果|要是|假如|假设|一旦|预防|防止|防范|怎么防|如何防|隐患|演练|演习|宣传|培训|知识|会不会"
    r"|容易|担心|害怕|生怕|就怕|以防|以免|防火|预案|上次|上回|上个月|上周|上星期|上礼拜|去年|前年"
    r"|以前|之前|当时|那次|那天|曾经|前几天|前些天|昨天|前天|几天前|年前|月前"
)
_ZH_AFTER = re.compile(
    r"隐患|演练|演习|预防|防范|知识|宣传|已经灭|扑灭|灭了|没事了|的事|是去年|是上|保险|赔偿|怎么预防"
    r"|如何预防|怎么防|是假的|没发生"
)
_EN_NEGATION = re.compile(
    r"\b(?:no|not|isn't|wasn't|aren't|weren't|never|don't|doesn't|didn't|nobody|without|nothing)\b"
    r"|n't\b"
)
_EN_CONTEXT = re.compile(
    r"\b(?:if|what if|in case|suppose|supposing|prevent|prevention|preventing|avoid|drills?"
    r"|safety|hazards?|risk|tips|insurance|last (?:week|month|year|time|summer|winter|spring|autumn"
    r"|fall)|yesterday|ago|used to|previously|in the past|back in)\b"
)
_EN_AFTER = re.compile(
    r"\b(?:last (?:week|month|year|time|summer|winter)|ago|yesterday|drills?|safety|hazards?|risk"
    r"|insurance|prevention)\b|\bis (?:out|over)\b|\bwas put out\b"
)
_KO_NEGATION = re.compile(r"(?:^|\s)(?:안|못)(?:\s|$)|아니|않|없")
_KO_CONTEXT = re.compile(
    r"만약|만일|혹시|예방|방지|대비|훈련|지난달|지난주|지난번|작년|재작년|예전|전에|어제|그저께|옛날|보험"
)
_KO_AFTER = re.compile(
    r"(?:^|\s)(?:안|못)(?:\s|$)|아니|않|없|면(?:\s|$|요)|을까|할까|었었|았었|났었|던|적이|예방|대비|훈련|보험|위험"
)

_HAN = re.compile(r"[\u3400-\u9fff]")
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _clause_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = 0
    for found in _CLAUSE_BREAK.finditer(text, 0, start):
        left = found.end()
    after = _CLAUSE_BREAK.search(text, end)
    return left, after.start() if after else len(text)


def _last_tokens(text: str, count: int) -> str:
    return " ".join(text.split()[-count:]) if count else ""


def _first_tokens(text: str, count: int) -> str:
    return " ".join(text.split()[:count])


def _guard(text: str, start: int, end: int) -> str | None:
    """The guard that voids the match at text[start:end], or None when it stands."""
    left, right = _clause_bounds(text, start, end)
    before, after = text[left:start], text[end:right]
    matched = text[start:end]
    if _HAN.search(matched):
        checks = (
            ("negation", _ZH_NEGATION, before[-4:]),
            ("context", _ZH_CONTEXT, before[-12:]),
            ("context", _ZH_AFTER, after[:6]),
        )
    elif _HANGUL.search(matched):
        # Korean puts negation, tense and condition after the word: check the next two words.
        checks = (
            ("negation", _KO_NEGATION, _last_tokens(before, 1)),
            ("context", _KO_CONTEXT, _last_tokens(before, 6)),
            ("context", _KO_AFTER, _first_tokens(after, 2)),
        )
    else:
        checks = (
            ("negation", _EN_NEGATION, _last_tokens(before, 4)),
            ("context", _EN_CONTEXT, _last_tokens(before, 10)),
            ("context", _EN_AFTER, _first_tokens(after, 6)),
        )
    for label, pattern, window in checks:
        if pattern.search(window):
            return label
    return None


def _first_unguarded(text: str, rules: tuple[_Rule, ...]) -> tuple[_Rule, str] | None:
    for rule in rules:
        for found in rule.pattern.finditer(text):
            left, right = _clause_bounds(text, found.start(), found.end())
            if rule.unless and rule.unless.search(text[left:right]):
                continue
            if _guard(text, found.start(), found.end()) is None:
                return rule, found.group(0)
    return None


def find_emergency(text: str) -> EmergencyMatch | None:
    """The first unguarded emergency rule match in a transcript, or None."""
    hit = _first_unguarded(normalise(text), EMERGENCY_RULES)
    if hit is None:
        return None
    rule, matched = hit
    return EmergencyMatch(kind=_KINDS[rule.kind], rule=rule.name, matched=matched)


def find_urgent(text: str) -> UrgentMatch | None:
    """The first unguarded urgent rule match (missing manhole cover, lift, burst main), or None."""
    hit = _first_unguarded(normalise(text), URGENT_RULES)
    if hit is None:
        return None
    rule, matched = hit
    return UrgentMatch(rule=rule.name, matched=matched)
