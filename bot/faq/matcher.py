"""The FAQ: loading and validating data/faq.yaml, fuzzy matching of driver questions."""

from __future__ import annotations

import functools
import heapq
import math
import os
import re
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import yaml
from rapidfuzz import fuzz, process

from bot.faq.lexicon import Lexicon, default_lexicon, fold

LANGS = ("sv", "en")
DEFAULT_LANG = "sv"
# Measured by cross-validation over the four tuning sets (1,939 blind driver phrasings, 190
# off-topic messages; each set left out of the examples in turn, see README, "The FAQ"): at 44
# and 3 points ahead of the next entry 51 % of the phrasings are answered, 0.26 % wrongly, and
# of the off-topic messages only "Vad heter du?" (the menu: "what I can help with"; the chat
# answers it as a greeting before the FAQ). From 24 the top three entries are offered as
# choices; below 24 the driver is offered a person (85 % of the off-topic messages, 14 % of
# the phrasings).
ANSWER_THRESHOLD = 44.0
ANSWER_MARGIN = 3.0
UNSURE_THRESHOLD = 24.0
MAX_ANSWER_CHARS = 380
MAX_QUERY_CHARS = 200

# An entry's score (0-100) is its best phrasing's score, plus how much of the query (idf
# weighted) appears anywhere in the entry's phrasings or in its answer.
_PHRASING_WEIGHT = 0.6
_ENTRY_WEIGHT = 0.3
_ANSWER_WEIGHT = 0.05
# A phrasing's score: rapidfuzz ratio of the sorted content words (30 %) and the F1 of the
# idf-weighted fuzzy word overlap (70 %).
_CHAR_WEIGHT = 0.2
# A query word like no FAQ word ("pizza", "mattelaxan") weighs this many times the rarest FAQ
# word, so that off-topic text with a few FAQ words in it stays below ANSWER_THRESHOLD.
# An entry's score blends its closest phrasing (above) with the cosine of the query and the
# entry's whole vocabulary (phrasings and driver examples, tf-idf), weighted so. Examples
# count in that vector only, not as phrasings of their own: chosen by cross-validation over
# the tuning sets (top-1 93.5 % with examples as phrasings and no vector, 94.8 % with both,
# 95.4 % so), and it keeps the per-phrasing work to the FAQ's own phrasings.
_CENTROID_WEIGHT = 0.8
_UNKNOWN_FACTOR = 2.6
_UNKNOWN_POWER = 1.0
# Words in at least this share of the entries ("hur", "jag", "the", "ladda") are left out of
# the character comparison; in the word overlap their low idf keeps them light.
_COMMON_SHARE = 0.12
# Query and FAQ words match at this rapidfuzz ratio (typos: "kvito", "reciept"), or, counted at
# _PART_FACTOR, as a part of a compound ("bricka" in "laddbricka") or sharing a stem of at
# least _STEM_SHARE of the shorter word ("nekat", "nekades"), both at least _PART_MIN_LEN long.
_WORD_CUTOFF = 80.0
_PART_MIN_LEN = 4
_PART_FACTOR = 0.85
_STEM_SHARE = 0.75
_STEM_TAIL = 4
# A FAQ word inside a longer query word counts for its share of the query word's letters; a
# query word whose most similar FAQ word is less similar than this weighs as unknown.
_KNOWN_SIMILARITY = 0.6
# Speed: a query word in more than _BROAD phrasings only adds to phrasings that share a
# narrower word with the query; the character comparison is made for the _CHAR_CANDIDATES
# phrasings with the most word overlap; what each query word adds is kept for _WORD_CACHE words.
_BROAD = 30
_CHAR_CANDIDATES = 15
_WORD_CACHE = 4096

_GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
    "^{}\\[~]|€"
)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml if installed
_ENTRY_KEYS = frozenset({"id", "tags", "questions", "answer"})
# Driver phrasings collected for matching, beside the FAQ file: entry id -> {sv: [...], en: [...]}.
EXAMPLES_FILE = "faq_examples.yaml"

Examples = Mapping[str, Mapping[str, Sequence[str]]]

Kind = Literal["answer", "unsure", "none"]
_Stat = tuple[int, int, int]
_Signature = tuple[_Stat, _Stat | None]


