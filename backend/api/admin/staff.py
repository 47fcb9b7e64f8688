"""/admin/staff: support agents and operators who log in with POST /auth/token."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select

from backend.api.deps import IdPath, SessionDep
from backend.models import StaffUser
from backend.services.rows import get_or_404
from backend.services.staff import create_staff

router = APIRouter(prefix="/staff", tags=["staff"])


class StaffIn(BaseModel):
    email: str
    name: str
    role: str
    password: str


class StaffPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    active: bool


class StaffOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    active: bool
    created_at: datetime


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_staff(body: StaffIn, db: SessionDep) -> StaffOut:
    """A new staff user (409: the email exists; 422: unknown role or a short password)."""
    staff = await create_staff(
        db, email=body.email, name=body.name, role=body.role, password=body.password
    )
    return _out(staff)


@router.get("")
async def list_staff(db: SessionDep) -> list[StaffOut]:
    staff = await db.scalars(select(StaffUser).order_by(col(StaffUser.id)))
    return [_out(member) for member in staff]


@router.patch("/{staff_id}")
async def update_staff(staff_id: IdPath, body: StaffPatch, db: SessionDep) -> StaffOut:
    """Deactivate (or reactivate) an account: its tokens and console session stop working."""
    staff = await get_or_404(db, StaffUser, staff_id, "staff user")
    staff.active = body.active
    await db.commit()
    await db.refresh(staff)
    return _out(staff)


def _out(staff: StaffUser) -> StaffOut:
    assert staff.id is not None
    return StaffOut(
        id=staff.id,
        email=staff.email,
        name=staff.name,
        role=staff.role,
        active=staff.active,
        created_at=staff.created_at,
    )
