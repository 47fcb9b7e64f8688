"""A simulated charge point's charging profiles and the power limit they make (OCPP 1.6 §3.13).

Per connector the limit is the lower of the charge point's ChargePointMaxProfile (connector 0)
and the transaction's own profile: its TxProfile if it has one, else the TxDefaultProfile of
the connector (or of connector 0); among profiles of one purpose the highest stack level in
force wins. A period's limit in A counts 230 V per phase (3 phases unless it says).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

VOLTS = 230.0
PHASES = 3
CP_MAX, TX_DEFAULT, TX = "ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"
_RECURRENCE_SECONDS = {"Daily": 86400.0, "Weekly": 7 * 86400.0}


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


@dataclass
class Installed:
    connector_id: int
    profile: dict[str, Any]
    installed_at: float  # time.time()
    transaction_id: int | None = None  # of a TxProfile

    @property
    def id(self) -> int:
        return int(self.profile["charging_profile_id"])

    @property
    def purpose(self) -> str:
        return str(self.profile["charging_profile_purpose"])

    @property
    def stack_level(self) -> int:
        return int(self.profile["stack_level"])

    def in_force(self, now: float) -> bool:
        valid_from = _parse(self.profile.get("valid_from"))
        valid_to = _parse(self.profile.get("valid_to"))
        return (valid_from is None or valid_from.timestamp() <= now) and (
            valid_to is None or now < valid_to.timestamp()
        )

    def limit_w(self, now: float, tx_started: float | None) -> float | None:
        """The limit of the period in force at `now`, in W (None: the schedule is over)."""
        schedule = self.profile["charging_schedule"]
        kind = self.profile.get("charging_profile_kind", "Absolute")
        start = _parse(schedule.get("start_schedule"))
        if kind == "Relative":
            origin = tx_started if tx_started is not None else now
        else:
            origin = start.timestamp() if start is not None else self.installed_at
        elapsed = now - origin
        if kind == "Recurring":
            elapsed %= _RECURRENCE_SECONDS.get(str(self.profile.get("recurrency_kind")), 86400.0)
        duration = schedule.get("duration")
        if elapsed < 0 or (duration is not None and elapsed >= float(duration)):
            return None
        current = None
        for period in schedule["charging_schedule_period"]:
            if float(period["start_period"]) <= elapsed:
                current = period
        if current is None:
            return None
        limit = float(current["limit"])
        if schedule["charging_rate_unit"] == "A":
            limit *= VOLTS * int(current.get("number_phases") or PHASES)
        return limit


class Profiles:
    """The profiles a charge point holds."""

    def __init__(self) -> None:
        self.installed: list[Installed] = []

    def set(self, connector_id: int, profile: dict[str, Any], tx_id: int | None) -> bool:
        """SetChargingProfile (or a RemoteStart's profile): False when it must be Rejected."""
        purpose = profile.get("charging_profile_purpose")
        if purpose == CP_MAX and connector_id != 0:
            return False
        if purpose == TX:
            wanted = profile.get("transaction_id")
            if connector_id == 0 or tx_id is None or (wanted is not None and wanted != tx_id):
                return False
        entry = Installed(connector_id, profile, time.time(), tx_id if purpose == TX else None)
        self.installed = [
            p
            for p in self.installed
            if p.id != entry.id
            and (p.connector_id, p.purpose, p.stack_level)
            != (entry.connector_id, entry.purpose, entry.stack_level)
        ]
        self.installed.append(entry)
        return True

    def clear(
        self,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> bool:
        """ClearChargingProfile: True (Accepted) if anything was removed, else Unknown."""

        def matches(p: Installed) -> bool:
            if profile_id is not None:
                return p.id == profile_id
            return (
                (connector_id is None or p.connector_id == connector_id)
                and (purpose is None or p.purpose == purpose)
                and (stack_level is None or p.stack_level == stack_level)
            )

        kept = [p for p in self.installed if not matches(p)]
        removed = len(kept) != len(self.installed)
        self.installed = kept
        return removed

    def transaction_ended(self, tx_id: int) -> None:
        """A TxProfile lasts as long as its transaction."""
        self.installed = [p for p in self.installed if p.transaction_id != tx_id]

    def _winner(
        self, candidates: list[Installed], now: float, tx_started: float | None
    ) -> float | None:
        for entry in sorted(candidates, key=lambda p: -p.stack_level):
            limit = entry.limit_w(now, tx_started) if entry.in_force(now) else None
            if limit is not None:
                return limit
        return None

    def limit_w(
        self,
        connector_id: int,
        tx_id: int | None,
        tx_started: float | None,
        now: float | None = None,
    ) -> float | None:
        """The connector's limit at `now` (None: no profile limits it)."""
        now = now if now is not None else time.time()
        limits = []
        cp_max = self._winner([p for p in self.installed if p.purpose == CP_MAX], now, None)
        if cp_max is not None:
            limits.append(cp_max)
        own = None
        if tx_id is not None:
            own = self._winner(
                [p for p in self.installed if p.purpose == TX and p.transaction_id == tx_id],
                now,
                tx_started,
            )
        if own is None:
            defaults = [p for p in self.installed if p.purpose == TX_DEFAULT]
            own = self._winner(
                [p for p in defaults if p.connector_id == connector_id], now, tx_started
            )
            if own is None:
                own = self._winner([p for p in defaults if p.connector_id == 0], now, tx_started)
        if own is not None:
            limits.append(own)
        return min(limits) if limits else None

    def composite(
        self,
        connector_id: int,
        duration: int,
        unit: str,
        max_w: float,
        tx_id: int | None,
        tx_started: float | None,
    ) -> dict[str, Any]:
        """GetCompositeSchedule's chargingSchedule: the limit over the next `duration` s, one
        period per change (sampled each minute and at every period boundary)."""
        now = time.time()
        offsets = sorted(
            {0, *range(60, duration, 60)}
            | {
                int(float(period["start_period"]))
                for p in self.installed
                for period in p.profile["charging_schedule"]["charging_schedule_period"]
                if 0 < float(period["start_period"]) < duration
            }
        )
        periods: list[dict[str, Any]] = []
        for offset in offsets:
            limit = self.limit_w(connector_id, tx_id, tx_started, now + offset)
            watts = max_w if limit is None else min(limit, max_w)
            value = watts if unit == "W" else watts / (VOLTS * PHASES)
            value = round(value, 1)
            if not periods or periods[-1]["limit"] != value:
                periods.append({"start_period": offset, "limit": value})
        return {
            "duration": duration,
            "start_schedule": datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z"),
            "charging_rate_unit": unit,
            "charging_schedule_period": periods,
        }
