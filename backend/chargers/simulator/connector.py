"""A connector's state, its transaction and its meter (the energy register and its samples)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from ocpp.v16.enums import (
    ChargePointErrorCode,
    ChargePointStatus,
    Location,
    Measurand,
    UnitOfMeasure,
)

from backend.chargers.simulator.battery import charge, power_fraction
from backend.chargers.simulator.config import SimulatorConfig


def utc_now() -> str:
    """OCPP timestamp: UTC, ISO 8601, milliseconds, "Z" suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True, eq=False)
class Tx:
    """A transaction as the charge point knows it; `id` comes with the StartTransaction answer."""

    connector_id: int
    id_tag: str
    id: int | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # or dropped unanswered
    charging: bool = False  # authorized and metering (not stopped before the answer)
    followup: asyncio.Task[Any] | None = None  # Charging status + metering, or de-authorized stop


@dataclass(frozen=True, slots=True)
class Held:
    """A reservation the charge point keeps on a connector (ReserveNow)."""

    reservation_id: int
    id_tag: str
    expires_at: datetime


@dataclass(slots=True)
class Connector:
    """State of one connector (connector 0 = the charge point itself)."""

    id: int
    energy_wh: float  # energy register, only grows
    status: str = ChargePointStatus.available
    error_code: str = ChargePointErrorCode.no_error
    operative: bool = True
    pending_operative: bool | None = None  # ChangeAvailability "Scheduled" until the tx ends
    starting: bool = False  # reserved by a RemoteStart / start_local in progress
    tx: Tx | None = None  # the local transaction, from StartTransaction queued to stopped
    tx_id: int | None = None  # its transactionId, once StartTransaction is answered
    id_tag: str | None = None
    soc: float = 0.0  # of the car plugged in during a transaction
    last_update: float = 0.0  # time.monotonic() of the last energy integration
    sessions: int = 0
    held: Held | None = None  # a reservation on it
    limit_kw: float | None = None  # what its charging profiles allow now (None: no limit)
    tx_started: float | None = None  # time.time() its transaction got its id
    pending_profile: dict[str, Any] | None = None  # a RemoteStart's TxProfile, until the id

    def idle_status(self) -> str:
        status = ChargePointStatus.available if self.operative else ChargePointStatus.unavailable
        return cast(str, status)  # a str enum member

    def max_kw(self, config: SimulatorConfig) -> float:
        """The connector's power, its charging profiles' limit applied."""
        if self.limit_kw is None:
            return config.power_kw
        return max(0.0, min(config.power_kw, self.limit_kw))

    def is_free_offline(self, id_tag: str | None = None) -> bool:
        """Free as far as the charge point itself knows (its status may be unsent)."""
        return (
            self.operative
            and self.tx is None
            and self.tx_id is None
            and not self.starting
            and (self.held is None or self.held.id_tag == id_tag)
        )

    def is_free(self, id_tag: str | None = None) -> bool:
        """Free for a start by `id_tag`: a reserved connector only for its own id tag."""
        idle = self.status == ChargePointStatus.available or (
            self.status == ChargePointStatus.reserved and self.held is not None
        )
        return idle and self.is_free_offline(id_tag)

    # ---- the meter --------------------------------------------------------------------------

    def advance(self, config: SimulatorConfig) -> None:
        """Integrate the energy drawn since the last update (also across disconnects)."""
        now = time.monotonic()
        if self.tx_id is not None:
            hours = (now - self.last_update) * config.time_scale / 3600.0
            soc = charge(self.soc, hours, self.max_kw(config), config.battery_kwh)
            self.energy_wh += max(0.0, soc - self.soc) * config.battery_kwh * 1000.0
            self.soc = soc
        self.last_update = now

    def power_w(self, config: SimulatorConfig) -> float:
        if self.tx_id is None:
            return 0.0
        return self.max_kw(config) * 1000.0 * power_fraction(self.soc)

    def sample(self, config: SimulatorConfig, context: str) -> tuple[dict[str, Any], float]:
        """One meterValue entry (energy, power and, during a transaction, SoC) + power in W."""
        self.advance(config)
        power_w = self.power_w(config)
        values: list[dict[str, Any]] = [
            {
                "value": str(int(self.energy_wh)),
                "context": context,
                "measurand": Measurand.energy_active_import_register,
                "location": Location.outlet,
                "unit": UnitOfMeasure.wh,
            },
            {
                "value": str(round(power_w)),
                "context": context,
                "measurand": Measurand.power_active_import,
                "location": Location.outlet,
                "unit": UnitOfMeasure.w,
            },
        ]
        if self.tx_id is not None:
            values.append(
                {
                    "value": str(min(100, int(self.soc * 100.0))),
                    "context": context,
                    "measurand": Measurand.soc,
                    "location": Location.ev,
                    "unit": UnitOfMeasure.percent,
                }
            )
        return {"timestamp": utc_now(), "sampledValue": values}, power_w