def normalize(text: str) -> str:
    """Fold text for matching: casefold, strip accents (å→a, ö→o), words only, single spaces."""
    return fold(text)


@dataclass(frozen=True)
class FaqEntry:
    """One question with its phrasings and answer in each language."""

    id: str
    tags: tuple[str, ...]
    questions: dict[str, tuple[str, ...]]
    answers: dict[str, str]

    def question(self, lang: str) -> str:
        """The first phrasing in `lang` (Swedish for an unknown language)."""
        return self.questions.get(lang, self.questions[DEFAULT_LANG])[0]

    def answer(self, lang: str) -> str:
        """The answer in `lang` (Swedish for an unknown language)."""
        return self.answers.get(lang, self.answers[DEFAULT_LANG])


@dataclass(frozen=True)
class FaqMatch:
    """An entry, how well a text matched it (0-100), and its closest phrasing."""

    entry: FaqEntry
    score: float
    phrasing: str = ""
    lang: str = ""


@dataclass(frozen=True)
class FaqResult:
    """The outcome for one text: answer it, offer choices, or offer a person."""

    kind: Kind
    best: FaqMatch | None
    alternatives: tuple[FaqMatch, ...]


class _Hits(NamedTuple):
    """What one query word adds to the scores."""

    weight: float  # its idf (of the most similar FAQ word)
    known: bool  # like some FAQ word (else its weight is _UNKNOWN_FACTOR x the rarest's)
    phrasings: dict[int, tuple[float, float]]  # phrasing -> (recall mass, precision mass)
    in_entry: dict[int, float]  # entry -> entry and answer share: weight x similarity


def _fail(where: str, problem: str) -> ValueError:
    return ValueError(f"{where}: {problem}")


def _text_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(where, "must be a non-empty list of phrasings")
    for number, item in enumerate(value, 1):
        if not isinstance(item, str) or not normalize(item):
            raise _fail(where, f"phrasing {number} must be text with at least one letter or digit")
    return tuple(item.strip() for item in value)


def _answer_text(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, "must be non-empty text")
    text = " ".join(value.split())
    bad = sorted({char for char in text if char not in _GSM7})
    if bad:
        shown = ", ".join(f"{char!r} (U+{ord(char):04X})" for char in bad)
        raise _fail(where, f"has characters SMS (GSM-7) cannot send: {shown}")
    if len(text) > MAX_ANSWER_CHARS:
        raise _fail(where, f"has {len(text)} characters (at most {MAX_ANSWER_CHARS})")
    return text


