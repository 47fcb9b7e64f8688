"""SMS text: plain GSM-7, segment counting and pages of at most three segments.

Every text that leaves by SMS goes through `to_gsm7`, so it only ever contains characters of
the GSM 03.38 basic set (one septet each). Extension characters (`{ } [ ] ~ \\ ^ | €`) are
replaced too: they cost two septets and must not be split across segments, and nothing the
bot says needs them. Then a message is one segment up to 160 characters and 153 per segment
beyond that. (`segments` also counts UCS-2, 70/67 UTF-16 units, for texts not passed through
`to_gsm7`.)
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Final

GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION: Final = frozenset("^{}\\[~]|€\f")
MAX_SEGMENTS: Final = 3
SINGLE_GSM7: Final = 160
PART_GSM7: Final = 153
SINGLE_UCS2: Final = 70
PART_UCS2: Final = 67

_REPLACEMENTS: Final = {
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",
    "`": "'",
    "´": "'",
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u201e": '"',  # „
    "\u201f": '"',
    "«": '"',
    "»": '"',
    "\u2033": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",  # –
    "\u2014": "-",  # —
    "\u2015": "-",
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # …
    "\u2022": "*",  # •
    "\u00b7": "*",  # ·
    "\u00a0": " ",  # no-break space
    "\u2009": " ",
    "\u202f": " ",
    "\u2007": " ",
    "\t": " ",
    "×": "x",
    "÷": "/",
    "°": " grader",
    "€": "EUR",
    "{": "(",
    "}": ")",
    "[": "(",
    "]": ")",
    "~": "-",
    "\\": "/",
    "|": "/",
    "^": "",
    "\f": "\n",
    "\u2028": "\n",
    "\u2029": "\n",
    "\r\n": "\n",
    "\r": "\n",
    "Ł": "L",  # letters NFKD does not take apart
    "ł": "l",
    "Đ": "D",
    "đ": "d",
    "ı": "i",
    "Œ": "OE",
    "œ": "oe",
    "Þ": "Th",
    "þ": "th",
    "ð": "d",
}
_REPLACE: Final = re.compile("|".join(re.escape(k) for k in sorted(_REPLACEMENTS, key=len)[::-1]))


def is_gsm7(text: str) -> bool:
    """Only characters of the GSM-7 basic set (no extension characters)."""
    return all(ch in GSM7_BASIC for ch in text)


def _fallback(ch: str) -> str:
    """A character outside the basic set: its accent-free letters, or nothing (emoji...)."""
    if ch in GSM7_BASIC:
        return ch
    decomposed = unicodedata.normalize("NFKD", ch)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in plain if c in GSM7_BASIC and c not in "\r")


def to_gsm7(text: str) -> str:
    """`text` in the GSM-7 basic set: quotes, dashes and "…" transliterated, accents dropped
    where GSM-7 lacks the letter (å ä ö é ü stay), emoji and other symbols removed."""
    replaced = _REPLACE.sub(lambda m: _REPLACEMENTS[m.group(0)], text)
    replaced = replaced.replace("ç", "c")  # only the capital Ç is in the basic set
    out = "".join(_fallback(ch) for ch in replaced)
    lines = [" ".join(line.split(" ")).rstrip() for line in out.split("\n")]
    return re.sub(r" {2,}", " ", "\n".join(lines)).strip()


def segments(text: str) -> int:
    """How many SMS segments `text` takes (GSM-7: 160/153, else UCS-2: 70/67)."""
    if is_gsm7(text) or all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        length = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        single, part = SINGLE_GSM7, PART_GSM7
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, part = SINGLE_UCS2, PART_UCS2
    if length <= single:
        return 1
    return math.ceil(length / part)


def _compact(text: str) -> str:
    """Blank lines removed: one character each, sometimes the one that costs a segment."""
    return "\n".join(line for line in text.split("\n") if line.strip())


def fewest_segments(text: str) -> str:
    compact = _compact(text)
    return compact if segments(compact) < segments(text) else text


def _cut(text: str, limit: int) -> tuple[str, str]:
    """The longest head of at most `limit` characters, cut at a line break or a space."""
    if len(text) <= limit:
        return text, ""
    cut = text.rfind("\n", 0, limit + 1)
    if cut < limit // 2:
        cut = text.rfind(" ", 0, limit + 1)
    if cut < limit // 2:
        cut = limit
    return text[:cut].rstrip(), text[cut:].lstrip()


def paginate(text: str, more_line: str, max_segments: int = MAX_SEGMENTS) -> list[str]:
    """Pages of at most `max_segments` segments; every page but the last ends in `more_line`.

    `text` and `more_line` must be GSM-7 (see `to_gsm7`).
    """
    text = fewest_segments(text)
    budget = SINGLE_GSM7 if max_segments == 1 else PART_GSM7 * max_segments
    if len(text) <= budget:
        return [text] if text else []
    pages: list[str] = []
    rest = text
    while rest:
        if len(rest) <= budget:
            pages.append(rest)
            break
        head, rest = _cut(rest, budget - len(more_line) - 1)
        pages.append(f"{head}\n{more_line}")
    return pages


# Telegram-style commands in the shared catalogs, as SMS words.
SMS_WORDS: Final = {
    "sv": {
        "start": "LADDA",
        "find": "NÄRA <plats>",
        "status": "STATUS",
        "stop": "AVSLUTA",
        "history": "HISTORIK",
        "prices": "PRIS",
        "support": "SUPPORT",
        "language": "ENGLISH",
        "help": "MENY",
        "menu": "MENY",
    },
    "en": {
        "start": "CHARGE",
        "find": "NEAR <place>",
        "status": "STATUS",
        "stop": "FINISH",
        "history": "HISTORY",
        "prices": "PRICE",
        "support": "SUPPORT",
        "language": "SVENSKA",
        "help": "MENU",
        "menu": "MENU",
    },
}
_SLASH_COMMAND: Final = re.compile(r"(?<![\w/])/([a-z]+)\b")
# "/status eller STATUS" (texts naming both channels' commands) becomes "STATUS eller STATUS".
_SAME_TWICE: Final = re.compile(r"\b([A-ZÅÄÖ]{3,}) (?:eller|or) \1\b")


def sms_words(text: str, lang: str) -> str:
    """ "/stop" → "AVSLUTA" (sv) / "FINISH" (en): the catalog's commands as SMS commands."""
    words = SMS_WORDS.get(lang, SMS_WORDS["sv"])
    translated = _SLASH_COMMAND.sub(lambda m: words.get(m.group(1), m.group(0)), text)
    return _SAME_TWICE.sub(r"\1", translated)
