"""Operator analytics for the console: active sessions, usage, CSV export.

Pure reads over an `AsyncSession`, portable between SQLite and PostgreSQL: the queries only
filter by UTC timestamps, and the bucketing by local day and hour of day happens in Python with
zoneinfo (Europe/Stockholm unless told otherwise). A report loads the sessions of its range,
which is fine for ~100k sessions.

The counting rules of `usage_report`:
- a session counts (and its energy counts) on the local day it started; failed sessions and
  sessions that never started charging are left out;
- revenue is `cost_minor` (including VAT) of completed sessions, on the local day they stopped,
  so a report adds up to the receipts of its range (a session started the day before the range
  may add revenue, one stopped after it does not);
- utilisation of an hour of day is busy connector time in that local hour over all the range's
  days, divided by (connectors now in the network × days × 60 minutes). A session is busy from
  `started_at` to `stopped_at` (or `now` while it is still active), clipped to the range. The
  value is capped at 1.0 (on the autumn DST day 02:00-03:00 happens twice).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from backend.db import utcnow
from backend.lifecycles import BILLED_SESSION_STATUSES
from backend.models import (
    ACTIVE_SESSION_STATUSES,
    Charger,
    ChargingSession,
    Connector,
    Driver,
    Payment,
    SessionStatus,
    Station,
)
from backend.services.charging import session_cost
from backend.services.network_status import UNPLACED
from backend.timezones import STOCKHOLM

MAX_RANGE_DAYS = 366
CSV_COLUMNS = [
    "session_id",
    "status",
    "station",
    "charger_id",
    "connector_code",
    "driver_id",
    "driver_name",
    "channel",
    "started_at",
    "stopped_at",
    "energy_wh",
    "cost_minor",
    "currency",
    "payment_method",
    "payment_status",
    "failure_reason",
    "stop_reason",
]
# OWASP CSV injection: a cell starting with one of these is a formula in a spreadsheet.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


# -- active sessions --------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveSession:
    id: int
    status: str
    station_name: str  # "Unplaced" for a charger without a station
    charger_id: str
    connector_id: int
    connector_code: str | None
    driver_id: int | None
    driver_name: str | None
    channel: str | None
    started_at: datetime  # created_at while the charger has not started yet
    energy_wh: int
    power_w: float | None
    cost_so_far_minor: int | None  # None until charging started
    currency: str


async def active_sessions(db: AsyncSession, now: datetime | None = None) -> list[ActiveSession]:
    """Sessions not finished yet (pending, starting, charging, stopping), oldest first."""
    now = now or utcnow()
    rows = (
        await db.execute(
            _with_places().where(col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES))
        )
    ).all()
    found = [
        _active(session, station, connector, driver, now)
        for session, station, connector, driver in rows
    ]
    return sorted(found, key=lambda item: (item.started_at, item.id))


def _with_places() -> Select[ChargingSession, Station, Connector, Driver]:
    """Sessions with their station, connector and driver (each None when there is none)."""
    return (
        select(ChargingSession, Station, Connector, Driver)
        .join(Charger, col(Charger.id) == col(ChargingSession.charger_id))
        .outerjoin(Station, col(Station.id) == col(Charger.station_id))
        .outerjoin(
            Connector,
            (col(Connector.charger_id) == col(ChargingSession.charger_id))
            & (col(Connector.connector_id) == col(ChargingSession.connector_id)),
        )
        .outerjoin(Driver, col(Driver.id) == col(ChargingSession.driver_id))
    )


def _active(
    session: ChargingSession,
    station: Station | None,
    connector: Connector | None,
    driver: Driver | None,
    now: datetime,
) -> ActiveSession:
    started = session.started_at is not None
    return ActiveSession(
        id=session.id or 0,
        status=session.status,
        station_name=station.name if station else UNPLACED,
        charger_id=session.charger_id,
        connector_id=session.connector_id,
        connector_code=connector.code if connector else None,
        driver_id=session.driver_id,
        driver_name=driver.name if driver else None,
        channel=session.channel,
        started_at=session.started_at or session.created_at,
        energy_wh=session.energy_wh,
        power_w=session.power_w,
        cost_so_far_minor=session_cost(session, until=now).total_minor if started else None,
        currency=session.currency,
    )


# -- usage report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayUsage:
    day: date
    sessions: int
    energy_wh: int
    revenue_minor: int


@dataclass(frozen=True)
class StationUsage:
    station_id: int | None  # None: sessions on unplaced chargers
    name: str
    sessions: int
    energy_wh: int
    revenue_minor: int


@dataclass(frozen=True)
class UsageTotals:
    sessions: int
    energy_wh: int
    revenue_minor: int


@dataclass(frozen=True)
class UsageReport:
    start: date
    end: date  # inclusive
    days: list[DayUsage]
    stations: list[StationUsage]  # by energy, highest first; every station, also idle ones
    utilisation_by_hour: list[float]  # 24 values in 0..1, local hour of day
    totals: UsageTotals
    connectors: int  # the connectors the utilisation is measured against


# The dates any report or range may ask for: far enough apart, never near date.min/max.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


def range_bounds(start: date, end: date, tz: ZoneInfo = STOCKHOLM) -> tuple[datetime, datetime]:
    """[start, end + 1 day) of local dates as UTC; ValueError for a reversed or too long range."""
    if start > end:
        raise ValueError(f"the range starts ({start}) after it ends ({end})")
    if start < FIRST_DAY or end > LAST_DAY:
        raise ValueError(f"dates run from {FIRST_DAY} to {LAST_DAY}")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValueError(f"the range is longer than {MAX_RANGE_DAYS} days")
    first = datetime.combine(start, time(), tzinfo=tz)
    after = datetime.combine(end + timedelta(days=1), time(), tzinfo=tz)
    return first.astimezone(UTC), after.astimezone(UTC)


async def usage_report(
    db: AsyncSession,
    start: date,
    end: date,
    tz: ZoneInfo = STOCKHOLM,
    now: datetime | None = None,
) -> UsageReport:
    """Sessions, kWh and revenue per local day and per station, utilisation by hour of day."""
    first, after = range_bounds(start, end, tz)
    now = now or utcnow()
    sessions = (
        await db.scalars(
            select(ChargingSession).where(
                col(ChargingSession.status) != SessionStatus.FAILED,
                col(ChargingSession.started_at).is_not(None),
                col(ChargingSession.started_at) < after,
                or_(
                    col(ChargingSession.stopped_at).is_(None),
                    col(ChargingSession.stopped_at) >= first,
                ),
            )
        )
    ).all()
    station_of = await _station_of_charger(db)
    names = await _station_names(db)
    connectors = await db.scalar(select(func.count()).select_from(Connector)) or 0
    span = (end - start).days + 1
    days = {start + timedelta(days=i): _Tally() for i in range(span)}
    per_station: dict[int | None, _Tally] = {station_id: _Tally() for station_id in names}
    busy = [0.0] * 24
    for session in sessions:
        assert session.started_at is not None
        station = per_station.setdefault(station_of.get(session.charger_id), _Tally())
        if first <= session.started_at < after:
            for tally in (days[session.started_at.astimezone(tz).date()], station):
                tally.sessions += 1
                tally.energy_wh += session.energy_wh
        if session.stopped_at is not None and _earned_in(session, first, after):
            for tally in (days[session.stopped_at.astimezone(tz).date()], station):
                tally.revenue_minor += session.cost_minor or 0
        end_at = session.stopped_at or (now if session.status in ACTIVE_SESSION_STATUSES else None)
        if end_at is not None:
            _add_busy(busy, max(session.started_at, first), min(end_at, after), tz)
    capacity = connectors * span * 3600
    return UsageReport(
        start=start,
        end=end,
        days=[DayUsage(day, t.sessions, t.energy_wh, t.revenue_minor) for day, t in days.items()],
        stations=_station_ranking(per_station, names),
        utilisation_by_hour=[min(1.0, s / capacity) if capacity else 0.0 for s in busy],
        totals=UsageTotals(
            sessions=sum(t.sessions for t in days.values()),
            energy_wh=sum(t.energy_wh for t in days.values()),
            revenue_minor=sum(t.revenue_minor for t in days.values()),
        ),
        connectors=connectors,
    )


@dataclass
class _Tally:
    sessions: int = 0
    energy_wh: int = 0
    revenue_minor: int = 0


def _earned_in(session: ChargingSession, first: datetime, after: datetime) -> bool:
    """Whether the session is revenue of [first, after): billed and stopped within it.

    A session under meter review counts with the plausible amount billed until decided.
    """
    stopped = session.stopped_at
    return (
        session.status in BILLED_SESSION_STATUSES
        and stopped is not None
        and first <= stopped < after
    )


def _add_busy(busy: list[float], begin: datetime, end: datetime, tz: ZoneInfo) -> None:
    """Add the seconds of [begin, end) to the local hours of day they fall into."""
    at = begin
    while at < end:
        local = at.astimezone(tz)
        boundary = (
            local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        ).astimezone(UTC)
        if boundary <= at:  # a zone whose hours do not start on the hour: step a minute
            boundary = at + timedelta(minutes=1)
        stop = min(boundary, end)
        busy[local.hour] += (stop - at).total_seconds()
        at = stop


def _station_ranking(
    per_station: dict[int | None, _Tally], names: dict[int, str]
) -> list[StationUsage]:
    ranking = [
        StationUsage(
            station_id,
            names.get(station_id, UNPLACED) if station_id is not None else UNPLACED,
            t.sessions,
            t.energy_wh,
            t.revenue_minor,
        )
        for station_id, t in per_station.items()
    ]
    return sorted(ranking, key=lambda s: (-s.energy_wh, -s.sessions, -s.revenue_minor, s.name))


async def _station_of_charger(db: AsyncSession) -> dict[str, int | None]:
    rows = await db.execute(select(col(Charger.id), col(Charger.station_id)))
    return {charger_id: station_id for charger_id, station_id in rows.all()}


async def _station_names(db: AsyncSession) -> dict[int, str]:
    rows = await db.execute(select(col(Station.id), col(Station.name)))
    return {station_id: name for station_id, name in rows.all() if station_id is not None}


# -- CSV export -------------------------------------------------------------------------------


def safe_cell(value: object) -> object:
    """A text cell that a spreadsheet would run as a formula gets a leading quote (OWASP)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _local_iso(at: datetime | None, tz: ZoneInfo) -> str:
    return at.astimezone(tz).isoformat(timespec="seconds") if at else ""


