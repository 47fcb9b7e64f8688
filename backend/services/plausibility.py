"""Meter plausibility: how much energy a connector can have delivered, and what a reading claims.

A charger's meter figures are the charger's word; a forged or broken StopTransaction must not
bill a driver for energy no connector can deliver. The most a session can have drawn by a
moment is the connector's maximum power for the time that passed, plus a tolerance and a
small fixed slack (meter resolution, clock jitter):

    bound = max_power × elapsed × (1 + tolerance) + slack

`elapsed` is the shorter of two clocks: the charger's own (reading time − start time, free of
clock skew) and ours (now − when our session row was created, which no forged timestamp can
stretch). Registers count up: a register below the start or (by more than the slack) below a
previous reading is implausible, and so is one outside what a 32-bit meter column can hold.

Times are the charger's word too, and time and idle fees are billed from them. Billing uses
the charger's times clamped to our own clock: a session's billable start is no earlier than
when our session row was made and no later than now; sample and stop times lie between the
billable start and now + `clock_skew_seconds`. A clamp that moves a time by more than the skew
(or any time beyond now + skew) is `clock_out_of_range`: the session waits for review. A cost
above `max_cost_minor` is billed up to it and waits for review (`cost_above_cap`).

Pure functions, no database: `backend.services.charging` applies them to MeterValues and
StopTransaction and puts implausible sessions in `needs_review`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

# Registers and energies are stored in 32-bit integer columns (meter_stop_wh, energy_wh).
MAX_REGISTER_WH = 2**31 - 1
# Costs are stored in a 32-bit integer column (cost_minor, öre).
MAX_COST_MINOR = 2**31 - 1
# When a session's connector is unknown: the most any connector we know of delivers.
FALLBACK_MAX_POWER_KW = 400.0

# review_reason values
ABOVE_POWER = "above_connector_power"
BELOW_START = "register_below_start"
WENT_BACKWARDS = "register_went_backwards"
OUT_OF_RANGE = "register_out_of_range"
CLOCK_OUT_OF_RANGE = "clock_out_of_range"
COST_ABOVE_CAP = "cost_above_cap"


@dataclass(frozen=True)
class PlausibilityRules:
    """`METER_POWER_TOLERANCE` and `METER_SLACK_WH`; the clock skew and cost cap for billing."""

    tolerance: float = 0.1
    slack_wh: int = 1000
    # How far a charger's clock may be off ours before its times are out of range.
    clock_skew_seconds: float = 600.0  # as the OCPP handlers' MAX_CLOCK_AHEAD
    # No real session costs this much (100,000 kr); a cost above it is capped and reviewed.
    max_cost_minor: int = 10_000_000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0):
            raise ValueError("tolerance must be a finite number >= 0")
        if self.slack_wh < 0:
            raise ValueError("slack_wh must be >= 0")
        if not (math.isfinite(self.clock_skew_seconds) and self.clock_skew_seconds >= 0):
            raise ValueError("clock_skew_seconds must be a finite number >= 0")
        if not 0 <= self.max_cost_minor <= MAX_COST_MINOR:
            raise ValueError(f"max_cost_minor must be 0..{MAX_COST_MINOR}")

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)


@dataclass(frozen=True)
class Verdict:
    """What a reading claims, what we accept of it, and why not all of it (None: plausible)."""

    measured_wh: int
    plausible_wh: int
    reason: str | None

    @property
    def plausible(self) -> bool:
        return self.reason is None


def elapsed_seconds(
    started_at: datetime | None,
    read_at: datetime,
    created_at: datetime | None = None,
    received_at: datetime | None = None,
) -> float:
    """Seconds the session can have drawn power by `read_at`: the shorter of both clocks.

    The charger's clock: `read_at − started_at` (both its timestamps). Ours: `received_at −
    created_at` (when we got the reading, when the session row was made). Never negative.
    """
    spans = []
    if started_at is not None:
        spans.append((read_at - started_at).total_seconds())
    if created_at is not None and received_at is not None:
        spans.append((received_at - created_at).total_seconds())
    if not spans:
        return 0.0
    return max(0.0, min(spans))


def max_energy_wh(max_power_kw: float, seconds: float, rules: PlausibilityRules) -> int:
    """The most energy (Wh) a connector of `max_power_kw` delivers in `seconds`, with margins."""
    power_kw = max_power_kw if math.isfinite(max_power_kw) and max_power_kw > 0 else 0.0
    seconds = seconds if math.isfinite(seconds) and seconds > 0 else 0.0
    wh = power_kw * 1000.0 * seconds / 3600.0 * (1.0 + rules.tolerance)
    return int(min(float(MAX_REGISTER_WH), math.floor(wh) + rules.slack_wh))


def in_range(register_wh: float) -> bool:
    """A register a meter can report: a finite number in 0..MAX_REGISTER_WH."""
    return math.isfinite(register_wh) and 0 <= register_wh <= MAX_REGISTER_WH


def clamp_register(register_wh: float) -> int:
    """A register forced into the storable range (what we keep of an out-of-range one)."""
    if not math.isfinite(register_wh):
        return 0 if math.isnan(register_wh) or register_wh < 0 else MAX_REGISTER_WH
    return int(min(max(round(register_wh), 0), MAX_REGISTER_WH))


def judge(
    register_wh: float,
    meter_start_wh: int,
    bound_wh: int,
    previous_wh: int = 0,
    slack_wh: int = 0,
) -> Verdict:
    """A register reading of a session that started at `meter_start_wh`.

    `bound_wh` is `max_energy_wh` at the reading's time; `previous_wh` the energy an earlier
    reading of the session showed (a register more than `slack_wh` below it went backwards).
    The plausible energy is the claim, kept within 0..bound.
    """
    bound_wh = max(0, bound_wh)
    if not in_range(register_wh):
        measured = clamp_register(register_wh) - meter_start_wh
        return Verdict(measured, min(max(0, measured), bound_wh), OUT_OF_RANGE)
    measured = round(register_wh) - meter_start_wh
    plausible = min(max(0, measured), bound_wh)
    if measured < 0:
        return Verdict(measured, 0, BELOW_START)
    if measured > bound_wh:
        return Verdict(measured, plausible, ABOVE_POWER)
    if measured < previous_wh - slack_wh:
        return Verdict(measured, plausible, WENT_BACKWARDS)
    return Verdict(measured, plausible, None)


@dataclass(frozen=True)
class BillingTimes:
    """A session's times as billed (clamped to our clock), and whether clamping mattered."""

    started_at: datetime
    stopped_at: datetime
    charging_finished_at: datetime | None
    out_of_range: bool


def billable_start(claimed: datetime | None, created_at: datetime, now: datetime) -> datetime:
    """The charger's start, no earlier than our session row and no later than now."""
    return min(max(claimed or created_at, created_at), max(created_at, now))


def clamp_time(
    claimed: datetime, start: datetime, now: datetime, rules: PlausibilityRules
) -> datetime:
    """A sample or stop time within [billable start, now + skew]."""
    return min(max(claimed, start), max(start, now + rules.clock_skew))


def off_clock(
    claimed: datetime, clamped: datetime, now: datetime, rules: PlausibilityRules
) -> bool:
    """Clamping moved the charger's time materially, or the charger dates it beyond now + skew."""
    return claimed > now + rules.clock_skew or abs(claimed - clamped) > rules.clock_skew


def billing_times(
    started_at: datetime | None,
    created_at: datetime,
    stopped_at: datetime,
    charging_finished_at: datetime | None,
    now: datetime,
    rules: PlausibilityRules,
) -> BillingTimes:
    """The times a session is billed for: the charger's, clamped to our clock.

    The idle start (`charging_finished_at`) lies between the billable start and stop.
    """
    start = billable_start(started_at, created_at, now)
    stop = clamp_time(stopped_at, start, now, rules)
    out = off_clock(stopped_at, stop, now, rules)
    if started_at is not None:
        out = out or abs(start - started_at) > rules.clock_skew
    finished = None
    if charging_finished_at is not None:
        clamped = clamp_time(charging_finished_at, start, now, rules)
        out = out or off_clock(charging_finished_at, clamped, now, rules)
        finished = min(clamped, stop)
    return BillingTimes(start, stop, finished, out)


__all__ = [
    "ABOVE_POWER",
    "BELOW_START",
    "CLOCK_OUT_OF_RANGE",
    "COST_ABOVE_CAP",
    "FALLBACK_MAX_POWER_KW",
    "MAX_COST_MINOR",
    "MAX_REGISTER_WH",
    "OUT_OF_RANGE",
    "WENT_BACKWARDS",
    "BillingTimes",
    "PlausibilityRules",
    "Verdict",
    "billable_start",
    "billing_times",
    "clamp_register",
    "clamp_time",
    "elapsed_seconds",
    "in_range",
    "judge",
    "max_energy_wh",
    "off_clock",
]
