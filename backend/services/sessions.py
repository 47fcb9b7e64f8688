"""Charging sessions as operators see them (the state machine lands with the OCPP issue)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.models import ChargingSession
from backend.services.rows import get_or_404


async def list_sessions(
    db: AsyncSession,
    charger_id: str | None = None,
    driver_id: int | None = None,
    status: str | None = None,
    limit: int = 200,
) -> Sequence[ChargingSession]:
    query = select(ChargingSession).order_by(col(ChargingSession.id).desc()).limit(limit)
    if charger_id is not None:
        query = query.where(col(ChargingSession.charger_id) == charger_id)
    if driver_id is not None:
        query = query.where(col(ChargingSession.driver_id) == driver_id)
    if status is not None:
        query = query.where(col(ChargingSession.status) == status)
    return (await db.scalars(query)).all()


async def get_session(db: AsyncSession, session_id: int) -> ChargingSession:
    return await get_or_404(db, ChargingSession, session_id, "charging session")
