"""Who may charge where, and when: driver groups, restricted stations and opening hours.

A public station lets everyone charge; a restricted one only members of one of its groups.
Opening hours (`Station.opening_hours`) are wall-clock windows in Europe/Stockholm time:
`[{"days": [0, 1, 2, 3, 4], "open": "06:00", "close": "22:00"}]`, Monday = 0, `close` may be
"24:00", a window never crosses midnight (split it: Fri 22:00-24:00 + Sat 00:00-02:00), and
null means always open. Membership is decided before hours: a non-member hears "members only"
even when the station is closed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.models import (
    Driver,
    DriverGroup,
    GroupMembership,
    Station,
    StationAccess,
    StationGroup,
)
from backend.services.errors import ConflictError, InvalidFieldError, NotFoundError
from backend.services.rows import get_or_404
from backend.timezones import STOCKHOLM

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MEMBERS_ONLY = "members_only"
CLOSED = "closed"

_OPEN_PATTERN = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
_CLOSE_PATTERN = re.compile(r"^(?:(?:[01]\d|2[0-3]):[0-5]\d|24:00)$")
_WINDOW_KEYS = {"days", "open", "close"}


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str | None  # None | "members_only" | "closed"
    groups: tuple[str, ...]  # names of the allowed groups (restricted stations)
    hours: str | None  # "Mon-Fri 06:00-22:00, Sat-Sun 08:00-20:00"; None: always open
    message: str | None  # "members of Brf Solrosen only", "open Mon-Fri 06:00-22:00"


@dataclass(frozen=True)
class GroupView:
    group: DriverGroup
    member_count: int


@dataclass(frozen=True)
class GroupDetail:
    group: DriverGroup
    members: list[Driver]


@dataclass(frozen=True)
class StationAccessView:
    station_id: int
    access: str
    groups: list[DriverGroup]
    opening_hours: list[dict[str, Any]] | None
    hours: str | None


# --- opening hours (pure) ---------------------------------------------------------------


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def validate_opening_hours(value: Any) -> list[dict[str, Any]] | None:
    """The normalised opening hours, or ValueError saying what is wrong and where.

    None (always open) passes. Otherwise a non-empty list of windows, each exactly
    `{"days": [...], "open": "HH:MM", "close": "HH:MM"}`: days distinct integers 0..6
    (Monday = 0), open < close, close up to "24:00"; windows of one day may not overlap.
    Days come back sorted.
    """
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("opening hours must be a list of windows or null (always open)")
    if not value:
        raise ValueError(
            "opening hours must list at least one window; use null for a station that is "
            "always open"
        )
    windows: list[dict[str, Any]] = []
    taken: dict[int, list[tuple[int, int]]] = {day: [] for day in range(7)}
    for index, window in enumerate(value):
        where = f"window {index}"
        if not isinstance(window, dict):
            raise ValueError(f'{where} must be an object {{"days", "open", "close"}}')
        if set(window) != _WINDOW_KEYS:
            missing = sorted(_WINDOW_KEYS - set(window))
            extra = sorted(set(window) - _WINDOW_KEYS)
            problem = f"lacks {', '.join(missing)}" if missing else f"has unknown {extra}"
            raise ValueError(f"{where} {problem}; a window has exactly days, open and close")
        days = window["days"]
        if (
            not isinstance(days, list)
            or not days
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in days)
            or not all(0 <= d <= 6 for d in days)
        ):
            raise ValueError(f"{where}: days must be a non-empty list of 0..6 (Monday = 0)")
        if len(set(days)) != len(days):
            raise ValueError(f"{where}: days repeat a day")
        opens, closes = window["open"], window["close"]
        if not isinstance(opens, str) or not _OPEN_PATTERN.match(opens):
            raise ValueError(f'{where}: open must be "HH:MM" from 00:00 to 23:59, not {opens!r}')
        if not isinstance(closes, str) or not _CLOSE_PATTERN.match(closes):
            raise ValueError(f'{where}: close must be "HH:MM" from 00:01 to 24:00, not {closes!r}')
        start, end = _minutes(opens), _minutes(closes)
        if start >= end:
            raise ValueError(
                f"{where}: open {opens} must be before close {closes}; a window cannot cross "
                "midnight, so split it (e.g. 22:00-24:00 and next day 00:00-02:00)"
            )
        for day in days:
            for other_start, other_end in taken[day]:
                if start < other_end and other_start < end:
                    raise ValueError(
                        f"{where}: {opens}-{closes} on {DAY_NAMES[day]} overlaps "
                        f"{_clock(other_start)}-{_clock(other_end)}"
                    )
            taken[day].append((start, end))
        windows.append({"days": sorted(days), "open": opens, "close": closes})
    return windows


def is_open(opening_hours: Sequence[dict[str, Any]] | None, at: datetime) -> bool:
    """Whether a station with these (validated) hours is open at the aware instant `at`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    if opening_hours is None:
        return True
    local = at.astimezone(STOCKHOLM)
    now = local.hour * 60 + local.minute  # windows are whole minutes, so seconds don't matter
    weekday = local.weekday()
    return any(
        weekday in window["days"] and _minutes(window["open"]) <= now < _minutes(window["close"])
        for window in opening_hours
    )


