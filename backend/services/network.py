"""Stations, tariffs, chargers and connectors: what operators manage."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import BootStatus, Charger, ChargingSession, Connector, Station, Tariff
from backend.services import charger_keys, codes
from backend.services.errors import CommandFailedError, ConflictError, NotFoundError
from backend.services.passwords import hash_password
from backend.services.ports import ChargerCommands, CommandStatus
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

# An OCPP identity as the admin API accepts it and the WebSocket path must match (the whole
# string: a NUL byte, a newline or a slash is never part of a charger's name).
CHARGER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,47}$"
_CHARGER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,47}")


def valid_charger_id(value: str) -> bool:
    return _CHARGER_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class ConnectorSpec:
    connector_id: int
    connector_type: str
    max_power_kw: float


@dataclass(frozen=True)
class ConnectorListing:
    """One connector with where it is: what a directory or the demo banner shows."""

    station: str
    city: str
    charger_id: str
    connector_id: int
    code: str
    connector_type: str
    max_power_kw: float


@dataclass(frozen=True)
class ChargerView:
    charger: Charger
    connectors: list[Connector]
    # A key the server just generated: shown once in the API response, never stored in clear.
    new_key: str | None = None


def _key_hash(charger_id: str, key: str, pepper: bytes | None) -> str:
    """The keyed hash; without a pepper (seed files, old callers) argon2, upgraded on connect."""
    if pepper is None:
        return hash_password(key)
    return charger_keys.hash_key(charger_id, key, pepper)


async def get_station(db: AsyncSession, station_id: int) -> Station:
    return await get_or_404(db, Station, station_id, "station")


async def list_stations(db: AsyncSession) -> Sequence[Station]:
    return (await db.scalars(select(Station).order_by(col(Station.id)))).all()


async def tariffs_by_station(db: AsyncSession, station_ids: Sequence[int]) -> dict[int, Tariff]:
    if not station_ids:
        return {}
    rows = await db.scalars(select(Tariff).where(col(Tariff.station_id).in_(station_ids)))
    return {tariff.station_id: tariff for tariff in rows}


async def create_station(db: AsyncSession, **fields: Any) -> Station:
    station = Station(**fields)
    db.add(station)
    await db.commit()
    return station


async def update_station(db: AsyncSession, station_id: int, changes: dict[str, Any]) -> Station:
    station = await get_station(db, station_id)
    for name, value in changes.items():
        setattr(station, name, value)
    await db.commit()
    return station


async def delete_station(db: AsyncSession, station_id: int) -> None:
    station = await get_station(db, station_id)
    has_chargers = await db.scalar(select(exists().where(col(Charger.station_id) == station_id)))
    if has_chargers:
        raise ConflictError(f"station {station_id} still has chargers; delete or move them first")
    await db.execute(delete(Tariff).where(col(Tariff.station_id) == station_id))
    await db.delete(station)
    await db.commit()


async def put_tariff(db: AsyncSession, station_id: int, fields: dict[str, Any]) -> Tariff:
    await get_station(db, station_id)
    tariff = await db.scalar(select(Tariff).where(col(Tariff.station_id) == station_id))
    if tariff is None:
        tariff = Tariff(station_id=station_id)
        db.add(tariff)
    for name, value in fields.items():
        setattr(tariff, name, value)
    tariff.updated_at = utcnow()
    await db.commit()
    return tariff


async def _connectors_of(
    db: AsyncSession, charger_ids: Sequence[str]
) -> dict[str, list[Connector]]:
    result: dict[str, list[Connector]] = {charger_id: [] for charger_id in charger_ids}
    if not charger_ids:
        return result
    rows = await db.scalars(
        select(Connector)
        .where(col(Connector.charger_id).in_(charger_ids))
        .order_by(col(Connector.charger_id), col(Connector.connector_id))
    )
    for connector in rows:
        result[connector.charger_id].append(connector)
    return result


async def get_charger(db: AsyncSession, charger_id: str) -> ChargerView:
    charger = await get_or_404(db, Charger, charger_id, "charger")
    connectors = await _connectors_of(db, [charger_id])
    return ChargerView(charger, connectors[charger_id])


async def list_chargers(db: AsyncSession, station_id: int | None = None) -> list[ChargerView]:
    query = select(Charger).order_by(col(Charger.id))
    if station_id is not None:
        query = query.where(col(Charger.station_id) == station_id)
    chargers = (await db.scalars(query)).all()
    connectors = await _connectors_of(db, [c.id for c in chargers])
    return [ChargerView(c, connectors[c.id]) for c in chargers]


async def _taken_codes(db: AsyncSession) -> set[str]:
    return set((await db.scalars(select(col(Connector.code)))).all())


async def create_charger(
    db: AsyncSession,
    charger_id: str,
    station_id: int,
    password: str | None,
    connectors: Sequence[ConnectorSpec],
    choice: Callable[[str], str] = secrets.choice,
    *,
    pepper: bytes | None = None,
    generate_key: bool = False,
) -> ChargerView:
    """Register a charger and its connectors in one transaction, each with a fresh code.

    With `generate_key` and no `password` the server makes the charger's AuthorizationKey;
    it is in the returned view once (`new_key`) and stored only as its keyed hash.
    """
    await get_station(db, station_id)
    if await db.get(Charger, charger_id) is not None:
        raise ConflictError(f"charger {charger_id!r} already exists")
    duplicate = await db.scalar(
        select(col(Charger.id)).where(func.lower(col(Charger.id)) == charger_id.lower())
    )
    if duplicate is not None:
        raise ConflictError(f"charger {duplicate!r} already exists (identities ignore case)")
    new_key = charger_keys.generate_key() if generate_key and not password else None
    key = password or new_key
    charger = Charger(
        id=charger_id,
        station_id=station_id,
        password_hash=_key_hash(charger_id, key, pepper) if key else None,
        boot_status=BootStatus.ACCEPTED,
    )
    db.add(charger)
    taken = await _taken_codes(db)
    rows = []
    for spec in connectors:
        code = codes.new_code(taken, choice)
        taken.add(code)
        rows.append(
            Connector(
                charger_id=charger_id,
                connector_id=spec.connector_id,
                code=code,
                connector_type=spec.connector_type,
                max_power_kw=spec.max_power_kw,
            )
        )
    db.add_all(rows)
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise ConflictError(f"charger {charger_id!r} or one of its codes already exists") from exc
    return ChargerView(charger, sorted(rows, key=lambda c: c.connector_id), new_key)


async def update_charger(
    db: AsyncSession, charger_id: str, changes: dict[str, Any], *, pepper: bytes | None = None
) -> ChargerView:
    view = await get_charger(db, charger_id)
    charger = view.charger
    if "station_id" in changes and changes["station_id"] is not None:
        await get_station(db, changes["station_id"])
        charger.station_id = changes["station_id"]
    if "password" in changes:
        password = changes["password"]
        charger.password_hash = _key_hash(charger_id, password, pepper) if password else None
        charger.pending_key_hash = None
    if changes.get("boot_status") is not None:
        charger.boot_status = changes["boot_status"]
    if changes.get("security_profile") is not None:
        charger.security_profile = changes["security_profile"]
        if charger.security_profile < 3:  # a replaced charger: its old certificate is out
            charger.client_certificate_sha256 = None
    await db.commit()
    return view


async def rotate_key(
    db: AsyncSession,
    commands: ChargerCommands,
    charger_id: str,
    pepper: bytes,
    *,
    handshake: bool = True,
) -> ChargerView:
    """A new server-generated key for a charger; returned once in `new_key`.

    With the handshake the key goes to the connected charger as ChangeConfiguration
    AuthorizationKey and is kept as `pending_key_hash`; it replaces the old key only when the
    charger answers Accepted (or connects with it). Offline or refused: the old key stays and
    CommandFailedError / ConflictError says why. Without the handshake (a charger configured
    by hand, or one that lost its key) the new key replaces the old one at once.
    """
    view = await get_charger(db, charger_id)
    key = charger_keys.generate_key()
    new_hash = charger_keys.hash_key(view.charger.id, key, pepper)
    if not handshake:
        view.charger.password_hash = new_hash
        view.charger.pending_key_hash = None
        await db.commit()
        log.info("charger %s: new key set without a handshake", charger_id)
        return ChargerView(view.charger, view.connectors, key)
    view.charger.pending_key_hash = new_hash
    await db.commit()  # never hold a transaction open while the charger answers
    result = await commands.change_configuration(charger_id, "AuthorizationKey", key)
    if result.accepted:
        await db.execute(
            update(Charger)
            .where(col(Charger.id) == charger_id, col(Charger.pending_key_hash) == new_hash)
            .values(password_hash=new_hash, pending_key_hash=None)
        )
        await db.commit()
        await db.refresh(view.charger)
        if view.charger.password_hash != new_hash:  # rotated again meanwhile
            raise ConflictError(f"charger {charger_id!r}: another key rotation overtook this one")
        log.info("charger %s accepted its new key", charger_id)
        return ChargerView(view.charger, view.connectors, key)
    if result.status is CommandStatus.TIMED_OUT:
        # It may have taken the key: both stay valid until it connects with one of them.
        raise CommandFailedError(
            "timed_out",
            f"charger {charger_id!r} did not answer ChangeConfiguration AuthorizationKey; its "
            "old key stays valid (and the unconfirmed one until it connects); rotate again",
        )
    await db.execute(
        update(Charger)
        .where(col(Charger.id) == charger_id, col(Charger.pending_key_hash) == new_hash)
        .values(pending_key_hash=None)
    )
    await db.commit()
    if result.status is CommandStatus.OFFLINE:
        raise CommandFailedError(
            "offline",
            f"charger {charger_id!r} is offline, so it cannot take a new key; the old key stays "
            "(use handshake=false only for a charger you configure by hand)",
        )
    raise ConflictError(
        f"charger {charger_id!r} refused the new key (ChangeConfiguration AuthorizationKey: "
        f"{result.ocpp_status or result.detail}); the old key stays"
    )


async def delete_charger(db: AsyncSession, charger_id: str) -> None:
    view = await get_charger(db, charger_id)
    has_sessions = await db.scalar(
        select(exists().where(col(ChargingSession.charger_id) == charger_id))
    )
    if has_sessions:
        raise ConflictError(
            f"charger {charger_id!r} has charging sessions on record; they are kept for "
            "receipts and accounting, so the charger cannot be deleted"
        )
    await db.execute(delete(Connector).where(col(Connector.charger_id) == charger_id))
    await db.delete(view.charger)
    await db.commit()


async def get_connector_by_code(db: AsyncSession, code: str) -> Connector:
    normalized = codes.normalize_code(code)
    connector = (
        await db.scalar(select(Connector).where(col(Connector.code) == normalized))
        if normalized
        else None
    )
    if connector is None:
        raise NotFoundError(f"no connector has the code {code!r}")
    return connector


async def connector_listings(db: AsyncSession) -> list[ConnectorListing]:
    rows = await db.execute(
        select(Station, Connector)
        .join(Charger, col(Charger.station_id) == col(Station.id))
        .join(Connector, col(Connector.charger_id) == col(Charger.id))
        .order_by(col(Station.id), col(Charger.id), col(Connector.connector_id))
    )
    return [
        ConnectorListing(
            station=station.name,
            city=station.city,
            charger_id=connector.charger_id,
            connector_id=connector.connector_id,
            code=connector.code,
            connector_type=connector.connector_type,
            max_power_kw=connector.max_power_kw,
        )
        for station, connector in rows
    ]
