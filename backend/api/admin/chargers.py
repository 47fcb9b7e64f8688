"""/admin/chargers and the connector stickers."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from backend.api.deps import SessionDep, SettingsDep
from backend.api.schemas import ChargerCreate, ChargerPublic, ChargerUpdate, ConnectorPublic
from backend.services import network
from backend.services.stickers import Sticker

router = APIRouter(tags=["chargers"])


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
        vendor=charger.vendor,
        model=charger.model,
        serial_number=charger.serial_number,
        firmware_version=charger.firmware_version,
        connectors=[ConnectorPublic(**c.model_dump()) for c in view.connectors],
    )


@router.post("/chargers", status_code=status.HTTP_201_CREATED)
async def create_charger(body: ChargerCreate, db: SessionDep) -> ChargerPublic:
    view = await network.create_charger(
        db,
        charger_id=body.id,
        station_id=body.station_id,
        password=body.password,
        connectors=[network.ConnectorSpec(**c.model_dump()) for c in body.connectors],
    )
    return charger_public(view)


@router.get("/chargers")
async def list_chargers(db: SessionDep, station_id: int | None = None) -> list[ChargerPublic]:
    return [charger_public(v) for v in await network.list_chargers(db, station_id)]


@router.get("/chargers/{charger_id}")
async def get_charger(charger_id: str, db: SessionDep) -> ChargerPublic:
    return charger_public(await network.get_charger(db, charger_id))


@router.patch("/chargers/{charger_id}")
async def update_charger(charger_id: str, body: ChargerUpdate, db: SessionDep) -> ChargerPublic:
    changes = body.model_dump(exclude_unset=True)
    return charger_public(await network.update_charger(db, charger_id, changes))


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