def _day_span(days: list[int]) -> str:
    if days == list(range(7)):
        return "daily"
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(
        DAY_NAMES[run[0]] if len(run) == 1 else f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}"
        for run in runs
    )


def describe_hours(opening_hours: Sequence[dict[str, Any]] | None) -> str | None:
    """A short English summary: "Mon-Fri 06:00-22:00, Sat-Sun 08:00-20:00"; None if always open.

    Days with the same windows are grouped; windows that touch are shown as one.
    """
    if opening_hours is None:
        return None
    per_day: dict[int, list[tuple[int, int]]] = {day: [] for day in range(7)}
    for window in opening_hours:
        for day in window["days"]:
            per_day[day].append((_minutes(window["open"]), _minutes(window["close"])))
    schedules: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for day in range(7):
        merged: list[tuple[int, int]] = []
        for start, end in sorted(per_day[day]):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        if merged:
            schedules.setdefault(tuple(merged), []).append(day)
    if not schedules:
        return "never open"
    parts = []
    for spans, days in schedules.items():
        times = " and ".join(f"{_clock(start)}-{_clock(end)}" for start, end in spans)
        parts.append(f"{_day_span(days)} {times}")
    return ", ".join(parts)


def _members_message(group_names: Sequence[str]) -> str:
    if not group_names:
        return "restricted, and no group may charge here yet"
    if len(group_names) == 1:
        return f"members of {group_names[0]} only"
    return f"members of {', '.join(group_names[:-1])} or {group_names[-1]} only"


# --- decisions --------------------------------------------------------------------------


async def _station_groups(db: AsyncSession, station_id: int) -> list[DriverGroup]:
    rows = await db.scalars(
        select(DriverGroup)
        .join(StationGroup, col(StationGroup.group_id) == col(DriverGroup.id))
        .where(col(StationGroup.station_id) == station_id)
    )
    return sorted(rows.all(), key=lambda g: (g.name.casefold(), g.id))


async def check_access(
    db: AsyncSession, station_id: int, driver_id: int | None, at: datetime
) -> AccessDecision:
    """May this driver (None: unidentified) charge at this station at `at` (aware)?"""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("at must be timezone-aware")
    station = await get_or_404(db, Station, station_id, "station")
    if driver_id is not None:
        await get_or_404(db, Driver, driver_id, "driver")
    hours = describe_hours(station.opening_hours)
    names: tuple[str, ...] = ()
    if station.access != StationAccess.PUBLIC:  # anything but public is members-only
        names = tuple(g.name for g in await _station_groups(db, station_id))
        member = driver_id is not None and await db.scalar(
            select(
                exists()
                .where(col(StationGroup.station_id) == station_id)
                .where(col(GroupMembership.group_id) == col(StationGroup.group_id))
                .where(col(GroupMembership.driver_id) == driver_id)
            )
        )
        if not member:
            return AccessDecision(False, MEMBERS_ONLY, names, hours, _members_message(names))
    if not is_open(station.opening_hours, at):
        message = f"open {hours}" if station.opening_hours else "closed at all times"
        return AccessDecision(False, CLOSED, names, hours, message)
    return AccessDecision(True, None, names, hours, None)