def _by_language(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise _fail(where, f"must be a mapping with {' and '.join(LANGS)}")
    for lang in LANGS:
        if lang not in value:
            raise _fail(f"{where}.{lang}", "is missing")
    extra = sorted(str(key) for key in value if key not in LANGS)
    if extra:
        raise _fail(where, f"unknown language(s) {', '.join(extra)}")
    return value


def parse_entries(data: object, source: str = "FAQ") -> tuple[FaqEntry, ...]:
    """Validate loaded YAML data; a ValueError names the entry and field at fault."""
    if not isinstance(data, list) or not data:
        raise _fail(source, "must be a non-empty list of entries")
    entries: list[FaqEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data, 1):
        where = f"{source}: entry {number}"
        if not isinstance(raw, dict):
            raise _fail(where, "must be a mapping with id, tags, questions, answer")
        entry_id = raw.get("id")
        if not isinstance(entry_id, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", entry_id):
            raise _fail(where, f"id must be lowercase-words-with-dashes, got {entry_id!r}")
        where = f"{source}: entry {entry_id!r}"
        if entry_id in seen:
            raise _fail(where, f"duplicate id (also entry {seen[entry_id]})")
        seen[entry_id] = number
        extra = sorted(str(key) for key in raw if key not in _ENTRY_KEYS)
        if extra:
            raise _fail(where, f"unknown field(s) {', '.join(extra)}")
        tags = raw.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise _fail(f"{where} tags", "must be a list of words")
        questions = _by_language(raw.get("questions"), f"{where} questions")
        answers = _by_language(raw.get("answer"), f"{where} answer")
        entries.append(
            FaqEntry(
                id=entry_id,
                tags=tuple(tags),
                questions={
                    lang: _text_list(questions[lang], f"{where} questions.{lang}") for lang in LANGS
                },
                answers={
                    lang: _answer_text(answers[lang], f"{where} answer.{lang}") for lang in LANGS
                },
            )
        )
    return tuple(entries)


def _read_yaml(path: str | os.PathLike[str]) -> object:
    text = Path(path).read_text(encoding="utf-8")
    try:
        return yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc


def load_entries(path: str | os.PathLike[str]) -> tuple[FaqEntry, ...]:
    """Read and validate a FAQ file."""
    return parse_entries(_read_yaml(path), str(path))


def _example_list(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _fail(where, "must be a list of phrasings")
    for number, item in enumerate(value, 1):
        if not isinstance(item, str) or not normalize(item):
            raise _fail(where, f"example {number} must be text with at least one letter or digit")
    return tuple(dict.fromkeys(item.strip() for item in value))


def parse_examples(
    data: object, ids: Iterable[str], source: str = "examples"
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Validate driver examples (entry id -> {sv: [...], en: [...]}) for the entries `ids`."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(source, "must be a mapping of entry id -> {sv: [...], en: [...]}")
    known = set(ids)
    examples: dict[str, dict[str, tuple[str, ...]]] = {}
    for entry_id, raw in data.items():
        where = f"{source}: entry {entry_id!r}"
        if entry_id not in known:
            raise _fail(where, "unknown entry id (not in the FAQ)")
        texts = _by_language(raw, where)
        examples[entry_id] = {lang: _example_list(texts[lang], f"{where}.{lang}") for lang in LANGS}
    return examples


def examples_file(faq_path: str | os.PathLike[str]) -> Path:
    """Where the driver examples for a FAQ file live: faq_examples.yaml beside it."""
    return Path(faq_path).with_name(EXAMPLES_FILE)


def load_examples(
    path: str | os.PathLike[str], ids: Iterable[str]
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Read and validate a driver examples file for the entries `ids`."""
    return parse_examples(_read_yaml(path), ids, str(path))


def _postings(bags: Sequence[Iterable[str]]) -> dict[str, tuple[int, ...]]:
    found: dict[str, list[int]] = defaultdict(list)
    for number, bag in enumerate(bags):
        for word in bag:
            found[word].append(number)
    return {word: tuple(numbers) for word, numbers in found.items()}


class FaqIndex:
    """The FAQ entries with their phrasings prepared once for fuzzy matching."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        examples: Examples | None = None,
        answer_threshold: float = ANSWER_THRESHOLD,
        unsure_threshold: float = UNSURE_THRESHOLD,
        answer_margin: float = ANSWER_MARGIN,
    ) -> None:
        if not 0 <= unsure_threshold <= answer_threshold <= 100:
            raise ValueError("thresholds must satisfy 0 <= unsure <= answer <= 100")
        if answer_margin < 0:
            raise ValueError("answer_margin must not be negative")
        ids = [entry.id for entry in entries]
        if not entries or len(set(ids)) != len(ids):
            raise ValueError("entries must be non-empty with unique ids")
        self.entries: tuple[FaqEntry, ...] = tuple(entries)
        unknown = sorted(set(examples or {}) - set(ids))
        if unknown:
            raise ValueError(f"examples for unknown entries: {', '.join(unknown)}")
        # Driver phrasings that count for their entry like its questions, never shown.
        self.examples: dict[str, dict[str, tuple[str, ...]]] = {
            entry_id: {lang: tuple(texts.get(lang, ())) for lang in LANGS}
            for entry_id, texts in (examples or {}).items()
        }
        self.answer_threshold = float(answer_threshold)
        self.unsure_threshold = float(unsure_threshold)
        self.answer_margin = float(answer_margin)
        self._by_id = {entry.id: entry for entry in self.entries}
        self._lexicon: Lexicon = default_lexicon()  # data/lexicon.yaml
        self._prepare()

    @classmethod
    def load(cls, path: str | os.PathLike[str], **settings: float) -> FaqIndex:
        """Build an index from a FAQ file and the faq_examples.yaml beside it, if any
        (ValueError naming the entry on bad data)."""
        entries = load_entries(path)
        beside = examples_file(path)
        examples = load_examples(beside, [e.id for e in entries]) if beside.exists() else None
        return cls(entries, examples=examples, **settings)

    def get(self, entry_id: str) -> FaqEntry | None:
        """The entry with this id, or None."""
        return self._by_id.get(entry_id)

    def ids(self) -> list[str]:
        """All entry ids in file order."""
        return [entry.id for entry in self.entries]

    def _prepare(self) -> None:
        self._phrasings: list[tuple[int, str, str]] = []  # (entry number, lang, text)
        for number, entry in enumerate(self.entries):
            for lang in LANGS:
                self._phrasings += [(number, lang, text) for text in entry.questions[lang]]
        self._owners = [number for number, _, _ in self._phrasings]
        self._langs = [lang for _, lang, _ in self._phrasings]
        first = {  # per entry and language its first phrasing's number
            (number, lang): index
            for index, (number, lang, _) in reversed(list(enumerate(self._phrasings)))
        }
        # For an entry no phrasing of which shares a word with the query: (score, in the
        # query's language, its first phrasing in that language), per query language.
        self._fallback: dict[str | None, list[tuple[float, bool, int]]] = {
            lang: [
                (0.0, lang is not None, first[number, lang or DEFAULT_LANG])
                for number in range(len(self.entries))
            ]
            for lang in (*LANGS, None)
        }
        normalized = [self._canonical(text) for _, _, text in self._phrasings]
        words = [frozenset(text.split()) for text in normalized]
        entry_words: list[set[str]] = [set() for _ in self.entries]
        for (number, _, _), bag in zip(self._phrasings, words, strict=True):
            entry_words[number] |= bag
        answer_words = [
            frozenset(self._canonical(" ".join(entry.answers.values())).split())
            for entry in self.entries
        ]
        count = len(self.entries)
        frequency = dict.fromkeys(set().union(*answer_words), 0)
        for entry_bag in entry_words:
            for word in entry_bag:
                frequency[word] = frequency.get(word, 0) + 1
        self._idf = {word: math.log((count + 1) / (n + 0.5)) for word, n in frequency.items()}
        self._unknown_idf = _UNKNOWN_FACTOR * math.log((count + 1) / 1.5)  # in one entry
        self._common = frozenset(w for w, n in frequency.items() if n >= _COMMON_SHARE * count)
        self._content = [self._content_of(text) for text in normalized]
        self._mass = [sum(self._idf[word] for word in bag) for bag in words]
        self._postings = _postings(words)
        examples = [  # (entry number, words) of the driver examples: in the entry vectors only
            (number, frozenset(self._canonical(text).split()))
            for number, entry in enumerate(self.entries)
            for texts in self.examples.get(entry.id, {}).values()
            for text in texts
        ]
        self._prepare_centroids(
            [*self._owners, *(number for number, _ in examples)],
            [*words, *(bag for _, bag in examples)],
        )
        self._entry_postings = _postings(entry_words)
        self._answer_postings = _postings(answer_words)
        vocabulary = sorted(frequency)
        share = 1 - _WORD_CUTOFF / 100  # ratio = 1 - indel / (a + b) and indel >= |a - b|
        longest = max(len(word) for word in vocabulary)
        # Words of a length that can reach _WORD_CUTOFF, by a letter among their first two:
        # a typo rarely changes both of a word's first two letters.
        near: dict[tuple[int, str], list[str]] = defaultdict(list)
        for word in vocabulary:
            for length in range(1, 2 * longest):
                if abs(len(word) - length) <= share * (len(word) + length):
                    for letter in dict.fromkeys(word[:2]):
                        near[length, letter].append(word)
        self._near = {key: tuple(found) for key, found in near.items()}
        parts: dict[str, list[str]] = defaultdict(list)  # proper substring -> words with it
        prefixes: dict[str, list[str]] = defaultdict(list)
        for word in vocabulary:
            inside = {
                word[start:end]
                for start in range(len(word))
                for end in range(start + _PART_MIN_LEN, len(word) + 1)
                if end - start < len(word)
            }
            for part in inside:
                parts[part].append(word)
            for end in range(_PART_MIN_LEN, len(word) + 1):
                prefixes[word[:end]].append(word)
        self._parts = {part: tuple(found) for part, found in parts.items()}
        self._prefixes = {prefix: tuple(found) for prefix, found in prefixes.items()}
        self._hits = functools.lru_cache(maxsize=_WORD_CACHE)(self._word_hits)
        for word in vocabulary[: _WORD_CACHE // 2]:  # drivers mostly use the FAQ words
            self._hits(word)

    def _prepare_centroids(self, owners: Sequence[int], words: Sequence[frozenset[str]]) -> None:
        """Per entry a tf-idf vector of the words of all its phrasings and examples: how the
        entry is asked about as a whole, beyond its single closest phrasing."""
        counts: list[Counter[str]] = [Counter() for _ in self.entries]
        for owner, bag in zip(owners, words, strict=True):
            counts[owner].update(bag)
        spread = Counter(word for count in counts for word in count)
        total = len(self.entries) + 1
        self._centroid_idf = {w: math.log(total / (n + 0.5)) for w, n in spread.items()}
        # Per word, its idf times its weight in each entry's unit vector, as a dense row: a
        # query's cosines are then the column sums of its words' rows.
        rows: dict[str, list[float]] = {}
        for owner, count in enumerate(counts):
            vector = {w: (1 + math.log(k)) * self._centroid_idf[w] for w, k in count.items()}
            norm = math.sqrt(sum(x * x for x in vector.values())) or 1.0
            for word, x in vector.items():
                row = rows.setdefault(word, [0.0] * len(self.entries))
                row[owner] = self._centroid_idf[word] * x / norm
        self._centroid_rows = rows

    def _centroid_cosines(self, words: Sequence[str]) -> list[float]:
        """The cosine of the query's words (idf-weighted) with each entry's vector."""
        idf = self._centroid_idf
        known = [w for w in words if w in idf]
        norm = math.sqrt(sum(idf[w] * idf[w] for w in known))
        if not norm:
            return [0.0] * len(self.entries)
        rows = self._centroid_rows
        return [sum(column) / norm for column in zip(*(rows[w] for w in known), strict=True)]

    def _canonical(self, text: str) -> str:
        """Folded text with the lexicon applied (colloquial forms, synonyms, compounds)."""
        return " ".join(self._lexicon.words(normalize(text)))

    def _content_of(self, normalized: str) -> str:
        """The words that are not common, sorted (the whole text if all are common)."""
        kept = [word for word in normalized.split() if word not in self._common]
        return " ".join(sorted(kept or normalized.split()))

    def _similar_words(self, word: str) -> list[tuple[str, float, float]]:
        """FAQ words like `word`: (word, similarity 0-1, idf), most similar first."""
        similar = {
            found: score / 100
            for letter in dict.fromkeys(word[:2])
            for found, score, _ in process.extract(
                word,
                self._near.get((len(word), letter), ()),
                scorer=fuzz.ratio,
                score_cutoff=_WORD_CUTOFF,
                limit=None,
            )
        }
        if len(word) >= _PART_MIN_LEN:
            for found in self._parts.get(word, ()):
                similar.setdefault(found, _PART_FACTOR)
            for start in range(len(word) - _PART_MIN_LEN + 1):
                for end in range(start + _PART_MIN_LEN, len(word) + 1):
                    if word[start:end] in self._idf and end - start < len(word):
                        # "system" in "systembolaget" is not much of it
                        share = _PART_FACTOR * (end - start) / len(word)
                        similar[word[start:end]] = max(similar.get(word[start:end], 0), share)
            for length in range(len(word), _PART_MIN_LEN - 1, -1):
                for found in self._prefixes.get(word[:length], ()):
                    if (
                        length >= _STEM_SHARE * min(len(word), len(found))
                        and max(len(word), len(found)) - length <= _STEM_TAIL
                    ):
                        similar.setdefault(found, _PART_FACTOR)
        ordered = sorted(similar.items(), key=lambda item: (-item[1], item[0]))
        return [(found, similarity, self._idf[found]) for found, similarity in ordered]

    def _word_hits(self, word: str) -> _Hits:
        """What one query word adds: its weight, and per phrasing, entry and answer it is in."""
        similar = self._similar_words(word)
        known = bool(similar) and similar[0][1] >= _KNOWN_SIMILARITY
        weight = similar[0][2] if known else self._unknown_idf
        # Per phrasing/entry/answer the most similar FAQ word: least similar first, so that
        # more similar words overwrite.
        phrasings: dict[int, tuple[float, float]] = {}
        entries: dict[int, float] = {}
        answers: dict[int, float] = {}
        for found, similarity, idf in reversed(similar):
            masses = (weight * similarity, idf * similarity)
            phrasings.update(dict.fromkeys(self._postings.get(found, ()), masses))
            entries.update(dict.fromkeys(self._entry_postings.get(found, ()), similarity))
            answers.update(dict.fromkeys(self._answer_postings.get(found, ()), similarity))
        in_entry = dict.fromkeys(entries.keys() | answers.keys(), 0.0)
        for number, similarity in entries.items():
            in_entry[number] += _ENTRY_WEIGHT * weight * similarity
        for number, similarity in answers.items():
            in_entry[number] += _ANSWER_WEIGHT * weight * similarity
        return _Hits(weight, known, phrasings, in_entry)

    def rank(self, text: str, lang: str | None = None, limit: int | None = None) -> list[FaqMatch]:
        """Entries scored against `text`, best first (ties: `lang` first); [] without words."""
        folded = normalize(text[: 2 * MAX_QUERY_CHARS])[:MAX_QUERY_CHARS].strip()
        query = " ".join(self._lexicon.words(folded))
        if not query:
            return []
        # Word overlap: per phrasing the idf mass of query words found (recall) and of phrasing
        # words found (precision); per entry the query mass found in all phrasings and answer.
        # Phrasings that share only broad words (in many phrasings) with the query are left
        # out unless no query word is narrow: they could not come first.
        words = list(dict.fromkeys(query.split()))
        every = [self._hits(word) for word in words]
        hits = sorted((hit for hit in every if hit.known), key=lambda hit: len(hit.phrasings))
        if not hits:
            hits, known_words = every, words
        else:
            known_words = [word for word, hit in zip(words, every, strict=True) if hit.known]
        # Entries are compared on the words the FAQ knows; words like no FAQ word ("pizza",
        # "grateful") then scale every entry's score down alike, by their share of the mass.
        query_mass = sum(hit.weight for hit in hits)
        penalty = (query_mass / sum(hit.weight for hit in every)) ** _UNKNOWN_POWER
        found: dict[int, list[float]] = {}  # phrasing -> [recall mass, precision mass]
        in_entry = [0.0] * len(self.entries)
        for hit in hits:
            if len(hit.phrasings) <= _BROAD or len(found) == 0:
                for number, (recall, precision) in hit.phrasings.items():
                    sums = found.get(number)
                    if sums is None:
                        found[number] = [recall, precision]
                    else:
                        sums[0] += recall
                        sums[1] += precision
            else:
                for number, sums in found.items():
                    pair = hit.phrasings.get(number)
                    if pair is not None:
                        sums[0] += pair[0]
                        sums[1] += pair[1]
            for owner, share in hit.in_entry.items():
                in_entry[owner] += share
        scale = (1 - _CHAR_WEIGHT) * 200
        mass = self._mass
        scores: dict[int, float] = {}
        for number, (recall_mass, precision_mass) in found.items():
            r = recall_mass / query_mass
            p = precision_mass / mass[number]
            if p > 1.0:
                p = 1.0
            scores[number] = scale * r * p / (r + p)
        # The character comparison only for the phrasings with the most word overlap.
        content = self._content_of(" ".join(known_words))
        for number in heapq.nlargest(_CHAR_CANDIDATES, scores, key=scores.__getitem__):
            scores[number] += _CHAR_WEIGHT * fuzz.ratio(content, self._content[number])
        best: dict[int, tuple[float, bool, int]] = {}  # entry -> (top, in lang, phrasing)
        owners, langs = self._owners, self._langs
        for number, value in scores.items():  # ties: the driver's language, then file order
            owner = owners[number]
            held = best.get(owner)
            if held is None or value > held[0]:
                best[owner] = (value, langs[number] == lang, number)
            elif value == held[0]:
                preferred = langs[number] == lang
                if (preferred, -number) > (held[1], -held[2]):
                    best[owner] = (value, preferred, number)
        fallback = self._fallback.get(lang) or self._fallback[None]
        cosines = self._centroid_cosines(words)
        ranked: list[tuple[float, bool, int, int]] = []
        per_top, per_share = penalty * _PHRASING_WEIGHT, penalty * 100 / query_mass
        per_cosine, blend = _CENTROID_WEIGHT * 100, -1 / (1 + _CENTROID_WEIGHT)
        for owner, default in enumerate(fallback):
            top, preferred, closest = best.get(owner, default)
            phrased = per_top * top + per_share * in_entry[owner]
            if phrased > 100.0:
                phrased = 100.0
            total = (phrased + per_cosine * cosines[owner]) * blend  # negated: best first
            ranked.append((total, not preferred, owner, closest))
        chosen = sorted(ranked) if limit is None else heapq.nsmallest(limit, ranked)
        return [
            FaqMatch(
                self.entries[owner],
                round(min(100.0, -total), 2),
                self._phrasings[number][2],
                self._phrasings[number][1],
            )
            for total, _, owner, number in chosen
        ]

    def match(self, text: str, lang: str | None = None) -> FaqResult:
        """The best entry for a driver's text: a confident answer, choices, or none.

        "answer": the top entry reaches answer_threshold and leads the next by answer_margin;
        its alternatives are the next entries (at most 2) that reach unsure_threshold.
        "unsure": the top entry reaches unsure_threshold; the alternatives are the next 2, so
        the driver chooses among the top 3. "none": no entry reaches unsure_threshold.
        """
        ranked = self.rank(text, lang, limit=3)
        if not ranked or ranked[0].score < self.unsure_threshold:
            return FaqResult("none", None, ())
        top, rest = ranked[0], tuple(ranked[1:])
        ahead = top.score - (rest[0].score if rest else 0.0)
        if top.score >= self.answer_threshold and ahead >= self.answer_margin:
            likely = tuple(m for m in rest if m.score >= self.unsure_threshold)
            return FaqResult("answer", top, likely)
        return FaqResult("unsure", top, rest)


_BUILT_KEPT = 4  # indexes kept for other services of the same unchanged files
_built: OrderedDict[tuple[object, ...], FaqIndex] = OrderedDict()
_built_lock = threading.Lock()


def _index_for(
    path: Path, signature: _Signature, thresholds: dict[str, float], *, fresh: bool = False
) -> FaqIndex:
    """The index of `path` as it was at `signature`, built once per process for all services
    (`fresh`: read the files again in any case, and keep that for the others).

    An index never changes once built, so apps in one process (a test suite builds one per
    test, each in about 0.4 s) share it while the files stay as they were.
    """
    key = (str(path.resolve()), signature, tuple(sorted(thresholds.items())))
    with _built_lock:
        index = None if fresh else _built.get(key)
        if index is not None:
            _built.move_to_end(key)
            return index
    index = FaqIndex.load(path, **thresholds)
    with _built_lock:
        _built[key] = index
        while len(_built) > _BUILT_KEPT:
            _built.popitem(last=False)
    return index


class FaqService:
    """The current FAQ index for a file (and the faq_examples.yaml beside it), reloadable
    while the bot runs."""

    def __init__(self, path: str | os.PathLike[str], **thresholds: float) -> None:
        self.path = Path(path)
        self.examples_path = examples_file(self.path)
        self._thresholds = thresholds
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._failed: _Signature | None = None
        self._index = _index_for(self.path, self._signature, thresholds)

    @property
    def index(self) -> FaqIndex:
        """The index in use."""
        return self._index

    def _stat(self) -> _Signature:
        stat = self.path.stat()
        try:
            extra = self.examples_path.stat()
        except FileNotFoundError:
            examples = None
        else:
            examples = (extra.st_mtime_ns, extra.st_size, extra.st_ino)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino), examples

    def reload(self) -> FaqIndex:
        """Re-read the files; on bad data raise ValueError and keep the current index."""
        with self._lock:
            signature = self._stat()
            try:
                # An operator's reload reads the files even if they look unchanged.
                index = _index_for(self.path, signature, self._thresholds, fresh=True)
            except ValueError:
                self._failed = signature
                raise
            self._index, self._signature, self._failed = index, signature, None
            return index

    def reload_if_changed(self) -> bool:
        """Reload if either file's mtime, size or inode changed (or the examples file came or
        went); a known bad version is skipped."""
        signature = self._stat()
        if signature in (self._signature, self._failed):
            return False
        self.reload()
        return True

    def match(self, text: str, lang: str | None = None) -> FaqResult:
        """Match against the current index."""
        return self._index.match(text, lang)
