"""What chargers tell us about themselves: boot info, presence, connector status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import BootStatus, Charger, Connector


@dataclass(frozen=True)
class ChargerIdentity:
    """What the endpoint needs before it accepts a WebSocket."""

    id: str
    password_hash: str | None
    pending_key_hash: str | None = None

    @property
    def has_key(self) -> bool:
        return self.password_hash is not None or self.pending_key_hash is not None


@dataclass(frozen=True)
class BootInfo:
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None


class ChargerStateService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def identity(self, charger_id: str) -> ChargerIdentity | None:
        async with self._sessions() as db:
            charger = await db.get(Charger, charger_id)
            if charger is None:
                return None
            return ChargerIdentity(charger.id, charger.password_hash, charger.pending_key_hash)

    async def replace_key_hash(self, charger_id: str, old: str, new: str) -> bool:
        """Swap a legacy hash for the keyed one, unless the key changed meanwhile."""
        async with self._sessions() as db:
            result = await db.execute(
                update(Charger)
                .where(col(Charger.id) == charger_id, col(Charger.password_hash) == old)
                .values(password_hash=new)
            )
            await db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def promote_pending_key(self, charger_id: str, pending: str) -> bool:
        """The charger connected with its rotated key: it has it, so the old one retires."""
        async with self._sessions() as db:
            result = await db.execute(
                update(Charger)
                .where(col(Charger.id) == charger_id, col(Charger.pending_key_hash) == pending)
                .values(password_hash=pending, pending_key_hash=None)
            )
            await db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def auto_register(self, charger_id: str) -> ChargerIdentity:
        """A charger we have never seen: registered unplaced, its boot answered Pending."""
        async with self._sessions() as db:
            db.add(Charger(id=charger_id, station_id=None, boot_status=BootStatus.PENDING))
            await db.commit()
        return ChargerIdentity(charger_id, None)

    async def set_online(self, charger_id: str, online: bool, at: datetime | None = None) -> None:
        values: dict[str, object] = {"online": online}
        if online:
            values["last_seen_at"] = at or utcnow()
        async with self._sessions() as db:
            await db.execute(update(Charger).where(col(Charger.id) == charger_id).values(**values))
            await db.commit()

    async def touch(self, charger_id: str, at: datetime | None = None) -> None:
        async with self._sessions() as db:
            await db.execute(
                update(Charger)
                .where(col(Charger.id) == charger_id)
                .values(last_seen_at=at or utcnow(), online=True)
            )
            await db.commit()

    async def boot(self, charger_id: str, info: BootInfo) -> str:
        """Store what the charger says it is; answer with its registration status."""
        async with self._sessions() as db:
            charger = await db.get(Charger, charger_id)
            if charger is None:
                return str(BootStatus.REJECTED)
            charger.vendor = info.vendor[:50]
            charger.model = info.model[:50]
            charger.serial_number = (info.serial_number or None) and info.serial_number[:50]
            charger.firmware_version = (info.firmware_version or None) and info.firmware_version[
                :50
            ]
            charger.last_seen_at = utcnow()
            charger.online = True
            status = str(charger.boot_status)
            await db.commit()
            return status

    async def boot_status(self, charger_id: str) -> str | None:
        async with self._sessions() as db:
            return await db.scalar(select(col(Charger.boot_status)).where(Charger.id == charger_id))

    async def connector_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str, at: datetime
    ) -> bool:
        """Keep the reported status; False for a connector the operator never registered."""
        async with self._sessions() as db:
            if connector_id == 0:
                result = await db.execute(
                    update(Charger)
                    .where(col(Charger.id) == charger_id)
                    .values(status=status, error_code=error_code, last_seen_at=utcnow())
                )
            else:
                result = await db.execute(
                    update(Connector)
                    .where(
                        col(Connector.charger_id) == charger_id,
                        col(Connector.connector_id) == connector_id,
                    )
                    .values(status=status, error_code=error_code, status_updated_at=at)
                )
            await db.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]
