"""Places drivers type ("sundbyberg", "Göteborg central", typos) → a position."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from backend.paths import DATA_DIR

PLACES_FILE = DATA_DIR / "places.yaml"


def fold(text: str) -> str:
    """Case- and accent-folded, single-spaced: "Göteborg  Central" → "goteborg central"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join("".join(ch if ch.isalnum() else " " for ch in plain).split())


@dataclass(frozen=True)
class Place:
    name: str
    latitude: float
    longitude: float


class Gazetteer:
    """Place names and aliases, prepared once, matched fuzzily."""

    def __init__(self, places: list[Place], aliases: dict[str, Place]) -> None:
        self._by_key: dict[str, Place] = {}
        for place in places:
            self._by_key[fold(place.name)] = place
        for alias, place in aliases.items():
            self._by_key.setdefault(fold(alias), place)
        self._keys = list(self._by_key)
        self._exact_cache: dict[tuple[str, float], Place | None] = {}

    @classmethod
    def load(cls, path: Path = PLACES_FILE) -> Gazetteer:
        with path.open(encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        places, aliases = [], {}
        for entry in document["places"]:
            place = Place(entry["name"], float(entry["latitude"]), float(entry["longitude"]))
            places.append(place)
            for alias in entry.get("aliases") or []:
                aliases[alias] = place
        return cls(places, aliases)

    def with_extra(self, extra: list[Place]) -> Gazetteer:
        """The same gazetteer plus e.g. station names."""
        combined = Gazetteer([], {})
        combined._by_key = {**{fold(p.name): p for p in extra}, **self._by_key}
        combined._keys = list(combined._by_key)
        return combined

    def resolve_exactly(self, text: str, threshold: float = 85.0) -> Place | None:
        """A place named by the whole text, allowing only a typo or two (not a part of a name)."""
        key = (text, threshold)
        if key not in self._exact_cache:
            if len(self._exact_cache) >= 4096:
                self._exact_cache.clear()
            self._exact_cache[key] = self._resolve_exactly(text, threshold)
        return self._exact_cache[key]

    def _resolve_exactly(self, text: str, threshold: float) -> Place | None:
        return self._lookup(text, fuzz.ratio, threshold)

    def resolve(self, text: str, threshold: float = 80.0) -> Place | None:
        """The place the text names, also by a part of a name ("sumpan", "Göteborg central")."""
        return self._lookup(text, fuzz.WRatio, threshold)

    def _lookup(self, text: str, scorer: Any, threshold: float) -> Place | None:
        query = fold(text)
        if not query:
            return None
        if query in self._by_key:
            return self._by_key[query]
        best = process.extractOne(query, self._keys, scorer=scorer, score_cutoff=threshold)
        return self._by_key[best[0]] if best else None
