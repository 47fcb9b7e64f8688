"""/admin/staff: support agents and operators who log in with POST /auth/token."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status
from pydantic import BaseModel

from backend.api.deps import SessionDep
from backend.services.staff import create_staff

router = APIRouter(prefix="/staff", tags=["staff"])


class StaffIn(BaseModel):
    email: str
    name: str
    role: str
    password: str


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
    assert staff.id is not None
    return StaffOut(
        id=staff.id,
        email=staff.email,
        name=staff.name,
        role=staff.role,
        active=staff.active,
        created_at=staff.created_at,
    )
