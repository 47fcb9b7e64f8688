"""Session cost from a tariff: integer öre, prices include VAT, rounding stated here.

Rounding rules (each component is rounded on its own, then summed):
- energy: energy_wh × price_per_kwh / 1000, rounded half up to whole öre;
- time: charging duration in seconds × price_per_minute / 60, rounded half up;
- session fee: as is;
- idle fee: whole idle minutes only (a started minute is free), counted from the moment the
  car stopped drawing power plus the grace period, until the session ended;
- VAT is the part of the total that is VAT: total × rate / (100 + rate), rounded half up.

No total exceeds MAX_COST_MINOR (what the 32-bit cost column holds): above it, the idle fee,
then the time fee, then the energy are billed only up to it (`capped`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from fractions import Fraction
from typing import Any


def round_half_up(value: Fraction) -> int:
    """Round a non-negative amount to the nearest integer, halves up."""
    if value < 0:
        raise ValueError("amounts are never negative")
    return int(value + Fraction(1, 2))


@dataclass(frozen=True)
class TariffSnapshot:
    """The prices a session was started under (shown before, charged after)."""

    currency: str
    price_per_kwh_minor: int
    price_per_minute_minor: int
    session_fee_minor: int
    idle_fee_per_minute_minor: int
    idle_grace_minutes: int
    vat_rate_percent: int
    # The fee of the reservation this session used (set when it started on one; 0: none).
    reservation_fee_minor: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TariffSnapshot:
        """Also a snapshot stored before a field existed: that field keeps its default."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})


# cost_minor is a 32-bit integer column.
MAX_COST_MINOR = 2**31 - 1

FREE = TariffSnapshot("SEK", 0, 0, 0, 0, 0, 25)
MEMBER_PLAN = "member"


def member_price_per_kwh(price_per_kwh_minor: int, discount_percent: int) -> int:
    """The member plan's price per kWh: `discount_percent` off, rounded half up to whole öre."""
    return round_half_up(Fraction(price_per_kwh_minor * (100 - discount_percent), 100))


def for_plan(tariff: TariffSnapshot, plan: str | None, discount_percent: int) -> TariffSnapshot:
    """The prices a driver on `plan` pays: members get the lower price per kWh, nothing else."""
    if plan != MEMBER_PLAN or discount_percent <= 0:
        return tariff
    price = member_price_per_kwh(tariff.price_per_kwh_minor, discount_percent)
    return replace(tariff, price_per_kwh_minor=price)


@dataclass(frozen=True)
class CostBreakdown:
    currency: str
    energy_wh: int
    charging_seconds: int
    idle_minutes: int
    energy_minor: int
    time_minor: int
    session_fee_minor: int
    idle_minor: int
    total_minor: int
    vat_minor: int
    vat_rate_percent: int
    reservation_fee_minor: int = 0  # receipts priced before reservations existed lack it

    @property
    def net_minor(self) -> int:
        return self.total_minor - self.vat_minor

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _seconds(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None or end <= start:
        return 0
    return int((end - start).total_seconds())


def compute_cost(
    tariff: TariffSnapshot,
    energy_wh: int,
    started_at: datetime | None,
    stopped_at: datetime | None,
    charging_finished_at: datetime | None = None,
) -> CostBreakdown:
    energy_wh = max(0, energy_wh)
    charging_seconds = _seconds(started_at, stopped_at)
    idle_seconds = _seconds(charging_finished_at, stopped_at) - tariff.idle_grace_minutes * 60
    idle_minutes = max(0, idle_seconds) // 60
    energy_minor = round_half_up(Fraction(energy_wh * tariff.price_per_kwh_minor, 1000))
    time_minor = round_half_up(Fraction(charging_seconds * tariff.price_per_minute_minor, 60))
    idle_minor = idle_minutes * tariff.idle_fee_per_minute_minor
    total = (
        energy_minor
        + time_minor
        + tariff.session_fee_minor
        + idle_minor
        + tariff.reservation_fee_minor
    )
    cost = CostBreakdown(
        currency=tariff.currency,
        energy_wh=energy_wh,
        charging_seconds=charging_seconds,
        idle_minutes=idle_minutes,
        energy_minor=energy_minor,
        time_minor=time_minor,
        session_fee_minor=tariff.session_fee_minor,
        idle_minor=idle_minor,
        total_minor=total,
        vat_minor=_vat(total, tariff.vat_rate_percent),
        vat_rate_percent=tariff.vat_rate_percent,
        reservation_fee_minor=tariff.reservation_fee_minor,
    )
    return capped(cost, MAX_COST_MINOR)


def _vat(total: int, rate_percent: int) -> int:
    return round_half_up(Fraction(total * rate_percent, 100 + rate_percent))


def capped(cost: CostBreakdown, max_total_minor: int) -> CostBreakdown:
    """`cost` billed up to `max_total_minor`: the idle fee, then the time fee, then the energy,
    then the reservation fee give way, the session fee last; the components still sum to the
    total."""
    excess = cost.total_minor - max(0, min(max_total_minor, MAX_COST_MINOR))
    if excess <= 0:
        return cost
    idle = cost.idle_minor - min(cost.idle_minor, excess)
    excess -= cost.idle_minor - idle
    time = cost.time_minor - min(cost.time_minor, excess)
    excess -= cost.time_minor - time
    energy = cost.energy_minor - min(cost.energy_minor, excess)
    excess -= cost.energy_minor - energy
    reserved = cost.reservation_fee_minor - min(cost.reservation_fee_minor, excess)
    excess -= cost.reservation_fee_minor - reserved
    fee = cost.session_fee_minor - min(cost.session_fee_minor, excess)
    total = energy + time + fee + idle + reserved
    return replace(
        cost,
        energy_minor=energy,
        time_minor=time,
        session_fee_minor=fee,
        idle_minor=idle,
        reservation_fee_minor=reserved,
        total_minor=total,
        vat_minor=_vat(total, cost.vat_rate_percent),
    )
