"""Word normalisation as data: colloquial forms, synonyms and Swedish compounds (lexicon.yaml)."""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml

LEXICON_FILE = Path(__file__).resolve().parent.parent.parent / "data" / "lexicon.yaml"
# Only words at least this long are split, into parts at least _MIN_PART long.
_MIN_COMPOUND = 6
_MIN_PART = 3
_SPLIT_CACHE = 8192

_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "þ": "th"})
_NON_WORD = re.compile(r"[\W_]+")
_LETTERS = re.compile(r"[a-z]+")
_SECTIONS = frozenset({"replace", "synonyms", "compounds"})


def fold(text: str) -> str:
    """Fold text for matching: casefold, strip accents (å→a, ö→o), words only, single spaces."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    bare = "".join(char for char in folded if not unicodedata.combining(char))
    return " ".join(_NON_WORD.sub(" ", bare).split())


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"{where}: {problem}")


def _words(value: object, where: str) -> tuple[str, ...]:
    """The folded words of one lexicon text (ValueError if it has none)."""
    if not isinstance(value, str | int | float) or not fold(str(value)):
        raise _fail(where, "must be text with at least one letter or digit")
    return tuple(fold(str(value)).split())


def _mapping(value: object, where: str) -> Mapping[object, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, "must be a mapping")
    return value


class Lexicon:
    """Replacements (phrase -> words) and compound parts, applied to folded text."""

    def __init__(
        self,
        replacements: Mapping[tuple[str, ...], tuple[str, ...]],
        parts: Iterable[str] = (),
        keep: Iterable[str] = (),
        suffixes: Iterable[str] = (),
    ) -> None:
        self.replacements = dict(replacements)
        self.longest = max((len(key) for key in self.replacements), default=1)
        self.parts = frozenset(parts)
        self.suffixes = tuple(sorted(set(suffixes), key=len, reverse=True))
        outputs = {word for words in self.replacements.values() for word in words}
        keys = {key[0] for key in self.replacements if len(key) == 1}
        self.known = frozenset(keep) | self.parts | outputs | keys
        self.split = functools.lru_cache(maxsize=_SPLIT_CACHE)(self._split)

    def _split(self, word: str) -> tuple[str, ...]:
        """`word` as compound parts ("laddkabeln" -> ladd, kabeln), or just (word,)."""
        if len(word) < _MIN_COMPOUND or word in self.known or not _LETTERS.fullmatch(word):
            return (word,)
        found = self._parts_of(word, 0)
        return found if found and len(found) > 1 else (word,)

    def _parts_of(self, word: str, start: int) -> tuple[str, ...] | None:
        """The fewest known parts covering word[start:], a linking s allowed between parts."""
        best: tuple[str, ...] | None = None
        for end in range(len(word), start + _MIN_PART - 1, -1):
            piece = word[start:end]
            if end == len(word):
                if self._last_part(piece):
                    return (piece,)
                continue
            if piece not in self.parts:
                continue
            for rest_start in (end, end + 1) if word[end] == "s" else (end,):
                if rest_start >= len(word):
                    continue
                rest = self._parts_of(word, rest_start)
                if rest is not None and (best is None or 1 + len(rest) < len(best)):
                    best = (piece, *rest)
        return best

    def _last_part(self, piece: str) -> bool:
        """A known part, possibly with an inflection ending ("kabeln", "metoder")."""
        if piece in self.parts:
            return True
        return any(
            piece.endswith(end) and piece[: -len(end)] in self.parts
            for end in self.suffixes
            if len(piece) - len(end) >= _MIN_PART
        )

    def _replace(self, words: list[str]) -> list[str]:
        out: list[str] = []
        position = 0
        while position < len(words):
            for size in range(min(self.longest, len(words) - position), 0, -1):
                replacement = self.replacements.get(tuple(words[position : position + size]))
                if replacement is not None:
                    out += replacement
                    position += size
                    break
            else:
                out.append(words[position])
                position += 1
        return out

    def words(self, folded: str) -> list[str]:
        """Already folded text as canonical words: replaced, then compounds split and replaced."""
        out: list[str] = []
        for word in self._replace(folded.split()):
            pieces = self.split(word)
            if len(pieces) == 1:
                out.append(word)
            else:
                out += self._replace(list(pieces))
        return out


def parse_lexicon(data: object, source: str = "lexicon") -> Lexicon:
    """Validate loaded YAML data (replace, synonyms, compounds) into a Lexicon."""
    if not isinstance(data, dict):
        raise _fail(source, "must be a mapping with replace, synonyms, compounds")
    extra = sorted(str(key) for key in data if key not in _SECTIONS)
    if extra:
        raise _fail(source, f"unknown section(s) {', '.join(extra)}")
    replacements: dict[tuple[str, ...], tuple[str, ...]] = {}
    for key, value in _mapping(data.get("replace"), f"{source} replace").items():
        where = f"{source} replace {key!r}"
        replacements[_words(key, where)] = _words(value, where)
    for canonical, variants in _mapping(data.get("synonyms"), f"{source} synonyms").items():
        where = f"{source} synonyms {canonical!r}"
        target = _words(canonical, where)
        if not isinstance(variants, list):
            raise _fail(where, "must be a list of words")
        for variant in variants:
            key = _words(variant, where)
            if key != target:
                replacements[key] = target
    compounds = _mapping(data.get("compounds"), f"{source} compounds")
    lists: dict[str, list[str]] = {}
    for name in ("parts", "keep", "suffixes"):
        value = compounds.get(name, [])
        if not isinstance(value, list):
            raise _fail(f"{source} compounds {name}", "must be a list of words")
        lists[name] = [word for item in value for word in _words(item, f"{source} {name}")]
    return Lexicon(replacements, lists["parts"], lists["keep"], lists["suffixes"])


def load_lexicon(path: str | os.PathLike[str] = LEXICON_FILE) -> Lexicon:
    """Read and validate a lexicon file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    return parse_lexicon(data, str(path))


@functools.cache
def default_lexicon() -> Lexicon:
    """The shipped lexicon (data/lexicon.yaml), loaded once."""
    return load_lexicon(LEXICON_FILE)


def canonical_words(text: str) -> list[str]:
    """The folded words of `text` with the shipped lexicon applied."""
    return default_lexicon().words(fold(text))
