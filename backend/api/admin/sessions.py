"""/admin/sessions: charging sessions for operators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.api.deps import SessionDep
from backend.api.schemas import SessionPublic
from backend.models import ChargingSession, SessionStatus
from backend.services import sessions

router = APIRouter(prefix="/sessions", tags=["sessions"])


def session_public(row: ChargingSession) -> SessionPublic:
    return SessionPublic(**row.model_dump())


@router.get("")
async def list_sessions(
    db: SessionDep,
    charger_id: str | None = None,
    driver_id: int | None = None,
    status: SessionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SessionPublic]:
    rows = await sessions.list_sessions(db, charger_id, driver_id, status, limit)
    return [session_public(r) for r in rows]


@router.get("/{session_id}")
async def get_session(session_id: int, db: SessionDep) -> SessionPublic:
    return session_public(await sessions.get_session(db, session_id))
