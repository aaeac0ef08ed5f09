"""Is a new report the same problem as an open case? The decision behind merging (并单).

A new report joins an open case when, against one of the case's reports (the first or a
co-reporter), all of these hold:
1. **Category**: the same routed category, and the category merges at all (a window of 0 hours,
   for personal matters such as one family's hukou, never merges).
2. **Time**: it came within the category's window after the case's *latest* report (or up to
   the window before its first, as parallel routing can take reports out of order), so a
   problem that keeps being reported stays one case; a report before that report is not a repeat.
3. **Place**:
   - both have web-form points: they lie within the radius (the point is more precise than a
     sub-district, so it decides, and place codes are not compared); farther apart, never;
   - otherwise both have place codes: they are equal; different, never;
   - otherwise (one or both heard no place): only if both name the same landmark or street,
     which then stands for the place. Without a place or a landmark nothing merges: the
     precision goal (0.97) matters more than recall (0.85), and a wrong merge hides a problem.
4. **Spot**: if both name landmarks or streets (config/merging.toml) but none in common, and
   their points (if any) are not within the radius, they are different problems in one
   sub-district.
5. **Fault**: if both name a kind of fault (config/merging.toml [faults]: a lamp that is out
   against a lamp post knocked over; school fees against parking at the school gate) but none in
   common, they are different problems at one spot.
6. **Text**: the similarity reaches the threshold. It is the cosine of character 2-3-gram
   TF-IDF vectors of the normalised texts with place names and landmarks taken out (what is left
   is the problem and the names the lists do not know, such as a village or a shop), weighted by
   IDF from the category corpus (an n-gram it never saw weighs most); plus `name_weight` times
   the share of rare bigrams (names) in common; plus `topic_weight` times the overlap of the
   problem topics of config/lexicon.toml (the same in Chinese, English and Korean); plus
   `spot_bonus` when they share a landmark or lie within the radius. So a Korean and a Chinese
   report of one street light on one street merge through the landmark and the topic.
The case whose best report scores highest wins; on a tie, the earlier candidate. Deterministic.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from routing.lexicon import topics
from routing.normalise import normalise

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
DEFAULT_MERGING_PATH = CONFIG_DIR / "merging.toml"
DIRECTORY_PATH = CONFIG_DIR / "directory.toml"
PLACES_PATH = CONFIG_DIR / "places.toml"

EARTH_RADIUS_METRES = 6_371_000.0
_SETTINGS = {
    "threshold": float,
    "spot_bonus": float,
    "topic_weight": float,
    "radius_metres": float,
    "default_window_hours": float,
    "name_weight": float,
    "name_place": float,
}
_TABLES = ("windows", "landmarks", "faults")

K = TypeVar("K")


class MergeRulesError(ValueError):
    """The merging rules file is malformed; the message names the file and the line."""


@dataclass(frozen=True)
class Report:
    """One report as routing heard it: words, routed category, place, time and web-form point."""

    text: str  # the report's words (transcript or written text), any of zh/en/ko
    category: str  # the routed category code (config/directory.toml categories)
    place_code: str | None  # gazetteer code from routing.places (None when no place heard)
    opened_at: datetime  # aware UTC
    point: tuple[float, float] | None = None  # (lat, long) from a web form / Open311 report


@dataclass(frozen=True)
class MergeRules:
    """Per-category windows, the default window, the similarity threshold and its weights,
    the radius, and the landmarks (key → spellings, normalised)."""

    windows: Mapping[str, timedelta]
    default_window: timedelta = timedelta(hours=48)
    threshold: float = 0.4
    spot_bonus: float = 0.45
    topic_weight: float = 0.2
    radius_metres: float = 150.0
    name_weight: float = 0.3
    name_place: float = 0.5
    landmarks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    faults: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def window_for(self, category: str) -> timedelta:
        """How long after a case's latest report a new report of `category` may join it."""
        return self.windows.get(category, self.default_window)


