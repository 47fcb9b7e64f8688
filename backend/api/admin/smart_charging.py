"""Smart charging (OCPP 1.6): charging profiles, the composite schedule, a station's limit."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from backend.api.admin.operations import charger_word
from backend.api.deps import IdPath, ReviewerDep, SessionDep
from backend.models import ChargingProfileRecord
from backend.services import smart_charging
from backend.services.smart_charging import Period, ProfileRequest, SmartCharging

router = APIRouter(tags=["smart charging"])

Purpose = Literal["ChargePointMaxProfile", "TxDefaultProfile", "TxProfile"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PeriodIn(_In):
    start_seconds: Annotated[int, Field(ge=0, le=7 * 86400)]
    limit: Annotated[float, Field(ge=0, le=1_000_000)]  # W or A, as `unit` says
    number_phases: Annotated[int, Field(ge=1, le=3)] | None = None


class ProfileIn(_In):
    connector_id: Annotated[int, Field(ge=0, le=99)]
    purpose: Purpose
    stack_level: Annotated[int, Field(ge=0, le=99)] = 0
    unit: Literal["W", "A"] = "W"
    periods: Annotated[list[PeriodIn], Field(min_length=1, max_length=24)]
    kind: Literal["Absolute", "Recurring", "Relative"] = "Absolute"
    recurrency: Literal["Daily", "Weekly"] | None = None
    valid_from: AwareDatetime | None = None
    valid_to: AwareDatetime | None = None
    duration_seconds: Annotated[int, Field(ge=1, le=7 * 86400)] | None = None
    start_schedule: AwareDatetime | None = None
    transaction_id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    min_charging_rate: Annotated[float, Field(ge=0, le=1_000_000)] | None = None


class ClearIn(_In):
    id: Annotated[int, Field(ge=1, le=2**31 - 1)] | None = None
    connector_id: Annotated[int, Field(ge=0, le=99)] | None = None
    purpose: Purpose | None = None
    stack_level: Annotated[int, Field(ge=0, le=99)] | None = None


class StationLimitIn(_In):
    max_power_kw: Annotated[float, Field(gt=0, le=100_000)] | None  # null: no limit


class ProfilePublic(BaseModel):
    id: int  # the chargingProfileId
    charger_id: str
    connector_id: int
    purpose: str
    stack_level: int
    source: str  # operator | station_limit | session
    status: str  # the charger's answer
    profile: dict[str, Any]  # as sent
    requested_by: str | None
    created_at: datetime
    cleared_at: datetime | None


class ProfileOut(BaseModel):
    status: str  # Accepted | Rejected | NotSupported
    profile: ProfilePublic


class StatusOut(BaseModel):
    status: str


class CompositeOut(BaseModel):
    status: str  # Accepted | Rejected
    connector_id: int | None = None
    schedule_start: str | None = None
    charging_schedule: dict[str, Any] | None = None


class ChargerShare(BaseModel):
    charger_id: str
    status: str  # its answer to the ChargePointMaxProfile (or its clearing)


class StationLimitOut(BaseModel):
    station_id: int
    max_power_kw: float | None
    chargers: list[ChargerShare]


def _smart(request: Request) -> SmartCharging:
    smart: SmartCharging = request.app.state.smart_charging
    return smart


def _public(row: ChargingProfileRecord) -> ProfilePublic:
    return ProfilePublic.model_validate(row, from_attributes=True)


@router.post("/chargers/{charger_id}/charging-profiles")
async def set_profile(
    charger_id: str, body: ProfileIn, request: Request, who: ReviewerDep
) -> ProfileOut:
    """SetChargingProfile; the profile's id is assigned here (its chargingProfileId)."""
    profile = ProfileRequest(
        connector_id=body.connector_id,
        purpose=body.purpose,
        stack_level=body.stack_level,
        unit=body.unit,
        periods=[Period(p.start_seconds, p.limit, p.number_phases) for p in body.periods],
        kind=body.kind,
        recurrency=body.recurrency,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        duration_seconds=body.duration_seconds,
        start_schedule=body.start_schedule,
        transaction_id=body.transaction_id,
        min_charging_rate=body.min_charging_rate,
    )
    outcome = await _smart(request).set_profile(charger_id, profile, requested_by=who)
    status = charger_word(outcome.result, charger_id, "SetChargingProfile")
    return ProfileOut(status=status, profile=_public(outcome.profile))


@router.get("/chargers/{charger_id}/charging-profiles")
async def list_profiles(charger_id: str, db: SessionDep) -> list[ProfilePublic]:
    """The profiles in force as far as we know: accepted and not cleared, newest first."""
    return [_public(row) for row in await smart_charging.profiles_of(db, charger_id)]


@router.post("/chargers/{charger_id}/charging-profiles/clear")
async def clear_profiles(charger_id: str, body: ClearIn, request: Request) -> StatusOut:
    """ClearChargingProfile: by `id`, or by connector, purpose and stack level (none: all).
    Accepted, or Unknown when the charger has no such profile."""
    result = await _smart(request).clear(
        charger_id,
        profile_id=body.id,
        connector_id=body.connector_id,
        purpose=body.purpose,
        stack_level=body.stack_level,
    )
    return StatusOut(status=charger_word(result, charger_id, "ClearChargingProfile"))


@router.get("/chargers/{charger_id}/composite-schedule")
async def composite_schedule(
    charger_id: str,
    request: Request,
    connector_id: Annotated[int, Query(ge=0, le=99)] = 0,
    duration: Annotated[int, Query(ge=1, le=7 * 86400, description="seconds")] = 3600,
    unit: Literal["W", "A"] | None = None,
) -> CompositeOut:
    """GetCompositeSchedule: the limits the charger will apply, all profiles combined."""
    result = await _smart(request).composite(charger_id, connector_id, duration, unit)
    status = charger_word(result, charger_id, "GetCompositeSchedule")
    return CompositeOut(
        status=status,
        connector_id=result.response.get("connector_id"),
        schedule_start=result.response.get("schedule_start"),
        charging_schedule=result.response.get("charging_schedule"),
    )


@router.put("/stations/{station_id}/power-limit")
async def station_limit(
    station_id: IdPath, body: StationLimitIn, request: Request, who: ReviewerDep
) -> StationLimitOut:
    """The most the site may draw: each charger gets an equal share as its
    ChargePointMaxProfile now (offline ones when they are back); null lifts it."""
    outcomes = await _smart(request).set_station_limit(station_id, body.max_power_kw, who)
    return StationLimitOut(
        station_id=station_id,
        max_power_kw=body.max_power_kw,
        chargers=[ChargerShare(charger_id=c, status=s) for c, s in outcomes],
    )
