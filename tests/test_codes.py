"""Connector codes are short, unique and free of easily confused characters."""

from __future__ import annotations

import random
from itertools import cycle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.services.codes import (
    CODE_ALPHABET,
    CODE_PATTERN,
    CodeSpaceExhaustedError,
    new_code,
    normalize_code,
    random_code,
)


def test_the_alphabet_has_no_confusable_characters() -> None:
    assert not set("01OIL") & set(CODE_ALPHABET)
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET)


@given(st.randoms(use_true_random=False))
def test_random_codes_are_four_to_six_unambiguous_characters(rng: random.Random) -> None:
    code = random_code(rng.choice)
    assert 4 <= len(code) <= 6
    assert CODE_PATTERN.match(code)


def test_a_new_code_avoids_the_taken_ones() -> None:
    # A chooser that would repeat the taken code first must still end on a fresh one.
    scripted = cycle("AAAAA" + "BBBBB")
    code = new_code({"AAAAA"}, choice=lambda _alphabet: next(scripted))
    assert code == "BBBBB"


def test_a_full_code_space_is_reported_not_looped_forever() -> None:
    with pytest.raises(CodeSpaceExhaustedError):
        new_code({"AAAAA"}, choice=lambda _alphabet: "A", attempts=50)


@given(st.text(alphabet=CODE_ALPHABET, min_size=5, max_size=5), st.sampled_from(["", " ", "-"]))
def test_a_typed_code_is_read_regardless_of_case_and_separators(code: str, sep: str) -> None:
    typed = f" {code[:2].lower()}{sep}{code[2:]} "
    assert normalize_code(typed) == code


@given(st.text(max_size=12))
def test_normalize_only_ever_returns_a_valid_code_or_none(text: str) -> None:
    result = normalize_code(text)
    assert result is None or CODE_PATTERN.match(result)


@pytest.mark.parametrize("typed", ["K0P3Q", "KIP3Q", "K1P3Q", "KLP3Q", "KOP3Q", "ABC", "ABCDEFG"])
def test_strings_that_cannot_be_codes_are_refused(typed: str) -> None:
    assert normalize_code(typed) is None
