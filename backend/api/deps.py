"""Dependency aliases shared by the routes (`SessionDep`, `AdminDep`, `CurrentStaff`, ...)."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import session_scope
from backend.models import StaffRole, StaffUser
from backend.services.staff import staff_id_of
from backend.settings import Settings


def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async for session in session_scope(request.app.state.sessions):
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_from_app)]
SessionDep = Annotated[AsyncSession, Depends(get_db)]

_bearer = HTTPBearer(
    auto_error=False, description="ADMIN_TOKEN, or a staff token from POST /auth/token"
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _staff_of(
    db: AsyncSession, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> StaffUser | None:
    if not credentials:
        return None
    staff_id = staff_id_of(settings.secret_key, credentials.credentials)
    if staff_id is None:
        return None
    staff = await db.get(StaffUser, staff_id)
    return staff if staff is not None and staff.active else None


def _is_admin_token(settings: Settings, credentials: HTTPAuthorizationCredentials | None) -> bool:
    given = credentials.credentials.encode() if credentials else b""
    expected = settings.admin_token.encode()
    return bool(credentials and expected and hmac.compare_digest(given, expected))


async def require_admin(settings: SettingsDep, db: SessionDep, credentials: BearerDep) -> None:
    """Every /admin route: `Bearer <ADMIN_TOKEN>` (constant-time) or an operator's token."""
    if _is_admin_token(settings, credentials):
        return
    staff = await _staff_of(db, settings, credentials)
    if staff is None:
        raise _unauthorized("missing or wrong admin token")
    if staff.role != StaffRole.OPERATOR:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="operators only")


async def current_staff(settings: SettingsDep, db: SessionDep, credentials: BearerDep) -> StaffUser:
    """The support agent or operator behind the bearer token (401 for anyone else)."""
    staff = await _staff_of(db, settings, credentials)
    if staff is None:
        raise _unauthorized("missing, expired or wrong staff token")
    return staff


AdminDep = Depends(require_admin)
CurrentStaff = Annotated[StaffUser, Depends(current_staff)]
