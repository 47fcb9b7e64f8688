"""Free text → what the driver wants: an intent with its argument, from data/intents.yaml.

The same reading for every channel. `IntentTable.understand` never raises and never touches
the database: a connector code is reported as a candidate (`codes`) for the engine to look
up. How certain the reading is decides what the engine does with it (see bot/engine.py):

* a keyword first ("NÄRA Göteborg", "AVSLUTA") or a phrasing whose other words are all
  fillers ("kan du stoppa laddningen tack") is *certain*;
* a phrasing among other words ("jag undrar om jag kan stoppa laddningen") is *likely*, and
  `doubt` says whether one of those words makes it a question or a complaint ("hur", "not");
* nothing matched: the text is a question for the FAQ.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Final

import yaml
from rapidfuzz.distance import OSA
from rapidfuzz.process import extractOne

from backend.paths import DATA_DIR
from backend.services.codes import normalize_code
from backend.services.places import Gazetteer, fold
from bot.faq.lexicon import Lexicon, default_lexicon

INTENTS_FILE: Final = DATA_DIR / "intents.yaml"
PLACE_SLOT: Final = "{place}"
KEYWORD_FUZZY_MIN: Final = 4  # keywords shorter than this must be typed exactly (JA, MER)
WORD_FUZZY_MIN: Final = 4  # an unknown word this long may be a typo of an intent word
COMPOUND_MIN_PART: Final = 3  # "snabb|laddare", "ladd|historik"
READ_CACHE: Final = 8192  # typed words remembered with their reading
MAX_WORDS: Final = 40  # a longer message is a story for the FAQ or a person, not a command
LANGUAGE_WORDS: Final = {
    "engelska": "en",
    "english": "en",
    "eng": "en",
    "svenska": "sv",
    "swedish": "sv",
    "svensk": "sv",
}
NO_ARGS: Final = frozenset({"help", "yes", "no", "language"})  # their keywords stand alone
# Their argument is a code.
CODE_INTENTS: Final = frozenset({"start", "stop", "prices", "reserve", "queue"})
_NUMBER: Final = re.compile(r"^\s*#?\s*(\d{1,3})\s*[.):!]?\s*$")
_LETTERS: Final = re.compile(r"[^a-z]")


@dataclass(frozen=True)
class Understanding:
    """What a message asks for."""

    intent: str | None = None  # None: no intent, a question for the FAQ
    args: str = ""  # the argument as typed: a place, a code, a language
    certain: bool = False
    doubt: bool = False  # a question or complaint word among the words besides the phrasing
    negated: bool = False  # a negation among them ("stoppa inte laddningen")
    lang: str | None = None  # the language of the keyword or phrasing, when only one has it
    alternatives: tuple[str, ...] = ()  # other intents the text matches as well
    number: int | None = None  # the message is a bare number (a menu choice)
    codes: tuple[str, ...] = ()  # words that could be connector codes, upper case
    alone: bool = False  # the message is nothing but codes[0]: a known code wins over any word


@dataclass(frozen=True)
class Phrasing:
    words: frozenset[str]
    lang: str | None
    needs_place: bool = False


@dataclass(frozen=True)
class Intent:
    name: str
    keywords: Mapping[str, str | None]  # folded keyword -> its language (None: both)
    needs_args: frozenset[str]
    phrasings: tuple[Phrasing, ...]
    faq: frozenset[str]
    action: bool = False
    small_talk: bool = False
    polite: bool = False

    words: frozenset[str] = frozenset()  # every word of every phrasing: none makes a
    # match less certain

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", frozenset().union(*(p.words for p in self.phrasings)))


@dataclass(frozen=True)
class _Token:
    raw: str  # as typed, punctuation stripped
    words: tuple[str, ...]  # canonical words (the lexicon may make one word two)
    folded: str = ""  # the raw word folded ("Göteborg" -> "goteborg")


@dataclass
class _Match:
    intent: Intent
    phrasing: Phrasing
    extra: list[int] = field(default_factory=list)  # token positions not explained


def _words(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: must be a list of words")
    return [fold(item) for item in value]


class IntentTable:
    """The intents of data/intents.yaml, prepared once."""

    def __init__(
        self,
        data: Mapping[str, object],
        places: Gazetteer | None = None,
        known: Iterable[str] = (),
        lexicon: Lexicon | None = None,
    ) -> None:
        self._places = places
        self._read_cache: dict[str, tuple[str, ...]] = {}
        self._keyword_cache: dict[str, str | None] = {}
        self._forms = {**_lexicon_forms(lexicon, data), **_forms(data.get("forms"))}
        fillers_data = data.get("fillers") or []
        if not isinstance(fillers_data, list):
            raise ValueError("intents: fillers must be lists of words")
        self.fillers = frozenset(
            self._canonical_word(word)
            for group in fillers_data
            for word in _words(group, "fillers")
        )
        self.doubt = frozenset(
            self._canonical_word(word) for word in _words(data.get("doubt"), "doubt")
        )
        self.place_words = frozenset(_words(data.get("place_words"), "place_words"))
        self.negations = frozenset(
            self._canonical_word(word) for word in _words(data.get("negations"), "negations")
        )
        raw_intents = data.get("intents")
        if not isinstance(raw_intents, dict) or not raw_intents:
            raise ValueError("intents: must be a mapping of intent names")
        self.intents: dict[str, Intent] = {
            str(name): self._intent(str(name), raw) for name, raw in raw_intents.items()
        }
        polite = {w for i in self.intents.values() if i.polite for w in i.words}
        self._fillers_for = {
            name: self.fillers if intent.polite else self.fillers | polite
            for name, intent in self.intents.items()
        }
        self._keywords: dict[str, tuple[Intent, str | None]] = {}
        for intent in self.intents.values():
            for word, lang in intent.keywords.items():
                self._keywords[word] = (intent, lang)
        self._fuzzy_keywords = [word for word in self._keywords if len(word) >= KEYWORD_FUZZY_MIN]
        vocabulary = {word for i in self.intents.values() for p in i.phrasings for word in p.words}
        self._vocabulary = tuple(sorted(vocabulary))
        self._by_word: dict[str, list[tuple[Intent, Phrasing]]] = {}
        for intent in self.intents.values():
            for phrasing in intent.phrasings:
                for word in phrasing.words:
                    self._by_word.setdefault(word, []).append((intent, phrasing))
        heads = vocabulary | self._forms.keys()
        self._heads = sorted((w for w in heads if len(w) >= COMPOUND_MIN_PART + 1), key=len)[::-1]
        self._known = frozenset(
            vocabulary | self.fillers | self.doubt | self.place_words | set(known)
        ) | frozenset(self._forms)

    @classmethod
    def load(
        cls,
        places: Gazetteer | None = None,
        known: Iterable[str] = (),
        path: Path = INTENTS_FILE,
    ) -> IntentTable:
        """Read data/intents.yaml (ValueError naming the intent on bad data), with the
        colloquial forms and shorthand of data/lexicon.yaml."""
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"{path}: must be a mapping")
        return cls(data, places, known, default_lexicon())

    def canonical(self, word: str) -> tuple[str, ...]:
        """A folded word in its canonical form(s): "laddarn" -> ("laddare",)."""
        return self._forms.get(word, (word,))

    def _canonical_word(self, word: str) -> str:
        words = self.canonical(word)
        return words[0] if len(words) == 1 else word

    def _intent(self, name: str, raw: object) -> Intent:
        if not isinstance(raw, dict):
            raise ValueError(f"intents.{name}: must be a mapping")
        keywords: dict[str, str | None] = {}
        for lang, words in (raw.get("keywords") or {}).items():
            for word in _words(words, f"intents.{name}.keywords.{lang}"):
                keywords[word] = None if keywords.get(word, lang) != lang else lang
        phrasings: list[Phrasing] = []
        for lang, texts in (raw.get("phrasings") or {}).items():
            for text in _words(texts, f"intents.{name}.phrasings.{lang}"):
                needs_place = PLACE_SLOT.strip("{}") in text.split()
                words = [w for w in text.split() if w != PLACE_SLOT.strip("{}")]
                canonical = frozenset(c for w in words for c in self.canonical(w))
                if not canonical:
                    raise ValueError(f"intents.{name}.phrasings.{lang}: {text!r} has no words")
                phrasings.append(Phrasing(canonical, str(lang), needs_place))
        languages: dict[frozenset[str], set[str | None]] = {}
        for phrasing in phrasings:
            languages.setdefault(phrasing.words, set()).add(phrasing.lang)
        phrasings = [  # a phrasing both languages share tells no language ("status")
            p if len(languages[p.words]) == 1 else Phrasing(p.words, None, p.needs_place)
            for p in phrasings
        ]
        return Intent(
            name=name,
            keywords=keywords,
            needs_args=frozenset(_words(raw.get("needs_args") or [], f"intents.{name}")),
            phrasings=tuple(phrasings),
            faq=frozenset(str(item) for item in raw.get("faq") or []),
            action=bool(raw.get("action", False)),
            small_talk=bool(raw.get("small_talk", False)),
            polite=bool(raw.get("polite", False)),
        )

    # --- reading a message ----------------------------------------------------------------

    def understand(self, text: str) -> Understanding:
        """What `text` asks for. Never raises."""
        text = " ".join(str(text).split())[:500]
        if not text:
            return Understanding()
        number = _NUMBER.match(text)
        if number:
            return Understanding(number=int(number.group(1)))
        tokens = self._tokens(text)
        codes = tuple(dict.fromkeys(self._codes(tokens)))
        whole = _whole_code(text)
        if whole is not None:
            codes = (whole, *(code for code in codes if code != whole))
        understood = self._by_keyword(text, tokens, codes)
        if understood is None and len(tokens) > MAX_WORDS:
            understood = Understanding(codes=codes)
        if understood is None:
            understood = self._by_phrasing(tokens, codes)
        return replace(understood, alone=whole is not None)

    def _tokens(self, text: str) -> list[_Token]:
        tokens = []
        for raw in text.split():
            bare = raw.strip(".,!?;:'\"()[]{}<>*-_/\\")
            words = self._read(bare)
            if words:
                tokens.append(_Token(bare, words, fold(bare)))
        return tokens

    def _read(self, typed: str) -> tuple[str, ...]:
        """A typed word as canonical words, remembered (drivers reuse their words)."""
        found = self._read_cache.get(typed)
        if found is None:
            found = tuple(
                self._correct(word) for part in fold(typed).split() for word in self.canonical(part)
            )
            if len(self._read_cache) >= READ_CACHE:
                self._read_cache.clear()
            self._read_cache[typed] = found
        return found

    def _correct(self, word: str) -> str:
        """An unknown word as an intent word: one typo away ("stopa"), or its last part
        (a Swedish compound: "snabbladdare" -> "laddare")."""
        if word in self._known or len(word) < WORD_FUZZY_MIN or not word.isalpha():
            return word
        near = _nearest(word, self._vocabulary)
        if near is not None:
            return near
        for known in self._heads:
            if word.endswith(known) and len(word) - len(known) >= COMPOUND_MIN_PART:
                return self.canonical(known)[0]
        return word

    def _codes(self, tokens: Sequence[_Token]) -> Iterable[str]:
        for token in tokens:
            if all(word in self._known for word in token.words):
                continue
            code = normalize_code(token.raw)
            if code is not None:
                yield code

    def _by_keyword(
        self, text: str, tokens: Sequence[_Token], codes: tuple[str, ...]
    ) -> Understanding | None:
        first, _, rest = text.partition(" ")
        word = self.match_keyword(first)
        if word is None:
            return None
        intent, lang = self._keywords[word]
        args = rest.strip()
        if word in intent.needs_args and not args:
            return None  # a bare STOP is Twilio's; a bare "stopp" is read as a phrasing
        exact = _LETTERS.sub("", fold(first)) == word
        if args and intent.name in NO_ARGS:
            return None  # "meny för barn?", "svenska är svårt": a sentence, not a keyword
        words_only = all(w in self._known for t in tokens[1:] for w in t.words)
        code = normalize_code(args) is not None and not words_only
        named = intent.name == "prices" and exact and not words_only  # "PRIS Sundbyberg C"
        if args and intent.name in CODE_INTENTS and not (code or named):
            return None  # "laddar inte alls", "charge my car", "pris per kwh?": a sentence
        unknown_place = self._places is None or self._places.resolve_exactly(args) is None
        if not exact and args and intent.name == "find" and unknown_place:
            return None  # "bara en fråga", "hear me out": words, not NÄRA and a place
        if intent.name == "language":
            args = "sv" if lang == "sv" and word == "svenska" else "en"
        # A questioning action ("avsluta?", "Finnish?") is asked first, never done at once.
        certain = not intent.action or not text.rstrip().endswith("?")
        return Understanding(intent.name, args, certain=certain, lang=lang, codes=codes)

    def knows(self, word: str) -> bool:
        """`word` (folded) is a real word here: never read as a typo of another."""
        return word in self._known

    def match_keyword(self, word: str) -> str | None:
        """The keyword `word` is: exact (folded), or within one edit for longer keywords."""
        if word not in self._keyword_cache:
            if len(self._keyword_cache) >= READ_CACHE:
                self._keyword_cache.clear()
            self._keyword_cache[word] = self._keyword_of(word)
        return self._keyword_cache[word]

    def _keyword_of(self, word: str) -> str | None:
        folded = _LETTERS.sub("", fold(word))
        if not folded or any(char.isdigit() for char in word):
            return None  # "J855A", "MEN4B", "NEAR7": a code or a plate, never JA, MENY, NEAR
        if folded in self._keywords:
            return folded
        if len(folded) < KEYWORD_FUZZY_MIN or folded in self._known:
            return None  # "men", "vara", "avslutat": a word of its own, not a typo
        found = extractOne(folded, self._fuzzy_keywords, scorer=OSA.distance, score_cutoff=1)
        return None if found is None else str(found[0])

    def _by_phrasing(self, tokens: Sequence[_Token], codes: tuple[str, ...]) -> Understanding:
        present: dict[str, list[int]] = {}
        for position, token in enumerate(tokens):
            for word in token.words:
                present.setdefault(word, []).append(position)
        candidates: dict[str, list[Phrasing]] = {}  # intent name -> its phrasings present
        for word in present:
            for intent, phrasing in self._by_word.get(word, ()):
                if phrasing.words <= present.keys():
                    found = candidates.setdefault(intent.name, [])
                    if phrasing not in found:
                        found.append(phrasing)
        matches: list[_Match] = []
        for intent in self.intents.values():  # in table order: it breaks ties
            phrasings = candidates.get(intent.name)
            if not phrasings:
                continue
            fillers = self._fillers_for[intent.name]
            extra = [
                p
                for p, token in enumerate(tokens)
                if not all(w in fillers or w in intent.words for w in token.words)
            ]
            best: _Match | None = None
            place: bool | None = None  # a known place among the other words, looked up once
            for phrasing in phrasings:
                if phrasing.needs_place:
                    if place is None:
                        place = self._place_in(tokens, extra)
                    if not place:
                        continue
                candidate = _Match(intent, phrasing, list(extra))
                if best is None or _rank(candidate) > _rank(best):
                    best = candidate
            if best is not None:
                matches.append(best)
        if not matches:
            return Understanding(codes=codes)
        matches.sort(key=_rank, reverse=True)
        top = matches[0]
        args = ""
        if top.intent.name == "find":
            args, place_positions = self._place_args(tokens, top.extra)
            top.extra = [
                p
                for p in top.extra
                if p not in place_positions and tokens[p].folded not in self.place_words
            ]
        elif top.intent.name == "language":
            args = self._language_args(tokens)
        extra_words = {word for p in top.extra for word in tokens[p].words}
        certain = not top.extra
        if top.intent.small_talk and not certain:
            return Understanding(codes=codes)  # "hej, hur startar jag?": the question counts
        alternatives = tuple(
            m.intent.name
            for m in matches[1:3]
            if not m.intent.small_talk
            and not m.phrasing.words <= top.phrasing.words
            and len(m.phrasing.words) >= len(top.phrasing.words)
        )
        return Understanding(
            top.intent.name,
            args,
            certain=certain,
            doubt=bool(extra_words & self.doubt),
            negated=bool(extra_words & self.negations),
            lang=top.phrasing.lang,
            alternatives=alternatives,
            codes=codes,
        )

    def _language_args(self, tokens: Sequence[_Token]) -> str:
        """ "en" or "sv" when the text names a language ("på engelska", "swedish please")."""
        named = [LANGUAGE_WORDS[w] for token in tokens for w in token.words if w in LANGUAGE_WORDS]
        return named[-1] if named else ""  # "i don't read swedish, write english": the last

    def _place_in(self, tokens: Sequence[_Token], positions: Sequence[int]) -> bool:
        text, _ = self._place_args(tokens, positions)
        return (
            bool(text)
            and self._places is not None
            and self._places.resolve_exactly(text) is not None
        )

    def _place_args(
        self, tokens: Sequence[_Token], positions: Sequence[int]
    ) -> tuple[str, set[int]]:
        """The place among the unexplained words: after the last "i"/"near", else all of them."""
        kept = [p for p in positions if not set(tokens[p].words) <= self.doubt]
        after = [p for p in range(len(tokens)) if tokens[p].folded in self.place_words]
        if after:
            tail = [p for p in kept if p > after[-1]]
            kept = tail or kept
        kept = [p for p in kept if tokens[p].folded not in self.place_words]
        return " ".join(tokens[p].raw for p in kept), set(kept)


def _lexicon_forms(
    lexicon: Lexicon | None, data: Mapping[str, object]
) -> dict[str, tuple[str, ...]]:
    """The lexicon's one-word replacements ("nån" -> "någon", "u" -> "you"), except for words
    that are an intent's own: "ja" is yes here, not "jag" as in the FAQ's reading."""
    if lexicon is None:
        return {}
    own: set[str] = set()
    intents = data.get("intents")
    for raw in intents.values() if isinstance(intents, dict) else ():
        if isinstance(raw, dict):
            for field_name in ("keywords", "phrasings"):
                for texts in (raw.get(field_name) or {}).values():
                    own.update(word for text in texts for word in fold(str(text)).split())
    return {
        key[0]: tuple(value)
        for key, value in lexicon.replacements.items()
        if len(key) == 1 and key[0] not in own
    }


def _forms(raw: object) -> dict[str, tuple[str, ...]]:
    """`forms` of data/intents.yaml inverted: each variant -> the canonical word(s)."""
    if not isinstance(raw, dict):
        raise ValueError("intents: forms must map a canonical word to its variants")
    inverted: dict[str, tuple[str, ...]] = {}
    for canonical, variants in raw.items():
        words = tuple(fold(str(canonical)).split())
        for variant in _words(variants, f"forms.{canonical}"):
            inverted[variant] = words
    return inverted


def _whole_code(text: str) -> str | None:
    """The message as one connector code ("MEN4B", "THEVE", "k7p 3q"), never two words
    ("ja tack" is JATACK only in shape)."""
    code = normalize_code(text)
    if code is None or (" " in text and not any(char.isdigit() for char in text)):
        return None
    return code


def _rank(match: _Match) -> tuple[int, int, int]:
    return (not match.extra, len(match.phrasing.words), -len(match.extra))


@lru_cache(maxsize=4096)
def _nearest(word: str, vocabulary: tuple[str, ...]) -> str | None:
    found = extractOne(word, vocabulary, scorer=OSA.distance, score_cutoff=1)
    return None if found is None else str(found[0])
