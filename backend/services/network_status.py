"""Live network status for the operator console: every station's chargers and connectors.

A pure read over an `AsyncSession`: the connectors' last OCPP statuses, summed up per charger
and station as the badges of /console/network show them (available, charging, faulted,
offline, other).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.models import Charger, Connector, Station

UNPLACED = "Unplaced"  # the pseudo-station of chargers without a station
CHARGING_STATUSES = frozenset({"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"})


@dataclass(frozen=True)
class StatusCounts:
    """Connectors by state; `other` is Preparing, Reserved, Unavailable and the like."""

    available: int = 0
    charging: int = 0
    faulted: int = 0
    offline: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return self.available + self.charging + self.faulted + self.offline + self.other

    def __add__(self, other: StatusCounts) -> StatusCounts:
        return StatusCounts(
            self.available + other.available,
            self.charging + other.charging,
            self.faulted + other.faulted,
            self.offline + other.offline,
            self.other + other.other,
        )


@dataclass(frozen=True)
class ConnectorStatus:
    code: str
    connector_id: int
    connector_type: str
    max_power_kw: float
    status: str  # the last OCPP status the charger reported
    error_code: str
    status_updated_at: datetime | None


@dataclass(frozen=True)
class ChargerStatus:
    id: str
    online: bool
    last_seen_at: datetime | None
    status: str | None  # connector 0: the charge point as a whole
    error_code: str | None
    connectors: list[ConnectorStatus]

    def state_of(self, connector: ConnectorStatus) -> str:
        """available, charging, faulted, offline or other: what a console badge shows."""
        return connector_state(self.online, self.status, connector.status)

    @property
    def counts(self) -> StatusCounts:
        tally: dict[str, int] = defaultdict(int)
        for connector in self.connectors:
            tally[self.state_of(connector)] += 1
        return StatusCounts(**tally)


@dataclass(frozen=True)
class StationStatus:
    station_id: int | None  # None: the "Unplaced" pseudo-station
    name: str
    city: str
    chargers: list[ChargerStatus]

    @property
    def counts(self) -> StatusCounts:
        return sum((charger.counts for charger in self.chargers), StatusCounts())

    @property
    def available(self) -> int:
        return self.counts.available

    @property
    def charging(self) -> int:
        return self.counts.charging

    @property
    def faulted(self) -> int:
        return self.counts.faulted

    @property
    def offline(self) -> int:
        return self.counts.offline


def connector_state(charger_online: bool, charger_status: str | None, status: str) -> str:
    """available, charging, faulted, offline or other.

    An offline charger's connectors are offline whatever they last said; a charge point that
    reports itself Faulted (connector 0) makes all its connectors faulted. Charging covers
    Charging, SuspendedEV, SuspendedEVSE and Finishing (a car is plugged in and in session).
    """
    if not charger_online:
        return "offline"
    if status == "Faulted" or charger_status == "Faulted":
        return "faulted"
    if status == "Available":
        return "available"
    if status in CHARGING_STATUSES:
        return "charging"
    return "other"


async def network_status(db: AsyncSession) -> list[StationStatus]:
    """Every station (by city, name) with its chargers and connectors; then unplaced chargers."""
    stations = (
        await db.scalars(select(Station).order_by(col(Station.city), col(Station.name)))
    ).all()
    chargers = (await db.scalars(select(Charger).order_by(col(Charger.id)))).all()
    connectors = (
        await db.scalars(
            select(Connector).order_by(col(Connector.charger_id), col(Connector.connector_id))
        )
    ).all()
    by_charger: dict[str, list[ConnectorStatus]] = defaultdict(list)
    for connector in connectors:
        by_charger[connector.charger_id].append(_connector_status(connector))
    by_station: dict[int | None, list[ChargerStatus]] = defaultdict(list)
    for charger in chargers:
        by_station[charger.station_id].append(
            ChargerStatus(
                id=charger.id,
                online=charger.online,
                last_seen_at=charger.last_seen_at,
                status=charger.status,
                error_code=charger.error_code,
                connectors=by_charger.get(charger.id, []),
            )
        )
    result = [
        StationStatus(station.id, station.name, station.city, by_station.get(station.id, []))
        for station in stations
    ]
    if by_station.get(None):
        result.append(StationStatus(None, UNPLACED, "", by_station[None]))
    return result


def _connector_status(connector: Connector) -> ConnectorStatus:
    return ConnectorStatus(
        code=connector.code,
        connector_id=connector.connector_id,
        connector_type=connector.connector_type,
        max_power_kw=connector.max_power_kw,
        status=connector.status,
        error_code=connector.error_code,
        status_updated_at=connector.status_updated_at,
    )
