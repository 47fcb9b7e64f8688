"""/admin/groups and /admin/stations/{id}/access: who may charge where, and when."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from backend.api.deps import MAX_ID, IdPath, SessionDep
from backend.api.schemas import AwareDatetime, DbId, Text120
from backend.models import Driver, DriverGroup, StationAccess
from backend.services import access

router = APIRouter(tags=["access"])

OpeningHours = Annotated[
    list[dict[str, Any]] | None,
    BeforeValidator(access.validate_opening_hours),
    Field(
        description='Windows in Europe/Stockholm time, e.g. [{"days": [0, 1, 2, 3, 4], '
        '"open": "06:00", "close": "22:00"}] (Monday = 0, close up to "24:00", no window '
        "across midnight); null: always open.",
        examples=[[{"days": [0, 1, 2, 3, 4], "open": "06:00", "close": "22:00"}]],
    ),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GroupCreate(_In):
    name: Text120


class StationAccessIn(_In):
    access: StationAccess
    group_ids: Annotated[list[DbId], Field(max_length=100)] = []
    opening_hours: OpeningHours  # required, so a PUT never resets the hours by omission


class MemberPublic(BaseModel):
    driver_id: int
    name: str


class MembershipPublic(BaseModel):
    group_id: int
    driver_id: int
    name: str


class GroupPublic(BaseModel):
    id: int
    name: str
    member_count: int


class GroupDetailPublic(GroupPublic):
    members: list[MemberPublic]


class GroupRef(BaseModel):
    id: int
    name: str


class StationAccessPublic(BaseModel):
    station_id: int
    access: str
    groups: list[GroupRef]
    opening_hours: list[dict[str, Any]] | None
    hours: str | None


class AccessCheckPublic(BaseModel):
    station_id: int
    driver_id: int | None
    at: datetime
    allowed: bool
    reason: str | None
    groups: list[str]
    hours: str | None
    message: str | None


def _member(driver: Driver) -> MemberPublic:
    return MemberPublic(driver_id=driver.id, name=driver.name)


def _group(view: access.GroupView) -> GroupPublic:
    group = view.group
    return GroupPublic(id=group.id, name=group.name, member_count=view.member_count)


def _group_ref(group: DriverGroup) -> GroupRef:
    return GroupRef(id=group.id, name=group.name)


def _station_access(view: access.StationAccessView) -> StationAccessPublic:
    return StationAccessPublic(
        station_id=view.station_id,
        access=view.access,
        groups=[_group_ref(g) for g in view.groups],
        opening_hours=view.opening_hours,
        hours=view.hours,
    )


@router.post("/groups", status_code=status.HTTP_201_CREATED)
async def create_group(body: GroupCreate, db: SessionDep) -> GroupPublic:
    return _group(await access.create_group(db, body.name))


@router.get("/groups")
async def list_groups(db: SessionDep) -> list[GroupPublic]:
    return [_group(v) for v in await access.list_groups(db)]


@router.get("/groups/{group_id}")
async def get_group(group_id: IdPath, db: SessionDep) -> GroupDetailPublic:
    detail = await access.group_detail(db, group_id)
    return GroupDetailPublic(
        id=group_id,
        name=detail.group.name,
        member_count=len(detail.members),
        members=[_member(d) for d in detail.members],
    )


@router.delete("/groups/{group_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_group(group_id: IdPath, db: SessionDep) -> Response:
    await access.delete_group(db, group_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/groups/{group_id}/members/{driver_id}")
async def add_member(group_id: IdPath, driver_id: IdPath, db: SessionDep) -> MembershipPublic:
    """Idempotent: adding a member again answers 200 and changes nothing."""
    driver = await access.add_member(db, group_id, driver_id)
    return MembershipPublic(group_id=group_id, driver_id=driver_id, name=driver.name)


@router.delete("/groups/{group_id}/members/{driver_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(group_id: IdPath, driver_id: IdPath, db: SessionDep) -> Response:
    await access.remove_member(db, group_id, driver_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/stations/{station_id}/access")
async def put_station_access(
    station_id: IdPath, body: StationAccessIn, db: SessionDep
) -> StationAccessPublic:
    view = await access.set_station_access(
        db, station_id, body.access, body.group_ids, body.opening_hours
    )
    return _station_access(view)


@router.get("/stations/{station_id}/access")
async def get_station_access(station_id: IdPath, db: SessionDep) -> StationAccessPublic:
    return _station_access(await access.get_station_access(db, station_id))


@router.get("/stations/{station_id}/access/check")
async def check_access(
    station_id: IdPath,
    db: SessionDep,
    driver_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="omit for an unidentified driver")
    ] = None,
    at: Annotated[
        AwareDatetime | None, Query(description="aware ISO 8601 time; default: now")
    ] = None,
) -> AccessCheckPublic:
    """Why can (or can't) this driver charge here at this time?"""
    when = at or datetime.now(UTC)
    decision = await access.check_access(db, station_id, driver_id, when)
    return AccessCheckPublic(
        station_id=station_id,
        driver_id=driver_id,
        at=when,
        allowed=decision.allowed,
        reason=decision.reason,
        groups=list(decision.groups),
        hours=decision.hours,
        message=decision.message,
    )