async def sessions_csv(db: AsyncSession, start: date, end: date, tz: ZoneInfo = STOCKHOLM) -> str:
    """CSV of the sessions started in the local-date range (never-started ones by creation).

    One row per session, oldest first; times are local ISO 8601 with their offset; payment
    columns are those of the session's latest payment (empty without one).
    """
    first, after = range_bounds(start, end, tz)
    in_range = or_(
        (col(ChargingSession.started_at) >= first) & (col(ChargingSession.started_at) < after),
        col(ChargingSession.started_at).is_(None)
        & (col(ChargingSession.created_at) >= first)
        & (col(ChargingSession.created_at) < after),
    )
    rows = (await db.execute(_with_places().where(in_range))).all()
    payments = _latest_payments(
        await db.scalars(
            select(Payment)
            .join(ChargingSession, col(ChargingSession.id) == col(Payment.session_id))
            .where(in_range)
            .order_by(col(Payment.id))
        )
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    ordered = sorted(rows, key=lambda r: (r[0].started_at or r[0].created_at, r[0].id or 0))
    for session, station, connector, driver in ordered:
        payment = payments.get(session.id or 0)
        cells: Sequence[object] = [
            session.id,
            session.status,
            station.name if station else UNPLACED,
            session.charger_id,
            connector.code if connector else "",
            session.driver_id if session.driver_id is not None else "",
            driver.name if driver else "",
            session.channel or "",
            _local_iso(session.started_at, tz),
            _local_iso(session.stopped_at, tz),
            session.energy_wh,
            session.cost_minor if session.cost_minor is not None else "",
            session.currency,
            payment.method if payment else "",
            payment.status if payment else "",
            session.failure_reason or "",
            session.stop_reason or "",
        ]
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()


def _latest_payments(payments: Iterable[Payment]) -> dict[int, Payment]:
    """Session id → its newest payment (payments come in id order)."""
    latest: dict[int, Payment] = {}
    for payment in payments:
        if payment.session_id is not None:
            latest[payment.session_id] = payment
    return latest
