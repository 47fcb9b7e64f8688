"""The SMS command grammar: examples and properties (hypothesis)."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from bot.adapters.sms_grammar import (
    FUZZY_MIN_LENGTH,
    KEYWORDS,
    RESERVED,
    Parsed,
    fold,
    parse,
)


@pytest.mark.parametrize(
    ("body", "kind", "command", "args"),
    [
        ("LADDA K7P3Q", "command", "start", "K7P3Q"),
        ("LADA K7P3Q", "command", "start", "K7P3Q"),
        ("charge k7p3q", "command", "start", "k7p3q"),
        ("avsluta", "command", "stop", ""),
        ("AVSLUTA", "command", "stop", ""),
        ("Finish", "command", "stop", ""),
        ("STOPP K7P3Q", "command", "stop", "K7P3Q"),
        ("STOP K7P3Q", "command", "stop", "K7P3Q"),
        ("status", "command", "status", ""),
        ("NÄRA Göteborg central", "command", "find", "Göteborg central"),
        ("nara sumpan", "command", "find", "sumpan"),
        ("NEAR Uppsala", "command", "find", "Uppsala"),
        ("PRIS K7P3Q", "command", "prices", "K7P3Q"),
        ("price", "command", "prices", ""),
        ("histrik", "command", "history", ""),
        ("HISTORY", "command", "history", ""),
        ("support", "command", "support", ""),
        ("SVENSKA", "command", "language", "sv"),
        ("english", "command", "language", "en"),
        ("MENY", "menu", None, ""),
        ("menu", "menu", None, ""),
        ("HJÄLP", "menu", None, ""),
        ("MER", "more", None, ""),
        ("More", "more", None, ""),
        ("JA", "confirm", None, ""),
        ("ja!", "confirm", None, ""),
        ("1", "number", None, ""),
        (" 2. ", "number", None, ""),
        ("STOPP", "stopp", None, ""),
        ("Hur mycket kostar det?", "text", None, "Hur mycket kostar det?"),
        ("Laddar inte alls", "text", None, "Laddar inte alls"),  # a typo + no code: a sentence
        ("ja tack, men hur?", "text", None, "ja tack, men hur?"),
        ("K7P3Q", "text", None, "K7P3Q"),  # a bare code: the engine knows codes
        ("", "empty", None, ""),
        ("   ", "empty", None, ""),
    ],
)
def test_examples(body: str, kind: str, command: str | None, args: str) -> None:
    parsed = parse(body)
    assert parsed.kind == kind
    assert parsed.command == command
    assert parsed.args == args


@pytest.mark.parametrize("word", sorted(RESERVED))
def test_twilios_keywords_are_never_ours(word: str) -> None:
    for variant in (word, word.upper(), word.capitalize(), f" {word}. ", f"{word}!"):
        assert parse(variant).kind == "reserved"
    # only the single word is Twilio's
    assert parse(f"{word} K7P3Q").kind != "reserved"


def test_yes_is_twilios_opt_in_keyword_so_only_ja_and_digits_confirm() -> None:
    assert parse("YES").kind == "reserved"
    assert parse("JA").kind == "confirm"


@given(st.text(max_size=300))
def test_parse_never_raises(body: str) -> None:
    parsed = parse(body)
    assert isinstance(parsed, Parsed)


_ACCENTED = {"a": "àáâäå", "e": "éèêë", "o": "óòôö", "u": "úùûü", "i": "íìîï"}


@st.composite
def disguised(draw: st.DrawFn, word: str) -> str:
    """`word` in random case, with random accents on its vowels."""
    out = []
    for ch in word:
        if ch in _ACCENTED and draw(st.booleans()):
            ch = draw(st.sampled_from(_ACCENTED[ch]))
        out.append(ch.upper() if draw(st.booleans()) else ch)
    return "".join(out)


@given(st.data(), st.sampled_from(sorted(KEYWORDS)), st.sampled_from(["", " K7P3Q", " Uppsala"]))
def test_keywords_are_case_and_accent_insensitive(
    data: st.DataObject, word: str, args: str
) -> None:
    plain = parse(word + args)
    variant = data.draw(disguised(word))
    assert fold(variant) == word
    parsed = parse(variant + args)
    if plain.kind == "text":  # a sentence: passed on as typed
        assert parsed.kind == "text" and parsed.args == variant + args
    else:
        assert parsed == plain


def _one_edit(word: str, position: int, letter: str, operation: str) -> str:
    position %= len(word) + (1 if operation == "insert" else 0)
    if operation == "insert":
        return word[:position] + letter + word[position:]
    if operation == "delete":
        return word[:position] + word[position + 1 :]
    if operation == "swap" and position < len(word) - 1:
        return word[:position] + word[position + 1] + word[position] + word[position + 2 :]
    return word[:position] + letter + word[position + 1 :]


_FUZZY = sorted(w for w in KEYWORDS if len(w) >= FUZZY_MIN_LENGTH)


@given(
    st.sampled_from(_FUZZY),
    st.integers(min_value=0, max_value=20),
    st.sampled_from(string.ascii_lowercase),
    st.sampled_from(["insert", "delete", "substitute", "swap"]),
    st.sampled_from(["", " K7P3Q"]),
)
def test_one_typo_in_a_keyword_still_parses(
    word: str, position: int, letter: str, operation: str, args: str
) -> None:
    typo = _one_edit(word, position, letter, operation)
    assume(typo != word)
    assume(typo not in RESERVED)  # a typo that is Twilio's keyword is Twilio's
    meaning = KEYWORDS[word]
    # a typo as close to a keyword of another meaning is ambiguous: not asserted
    for other, keyword in KEYWORDS.items():
        if keyword.command != meaning.command or keyword.kind != meaning.kind:
            assume(OSA.distance(typo, other) > 1 or len(other) < FUZZY_MIN_LENGTH)
            assume(typo != other)
    if meaning.needs_args:
        args = " K7P3Q"  # STOP/START are ours only with a code
    parsed = parse(typo.upper() + args)
    expected = parse(word + args)
    assert parsed.kind == expected.kind
    assert parsed.command == expected.command
    if expected.kind != "text":  # "MER K7P3Q" is a sentence: the text itself is passed on
        assert parsed.args == expected.args


def test_keywords_of_different_meaning_are_more_than_one_edit_apart() -> None:
    words = sorted(KEYWORDS)
    for a in words:
        for b in words:
            same = (KEYWORDS[a].kind, KEYWORDS[a].command) == (
                KEYWORDS[b].kind,
                KEYWORDS[b].command,
            )
            if a < b and not same and min(len(a), len(b)) >= FUZZY_MIN_LENGTH:
                assert OSA.distance(a, b) > 1, (a, b)
    for word in words:
        assert word not in RESERVED or KEYWORDS[word].needs_args


def test_a_command_named_for_both_channels_is_said_once_in_sms() -> None:
    from bot.adapters.sms_text import sms_words

    assert sms_words("Följ den med /status eller STATUS.", "sv") == "Följ den med STATUS."
    assert sms_words("End with /stop or FINISH.", "en") == "End with FINISH."
    assert sms_words("Skriv /stop eller SUPPORT.", "sv") == "Skriv AVSLUTA eller SUPPORT."
