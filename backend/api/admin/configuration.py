"""A charger's configuration keys: the last known snapshot, a fresh read, a change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from backend.api.admin.operations import answered, charger_word
from backend.api.deps import CommandsDep, SessionDep, SessionsDep, SettingsDep
from backend.services import charger_configuration as configuration
from backend.services.charger_configuration import KEY_LENGTH, VALUE_LENGTH

router = APIRouter(tags=["chargers"])

KeyName = Annotated[str, Field(min_length=1, max_length=KEY_LENGTH)]
KeyPath = Annotated[str, Path(min_length=1, max_length=KEY_LENGTH)]


class ConfigurationKeyOut(BaseModel):
    key: str
    value: str | None  # None: the charger does not say (a write-only key like AuthorizationKey)
    readonly: bool


class ConfigurationOut(BaseModel):
    keys: list[ConfigurationKeyOut]
    reported_at: datetime | None = None  # when the charger last told us; None: never asked
    unknown_keys: list[str] = []  # of a fetch: asked for, and the charger has no such key


class FetchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[KeyName] | None = Field(default=None, max_length=100)  # None: every key


class ChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: Annotated[str, Field(max_length=VALUE_LENGTH)]


class ChangeOut(BaseModel):
    status: str  # Accepted | Rejected | RebootRequired | NotSupported


def _keys(keys: list[configuration.ConfigurationKey]) -> list[ConfigurationKeyOut]:
    return [ConfigurationKeyOut(key=k.key, value=k.value, readonly=k.readonly) for k in keys]


@router.get("/chargers/{charger_id}/configuration")
async def read_configuration(charger_id: str, db: SessionDep) -> ConfigurationOut:
    """The keys as the charger last reported them (no call to the charger)."""
    keys, reported_at = await configuration.stored(db, charger_id)
    return ConfigurationOut(keys=_keys(keys), reported_at=reported_at)


@router.post("/chargers/{charger_id}/configuration/fetch")
async def fetch_configuration(
    charger_id: str, sessions: SessionsDep, commands: CommandsDep, body: FetchIn | None = None
) -> ConfigurationOut:
    """GetConfiguration now: every key, or those named; stored as the last known snapshot."""
    fetched = await configuration.fetch(
        sessions, commands, charger_id, body.keys if body is not None else None
    )
    charger_word(fetched.result, charger_id, "GetConfiguration")  # 409/504, a CALLERROR 409
    async with sessions() as db:
        keys, reported_at = await configuration.stored(db, charger_id)
    return ConfigurationOut(keys=_keys(keys), reported_at=reported_at, unknown_keys=fetched.unknown)


@router.put("/chargers/{charger_id}/configuration/{key}")
async def change_configuration(
    charger_id: str,
    key: KeyPath,
    body: ChangeIn,
    sessions: SessionsDep,
    commands: CommandsDep,
    settings: SettingsDep,
) -> ChangeOut:
    """ChangeConfiguration; the charger's own answer (the stored value follows an accepted one).
    SecurityProfile 3 is 422 unless TLS_CLIENT_CAFILE is set (it would lock the charger out)."""
    result = await configuration.change(
        sessions,
        commands,
        charger_id,
        key,
        body.value,
        client_certificates=bool(settings.tls_client_cafile),
    )
    return ChangeOut(status=answered(result, charger_id))