@dataclass(frozen=True)
class Comparison:
    """How a new report compares with one report of an open case, and why."""

    score: float  # 0 when not eligible
    eligible: bool
    reason: str  # e.g. "category", "window", "place", "landmarks differ", "similar 0.72"

    def merges(self, rules: MergeRules) -> bool:
        """Whether this comparison alone is enough to join the case."""
        return self.eligible and self.score >= rules.threshold


# --- Loading -------------------------------------------------------------------------------------


def _line_of(raw: str, key: str, table: str | None = None) -> int | None:
    """The line where `key` is set (inside [table] when given), for error messages."""
    start = 0
    if table is not None:
        header = re.search(rf"^[ \t]*\[[ \t]*{re.escape(table)}[ \t]*\]", raw, re.M)
        if header is None:
            return None
        start = header.end()
    found = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*[=\]]", re.M).search(raw, start)
    return raw.count("\n", 0, found.start()) + 1 if found else None


def _categories(path: Path = DIRECTORY_PATH) -> frozenset[str]:
    with path.open("rb") as file:
        return frozenset(tomllib.load(file)["categories"])


def load_merge_rules(
    path: Path = DEFAULT_MERGING_PATH, *, directory_path: Path = DIRECTORY_PATH
) -> MergeRules:
    """The merging rules from a file such as config/merging.toml, checked key by key."""
    raw = path.read_text(encoding="utf-8")

    def fail(key: str, table: str | None, message: str) -> NoReturn:
        line = _line_of(raw, key, table)
        where = f"{path}:{line}" if line is not None else str(path)
        raise MergeRulesError(f"{where}: {message}")

    try:
        data: dict[str, Any] = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as error:
        raise MergeRulesError(f"{path}: {error}") from error
    for key in data:
        if key not in _SETTINGS and key not in _TABLES:
            fail(key, None, f"unknown key {key!r}")
    settings: dict[str, float] = {}
    for key in _SETTINGS:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(key, None, f"{key!r} must be a number, got {value!r}")
        if value < 0 or (
            key in ("threshold", "spot_bonus", "topic_weight", "name_weight", "name_place")
            and value > 1
        ):
            fail(key, None, f"{key!r} = {value!r} is out of range")
        settings[key] = float(value)
    known = _categories(directory_path)
    windows: dict[str, timedelta] = {}
    for category, hours in _table(data, "windows", fail).items():
        if category not in known:
            fail(category, "windows", f"{category!r} is not a category of {directory_path.name}")
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours < 0:
            fail(category, "windows", f"window {category!r} must be hours >= 0, got {hours!r}")
        windows[category] = timedelta(hours=hours)
    landmarks = _spellings(_table(data, "landmarks", fail), "landmarks", fail)
    faults = _spellings(_table(data, "faults", fail), "faults", fail)
    return MergeRules(
        windows=windows,
        default_window=timedelta(hours=settings["default_window_hours"]),
        threshold=settings["threshold"],
        spot_bonus=settings["spot_bonus"],
        topic_weight=settings["topic_weight"],
        radius_metres=settings["radius_metres"],
        name_weight=settings["name_weight"],
        name_place=settings["name_place"],
        landmarks=landmarks,
        faults=faults,
    )


def _spellings(table: Mapping[str, Any], name: str, fail: Any) -> dict[str, tuple[str, ...]]:
    """Key → normalised spellings, each spelling under one key only."""
    found: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for key, spellings in table.items():
        if not isinstance(spellings, list) or not spellings:
            fail(key, name, f"{key!r} needs a list of spellings")
        terms = []
        for spelling in spellings:
            term = normalise(spelling) if isinstance(spelling, str) else ""
            if not term:
                fail(key, name, f"{key!r}: {spelling!r} is not a spelling")
            if term in seen:
                fail(key, name, f"{spelling!r} is listed under {seen[term]!r} too")
            seen[term] = key
            terms.append(term)
        found[key] = tuple(terms)
    return found


def _table(data: Mapping[str, Any], name: str, fail: Any) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        fail(name, None, f"{name!r} must be a table")
    checked: Mapping[str, Any] = table
    return checked


