"""Drivers and their id tags (RFID cards and virtual tokens)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.models import Driver, IdTag, IdTagStatus
from backend.services.errors import ConflictError, InvalidFieldError, NotFoundError
from backend.services.phones import InvalidPhoneNumberError, to_e164
from backend.services.rows import get_or_404


def mask_tag(value: str | None) -> str:
    """An id tag for a log line: its first and last two characters (tags are personal data,
    and a virtual tag is a bearer token)."""
    if not value:
        return "-"
    if len(value) <= 6:
        return "…"
    return f"{value[:2]}…{value[-2:]}"


def normalize_id_tag(value: str) -> str:
    """OCPP id tags are CiString20: compared case-insensitively, so stored upper-case."""
    return value.strip().upper()


def _phone_or_error(raw: str | None, region: str) -> str | None:
    if raw is None or not raw.strip():
        return None
    try:
        return to_e164(raw, region)
    except InvalidPhoneNumberError as exc:
        raise InvalidFieldError(
            "phone", f"{exc}; write it like 070-123 45 67 or +46701234567"
        ) from exc


async def get_driver(db: AsyncSession, driver_id: int) -> Driver:
    return await get_or_404(db, Driver, driver_id, "driver")


async def list_drivers(db: AsyncSession) -> Sequence[Driver]:
    return (await db.scalars(select(Driver).order_by(col(Driver.id)))).all()


async def _check_unique(
    db: AsyncSession, phone: str | None, telegram_user_id: int | None, exclude: int | None
) -> None:
    if phone is not None:
        other = await db.scalar(select(col(Driver.id)).where(col(Driver.phone) == phone))
        if other is not None and other != exclude:
            raise ConflictError(f"phone {phone} already belongs to driver {other}")
    if telegram_user_id is not None:
        other = await db.scalar(
            select(col(Driver.id)).where(col(Driver.telegram_user_id) == telegram_user_id)
        )
        if other is not None and other != exclude:
            raise ConflictError(
                f"telegram_user_id {telegram_user_id} already belongs to driver {other}"
            )


async def _commit(db: AsyncSession, what: str) -> None:
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise ConflictError(f"{what} collides with an existing driver") from exc


async def create_driver(db: AsyncSession, fields: dict[str, Any], region: str) -> Driver:
    fields = dict(fields)
    fields["phone"] = _phone_or_error(fields.get("phone"), region)
    await _check_unique(db, fields["phone"], fields.get("telegram_user_id"), exclude=None)
    driver = Driver(**fields)
    db.add(driver)
    await _commit(db, "the phone or telegram_user_id")
    return driver


async def update_driver(
    db: AsyncSession, driver_id: int, changes: dict[str, Any], region: str
) -> Driver:
    driver = await get_driver(db, driver_id)
    if "phone" in changes:
        changes["phone"] = _phone_or_error(changes["phone"], region)
    await _check_unique(db, changes.get("phone"), changes.get("telegram_user_id"), driver_id)
    for name, value in changes.items():
        if value is None and name not in ("phone", "telegram_user_id"):
            continue  # null only clears the optional contact fields
        setattr(driver, name, value)
    await _commit(db, "the phone or telegram_user_id")
    return driver


# Chat drivers' virtual tags (backend/services/charging.py); no card may look like one.
VIRTUAL_TAG_PREFIX = "CB-"


def tag_status(tag: IdTag, now: datetime) -> str:
    """The card's own OCPP status at `now` (its driver being blocked is the caller's part)."""
    if tag.status == IdTagStatus.BLOCKED:
        return "Blocked"
    if tag.expires_at is not None and tag.expires_at <= now:
        return "Expired"
    return "Accepted"


async def add_id_tag(db: AsyncSession, driver_id: int, fields: dict[str, Any]) -> IdTag:
    """Register an RFID card; the virtual range is the server's alone (422)."""
    if "virtual" in fields:
        raise InvalidFieldError("virtual", "virtual tags are made by the server, not the API")
    await get_driver(db, driver_id)
    value = normalize_id_tag(fields["id_tag"])
    if value.startswith(VIRTUAL_TAG_PREFIX):
        raise InvalidFieldError(
            "id_tag",
            f"id tags starting with {VIRTUAL_TAG_PREFIX!r} are reserved for chat drivers' "
            "virtual tags; a card with such a UID would be refused at every charger",
        )
    if await db.scalar(select(col(IdTag.id)).where(col(IdTag.id_tag) == value)) is not None:
        raise ConflictError(f"id tag {value!r} is already registered")
    tag = IdTag(driver_id=driver_id, id_tag=value, expires_at=fields.get("expires_at"))
    db.add(tag)
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise ConflictError(f"id tag {value!r} is already registered") from exc
    return tag


async def list_id_tags(db: AsyncSession, driver_id: int) -> Sequence[IdTag]:
    await get_driver(db, driver_id)
    return (
        await db.scalars(
            select(IdTag).where(col(IdTag.driver_id) == driver_id).order_by(col(IdTag.id))
        )
    ).all()


async def update_id_tag(
    db: AsyncSession, driver_id: int, id_tag: str, changes: dict[str, Any]
) -> IdTag:
    tag = await db.scalar(
        select(IdTag).where(
            col(IdTag.driver_id) == driver_id, col(IdTag.id_tag) == normalize_id_tag(id_tag)
        )
    )
    if tag is None:
        raise NotFoundError(f"driver {driver_id} has no id tag {id_tag!r}")
    if "virtual" in changes:
        raise InvalidFieldError("virtual", "virtual tags are made by the server, not the API")
    for name, value in changes.items():
        if name == "status" and value is None:
            continue
        setattr(tag, name, value)
    await db.commit()
    return tag
