"""Phone numbers are stored in E.164 whatever way a person writes them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.services.phones import InvalidPhoneNumberError, to_e164


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("070-123 45 67", "+46701234567"),
        ("0701234567", "+46701234567"),
        ("+46 70 123 45 67", "+46701234567"),
        ("0046701234567", "+46701234567"),
        ("08-123 456 78", "+46812345678"),
        ("+47 412 34 567", "+4741234567"),
    ],
)
def test_common_ways_of_writing_a_number(written: str, e164: str) -> None:
    assert to_e164(written) == e164


@pytest.mark.parametrize("written", ["", "abc", "070", "+46 70 123", "123456789012345678"])
def test_non_numbers_are_refused(written: str) -> None:
    with pytest.raises(InvalidPhoneNumberError):
        to_e164(written)


@given(
    st.sampled_from(["70", "72", "73", "76", "79"]),
    st.text(alphabet="0123456789", min_size=7, max_size=7),
    st.sampled_from(["0{p}{r}", "0{p}-{r}", "+46{p}{r}", "+46 {p} {r}", "0046{p}{r}"]),
)
def test_every_spelling_of_a_swedish_mobile_gives_one_e164(
    prefix: str, rest: str, template: str
) -> None:
    written = template.format(p=prefix, r=rest)
    e164 = to_e164(written)
    assert e164 == f"+46{prefix}{rest}"
    assert to_e164(e164) == e164