# --- Features ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _place_names() -> tuple[str, ...]:
    """The gazetteer's spellings, longest first: taken out before comparing, since the place
    is compared on its own and a shared sub-district says nothing about the problem."""
    with PLACES_PATH.open("rb") as file:
        places = tomllib.load(file)["places"]
    spellings = {
        normalise(str(s))
        for entry in places.values()
        for s in [entry["name"], *entry.get("aliases", ()), *entry.get("example_aliases", ())]
    }
    # Two-character spellings stay: 吴村 is a town, and also part of the village 大吴村.
    kept = (s for s in spellings if len(s) > 2)
    return tuple(sorted(kept, key=lambda s: (-len(s), s)))


def _pattern(terms: Sequence[str]) -> re.Pattern[str]:
    parts = [rf"\b{re.escape(t)}\b" if t.isascii() else re.escape(t) for t in terms]
    return re.compile("|".join(sorted(parts, key=lambda p: (-len(p), p))))


@functools.lru_cache(maxsize=8)
def _landmark_matcher(
    landmarks: tuple[tuple[str, tuple[str, ...]], ...],
) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    owner = {term: name for name, terms in landmarks for term in terms}
    return (_pattern(list(owner)) if owner else None), owner


@dataclass(frozen=True)
class _Features:
    landmarks: frozenset[str]
    faults: frozenset[str]
    topics: frozenset[str]
    rest: str  # the normalised text without place names and landmarks


@functools.lru_cache(maxsize=8192)
def _features(
    text: str,
    landmarks: tuple[tuple[str, tuple[str, ...]], ...],
    faults: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> _Features:
    normalised = normalise(text)
    fault_pattern, fault_owner = _landmark_matcher(faults)
    fault_found = (
        frozenset(fault_owner[m.group()] for m in fault_pattern.finditer(normalised))
        if fault_pattern
        else frozenset()
    )
    pattern, owner = _landmark_matcher(landmarks)
    found = frozenset(owner[m.group()] for m in pattern.finditer(normalised)) if pattern else None
    rest = pattern.sub(" ", normalised) if pattern else normalised
    rest = _pattern(_place_names()).sub(" ", rest)
    return _Features(
        landmarks=found or frozenset(),
        faults=fault_found,
        topics=frozenset(topics(normalised)),
        rest=re.sub(r"\s+", " ", rest).strip(),
    )


_CHUNK = re.compile(r"[^\W_]+")


def _grams(text: str) -> Counter[str]:
    """Character 2- and 3-grams of each run of letters (a word, or a clause of Han/Hangul)."""
    grams: Counter[str] = Counter()
    for chunk in _CHUNK.findall(text):
        padded = f" {chunk} "
        for size in (2, 3):
            grams.update(padded[i : i + size] for i in range(len(padded) - size + 1))
    return grams


@functools.lru_cache(maxsize=1)
def _document_frequency() -> tuple[Counter[str], int]:
    """How many reports of the category corpus hold each n-gram: the weights' fixed data."""
    from routing.corpus import load_category_examples

    frequency: Counter[str] = Counter()
    examples = load_category_examples()
    for example in examples:
        frequency.update(set(_grams(normalise(example.text))))
    return frequency, len(examples)


@functools.lru_cache(maxsize=8192)
def _vector(rest: str) -> dict[str, float]:
    """TF-IDF weights, L2-normalised. An n-gram the corpus never saw (a village, a shop) gets
    the highest weight: names are what tell two problems apart."""
    frequency, total = _document_frequency()
    weights = {
        gram: (1 + math.log(count)) * (math.log((1 + total) / (1 + frequency[gram])) + 1)
        for gram, count in _grams(rest).items()
    }
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {gram: w / norm for gram, w in weights.items()} if norm else {}


# An n-gram seen in at most this many corpus reports is part of a name (a village, a firm).
RARE_DOCUMENT_FREQUENCY = 1


@functools.lru_cache(maxsize=8192)
def _rare(rest: str) -> frozenset[str]:
    frequency, _ = _document_frequency()
    return frozenset(
        gram
        for gram in _grams(rest)
        if len(gram.strip()) == 2 and frequency[gram] <= RARE_DOCUMENT_FREQUENCY
    )


def name_overlap(first: str, second: str) -> float:
    """The share of the rarer text's rare bigrams (names the corpus never saw: a village, a
    firm, a housing estate) that the other text holds too."""
    mine, theirs = _rare(first), _rare(second)
    smaller = min(len(mine), len(theirs))
    return len(mine & theirs) / smaller if smaller else 0.0


def text_similarity(first: str, second: str) -> float:
    """Cosine of the TF-IDF character n-gram vectors of two (already stripped) texts."""
    mine, theirs = _vector(first), _vector(second)
    if len(theirs) < len(mine):
        mine, theirs = theirs, mine
    return min(1.0, sum(w * theirs.get(gram, 0.0) for gram, w in mine.items()))


def _jaccard(first: frozenset[str], second: frozenset[str]) -> float:
    union = first | second
    return len(first & second) / len(union) if union else 0.0


def distance_metres(first: tuple[float, float], second: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, long) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*first, *second))
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_METRES * math.asin(math.sqrt(min(1.0, a)))


