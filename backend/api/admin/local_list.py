"""A charger's local authorization list and authorization cache (OCPP 1.6 Local Auth List
Management: SendLocalList, GetLocalListVersion; Core: ClearCache)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from backend.api.admin.operations import charger_word
from backend.api.deps import CommandsDep, LocalListsDep, SessionDep, SessionsDep
from backend.services import local_list
from backend.services.errors import CommandFailedError

router = APIRouter(tags=["chargers"])


class LocalListOut(BaseModel):
    scope: str | None  # the list the charger last accepted ("public", "station:<id>")
    version: int  # its version (0: none)
    current_scope: str | None  # the list it should hold now (None: not placed at a station)
    current_version: int | None
    entries: int  # id tags on the current list
    outcome: str | None  # the charger's last answer, or "disabled"
    synced_at: datetime | None
    in_sync: bool


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    full: bool = False  # send the whole list, whatever the charger holds


class SyncOut(BaseModel):
    status: str  # Accepted | Failed | NotSupported | VersionMismatch | up_to_date | disabled
    scope: str | None
    version: int
    update_type: str | None  # Full | Differential; None: nothing was sent
    sent: int


class VersionOut(BaseModel):
    list_version: int  # -1: the charger has no local list; 0: an empty one


class StatusOut(BaseModel):
    status: str


@router.get("/chargers/{charger_id}/local-list")
async def read_local_list(charger_id: str, db: SessionDep) -> LocalListOut:
    """What the charger holds as far as we know, against what it should (no call)."""
    held = await local_list.held(db, charger_id)
    return LocalListOut(
        scope=held.scope,
        version=held.version,
        current_scope=held.current_scope,
        current_version=held.current_version,
        entries=held.entries,
        outcome=held.outcome,
        synced_at=held.synced_at,
        in_sync=held.current_scope is not None
        and held.scope == held.current_scope
        and held.version == held.current_version,
    )


@router.post("/chargers/{charger_id}/local-list/sync")
async def sync_local_list(
    charger_id: str, local_lists: LocalListsDep, body: SyncIn | None = None
) -> SyncOut:
    """SendLocalList now: what changed since the charger's version, or the whole list."""
    outcome = await local_lists.sync(charger_id, full=body is not None and body.full)
    if outcome.status == "offline":
        raise CommandFailedError("offline", outcome.detail or f"charger {charger_id} is offline")
    if outcome.status == "timed_out":
        raise CommandFailedError("timed_out", outcome.detail or f"{charger_id} did not answer")
    if outcome.status == "unplaced":
        raise CommandFailedError(
            "unplaced", f"charger {charger_id} is at no station: it has no list to hold"
        )
    return SyncOut(
        status=outcome.status,
        scope=outcome.scope,
        version=outcome.version,
        update_type=outcome.update_type,
        sent=outcome.sent,
    )


@router.post("/chargers/{charger_id}/local-list/version")
async def local_list_version(
    charger_id: str, sessions: SessionsDep, commands: CommandsDep
) -> VersionOut:
    """GetLocalListVersion: the version the charger says it holds."""
    result = await local_list.version_on_charger(sessions, commands, charger_id)
    charger_word(result, charger_id, "GetLocalListVersion")
    return VersionOut(list_version=int(result.response.get("list_version", -1)))


@router.post("/chargers/{charger_id}/clear-cache")
async def clear_cache(charger_id: str, sessions: SessionsDep, commands: CommandsDep) -> StatusOut:
    """ClearCache: Accepted or Rejected, the charger's word."""
    result = await local_list.clear_cache(sessions, commands, charger_id)
    return StatusOut(status=charger_word(result, charger_id, "ClearCache"))
