"""What an SMS body is before the engine reads it: Twilio's keyword, MER/MORE, or text.

`parse` never raises and never touches the database. The commands drivers text (LADDA,
AVSLUTA, NÄRA, ...) are not parsed here: they are the most certain phrasings of the intents in
data/intents.yaml and mean the same on every channel (bot/understanding.py).

Twilio's own keywords come first and are never ours: a message that is only one of them
(see RESERVED) is handled by Twilio and the carriers, and the adapter answers it with an
empty response; an opt-out is remembered.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

# Twilio's default keywords for long codes and toll-free numbers (help.twilio.com, "Twilio
# support for opt-out keywords (SMS STOP filtering)"); case-insensitive, single-word messages.
OPT_OUT: Final = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
OPT_IN: Final = frozenset({"start", "unstop", "yes"})
HELP: Final = frozenset({"help", "info"})
RESERVED: Final = OPT_OUT | OPT_IN | HELP
MORE: Final = frozenset({"mer", "mera", "more"})  # the next page of a long answer

Kind = Literal["reserved", "more", "text", "empty"]


@dataclass(frozen=True)
class Parsed:
    kind: Kind
    keyword: str | None = None  # the reserved word as understood (folded), for logs and tests


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


def parse(body: str) -> Parsed:
    """What an SMS is for the adapter. Never raises."""
    text = " ".join(str(body).split())
    if not text:
        return Parsed("empty")
    bare = _bare(text)
    if bare in RESERVED:
        return Parsed("reserved", keyword=bare)
    if bare in MORE:
        return Parsed("more", keyword=bare)
    return Parsed("text")
