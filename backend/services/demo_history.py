"""Made-up charging history for the demo network, so the console's charts have something to show.

Development only. Sessions are completed, on the seeded stations' connectors, by the demo
drivers, priced like real ones (the station tariff snapshot, `for_plan`, `session_cost`), with
busier mornings and evenings on weekdays and a flatter midday on weekends. Deterministic: the
same network, seed and `now` give the same sessions. It adds to what is there, so run it once on
a freshly seeded demo database.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import yaml
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import (
    Charger,
    ChargingSession,
    Connector,
    Driver,
    IdTag,
    SessionStatus,
    Station,
    Tariff,
)
from backend.services.charging import session_cost, virtual_id_tag
from backend.services.pricing import FREE, TariffSnapshot, for_plan
from backend.services.seed import DEMO_NETWORK_FILE
from backend.timezones import STOCKHOLM

DC_FROM_KW = 50.0
# Relative chance of a start in each local hour of day.
WEEKDAY_HOURS = [
    *(0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.4, 2.6, 3.0, 2.0, 1.2, 1.0),
    *(1.2, 1.0, 1.0, 1.4, 2.4, 3.2, 3.0, 2.4, 1.8, 1.2, 0.7, 0.4),
]
WEEKEND_HOURS = [
    *(0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.7, 1.2, 1.8, 2.2, 2.4),
    *(2.4, 2.3, 2.2, 2.0, 2.0, 2.1, 2.0, 1.6, 1.2, 0.9, 0.6, 0.4),
]
CHANNELS = ["rfid", "telegram", "sms"]
CHANNEL_WEIGHTS = [5, 4, 1]


@dataclass(frozen=True)
class _Point:
    """A connector sessions can happen at, with its station's prices."""

    charger_id: str
    connector_id: int
    max_power_kw: float
    tariff: TariffSnapshot
    popularity: float


@dataclass(frozen=True)
class _Driver:
    id: int
    plan: str
    tag: str | None


def _snapshot(tariff: Tariff | None) -> TariffSnapshot:
    """The snapshot a real session takes of its station's tariff."""
    if tariff is None:
        return FREE
    return TariffSnapshot(**{name: getattr(tariff, name) for name in FREE.__dataclass_fields__})


def demo_driver_names(path: Path = DEMO_NETWORK_FILE) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    return [entry["name"] for entry in document.get("drivers", [])]


async def _points(db: AsyncSession, rng: random.Random) -> list[_Point]:
    tariffs = {t.station_id: t for t in (await db.scalars(select(Tariff))).all()}
    rows = await db.execute(
        select(Connector, Charger.station_id)
        .join(Charger, col(Charger.id) == col(Connector.charger_id))
        .join(Station, col(Station.id) == col(Charger.station_id))
        .order_by(col(Station.id), col(Connector.charger_id), col(Connector.connector_id))
    )
    popularity: dict[int, float] = {}
    points = []
    for connector, station_id in rows.all():
        if station_id not in popularity:
            popularity[station_id] = rng.uniform(0.4, 1.4)
        points.append(
            _Point(
                connector.charger_id,
                connector.connector_id,
                connector.max_power_kw,
                _snapshot(tariffs.get(station_id)),
                popularity[station_id],
            )
        )
    return points


async def _drivers(db: AsyncSession) -> list[_Driver]:
    names = demo_driver_names()
    drivers = (
        await db.scalars(select(Driver).where(col(Driver.name).in_(names)).order_by(col(Driver.id)))
    ).all()
    found = []
    for driver in drivers:
        assert driver.id is not None
        tag = await db.scalar(
            select(col(IdTag.id_tag))
            .where(col(IdTag.driver_id) == driver.id)
            .order_by(col(IdTag.id))
        )
        found.append(_Driver(driver.id, driver.plan, tag))
    return found


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth; fine for small means)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _starts(rng: random.Random, point: _Point, day: date) -> list[datetime]:
    """The start times of one connector's sessions on one local day, in order."""
    weekend = day.weekday() >= 5
    dc = point.max_power_kw >= DC_FROM_KW
    mean = (3.2 if dc else 1.8) * point.popularity * (0.75 if weekend else 1.0)
    weights = WEEKEND_HOURS if weekend else WEEKDAY_HOURS
    starts = []
    for _ in range(_poisson(rng, mean)):
        hour = rng.choices(range(24), weights)[0]
        local = datetime.combine(day, time(hour, rng.randrange(60)), tzinfo=STOCKHOLM)
        starts.append((local + timedelta(seconds=rng.randrange(60))).astimezone(STOCKHOLM))
    return sorted(starts)