async def usable_station_ids(db: AsyncSession, driver_id: int | None, at: datetime) -> set[int]:
    """The stations this driver may charge at right now: public or theirs, and open.

    One query; an unknown driver is treated like an unidentified one (public stations only).
    """
    allowed = col(Station.access) == StationAccess.PUBLIC
    if driver_id is not None:
        theirs = (
            select(col(StationGroup.station_id))
            .join(GroupMembership, col(GroupMembership.group_id) == col(StationGroup.group_id))
            .where(col(GroupMembership.driver_id) == driver_id)
        )
        allowed = or_(allowed, col(Station.id).in_(theirs))
    rows = await db.execute(select(col(Station.id), col(Station.opening_hours)).where(allowed))
    return {station_id for station_id, hours in rows.all() if is_open(hours, at)}


# --- groups -----------------------------------------------------------------------------


async def get_group(db: AsyncSession, group_id: int) -> DriverGroup:
    return await get_or_404(db, DriverGroup, group_id, "group")


async def create_group(db: AsyncSession, name: str) -> GroupView:
    """A new group; names are unique ignoring case (Unicode-aware: "BRF ÄNGEN" = "Brf Ängen")."""
    name = name.strip()
    if not name:
        raise InvalidFieldError("name", "a group needs a name")
    existing = await db.execute(select(col(DriverGroup.id), col(DriverGroup.name)))
    for other_id, other_name in existing.all():
        if other_name.casefold() == name.casefold():
            raise ConflictError(f"group {other_name!r} (id {other_id}) already exists")
    group = DriverGroup(name=name)
    db.add(group)
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise ConflictError(f"group {name!r} already exists") from exc
    return GroupView(group, 0)


async def list_groups(db: AsyncSession) -> list[GroupView]:
    count = (
        select(func.count(col(GroupMembership.id)))
        .where(col(GroupMembership.group_id) == col(DriverGroup.id))
        .scalar_subquery()
    )
    rows = await db.execute(select(DriverGroup, count).order_by(col(DriverGroup.id)))
    return [GroupView(group, members) for group, members in rows.all()]


async def list_members(db: AsyncSession, group_id: int) -> list[Driver]:
    await get_group(db, group_id)
    rows = await db.scalars(
        select(Driver)
        .join(GroupMembership, col(GroupMembership.driver_id) == col(Driver.id))
        .where(col(GroupMembership.group_id) == group_id)
        .order_by(col(Driver.id))
    )
    return list(rows.all())


async def group_detail(db: AsyncSession, group_id: int) -> GroupDetail:
    group = await get_group(db, group_id)
    return GroupDetail(group, await list_members(db, group_id))


async def delete_group(db: AsyncSession, group_id: int) -> None:
    """Delete a group and its memberships; 409 while it is a restricted station's only group."""
    group = await get_group(db, group_id)
    sole = await db.scalars(
        select(col(StationGroup.station_id))
        .join(Station, col(Station.id) == col(StationGroup.station_id))
        .where(col(Station.access) != StationAccess.PUBLIC)
        .where(
            col(StationGroup.station_id).in_(
                select(col(StationGroup.station_id)).where(col(StationGroup.group_id) == group_id)
            )
        )
        .group_by(col(StationGroup.station_id))
        .having(func.count(col(StationGroup.id)) == 1)
        .order_by(col(StationGroup.station_id))
    )
    stations = list(sole.all())
    if stations:
        listed = ", ".join(str(s) for s in stations)
        raise ConflictError(
            f"group {group.name!r} is the only group allowed at restricted station(s) {listed}; "
            "give them another group or make them public first"
        )
    await db.execute(delete(StationGroup).where(col(StationGroup.group_id) == group_id))
    await db.execute(delete(GroupMembership).where(col(GroupMembership.group_id) == group_id))
    await db.delete(group)
    await db.commit()


