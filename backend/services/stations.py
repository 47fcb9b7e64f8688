"""Station search: the nearest stations a driver may use, with live availability."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.models import (
    ACTIVE_SESSION_STATUSES,
    BootStatus,
    Charger,
    ChargingSession,
    Connector,
    DriverGroup,
    Station,
    StationGroup,
    Tariff,
)
from backend.services import access

EARTH_RADIUS_KM = 6371.0


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class ConnectorGroupAvailability:
    connector_type: str
    max_power_kw: float
    free: int
    total: int


@dataclass(frozen=True)
class StationAvailability:
    station: Station
    tariff: Tariff | None
    distance_km: float
    connectors: tuple[ConnectorGroupAvailability, ...]
    restricted_to: tuple[str, ...]
    hours: str | None

    @property
    def free(self) -> int:
        return sum(group.free for group in self.connectors)


async def nearest(
    db: AsyncSession,
    latitude: float,
    longitude: float,
    *,
    driver_id: int | None,
    at: datetime,
    connector_type: str | None = None,
    limit: int = 5,
) -> list[StationAvailability]:
    """Stations the driver may use now, nearest first, with free/total per connector kind."""
    usable = await access.usable_station_ids(db, driver_id, at)
    if not usable:
        return []
    stations = (await db.scalars(select(Station).where(col(Station.id).in_(usable)))).all()
    rows = (
        await db.execute(
            select(Connector, Charger)
            .join(Charger, col(Charger.id) == col(Connector.charger_id))
            .where(col(Charger.station_id).in_(usable))
        )
    ).all()
    busy = {
        (charger_id, connector_id)
        for charger_id, connector_id in (
            await db.execute(
                select(col(ChargingSession.charger_id), col(ChargingSession.connector_id)).where(
                    col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES)
                )
            )
        ).all()
    }
    tariffs = {
        t.station_id: t
        for t in (await db.scalars(select(Tariff).where(col(Tariff.station_id).in_(usable))))
    }
    group_names: dict[int, list[str]] = defaultdict(list)
    for station_id, name in (
        await db.execute(
            select(col(StationGroup.station_id), col(DriverGroup.name))
            .join(DriverGroup, col(DriverGroup.id) == col(StationGroup.group_id))
            .where(col(StationGroup.station_id).in_(usable))
        )
    ).all():
        group_names[station_id].append(name)
    counts: dict[int, dict[tuple[str, float], list[int]]] = defaultdict(dict)
    for connector, charger in rows:
        if connector_type and connector.connector_type != connector_type:
            continue
        free = (
            charger.online
            and charger.boot_status == BootStatus.ACCEPTED
            and connector.status == "Available"
            and (charger.id, connector.connector_id) not in busy
        )
        tally = counts[charger.station_id or 0].setdefault(
            (connector.connector_type, connector.max_power_kw), [0, 0]
        )
        tally[0] += int(free)
        tally[1] += 1
    found = []
    for station in stations:
        assert station.id is not None
        if station.id not in counts:
            continue  # no connector of the asked type
        groups = tuple(
            ConnectorGroupAvailability(kind, kw, free, total)
            for (kind, kw), (free, total) in sorted(counts[station.id].items())
        )
        found.append(
            StationAvailability(
                station=station,
                tariff=tariffs.get(station.id),
                distance_km=distance_km(latitude, longitude, station.latitude, station.longitude),
                connectors=groups,
                restricted_to=tuple(sorted(group_names.get(station.id, []))),
                hours=access.describe_hours(station.opening_hours),
            )
        )
    found.sort(key=lambda s: s.distance_km)
    return found[:limit]
