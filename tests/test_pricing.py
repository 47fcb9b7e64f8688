"""The money math: integer öre, each component rounded half up, VAT shown separately."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.services.pricing import (
    CostBreakdown,
    TariffSnapshot,
    compute_cost,
    for_plan,
    member_price_per_kwh,
    round_half_up,
)

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
TARIFF = TariffSnapshot(
    currency="SEK",
    price_per_kwh_minor=450,
    price_per_minute_minor=50,
    session_fee_minor=500,
    idle_fee_per_minute_minor=200,
    idle_grace_minutes=15,
    vat_rate_percent=25,
)


def test_a_worked_example_with_every_component() -> None:
    # 12.345 kWh × 4.50 kr = 55.5525 kr → 5555 öre; 60 min × 0.50 = 30 kr; fee 5 kr;
    # the car was full after 40 min: 20 min idle, 15 free, 5 × 2 kr = 10 kr.
    cost = compute_cost(TARIFF, 12_345, T0, T0 + timedelta(minutes=60), T0 + timedelta(minutes=40))
    assert cost.energy_minor == 5555
    assert cost.time_minor == 3000
    assert cost.session_fee_minor == 500
    assert cost.idle_minutes == 5
    assert cost.idle_minor == 1000
    assert cost.total_minor == 10055
    assert cost.vat_minor == 2011  # 100.55 kr × 25/125 = 20.11 kr
    assert cost.net_minor == 8044


def test_halves_round_up() -> None:
    assert round_half_up(Fraction(1, 2)) == 1
    assert round_half_up(Fraction(3, 2)) == 2
    assert round_half_up(Fraction(149, 100)) == 1
    # 1 Wh at 450 öre/kWh is 0.45 öre → 0; 2 Wh is 0.9 öre → 1.
    assert compute_cost(TARIFF, 1, T0, T0).energy_minor == 0
    assert compute_cost(TARIFF, 2, T0, T0).energy_minor == 1


def test_idle_minutes_start_after_the_grace_period_and_count_only_whole_minutes() -> None:
    finished = T0 + timedelta(minutes=30)

    def cost(seconds: int) -> CostBreakdown:
        return compute_cost(TARIFF, 0, T0, finished + timedelta(seconds=seconds), finished)

    assert cost(15 * 60).idle_minor == 0
    assert cost(15 * 60 + 59).idle_minor == 0
    assert cost(16 * 60).idle_minor == 200


def test_a_session_that_never_stopped_drawing_power_pays_no_idle_fee() -> None:
    assert compute_cost(TARIFF, 5000, T0, T0 + timedelta(hours=5), None).idle_minor == 0


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        round_half_up(Fraction(-1, 2))


prices = st.integers(min_value=0, max_value=10_000)


@given(
    per_kwh=prices,
    per_minute=prices,
    fee=prices,
    idle_fee=prices,
    grace=st.integers(min_value=0, max_value=120),
    energy_wh=st.integers(min_value=0, max_value=500_000),
    minutes=st.integers(min_value=0, max_value=24 * 60),
    finished_after=st.integers(min_value=0, max_value=24 * 60) | st.none(),
    vat=st.sampled_from([0, 6, 12, 25]),
)
def test_cost_properties(
    per_kwh: int,
    per_minute: int,
    fee: int,
    idle_fee: int,
    grace: int,
    energy_wh: int,
    minutes: int,
    finished_after: int | None,
    vat: int,
) -> None:
    tariff = TariffSnapshot("SEK", per_kwh, per_minute, fee, idle_fee, grace, vat)
    stopped = T0 + timedelta(minutes=minutes)
    finished = None if finished_after is None else T0 + timedelta(minutes=finished_after)
    cost = compute_cost(tariff, energy_wh, T0, stopped, finished)
    parts = cost.energy_minor + cost.time_minor + cost.session_fee_minor + cost.idle_minor
    assert cost.total_minor == parts
    assert all(isinstance(v, int) and v >= 0 for v in (cost.total_minor, cost.vat_minor))
    assert cost.vat_minor + cost.net_minor == cost.total_minor
    assert abs(Fraction(cost.energy_minor) - Fraction(energy_wh * per_kwh, 1000)) <= Fraction(1, 2)
    # VAT is within half an öre of the exact share, and never more than the total.
    exact_vat = Fraction(cost.total_minor * vat, 100 + vat)
    assert abs(cost.vat_minor - exact_vat) <= Fraction(1, 2)
    # More energy never costs less.
    more = compute_cost(tariff, energy_wh + 1000, T0, stopped, finished)
    assert more.total_minor >= cost.total_minor


@given(st.integers(0, 100_000), st.integers(0, 90))
def test_the_member_price_is_the_discount_rounded_half_up_and_never_more(
    price: int, percent: int
) -> None:
    member = member_price_per_kwh(price, percent)
    exact = Fraction(price * (100 - percent), 100)
    assert abs(member - exact) <= Fraction(1, 2)
    assert member - exact != Fraction(-1, 2)  # halves go up
    assert 0 <= member <= price
    tariff = TariffSnapshot("SEK", price, 10, 500, 200, 15, 25)
    assert for_plan(tariff, "payg", percent) == tariff
    assert for_plan(tariff, "member", 0) == tariff
    discounted = for_plan(tariff, "member", percent)
    assert discounted.price_per_kwh_minor == member
    assert discounted.to_json() | {"price_per_kwh_minor": price} == tariff.to_json()