# --- The decision --------------------------------------------------------------------------------


def _landmark_key(rules: MergeRules) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted(rules.landmarks.items()))


def _fault_key(rules: MergeRules) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted(rules.faults.items()))


def compare(
    new: Report,
    old: Report,
    rules: MergeRules,
    *,
    latest: datetime,
    earliest: datetime | None = None,
) -> Comparison:
    """How `new` compares with `old`, one report of an open case whose reports came from
    `earliest` to `latest`: the rules of the module docstring, in order.

    A new report may also be *older* than the case's reports by up to the window: the worker
    routes reports in parallel, so the first report of a problem can be routed after a
    later one and must still join it."""
    window = rules.window_for(new.category)
    if new.category != old.category:
        return Comparison(0.0, False, "category")
    if window <= timedelta(0):
        return Comparison(0.0, False, "category never merges")
    if not (earliest or latest) - window <= new.opened_at <= latest + window:
        return Comparison(0.0, False, "window")
    key, faults = _landmark_key(rules), _fault_key(rules)
    mine, theirs = _features(new.text, key, faults), _features(old.text, key, faults)
    shared = mine.landmarks & theirs.landmarks
    names = name_overlap(mine.rest, theirs.rest)
    near: bool | None = None
    if new.point is not None and old.point is not None:
        near = distance_metres(new.point, old.point) <= rules.radius_metres
        if not near:
            return Comparison(0.0, False, "points apart")
    elif new.place_code is not None and old.place_code is not None:
        if new.place_code != old.place_code:
            return Comparison(0.0, False, "place")
    elif not shared and names < rules.name_place:
        return Comparison(0.0, False, "no place")
    if mine.landmarks and theirs.landmarks and not shared and not near:
        return Comparison(0.0, False, "landmarks differ")
    if mine.faults and theirs.faults and not mine.faults & theirs.faults:
        return Comparison(0.0, False, "faults differ")
    score = (
        text_similarity(mine.rest, theirs.rest)
        + rules.topic_weight * _jaccard(mine.topics, theirs.topics)
        + rules.name_weight * names
        + (rules.spot_bonus if shared or near else 0.0)
    )
    score = min(1.0, score)
    return Comparison(score, True, f"similar {score:.2f}")


def case_score(new: Report, reports: Sequence[Report], rules: MergeRules) -> float | None:
    """The best score of `new` against the reports of one open case (None when none is
    eligible: another category, out of the window, another place)."""
    if not reports:
        return None
    latest = max(report.opened_at for report in reports)
    earliest = min(report.opened_at for report in reports)
    scores = [compare(new, old, rules, latest=latest, earliest=earliest) for old in reports]
    return max((c.score for c in scores if c.eligible), default=None)


def best_match(
    new: Report, candidates: Sequence[tuple[K, Sequence[Report]]], rules: MergeRules
) -> K | None:
    """The key of the open problem `new` repeats, or None. Each candidate is one open case: its key
    and the reports it holds (the first report and its co-reporters). Generic in K."""
    best: tuple[float, K] | None = None
    for key, reports in candidates:
        score = case_score(new, reports, rules)
        if score is not None and score >= rules.threshold and (best is None or score > best[0]):
            best = (score, key)
    return best[1] if best else None
