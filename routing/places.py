"""Place names: the gazetteer of towns, sub-districts and the development zone."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from routing.normalise import normalise

PlaceKind = Literal["town", "subdistrict", "dev_zone"]
PLACE_KINDS: tuple[PlaceKind, ...] = ("town", "subdistrict", "dev_zone")

DEFAULT_PLACES_PATH = Path(__file__).resolve().parent.parent / "config" / "places.toml"


@dataclass(frozen=True)
class Place:
    """A place found in a transcript: its code, official name, kind and the words matched."""

    code: str
    name: str
    kind: PlaceKind
    matched: str


@dataclass(frozen=True)
class _Alias:
    text: str
    code: str
    name: str
    kind: PlaceKind
    # Latin aliases must stand as whole words ("nishan" not inside another word).
    pattern: re.Pattern[str] | None


@dataclass(frozen=True)
class Gazetteer:
    """Every alias of every place, longest first."""

    aliases: tuple[_Alias, ...]


def build_gazetteer(places: Mapping[str, Mapping[str, Any]]) -> Gazetteer:
    """A gazetteer from plain data: code → {name, kind, aliases, example_aliases}."""
    aliases: list[_Alias] = []
    for code, entry in places.items():
        name = str(entry["name"])
        kind = entry["kind"]
        if kind not in PLACE_KINDS:
            raise ValueError(f"place {code!r}: kind {kind!r} is not one of {PLACE_KINDS}")
        spellings = [name, *entry.get("aliases", ()), *entry.get("example_aliases", ())]
        for spelling in dict.fromkeys(normalise(str(s)) for s in spellings):
            if not spelling:
                continue
            latin = spelling.isascii()
            pattern = re.compile(rf"\b{re.escape(spelling)}\b") if latin else None
            aliases.append(_Alias(spelling, code, name, cast(PlaceKind, kind), pattern))
    aliases.sort(key=lambda alias: -len(alias.text))
    return Gazetteer(aliases=tuple(aliases))


def load_gazetteer(path: Path = DEFAULT_PLACES_PATH) -> Gazetteer:
    """Read the gazetteer from a TOML file such as config/places.toml."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    return build_gazetteer(data["places"])


def _find(text: str, alias: _Alias) -> int:
    if alias.pattern is None:
        return text.find(alias.text)
    found = alias.pattern.search(text)
    return found.start() if found else -1


def extract_place(text: str, gazetteer: Gazetteer) -> Place | None:
    """The place named in a transcript: the longest alias found wins, then the earliest."""
    normalised = normalise(text)
    best: tuple[int, _Alias] | None = None
    for alias in gazetteer.aliases:
        if best is not None and len(alias.text) < len(best[1].text):
            break
        position = _find(normalised, alias)
        if position >= 0 and (best is None or position < best[0]):
            best = (position, alias)
    if best is None:
        return None
    alias = best[1]
    return Place(code=alias.code, name=alias.name, kind=alias.kind, matched=alias.text)
