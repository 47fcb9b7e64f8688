"""The SMS command grammar: one keyword (Swedish or English) and maybe an argument.

`parse` never raises and never touches the database. It folds case and accents ("NÄRA",
"nara" and "Nära" are one word) and forgives one typo in keywords of four letters or more
("LADA", "histrik", "avsulta"; an insertion, deletion, substitution or swap of neighbours).

Twilio's own keywords come first and are never ours: a message that is only one of them
(see RESERVED) is handled by Twilio and the carriers, and the adapter answers it with an
empty response and changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

from rapidfuzz.distance import OSA
from rapidfuzz.process import extractOne

from backend.services.codes import normalize_code

# Twilio's default keywords for long codes and toll-free numbers (help.twilio.com, "Twilio
# support for opt-out keywords (SMS STOP filtering)"); case-insensitive, single-word messages.
OPT_OUT: Final = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN: Final = frozenset({"start", "unstop", "yes"})
HELP: Final = frozenset({"help", "info"})
RESERVED: Final = OPT_OUT | OPT_IN | HELP

Kind = Literal["command", "number", "confirm", "more", "menu", "stopp", "reserved", "text", "empty"]


@dataclass(frozen=True)
class Keyword:
    kind: Kind
    command: str | None = None  # the engine command for kind "command"
    lang: str | None = None  # the keyword's language; None: the same in both
    needs_args: bool = False  # without an argument it is no command (STOP, START)
    fixed_args: str = ""  # SVENSKA / ENGLISH


KEYWORDS: Final[dict[str, Keyword]] = {
    "ladda": Keyword("command", "start", "sv"),
    "charge": Keyword("command", "start", "en"),
    "start": Keyword("command", "start", "en", needs_args=True),  # bare START is Twilio's
    "avsluta": Keyword("command", "stop", "sv"),
    "finish": Keyword("command", "stop", "en"),
    "stopp": Keyword("command", "stop", "sv", needs_args=True),  # bare: a hint, see below
    "stop": Keyword("command", "stop", "en", needs_args=True),  # bare STOP is Twilio's
    "status": Keyword("command", "status"),
    "nara": Keyword("command", "find", "sv"),
    "near": Keyword("command", "find", "en"),
    "pris": Keyword("command", "prices", "sv"),
    "priser": Keyword("command", "prices", "sv"),
    "price": Keyword("command", "prices", "en"),
    "prices": Keyword("command", "prices", "en"),
    "historik": Keyword("command", "history", "sv"),
    "history": Keyword("command", "history", "en"),
    "support": Keyword("command", "support"),
    "svenska": Keyword("command", "language", "sv", fixed_args="sv"),
    "english": Keyword("command", "language", "en", fixed_args="en"),
    "engelska": Keyword("command", "language", "en", fixed_args="en"),
    "meny": Keyword("menu", lang="sv"),
    "menu": Keyword("menu", lang="en"),
    "hjalp": Keyword("menu", lang="sv"),
    "mer": Keyword("more", lang="sv"),
    "mera": Keyword("more", lang="sv"),
    "more": Keyword("more", lang="en"),
    "ja": Keyword("confirm", lang="sv"),
}
FUZZY_MIN_LENGTH: Final = 4  # shorter keywords (JA, MER) must be exact
_FUZZY_CHOICES: Final = [word for word in KEYWORDS if len(word) >= FUZZY_MIN_LENGTH]
CODE_COMMANDS: Final = frozenset({"start", "prices", "stop"})
_NUMBER: Final = re.compile(r"^\s*#?\s*(\d{1,3})\s*[.):!]?\s*$")


@dataclass(frozen=True)
class Parsed:
    kind: Kind
    command: str | None = None
    args: str = ""
    number: int | None = None
    lang: str | None = None
    keyword: str | None = None  # the keyword as understood (folded), for logs and tests


def fold(text: str) -> str:
    """Lower case without accents: "NÄRA" → "nara"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _bare(text: str) -> str:
    """The message as one word, if it is one: case-folded, surrounding punctuation dropped."""
    return fold(text).strip().strip(".,!?;:'\"()- \t\r\n")


def is_reserved(body: str) -> bool:
    """The whole message is one of Twilio's opt-out, opt-in or help keywords."""
    return _bare(body) in RESERVED


def match_keyword(word: str) -> str | None:
    """The keyword `word` means: exact (folded), or within one edit for longer keywords."""
    folded = re.sub(r"[^a-z]", "", fold(word))
    if not folded:
        return None
    if folded in KEYWORDS:
        return folded
    if len(folded) < FUZZY_MIN_LENGTH - 1:
        return None
    found = extractOne(folded, _FUZZY_CHOICES, scorer=OSA.distance, score_cutoff=1)
    return None if found is None else str(found[0])


def parse(body: str) -> Parsed:
    """What an SMS asks for. Never raises."""
    text = " ".join(str(body).split())
    if not text:
        return Parsed("empty")
    if is_reserved(text):
        return Parsed("reserved", keyword=_bare(text))
    number = _NUMBER.match(text)
    if number:
        return Parsed("number", number=int(number.group(1)))
    first, _, rest = text.partition(" ")
    word = match_keyword(first)
    if word is None:
        return Parsed("text", args=text)
    keyword = KEYWORDS[word]
    args = rest.strip()
    if keyword.kind == "command":
        assert keyword.command is not None
        if keyword.needs_args and not args:
            if word == "stopp":
                return Parsed("stopp", lang="sv", keyword=word)
            return Parsed("text", args=text)  # "stpo", "strat": not ours to guess
        exact = re.sub(r"[^a-z]", "", fold(first)) == word
        if not exact and args and keyword.command in CODE_COMMANDS and not normalize_code(args):
            return Parsed("text", args=text)  # "laddar inte alls": a sentence, not a command
        return Parsed(
            "command",
            command=keyword.command,
            args=keyword.fixed_args or args,
            lang=keyword.lang,
            keyword=word,
        )
    if args and keyword.kind in {"more", "menu", "confirm"}:
        return Parsed("text", args=text)  # "mer info om priser", "ja tack, men..."
    return Parsed(keyword.kind, lang=keyword.lang, keyword=word)