def _charge(rng: random.Random, point: _Point) -> tuple[int, timedelta, timedelta]:
    """Energy in Wh, time drawing power and idle time after it, for one session."""
    if point.max_power_kw >= DC_FROM_KW:
        energy_kwh = rng.uniform(12, 60)
        power_kw = min(point.max_power_kw, rng.uniform(40, 130)) * 0.7
        idle = timedelta(minutes=rng.uniform(1, 8))
    else:
        energy_kwh = min(60.0, 5 + rng.expovariate(1 / 12))
        power_kw = min(point.max_power_kw, rng.choice([7.4, 11.0, 11.0, 22.0])) * 0.9
        long_stay = rng.random() < 0.12  # left plugged in: idle fees after the grace period
        idle = timedelta(minutes=rng.uniform(20, 90) if long_stay else rng.uniform(2, 15))
    charging = timedelta(seconds=round(3600 * energy_kwh / power_kw))
    return round(energy_kwh * 1000), charging, timedelta(seconds=round(idle.total_seconds()))


def _session(
    rng: random.Random, point: _Point, driver: _Driver, start: datetime, meter: int
) -> ChargingSession:
    """One completed session, priced the way `ChargingService` prices a stop."""
    energy_wh, charging, idle = _charge(rng, point)
    channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0] if driver.tag else "telegram"
    rfid = channel == "rfid"
    stop_reason = "EVDisconnected" if rng.random() < 0.25 else ("Local" if rfid else "Remote")
    tariff = for_plan(point.tariff, driver.plan, 0)
    session = ChargingSession(
        driver_id=driver.id,
        charger_id=point.charger_id,
        connector_id=point.connector_id,
        id_tag=driver.tag if rfid else virtual_id_tag(driver.id),
        # Seeded history, written whole: a finished record, not a move through the lifecycle.
        status=SessionStatus.COMPLETED,
        channel=channel,
        meter_start_wh=meter,
        meter_stop_wh=meter + energy_wh,
        energy_wh=energy_wh,
        power_w=0.0,
        currency=tariff.currency,
        tariff_snapshot=tariff.to_json(),
        stop_reason=stop_reason,
        created_at=start - timedelta(seconds=0 if rfid else rng.randrange(5, 40)),
        started_at=start,
        charging_finished_at=start + charging,
        stopped_at=start + charging + idle,
        updated_at=start + charging + idle,
    )
    cost = session_cost(session)
    session.cost_minor = cost.total_minor
    session.cost_breakdown = cost.to_json()
    return session


def _plan_history(
    points: list[_Point], drivers: list[_Driver], days: int, rng: random.Random, now: datetime
) -> list[ChargingSession]:
    """The sessions of the last `days` local days (today included), all stopped before `now`."""
    today = now.astimezone(STOCKHOLM).date()
    sessions = []
    for point in points:
        free_at: datetime | None = None
        meter = rng.randrange(100_000, 5_000_000)
        for offset in range(days - 1, -1, -1):
            for start in _starts(rng, point, today - timedelta(days=offset)):
                if free_at is not None and start < free_at:
                    continue  # the connector is taken: this driver went elsewhere
                session = _session(rng, point, rng.choice(drivers), start, meter)
                assert session.stopped_at is not None
                if session.stopped_at >= now:
                    continue
                sessions.append(session)
                meter = session.meter_stop_wh or meter
                free_at = session.stopped_at + timedelta(minutes=rng.uniform(3, 20))
    return sessions


async def seed_history(
    db: AsyncSession, days: int = 30, seed: int = 7, now: datetime | None = None
) -> int:
    """Add completed sessions of the last `days` days to the seeded demo network; their count."""
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed)
    points = await _points(db, rng)
    drivers = await _drivers(db)
    if not points or not drivers:
        raise RuntimeError("seed the demo network first (no stations or no demo drivers)")
    sessions = _plan_history(points, drivers, days, rng, now or utcnow())
    db.add_all(sessions)
    await db.flush()
    for session in sessions:
        session.transaction_id = session.id  # as every real session: its transactionId
    await db.commit()
    return len(sessions)
