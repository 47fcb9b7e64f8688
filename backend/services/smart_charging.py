"""Smart charging (OCPP 1.6 Smart Charging profile): charging profiles, a station's power
limit, a session's own limit, and the composite schedule a charger computes.

Every profile sent is a `charging_profile` row written first (its id is the
chargingProfileId), then marked with the charger's answer. A newer accepted profile of the
same connector, purpose and stack level replaces an older one on the charger (OCPP 1.6
§3.13.2), so the older row is marked cleared too.

A station's limit ("this site may draw at most N kW") is shared equally by its chargers, each
getting a ChargePointMaxProfile (connector 0, stack level 0) of its share: static, so the sum
never exceeds the limit whatever each charger draws. Chargers that were offline when it was
set get theirs from the periodic upkeep (`sync_station_limits`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, func, select

from backend.db import utcnow
from backend.models import Charger, ChargingProfileRecord, Station
from backend.services.errors import InvalidFieldError
from backend.services.ports import ChargerCommands, CommandResult
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

PURPOSES = ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
KINDS = ("Absolute", "Recurring", "Relative")
STATION_LIMIT = "station_limit"
MAX_PERIODS = 24  # ChargingScheduleMaxPeriods a charger commonly takes


@dataclass(frozen=True)
class Period:
    start_seconds: int
    limit: float  # in the schedule's unit (W or A)
    number_phases: int | None = None


@dataclass(frozen=True)
class ProfileRequest:
    """A charging profile as an operator describes it."""

    connector_id: int
    purpose: str
    stack_level: int
    unit: str  # "W" or "A"
    periods: Sequence[Period]
    kind: str = "Absolute"
    recurrency: str | None = None  # Daily | Weekly (kind Recurring)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    duration_seconds: int | None = None
    start_schedule: datetime | None = None
    transaction_id: int | None = None  # TxProfile: the transaction it limits
    min_charging_rate: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if self.purpose not in PURPOSES:
            raise InvalidFieldError("purpose", f"one of {', '.join(PURPOSES)}")
        if self.kind not in KINDS:
            raise InvalidFieldError("kind", f"one of {', '.join(KINDS)}")
        if self.unit not in ("W", "A"):
            raise InvalidFieldError("unit", "W or A")
        if not 1 <= len(self.periods) <= MAX_PERIODS:
            raise InvalidFieldError("periods", f"1 to {MAX_PERIODS} periods")
        starts = [p.start_seconds for p in self.periods]
        if starts[0] != 0 or starts != sorted(set(starts)):
            raise InvalidFieldError("periods", "the first starts at 0, then strictly later")
        if self.purpose == "ChargePointMaxProfile" and self.connector_id != 0:
            raise InvalidFieldError("connector_id", "a ChargePointMaxProfile is for connector 0")
        if self.purpose == "TxProfile" and self.connector_id == 0:
            raise InvalidFieldError("connector_id", "a TxProfile is for one connector")
        if self.kind == "Recurring" and self.recurrency not in ("Daily", "Weekly"):
            raise InvalidFieldError("recurrency", "Daily or Weekly for a Recurring profile")


def _time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def ocpp_profile(profile_id: int, request: ProfileRequest) -> dict[str, Any]:
    """The csChargingProfiles of SetChargingProfile / RemoteStartTransaction (snake_case)."""
    schedule: dict[str, Any] = {
        "charging_rate_unit": request.unit,
        "charging_schedule_period": [
            {"start_period": p.start_seconds, "limit": round(p.limit, 1)}
            | ({"number_phases": p.number_phases} if p.number_phases else {})
            for p in request.periods
        ],
    }
    if request.duration_seconds is not None:
        schedule["duration"] = request.duration_seconds
    if request.start_schedule is not None:
        schedule["start_schedule"] = _time(request.start_schedule)
    if request.min_charging_rate is not None:
        schedule["min_charging_rate"] = request.min_charging_rate
    profile: dict[str, Any] = {
        "charging_profile_id": profile_id,
        "stack_level": request.stack_level,
        "charging_profile_purpose": request.purpose,
        "charging_profile_kind": request.kind,
        "charging_schedule": schedule,
    }
    optional = {
        "transaction_id": request.transaction_id,
        "recurrency_kind": request.recurrency,
        "valid_from": _time(request.valid_from) if request.valid_from else None,
        "valid_to": _time(request.valid_to) if request.valid_to else None,
    }
    profile.update({k: v for k, v in optional.items() if v is not None})
    return profile


def session_limit(max_power_kw: float, connector_id: int) -> ProfileRequest:
    """A TxProfile capping one session at `max_power_kw` (sent with its RemoteStart)."""
    if not 0 < max_power_kw <= 1000:
        raise InvalidFieldError("max_power_kw", "more than 0 and at most 1000 kW")
    return ProfileRequest(
        connector_id=connector_id,
        purpose="TxProfile",
        stack_level=0,
        unit="W",
        periods=[Period(0, max_power_kw * 1000.0)],
        kind="Relative",
    )


@dataclass(frozen=True)
class ProfileOutcome:
    profile: ChargingProfileRecord
    result: CommandResult


class SmartCharging:
    """Sends, clears and reads charging profiles; keeps station limits applied."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], commands: ChargerCommands
    ) -> None:
        self._sessions = sessions
        self._commands = commands

    async def record(
        self,
        charger_id: str,
        request: ProfileRequest,
        *,
        source: str = "operator",
        requested_by: str | None = None,
    ) -> tuple[ChargingProfileRecord, dict[str, Any]]:
        """The profile's row (committed) and its OCPP form, before it is sent."""
        request.check()
        async with self._sessions() as db:
            await get_or_404(db, Charger, charger_id, "charger")
            row = ChargingProfileRecord(
                charger_id=charger_id,
                connector_id=request.connector_id,
                purpose=request.purpose,
                stack_level=request.stack_level,
                source=source,
                requested_by=requested_by,
            )
            db.add(row)
            await db.flush()
            assert row.id is not None
            row.profile = ocpp_profile(row.id, request)
            await db.commit()
        return row, row.profile

    async def answered(self, row: ChargingProfileRecord, result: CommandResult) -> None:
        """Mark the charger's answer; an accepted profile replaces its predecessors."""
        assert row.id is not None
        async with self._sessions() as db:
            status = result.word[:24]
            await db.execute(
                update(ChargingProfileRecord)
                .where(col(ChargingProfileRecord.id) == row.id)
                .values(status=status)
            )
            if status == "Accepted":
                await db.execute(
                    update(ChargingProfileRecord)
                    .where(
                        col(ChargingProfileRecord.charger_id) == row.charger_id,
                        col(ChargingProfileRecord.connector_id) == row.connector_id,
                        col(ChargingProfileRecord.purpose) == row.purpose,
                        col(ChargingProfileRecord.stack_level) == row.stack_level,
                        col(ChargingProfileRecord.id) != row.id,
                        col(ChargingProfileRecord.cleared_at).is_(None),
                    )
                    .values(cleared_at=utcnow())
                )
            await db.commit()
        row.status = status

    async def set_profile(
        self,
        charger_id: str,
        request: ProfileRequest,
        *,
        source: str = "operator",
        requested_by: str | None = None,
    ) -> ProfileOutcome:
        """SetChargingProfile: Accepted, Rejected or NotSupported (the charger's word)."""
        row, profile = await self.record(
            charger_id, request, source=source, requested_by=requested_by
        )
        result = await self._commands.operate(
            charger_id,
            "SetChargingProfile",
            {"connector_id": request.connector_id, "cs_charging_profiles": profile},
        )
        await self.answered(row, result)
        return ProfileOutcome(row, result)

    async def clear(
        self,
        charger_id: str,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> CommandResult:
        """ClearChargingProfile by id, or by connector/purpose/stack level (none: all)."""
        if purpose is not None and purpose not in PURPOSES:
            raise InvalidFieldError("purpose", f"one of {', '.join(PURPOSES)}")
        async with self._sessions() as db:
            await get_or_404(db, Charger, charger_id, "charger")
        result = await self._commands.operate(
            charger_id,
            "ClearChargingProfile",
            {
                "id": profile_id,
                "connector_id": connector_id,
                "charging_profile_purpose": purpose,
                "stack_level": stack_level,
            },
        )
        if result.ocpp_status == "Accepted":
            query = update(ChargingProfileRecord).where(
                col(ChargingProfileRecord.charger_id) == charger_id,
                col(ChargingProfileRecord.cleared_at).is_(None),
            )
            if profile_id is not None:
                query = query.where(col(ChargingProfileRecord.id) == profile_id)
            else:
                if connector_id is not None:
                    query = query.where(col(ChargingProfileRecord.connector_id) == connector_id)
                if purpose is not None:
                    query = query.where(col(ChargingProfileRecord.purpose) == purpose)
                if stack_level is not None:
                    query = query.where(col(ChargingProfileRecord.stack_level) == stack_level)
            async with self._sessions() as db:
                await db.execute(query.values(cleared_at=utcnow()))
                await db.commit()
        return result

    async def composite(
        self, charger_id: str, connector_id: int, duration_seconds: int, unit: str | None
    ) -> CommandResult:
        """GetCompositeSchedule: the limits the charger will apply over the next seconds."""
        if unit not in (None, "W", "A"):
            raise InvalidFieldError("unit", "W or A")
        async with self._sessions() as db:
            await get_or_404(db, Charger, charger_id, "charger")
        return await self._commands.operate(
            charger_id,
            "GetCompositeSchedule",
            {
                "connector_id": connector_id,
                "duration": duration_seconds,
                "charging_rate_unit": unit,
            },
        )

    # -- a station's limit ----------------------------------------------------------------------

    async def set_station_limit(
        self, station_id: int, max_power_kw: float | None, requested_by: str | None = None
    ) -> list[tuple[str, str]]:
        """Store the limit and send each charger its share now; (charger, its answer) each."""
        if max_power_kw is not None and not 0 < max_power_kw <= 100_000:
            raise InvalidFieldError("max_power_kw", "more than 0 and at most 100000 kW")
        async with self._sessions() as db:
            station = await get_or_404(db, Station, station_id, "station")
            station.max_power_kw = max_power_kw
            await db.commit()
            chargers = list(
                (
                    await db.scalars(
                        select(col(Charger.id))
                        .where(col(Charger.station_id) == station_id)
                        .order_by(col(Charger.id))
                    )
                ).all()
            )
        outcomes = []
        for charger_id in chargers:
            outcomes.append((charger_id, await self._apply_share(charger_id, requested_by)))
        return outcomes

    async def _share(self, db: AsyncSession, charger_id: str) -> float | None:
        """The kW this charger may draw under its station's limit (None: no limit)."""
        charger = await db.get(Charger, charger_id)
        if charger is None or charger.station_id is None:
            return None
        station = await db.get(Station, charger.station_id)
        if station is None or station.max_power_kw is None:
            return None
        count = await db.scalar(
            select(func.count()).where(col(Charger.station_id) == charger.station_id)
        )
        return station.max_power_kw / max(1, count or 1)

    async def _apply_share(self, charger_id: str, requested_by: str | None) -> str:
        async with self._sessions() as db:
            share = await self._share(db, charger_id)
        if share is None:  # the limit was lifted: its profile goes
            result = await self.clear(
                charger_id, connector_id=0, purpose="ChargePointMaxProfile", stack_level=0
            )
            return result.word[:24]
        request = ProfileRequest(
            connector_id=0,
            purpose="ChargePointMaxProfile",
            stack_level=0,
            unit="W",
            periods=[Period(0, share * 1000.0)],
        )
        outcome = await self.set_profile(
            charger_id, request, source=STATION_LIMIT, requested_by=requested_by
        )
        return outcome.profile.status

    async def sync_station_limits(self, charger_ids: Iterable[str]) -> int:
        """Send the share to those of `charger_ids` whose station limit is not applied (the
        charger was offline, or joined the station); how many were sent."""
        ids = list(charger_ids)
        if not ids:
            return 0
        async with self._sessions() as db:  # one query: most networks set no limit at all
            limited = (
                await db.scalars(
                    select(col(Charger.id))
                    .join(Station, col(Station.id) == col(Charger.station_id))
                    .where(col(Charger.id).in_(ids), col(Station.max_power_kw).is_not(None))
                )
            ).all()
        sent = 0
        for charger_id in limited:
            async with self._sessions() as db:
                share = await self._share(db, charger_id)
                if share is None:
                    continue
                applied = (
                    await db.scalars(
                        select(ChargingProfileRecord)
                        .where(
                            col(ChargingProfileRecord.charger_id) == charger_id,
                            col(ChargingProfileRecord.source) == STATION_LIMIT,
                            col(ChargingProfileRecord.status) == "Accepted",
                            col(ChargingProfileRecord.cleared_at).is_(None),
                        )
                        .order_by(col(ChargingProfileRecord.id).desc())
                    )
                ).first()
            wanted = round(share * 1000.0, 1)
            if applied is not None and _limit_of(applied.profile) == wanted:
                continue
            await self._apply_share(charger_id, None)
            sent += 1
        return sent


def _limit_of(profile: dict[str, Any]) -> float | None:
    periods = profile.get("charging_schedule", {}).get("charging_schedule_period") or []
    return float(periods[0]["limit"]) if periods else None


async def profiles_of(db: AsyncSession, charger_id: str) -> list[ChargingProfileRecord]:
    """The charger's profiles in force as far as we know (accepted, not cleared), newest first."""
    await get_or_404(db, Charger, charger_id, "charger")
    query = (
        select(ChargingProfileRecord)
        .where(
            col(ChargingProfileRecord.charger_id) == charger_id,
            col(ChargingProfileRecord.status) == "Accepted",
            col(ChargingProfileRecord.cleared_at).is_(None),
        )
        .order_by(col(ChargingProfileRecord.id).desc())
    )
    return list((await db.scalars(query)).all())
