"""/admin/chargers and the connector stickers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from backend.api.deps import SessionDep, SettingsDep
from backend.api.schemas import (
    ChargerCreate,
    ChargerKeyRotate,
    ChargerPublic,
    ChargerUpdate,
    ConnectorPublic,
)
from backend.services import charger_keys, network
from backend.services.ports import ChargerCommands
from backend.services.stickers import Sticker
from backend.settings import Settings

router = APIRouter(tags=["chargers"])


def key_pepper(settings: Settings) -> bytes:
    return charger_keys.pepper_from(settings.ocpp_key_pepper, settings.secret_key)


def charger_public(view: network.ChargerView) -> ChargerPublic:
    charger = view.charger
    return ChargerPublic(
        id=charger.id,
        station_id=charger.station_id,
        online=charger.online,
        boot_status=charger.boot_status,
        last_seen_at=charger.last_seen_at,
        status=charger.status,
        error_code=charger.error_code,
        has_password=charger.password_hash is not None,
        has_key=charger.password_hash is not None,
        key_rotation_pending=charger.pending_key_hash is not None,
        security_profile=charger.security_profile,
        key=view.new_key,
        vendor=charger.vendor,
        model=charger.model,
        serial_number=charger.serial_number,
        firmware_version=charger.firmware_version,
        connectors=[ConnectorPublic(**c.model_dump()) for c in view.connectors],
    )


@router.post("/chargers", status_code=status.HTTP_201_CREATED)
async def create_charger(
    body: ChargerCreate, db: SessionDep, settings: SettingsDep
) -> ChargerPublic:
    """Register a charger; the server generates its key unless `password` is given.

    The generated key is in this response (`key`) and nowhere else, ever: configure it on the
    charger as its AuthorizationKey (HTTP Basic password, username = the charger id).
    """
    view = await network.create_charger(
        db,
        charger_id=body.id,
        station_id=body.station_id,
        password=body.password,
        connectors=[network.ConnectorSpec(**c.model_dump()) for c in body.connectors],
        pepper=key_pepper(settings),
        generate_key=True,
    )
    return charger_public(view)


@router.get("/chargers")
async def list_chargers(db: SessionDep, station_id: int | None = None) -> list[ChargerPublic]:
    return [charger_public(v) for v in await network.list_chargers(db, station_id)]


@router.get("/chargers/{charger_id}")
async def get_charger(charger_id: str, db: SessionDep) -> ChargerPublic:
    return charger_public(await network.get_charger(db, charger_id))


@router.patch("/chargers/{charger_id}")
async def update_charger(
    charger_id: str, body: ChargerUpdate, db: SessionDep, settings: SettingsDep
) -> ChargerPublic:
    changes = body.model_dump(exclude_unset=True)
    view = await network.update_charger(db, charger_id, changes, pepper=key_pepper(settings))
    return charger_public(view)


@router.post("/chargers/{charger_id}/key")
async def rotate_charger_key(
    charger_id: str,
    db: SessionDep,
    settings: SettingsDep,
    request: Request,
    body: ChargerKeyRotate | None = None,
) -> ChargerPublic:
    """A new server-generated key, shown once in `key`.

    By default it is sent to the connected charger (ChangeConfiguration AuthorizationKey) and
    becomes the key when the charger accepts; until then the old key stays valid. 409 if the
    charger is offline or refuses (old key stays), 504 if it does not answer.
    """
    commands: ChargerCommands = request.app.state.commands
    view = await network.rotate_key(
        db,
        commands,
        charger_id,
        key_pepper(settings),
        handshake=body.handshake if body is not None else True,
    )
    return charger_public(view)


@router.delete("/chargers/{charger_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_charger(charger_id: str, db: SessionDep) -> Response:
    await network.delete_charger(db, charger_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _sticker(code: str, db: SessionDep, settings: SettingsDep) -> Sticker:
    connector = await network.get_connector_by_code(db, code)
    return Sticker.for_connector(
        connector.code, settings.telegram_bot_username, settings.sms_number
    )


@router.get("/connectors/{code}/qr.svg", response_class=Response)
async def connector_sticker_svg(code: str, db: SessionDep, settings: SettingsDep) -> Response:
    sticker = await _sticker(code, db, settings)
    return Response(sticker.svg(), media_type="image/svg+xml")


@router.get("/connectors/{code}/qr.png", response_class=Response)
async def connector_sticker_png(code: str, db: SessionDep, settings: SettingsDep) -> Response:
    sticker = await _sticker(code, db, settings)
    return Response(sticker.png(), media_type="image/png")
