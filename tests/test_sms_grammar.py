"""What the SMS adapter keeps for itself: Twilio's keywords, MER/MORE; the rest is text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.adapters.sms.grammar import RESERVED, Parsed, parse


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("MER", "more"),
        ("More", "more"),
        ("mera!", "more"),
        ("mer info om priser", "text"),  # a sentence, for the engine
        ("LADDA K7P3Q", "text"),  # commands are the engine's (bot/understanding.py)
        ("1", "text"),  # so are numbers: the engine knows which menu is open
        ("STOPP", "text"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_examples(body: str, kind: str) -> None:
    assert parse(body).kind == kind


@pytest.mark.parametrize("word", sorted(RESERVED))
def test_twilios_keywords_are_never_ours(word: str) -> None:
    for variant in (word, word.upper(), word.capitalize(), f" {word}. ", f"{word}!"):
        assert parse(variant).kind == "reserved"
    # only the single word is Twilio's
    assert parse(f"{word} K7P3Q").kind != "reserved"


def test_yes_is_twilios_opt_in_keyword_so_ja_is_the_sms_yes() -> None:
    assert parse("YES").kind == "reserved"
    assert parse("JA").kind == "text"


@given(st.text(max_size=300))
def test_parse_never_raises(body: str) -> None:
    parsed = parse(body)
    assert isinstance(parsed, Parsed)


def test_a_command_named_for_both_channels_is_said_once_in_sms() -> None:
    from bot.adapters.sms.text import sms_words

    assert sms_words("Följ den med /status eller STATUS.", "sv") == "Följ den med STATUS."
    assert sms_words("End with /stop or FINISH.", "en") == "End with FINISH."
    assert sms_words("Skriv /stop eller SUPPORT.", "sv") == "Skriv AVSLUTA eller SUPPORT."