async def add_member(db: AsyncSession, group_id: int, driver_id: int) -> Driver:
    """Make the driver a member; idempotent (adding a member again changes nothing)."""
    await get_group(db, group_id)
    driver = await get_or_404(db, Driver, driver_id, "driver")
    if not await _is_member(db, group_id, driver_id):
        db.add(GroupMembership(group_id=group_id, driver_id=driver_id))
        try:
            await db.commit()
        except IntegrityError as exc:  # a concurrent add won the race, or a row vanished
            await db.rollback()
            await get_group(db, group_id)
            driver = await get_or_404(db, Driver, driver_id, "driver")
            if not await _is_member(db, group_id, driver_id):
                raise ConflictError(
                    f"driver {driver_id} could not be added to group {group_id}"
                ) from exc
    return driver


async def remove_member(db: AsyncSession, group_id: int, driver_id: int) -> None:
    await get_group(db, group_id)
    await get_or_404(db, Driver, driver_id, "driver")
    if not await _is_member(db, group_id, driver_id):
        raise NotFoundError(f"driver {driver_id} is not a member of group {group_id}")
    await db.execute(
        delete(GroupMembership).where(
            col(GroupMembership.group_id) == group_id, col(GroupMembership.driver_id) == driver_id
        )
    )
    await db.commit()


async def _is_member(db: AsyncSession, group_id: int, driver_id: int) -> bool:
    return bool(
        await db.scalar(
            select(
                exists()
                .where(col(GroupMembership.group_id) == group_id)
                .where(col(GroupMembership.driver_id) == driver_id)
            )
        )
    )


# --- a station's access -----------------------------------------------------------------


async def get_station_access(db: AsyncSession, station_id: int) -> StationAccessView:
    station = await get_or_404(db, Station, station_id, "station")
    return StationAccessView(
        station_id=station_id,
        access=station.access,
        groups=await _station_groups(db, station_id),
        opening_hours=station.opening_hours,
        hours=describe_hours(station.opening_hours),
    )


async def set_station_access(
    db: AsyncSession,
    station_id: int,
    access: str,
    group_ids: Sequence[int],
    opening_hours: Any,
) -> StationAccessView:
    """Replace a station's access, groups and hours in one transaction (all or nothing).

    Restricted needs at least one group; public takes none. Unknown groups are 404.
    """
    station = await get_or_404(db, Station, station_id, "station")
    if access not in tuple(StationAccess):
        raise InvalidFieldError("access", "access must be 'public' or 'restricted'")
    try:
        hours = validate_opening_hours(opening_hours)
    except ValueError as exc:
        raise InvalidFieldError("opening_hours", str(exc)) from exc
    wanted = list(dict.fromkeys(group_ids))
    if access == StationAccess.RESTRICTED and not wanted:
        raise InvalidFieldError(
            "group_ids", "a restricted station needs at least one group whose members may charge"
        )
    if access == StationAccess.PUBLIC and wanted:
        raise InvalidFieldError(
            "group_ids", "a public station is open to everyone; leave group_ids empty"
        )
    if wanted:
        found = set(
            (
                await db.scalars(select(col(DriverGroup.id)).where(col(DriverGroup.id).in_(wanted)))
            ).all()
        )
        missing = [str(g) for g in wanted if g not in found]
        if missing:
            raise NotFoundError(f"group(s) {', '.join(missing)} not found")
    await db.execute(delete(StationGroup).where(col(StationGroup.station_id) == station_id))
    db.add_all(StationGroup(station_id=station_id, group_id=g) for g in wanted)
    station.access = StationAccess(access).value
    station.opening_hours = hours
    try:
        await db.commit()
    except IntegrityError as exc:  # a group was deleted meanwhile
        await db.rollback()
        raise ConflictError(
            f"the access of station {station_id} changed meanwhile; try again"
        ) from exc
    return await get_station_access(db, station_id)
