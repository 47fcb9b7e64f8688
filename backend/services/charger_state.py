"""What chargers tell us about themselves: boot info, presence, connector status.

The connect path is batched across chargers (see services/batching.py): identity lookups
are one SELECT ... WHERE id IN (...), online marks one UPDATE per batch, boots one SELECT
and one executemany UPDATE in one transaction, StatusNotifications two SELECTs and an
executemany UPDATE per batch (then, in their own transaction, the reservations Reserved or
Available reports settle: services/reservations.py); each charger is answered after its batch
committed.
Last-seen times are kept in memory and written by `flush_seen` (one executemany UPDATE),
which the central system calls every few seconds and at shutdown.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, Update, bindparam, update
from sqlalchemy import select as sa_select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import BootStatus, Charger, Connector
from backend.services import reservations
from backend.services.batching import Batcher, caused_by_an_item

log = logging.getLogger(__name__)
_CHARGERS = cast(Table, Charger.__table__)  # type: ignore[attr-defined]
# One row per booted charger, executed as executemany in the boot batch's transaction.
_BOOT_UPDATE = (
    update(_CHARGERS)
    .where(_CHARGERS.c.id == bindparam("b_id"))
    .values(
        vendor=bindparam("b_vendor"),
        model=bindparam("b_model"),
        serial_number=bindparam("b_serial"),
        firmware_version=bindparam("b_firmware"),
        last_seen_at=bindparam("b_at"),
        online=True,
    )
)
# Only the time: `online` follows the socket (and, scaled out, the Redis leases), so a
# flush after a disconnect or at shutdown never marks a charger online again.
_SEEN_UPDATE = (
    update(_CHARGERS)
    .where(_CHARGERS.c.id == bindparam("b_id"))
    .values(last_seen_at=bindparam("b_at"))
)
# StatusNotification: connector 0 (the charge point as a whole), and the connectors.
_CHARGER_STATUS_UPDATE = (
    update(_CHARGERS)
    .where(_CHARGERS.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        error_code=bindparam("b_error"),
        last_seen_at=bindparam("b_at"),
    )
)
_CONNECTORS = cast(Table, Connector.__table__)  # type: ignore[attr-defined]
_CONNECTOR_STATUS_UPDATE = (
    update(_CONNECTORS)
    .where(
        _CONNECTORS.c.charger_id == bindparam("b_charger"),
        _CONNECTORS.c.connector_id == bindparam("b_connector"),
    )
    .values(
        status=bindparam("b_status"),
        error_code=bindparam("b_error"),
        status_updated_at=bindparam("b_at"),
    )
)
SEEN_CHUNK = 1000  # rows per executemany of the last-seen flush


@dataclass(frozen=True)
class ChargerIdentity:
    """What the endpoint needs before it accepts a WebSocket."""

    id: str
    password_hash: str | None
    pending_key_hash: str | None = None
    boot_status: str | None = None  # what its BootNotification would be answered
    security_profile: int = 0  # the lowest profile it may connect with (0: any)
    certificate_pin: str | None = None  # SHA-256 of the client certificate that admits it

    @property
    def has_key(self) -> bool:
        return self.password_hash is not None or self.pending_key_hash is not None


def security_profile_raised(charger_id: str, profile: int) -> Update:
    """The charger's lowest admitted security profile becomes `profile`, if that is higher:
    a charger, once upgraded, is never let back in with less (OCPP 1.6 security whitepaper)."""
    return (
        update(Charger)
        .where(col(Charger.id) == charger_id, col(Charger.security_profile) < profile)
        .values(security_profile=profile)
    )


@dataclass(frozen=True)
class BootInfo:
    vendor: str
    model: str
    serial_number: str | None
    firmware_version: str | None


@dataclass(frozen=True)
class StatusReport:
    """A StatusNotification; connector 0 is the charge point as a whole."""

    charger_id: str
    connector_id: int
    status: str
    error_code: str
    at: datetime


# Rows are updated in key order in every batch (a stable sort keeps a charger's own reports in
# arrival order): two batches locking the same rows on PostgreSQL then wait, never deadlock.
def _by_charger(row: Mapping[str, Any]) -> str:
    return str(row["b_id"])


def _by_connector(row: Mapping[str, Any]) -> tuple[str, int]:
    return str(row["b_charger"]), int(row["b_connector"])


def _short(value: str | None) -> str | None:
    return value[:50] if value else None


class ChargerStateService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._identities: Batcher[str, ChargerIdentity | None] = Batcher(
            self._flush_identities, name="identity lookup"
        )
        self._presence: Batcher[tuple[str, bool], None] = Batcher(
            self._flush_presence, name="online mark"
        )
        self._boots: Batcher[tuple[str, BootInfo], str] = Batcher(self._flush_boots, name="boot")
        self._statuses: Batcher[StatusReport, bool] = Batcher(
            self._flush_statuses, name="status notification", split_on_error=caused_by_an_item
        )
        self._seen: dict[str, datetime] = {}

    @property
    def status_reports_waiting(self) -> int:
        """StatusNotifications submitted and not yet written."""
        return len(self._statuses)

    @property
    def boots_waiting(self) -> int:
        """Boots submitted and not yet written: what admission control bounds."""
        return len(self._boots)

    async def identity(self, charger_id: str) -> ChargerIdentity | None:
        return await self._identities.submit(charger_id)

    async def _flush_identities(self, ids: Sequence[str]) -> list[ChargerIdentity | None]:
        async with self._sessions() as db:
            rows = await db.execute(
                sa_select(
                    col(Charger.id),
                    col(Charger.password_hash),
                    col(Charger.pending_key_hash),
                    col(Charger.boot_status),
                    col(Charger.security_profile),
                    col(Charger.client_certificate_sha256),
                ).where(col(Charger.id).in_(set(ids)))
            )
            found = {
                row[0]: ChargerIdentity(row[0], row[1], row[2], str(row[3]), int(row[4]), row[5])
                for row in rows
            }
        return [found.get(charger_id) for charger_id in ids]

    async def raise_security_profile(self, charger_id: str, profile: int) -> None:
        """A lower profile no longer admits this charger (see `security_profile_raised`)."""
        async with self._sessions() as db:
            await db.execute(security_profile_raised(charger_id, profile))
            await db.commit()

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
        return ChargerIdentity(charger_id, None, boot_status=str(BootStatus.PENDING))

    async def set_online(self, charger_id: str, online: bool) -> None:
        """Online (last seen now) or offline; returns once written. Marks are kept in order."""
        await self._presence.submit((charger_id, online))

    async def _flush_presence(self, marks: Sequence[tuple[str, bool]]) -> list[None]:
        latest = dict(marks)  # a charger marked twice in one batch: its last mark counts
        online = sorted(charger_id for charger_id, value in latest.items() if value)
        offline = sorted(charger_id for charger_id, value in latest.items() if not value)
        async with self._sessions() as db:
            if online:
                await db.execute(
                    update(Charger)
                    .where(col(Charger.id).in_(online))
                    .values(online=True, last_seen_at=utcnow())
                )
            if offline:
                await db.execute(
                    update(Charger).where(col(Charger.id).in_(offline)).values(online=False)
                )
            await db.commit()
        return [None] * len(marks)

    def seen(self, charger_id: str, at: datetime | None = None) -> None:
        """The charger is alive (a heartbeat): written by the next `flush_seen`, not now."""
        self._seen[charger_id] = at or utcnow()

    async def flush_seen(self) -> int:
        """Write the last-seen times gathered since the last flush; how many chargers."""
        pending, self._seen = self._seen, {}
        if not pending:
            return 0
        rows = [{"b_id": charger_id, "b_at": at} for charger_id, at in sorted(pending.items())]
        try:
            async with self._sessions() as db:
                for start in range(0, len(rows), SEEN_CHUNK):
                    await db.execute(_SEEN_UPDATE, rows[start : start + SEEN_CHUNK])
                await db.commit()
        except BaseException:
            for charger_id, at in pending.items():  # kept for the next flush
                self._seen.setdefault(charger_id, at)
            raise
        return len(rows)

    async def boot(self, charger_id: str, info: BootInfo) -> str:
        """Store what the charger says it is; answer with its registration status."""
        return await self._boots.submit((charger_id, info))

    async def _flush_boots(self, boots: Sequence[tuple[str, BootInfo]]) -> list[str]:
        at = utcnow()
        async with self._sessions() as db:
            rows = await db.execute(
                select(col(Charger.id), col(Charger.boot_status)).where(
                    col(Charger.id).in_({charger_id for charger_id, _ in boots})
                )
            )
            statuses = {row[0]: str(row[1]) for row in rows}
            updates = [
                {
                    "b_id": charger_id,
                    "b_vendor": info.vendor[:50],
                    "b_model": info.model[:50],
                    "b_serial": _short(info.serial_number),
                    "b_firmware": _short(info.firmware_version),
                    "b_at": at,
                }
                for charger_id, info in boots
                if charger_id in statuses
            ]
            if updates:
                await db.execute(_BOOT_UPDATE, sorted(updates, key=_by_charger))
            await db.commit()
        rejected = str(BootStatus.REJECTED)
        return [statuses.get(charger_id, rejected) for charger_id, _ in boots]

    async def drain(self) -> None:
        """Finish every batched write, then write the last-seen times."""
        for batcher in (self._identities, self._presence, self._boots, self._statuses):
            await batcher.drain()
        await self.flush_seen()

    async def boot_status(self, charger_id: str) -> str | None:
        async with self._sessions() as db:
            return await db.scalar(select(col(Charger.boot_status)).where(Charger.id == charger_id))

    async def connector_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str, at: datetime
    ) -> bool:
        """Keep the reported status; False for a connector the operator never registered.

        Returns once written: reports arriving together share one transaction.
        """
        report = StatusReport(charger_id, connector_id, status, error_code, at)
        return await self._statuses.submit(report)

    async def _flush_statuses(self, reports: Sequence[StatusReport]) -> list[bool]:
        """One transaction: which chargers and connectors exist, then one executemany UPDATE
        each for charge-point (connector 0) and connector reports, in arrival order, then the
        reservations the connector reports settle."""
        charger_ids = {report.charger_id for report in reports}
        seen = utcnow()
        async with self._sessions() as db:
            chargers = set(
                await db.scalars(select(col(Charger.id)).where(col(Charger.id).in_(charger_ids)))
            )
            connectors = {
                (row[0], row[1])
                for row in await db.execute(
                    select(col(Connector.charger_id), col(Connector.connector_id)).where(
                        col(Connector.charger_id).in_(charger_ids)
                    )
                )
            }
            known = [
                r.charger_id in chargers
                if r.connector_id == 0
                else (r.charger_id, r.connector_id) in connectors
                for r in reports
            ]
            written = [r for r, ok in zip(reports, known, strict=True) if ok]
            whole = [
                {"b_id": r.charger_id, "b_status": r.status, "b_error": r.error_code, "b_at": seen}
                for r in written
                if r.connector_id == 0
            ]
            parts = [
                {
                    "b_charger": r.charger_id,
                    "b_connector": r.connector_id,
                    "b_status": r.status,
                    "b_error": r.error_code,
                    "b_at": r.at,
                }
                for r in written
                if r.connector_id != 0
            ]
            if whole:
                await db.execute(_CHARGER_STATUS_UPDATE, sorted(whole, key=_by_charger))
            if parts:
                await db.execute(_CONNECTOR_STATUS_UPDATE, sorted(parts, key=_by_connector))
            await db.commit()
        connector_reports = [
            (r.charger_id, r.connector_id, r.status) for r in written if r.connector_id
        ]
        if connector_reports:
            await self._follow_reservations(connector_reports, seen)
        return known

    async def _follow_reservations(
        self, reports: list[tuple[str, int, str]], seen: datetime
    ) -> None:
        """A reserved connector's report may end our reservation (the charger let it go): in
        its own transaction after the statuses are stored, so it can never fail their batch."""
        try:
            async with self._sessions() as db:
                await reservations.follow_connector_statuses(db, reports, seen)
                await db.commit()
        except Exception:
            log.exception("following reservations after connector statuses failed")
