"""/admin/drivers and their id tags."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, status
from sqlmodel import col, select

from backend.api.deps import IdPath, OutboundDep, PaymentsDep, SessionDep, SettingsDep
from backend.api.schemas import (
    DriverCreate,
    DriverPublic,
    DriverUpdate,
    IdTagCreate,
    IdTagPublic,
    IdTagUpdate,
)
from backend.models import Conversation, Driver, IdTag
from backend.services import drivers
from backend.services.outbound import Recipient, send_card_link
from backend.services.ports import PaymentGatewayError

router = APIRouter(prefix="/drivers", tags=["drivers"])


def driver_public(driver: Driver) -> DriverPublic:
    return DriverPublic(
        **driver.model_dump(), has_saved_card=driver.stripe_payment_method_id is not None
    )


def id_tag_public(tag: IdTag) -> IdTagPublic:
    return IdTagPublic(**tag.model_dump())


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_driver(body: DriverCreate, db: SessionDep, settings: SettingsDep) -> DriverPublic:
    driver = await drivers.create_driver(db, body.model_dump(), settings.default_phone_region)
    return driver_public(driver)


@router.get("")
async def list_drivers(db: SessionDep) -> list[DriverPublic]:
    return [driver_public(d) for d in await drivers.list_drivers(db)]


@router.get("/{driver_id}")
async def get_driver(driver_id: IdPath, db: SessionDep) -> DriverPublic:
    return driver_public(await drivers.get_driver(db, driver_id))


@router.patch("/{driver_id}")
async def update_driver(
    driver_id: IdPath, body: DriverUpdate, db: SessionDep, settings: SettingsDep
) -> DriverPublic:
    changes = body.model_dump(exclude_unset=True)
    driver = await drivers.update_driver(db, driver_id, changes, settings.default_phone_region)
    return driver_public(driver)


@router.post("/{driver_id}/id-tags", status_code=status.HTTP_201_CREATED)
async def add_id_tag(driver_id: IdPath, body: IdTagCreate, db: SessionDep) -> IdTagPublic:
    return id_tag_public(await drivers.add_id_tag(db, driver_id, body.model_dump()))


@router.get("/{driver_id}/id-tags")
async def list_id_tags(driver_id: IdPath, db: SessionDep) -> list[IdTagPublic]:
    return [id_tag_public(t) for t in await drivers.list_id_tags(db, driver_id)]


@router.patch("/{driver_id}/id-tags/{id_tag}")
async def update_id_tag(
    driver_id: IdPath, id_tag: str, body: IdTagUpdate, db: SessionDep
) -> IdTagPublic:
    tag = await drivers.update_id_tag(db, driver_id, id_tag, body.model_dump(exclude_unset=True))
    return id_tag_public(tag)


@router.post("/{driver_id}/card-link")
async def card_link(
    driver_id: IdPath,
    db: SessionDep,
    payments: PaymentsDep,
    outbound: OutboundDep,
    send: Literal["sms", "telegram"] | None = None,
) -> dict[str, str]:
    """Support's way to a driver's card-saving page (Stripe Checkout, setup mode).

    With `send=sms` the link goes to the driver's phone (to open on any device), with
    `send=telegram` to their Telegram chat; without, the URL is returned to pass on by hand.
    """
    if payments is None:
        raise HTTPException(status_code=409, detail="card payments are not configured")
    driver = await drivers.get_driver(db, driver_id)  # 404 for an unknown driver
    address = await _address_on(db, driver, send) if send else None
    language = driver.language
    await db.rollback()  # the link is stored in its own transaction (SQLite has one writer)
    if send and not outbound.handles(send):
        raise HTTPException(status_code=409, detail=f"the {send} channel is not configured")
    to = Recipient(send, address) if send and address else None
    try:
        link = await send_card_link(payments, outbound, driver_id, language, to)
    except PaymentGatewayError as exc:
        raise HTTPException(status_code=502, detail=f"Stripe refused: {exc}") from exc
    if to is not None:
        return {"url": link.url, "sent": to.channel}
    return {"url": link.url}


async def _address_on(db: SessionDep, driver: Driver, channel: str) -> str:
    """Where the driver is reached on `channel`: their phone for SMS, their chat on Telegram."""
    if channel == "sms":
        if not driver.phone:
            raise HTTPException(status_code=409, detail="the driver has no phone number")
        return driver.phone
    chat = await db.scalar(
        select(col(Conversation.address)).where(
            col(Conversation.driver_id) == driver.id, col(Conversation.channel) == channel
        )
    )
    if chat is None:
        raise HTTPException(status_code=409, detail=f"the driver has never written on {channel}")
    return chat
