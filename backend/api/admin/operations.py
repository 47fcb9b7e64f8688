"""Commands to chargers and sessions: remote start/stop, unlock, reset, availability."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from backend.api.admin.sessions import session_public
from backend.api.deps import ChargingDep, CommandsDep, IdPath, SessionDep
from backend.api.schemas import DbId, IdTagValue, SessionPublic
from backend.services import network
from backend.services.errors import CommandFailedError
from backend.services.ports import CommandResult, CommandStatus
from backend.services.smart_charging import SmartCharging, session_limit

router = APIRouter(tags=["operations"])


ConnectorNumber = Annotated[int, Field(ge=0, le=99)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RemoteStartIn(_In):
    connector_id: Annotated[int, Field(ge=1, le=99)]
    id_tag: IdTagValue
    # This session's own limit: sent as a TxProfile with the RemoteStart (smart charging).
    max_power_kw: Annotated[float, Field(gt=0, le=1000)] | None = None


class RemoteStopIn(_In):
    transaction_id: DbId


class UnlockIn(_In):
    connector_id: Annotated[int, Field(ge=1, le=99)]


class ResetIn(_In):
    type: Literal["Soft", "Hard"] = "Soft"


class AvailabilityIn(_In):
    connector_id: ConnectorNumber = 0
    available: bool


class TriggerIn(_In):
    message: Literal[
        "StatusNotification",
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
    ] = "StatusNotification"
    connector_id: ConnectorNumber | None = None


class CommandOut(BaseModel):
    status: str
    session_id: int | None = None
    session: SessionPublic | None = None


def charger_word(result: CommandResult, charger_id: str, action: str) -> str:
    """The charger's answer to `action` (`CommandResult.word`); no answer is an error as for
    `answered`, and so is a CALLERROR such as NotImplemented (409, reason `rejected`)."""
    answered(result, charger_id)
    if not result.accepted and result.response == {}:
        raise CommandFailedError(
            "rejected",
            f"{charger_id} answered {action} with {result.ocpp_status}: "
            f"{result.detail or 'no detail'}",
        )
    return result.word


def answered(result: CommandResult, charger_id: str) -> str:
    """The charger's own answer; no answer at all is an error (409 offline, 504 timeout)."""
    if result.status is CommandStatus.OFFLINE:
        raise CommandFailedError("offline", result.detail or f"charger {charger_id} is offline")
    if result.status is CommandStatus.TIMED_OUT:
        raise CommandFailedError("timed_out", result.detail or f"{charger_id} did not answer")
    return result.ocpp_status or str(result.status)


@router.post("/chargers/{charger_id}/remote-start")
async def remote_start(
    charger_id: str, body: RemoteStartIn, charging: ChargingDep, request: Request
) -> CommandOut:
    smart: SmartCharging = request.app.state.smart_charging
    limit = None
    if body.max_power_kw is not None:
        limit = await smart.record(
            charger_id, session_limit(body.max_power_kw, body.connector_id), source="session"
        )
    try:
        outcome = await charging.start_remote(
            charger_id,
            body.connector_id,
            id_tag=body.id_tag,
            channel="admin",
            charging_profile=limit[1] if limit else None,
        )
    except Exception:
        if limit is not None:  # refused before it went out
            await smart.answered(limit[0], CommandResult(CommandStatus.REJECTED, "not_sent"))
        raise
    if limit is not None:
        await smart.answered(limit[0], outcome.result)
    status = answered(outcome.result, charger_id)
    return CommandOut(
        status=status, session_id=outcome.session.id, session=session_public(outcome.session)
    )


@router.post("/chargers/{charger_id}/remote-stop")
async def remote_stop(charger_id: str, body: RemoteStopIn, charging: ChargingDep) -> CommandOut:
    session, result = await charging.stop_transaction(charger_id, body.transaction_id)
    status = answered(result, charger_id)
    if session is None:  # a transaction we hold no session of: the charger's own answer
        return CommandOut(status=status)
    return CommandOut(status=status, session_id=session.id, session=session_public(session))


@router.post("/sessions/{session_id}/stop")
async def stop_session(session_id: IdPath, charging: ChargingDep) -> CommandOut:
    outcome = await charging.request_stop(session_id=session_id, by_operator=True)
    status = answered(outcome.result, outcome.session.charger_id)
    return CommandOut(
        status=status, session_id=outcome.session.id, session=session_public(outcome.session)
    )


async def _known_charger(db: SessionDep, charger_id: str) -> None:
    """404 for an unknown charger; then the request's transaction ends before the slow call."""
    await network.get_charger(db, charger_id)
    await db.rollback()


@router.post("/sessions/{session_id}/close")
async def close_session(session_id: IdPath, charging: ChargingDep) -> SessionPublic:
    """Close a session its charger never stopped (lost transaction), billed to its last sign."""
    return session_public(await charging.force_close(session_id))


@router.post("/chargers/{charger_id}/unlock")
async def unlock(
    charger_id: str, body: UnlockIn, db: SessionDep, commands: CommandsDep
) -> CommandOut:
    await _known_charger(db, charger_id)
    return CommandOut(
        status=answered(await commands.unlock(charger_id, body.connector_id), charger_id)
    )


@router.post("/chargers/{charger_id}/reset")
async def reset(
    charger_id: str, body: ResetIn, db: SessionDep, commands: CommandsDep
) -> CommandOut:
    await _known_charger(db, charger_id)
    return CommandOut(status=answered(await commands.reset(charger_id, body.type), charger_id))


@router.post("/chargers/{charger_id}/availability")
async def change_availability(
    charger_id: str, body: AvailabilityIn, db: SessionDep, commands: CommandsDep
) -> CommandOut:
    await _known_charger(db, charger_id)
    result = await commands.change_availability(charger_id, body.connector_id, body.available)
    return CommandOut(status=answered(result, charger_id))


@router.post("/chargers/{charger_id}/trigger")
async def trigger(
    charger_id: str, body: TriggerIn, db: SessionDep, commands: CommandsDep
) -> CommandOut:
    await _known_charger(db, charger_id)
    result = await commands.trigger_message(charger_id, body.message, body.connector_id)
    return CommandOut(status=answered(result, charger_id))
