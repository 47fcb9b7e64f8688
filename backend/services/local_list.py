"""Local authorization lists (OCPP 1.6 Local Auth List Management), kept in sync.

A charger with a local list accepts the cards on it while it cannot reach us. What each
charger should hold is *published* per scope: every public station's chargers share one
list ("public"), a members-only station has its own ("station:<id>", its groups' members).
A tag is listed with the status we would answer it: Blocked when its driver or the card is
blocked, Expired after its expiry, else Accepted with its expiry date. Chat drivers' virtual
tags are never listed (they start only their own RemoteStart). Opening hours cannot be said
in an OCPP 1.6 list: a charger that is offline cannot keep them.

Publishing compares the tags with the stored entries; each change raises the scope's version,
and the changed entries carry it (a removed tag stays as a tombstone). A charger at version
v then gets only the entries changed since v (`Differential`) once it confirms it holds v
(GetLocalListVersion), or the whole list (`Full`) when it holds none, holds another scope's or
another version than we recorded, or answers VersionMismatch. What it accepted is
recorded per charger (`charger_local_list`). A charger whose `LocalAuthListEnabled` is
reported false is not sent a list; `SendLocalListMaxLength` splits a long update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import (
    Charger,
    ChargerLocalList,
    Driver,
    GroupMembership,
    IdTag,
    LocalListEntry,
    LocalListScope,
    Station,
    StationAccess,
    StationGroup,
)
from backend.services.charger_configuration import reported_value
from backend.services.drivers import VIRTUAL_TAG_PREFIX, tag_status
from backend.services.pacing import Pace
from backend.services.ports import ChargerCommands, CommandResult, CommandStatus
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

PUBLIC_SCOPE = "public"
ENABLED_KEY = "LocalAuthListEnabled"
CHUNK_KEY = "SendLocalListMaxLength"
DEFAULT_CHUNK = 500  # entries per SendLocalList when the charger does not say
# Outcomes the automatic sync does not retry by itself (an operator's sync still sends):
# the charger lacks the feature (its answer, or a CALLERROR saying so) or has it switched off.
NOT_RETRIED = frozenset({"NotSupported", "NotImplemented", "disabled"})


@dataclass(frozen=True)
class Listed:
    """One tag as a list holds it; `status` None: removed."""

    id_tag: str
    status: str | None
    expires_at: datetime | None

    def as_ocpp(self) -> dict[str, Any]:
        """The AuthorizationData of SendLocalList (no idTagInfo: remove the tag)."""
        if self.status is None:
            return {"id_tag": self.id_tag}
        info: dict[str, Any] = {"status": self.status}
        if self.expires_at is not None:
            info["expiry_date"] = self.expires_at.isoformat().replace("+00:00", "Z")
        return {"id_tag": self.id_tag, "id_tag_info": info}


@dataclass(frozen=True)
class SyncOutcome:
    """What a sync did: `status` is the charger's answer (Accepted, Failed, NotSupported,
    VersionMismatch), `up_to_date`, `disabled`, `unplaced`, `offline` or `timed_out`."""

    status: str
    scope: str | None
    version: int  # the list version the charger holds now (as far as we know)
    update_type: str | None = None  # Full | Differential, when something was sent
    sent: int = 0  # entries sent
    detail: str | None = None


@dataclass(frozen=True)
class HeldList:
    """What we know a charger holds."""

    scope: str | None
    current_scope: str | None  # the scope it should hold now (None: it has no station)
    version: int
    current_version: int | None
    outcome: str | None
    synced_at: datetime | None
    entries: int  # of the current list


async def scope_of(db: AsyncSession, charger_id: str) -> str | None:
    """Whose list a charger should hold; None for a charger not placed at a station."""
    charger = await get_or_404(db, Charger, charger_id, "charger")
    if charger.station_id is None:
        return None
    station = await db.get(Station, charger.station_id)
    if station is None or station.access == StationAccess.PUBLIC:
        return PUBLIC_SCOPE
    return f"station:{station.id}"


async def desired(db: AsyncSession, scope: str) -> dict[str, Listed]:
    """The tags a scope's list should hold now, by id tag."""
    query = (
        select(IdTag, col(Driver.blocked))
        .join(Driver, col(Driver.id) == col(IdTag.driver_id))
        .where(
            col(IdTag.virtual).is_(False),
            col(IdTag.id_tag).not_like(f"{VIRTUAL_TAG_PREFIX}%"),
        )
    )
    if scope != PUBLIC_SCOPE:
        station_id = int(scope.removeprefix("station:"))
        members = (
            select(col(GroupMembership.driver_id))
            .join(StationGroup, col(StationGroup.group_id) == col(GroupMembership.group_id))
            .where(col(StationGroup.station_id) == station_id)
        )
        query = query.where(col(IdTag.driver_id).in_(members))
    now = utcnow()
    listed = {}
    for tag, blocked in (await db.execute(query)).all():
        status = "Blocked" if blocked else tag_status(tag, now)
        listed[tag.id_tag] = Listed(tag.id_tag, status, tag.expires_at)
    return listed


async def publish(db: AsyncSession, scope: str) -> int:
    """Bring a scope's entries in line with the tags (in the caller's transaction); the
    scope's version after. Unchanged tags leave the version as it was."""
    row = await db.scalar(
        select(LocalListScope).where(col(LocalListScope.scope) == scope).with_for_update()
    )
    stored = {
        entry.id_tag: entry
        for entry in (
            await db.scalars(select(LocalListEntry).where(col(LocalListEntry.scope) == scope))
        ).all()
    }
    wanted = await desired(db, scope)
    changes = [
        listed
        for listed in wanted.values()
        if (old := stored.get(listed.id_tag)) is None
        or (old.status, old.expires_at) != (listed.status, listed.expires_at)
    ]
    changes += [
        Listed(id_tag, None, None)
        for id_tag, old in stored.items()
        if id_tag not in wanted and old.status is not None
    ]
    if row is None:
        row = LocalListScope(scope=scope, version=1)
        db.add(row)
    elif changes:
        row.version += 1
        row.published_at = utcnow()
    for listed in changes:
        entry = stored.get(listed.id_tag)
        if entry is None:
            entry = LocalListEntry(scope=scope, id_tag=listed.id_tag, version=row.version)
            db.add(entry)
        entry.status, entry.expires_at, entry.version = (
            listed.status,
            listed.expires_at,
            row.version,
        )
    await db.flush()
    return row.version


async def _entries(db: AsyncSession, scope: str, since: int | None) -> list[Listed]:
    """A scope's live entries (since None: the whole list), or those changed after `since`."""
    query = select(LocalListEntry).where(col(LocalListEntry.scope) == scope)
    if since is None:
        query = query.where(col(LocalListEntry.status).is_not(None))
    else:
        query = query.where(col(LocalListEntry.version) > since)
    rows = (await db.scalars(query.order_by(col(LocalListEntry.id_tag)))).all()
    return [Listed(r.id_tag, r.status, r.expires_at) for r in rows]


def _chunk_size(reported: str | None) -> int:
    try:
        size = int(reported or DEFAULT_CHUNK)
    except ValueError:
        return DEFAULT_CHUNK
    return size if size > 0 else DEFAULT_CHUNK


def chunks(entries: Sequence[Listed], size: int) -> list[Sequence[Listed]]:
    """An update in pieces of at most `size`; at least one (a Full list may be empty)."""
    return [entries[i : i + size] for i in range(0, len(entries), size)] or [entries]


async def held(db: AsyncSession, charger_id: str) -> HeldList:
    """What a charger holds as far as we know, against what it should hold (no call)."""
    scope = await scope_of(db, charger_id)
    copy = await db.get(ChargerLocalList, charger_id)
    current = await db.get(LocalListScope, scope) if scope is not None else None
    count = len(await _entries(db, scope, None)) if scope is not None else 0
    return HeldList(
        scope=copy.scope if copy else None,
        current_scope=scope,
        version=copy.version if copy else 0,
        current_version=current.version if current else None,
        outcome=copy.outcome if copy else None,
        synced_at=copy.synced_at if copy else None,
        entries=count,
    )


class LocalListSync:
    """Sends chargers their local list; see the module docstring."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], commands: ChargerCommands
    ) -> None:
        self._sessions = sessions
        self._commands = commands
        self._locks: dict[str, asyncio.Lock] = {}

    async def sync(
        self, charger_id: str, *, full: bool = False, publish_first: bool = True
    ) -> SyncOutcome:
        """Send the charger what its list lacks (or all of it with `full`), now.

        `publish_first=False`: its scope was just published (a pass over many chargers).
        """
        lock = self._locks.setdefault(charger_id, asyncio.Lock())
        try:
            async with lock:  # two syncs of one charger would race on its version
                return await self._sync(charger_id, full, publish_first)
        finally:
            if not lock.locked() and self._locks.get(charger_id) is lock:
                del self._locks[charger_id]

    async def _sync(self, charger_id: str, full: bool, publish_first: bool) -> SyncOutcome:
        async with self._sessions() as db:
            scope = await scope_of(db, charger_id)
            copy = await db.get(ChargerLocalList, charger_id)
            if scope is None:
                return SyncOutcome("unplaced", None, copy.version if copy else 0)
            enabled = await reported_value(db, charger_id, ENABLED_KEY)
            if enabled is not None and enabled.strip().lower() == "false":
                await _record(db, charger_id, copy, "disabled")
                await db.commit()
                return SyncOutcome("disabled", scope, copy.version if copy else 0)
            version = await _published(db, scope, publish_first)
            size = _chunk_size(await reported_value(db, charger_id, CHUNK_KEY))
            holds = copy.version if copy is not None and copy.scope == scope else 0
            if not full and holds == version:
                return SyncOutcome("up_to_date", scope, version)
            differential = not full and 0 < holds < version
        if differential:
            # Only on top of the list it really holds (OCTT TC_043_5 asks first, too): a charger
            # reset to factory settings, or given a list by someone else, gets the whole list.
            asked = await self._commands.operate(charger_id, "GetLocalListVersion", {})
            if asked.status in (CommandStatus.OFFLINE, CommandStatus.TIMED_OUT):
                return SyncOutcome(asked.word, scope, holds, detail=asked.detail)
            reported = asked.response.get("list_version")
            if reported != holds:
                log.info("%s holds list v%s, not our v%s: full update", charger_id, reported, holds)
                differential = False
        async with self._sessions() as db:
            entries = await _entries(db, scope, holds if differential else None)
        outcome = await self._send(charger_id, scope, version, entries, differential, size)
        if differential and outcome.status == "VersionMismatch":
            async with self._sessions() as db:
                entries = await _entries(db, scope, None)
            outcome = await self._send(charger_id, scope, version, entries, False, size)
        if outcome.status in ("offline", "timed_out"):
            return outcome  # nothing is known of the charger's list now
        async with self._sessions() as db:
            copy = await db.get(ChargerLocalList, charger_id)
            accepted = outcome.status == "Accepted"
            await _record(
                db,
                charger_id,
                copy,
                outcome.status,
                scope=scope if accepted else None,
                version=version if accepted else None,
            )
            await db.commit()
        if not accepted:
            log.info("%s: local list v%s not taken: %s", charger_id, version, outcome.status)
        return outcome

    async def _send(
        self,
        charger_id: str,
        scope: str,
        version: int,
        entries: Sequence[Listed],
        differential: bool,
        size: int,
    ) -> SyncOutcome:
        """SendLocalList in pieces; the first piece of a Full update replaces the list."""
        sent = 0
        update_type = "Differential" if differential else "Full"
        result: CommandResult | None = None
        for index, piece in enumerate(chunks(entries, size)):
            kind = "Full" if not differential and index == 0 else "Differential"
            result = await self._commands.operate(
                charger_id,
                "SendLocalList",
                {
                    "list_version": version,
                    "update_type": kind,
                    "local_authorization_list": [entry.as_ocpp() for entry in piece],
                },
            )
            if result.ocpp_status != "Accepted":
                break
            sent += len(piece)
        assert result is not None
        return SyncOutcome(result.word, scope, version, update_type, sent, result.detail)

    async def sync_behind(
        self, charger_ids: Iterable[str], concurrency: int = 4, pace: Pace | None = None
    ) -> int:
        """Sync those of `charger_ids` whose list is behind their scope's; how many were sent.

        Publishes each scope once; a charger that answered NotSupported, or has the list
        disabled, is left alone (an operator's sync still sends). With `pace`, one sync
        starts per turn of it (background work; see services/pacing).
        """
        ids = list(charger_ids)
        if not ids:
            return 0
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    sa_select(
                        col(Charger.id),
                        col(Station.id),
                        col(Station.access),
                        col(ChargerLocalList.scope),
                        col(ChargerLocalList.version),
                        col(ChargerLocalList.outcome),
                    )
                    .join(Station, col(Station.id) == col(Charger.station_id))
                    .outerjoin(
                        ChargerLocalList, col(ChargerLocalList.charger_id) == col(Charger.id)
                    )
                    .where(col(Charger.id).in_(ids))
                )
            ).all()
            versions: dict[str, int] = {}
            behind = []
            for charger_id, station_id, access, scope, version, outcome in rows:
                wanted = PUBLIC_SCOPE if access == StationAccess.PUBLIC else f"station:{station_id}"
                if wanted not in versions:
                    versions[wanted] = await _published(db, wanted, True)
                if outcome in NOT_RETRIED:
                    continue
                if scope != wanted or version != versions[wanted]:
                    behind.append(charger_id)
            await db.commit()
        gate = asyncio.Semaphore(concurrency)

        async def one(charger_id: str) -> bool:
            async with gate:
                if pace is not None:
                    await pace.turn()
                try:
                    outcome = await self.sync(charger_id, publish_first=False)
                except Exception:
                    log.exception("%s: local list sync failed", charger_id)
                    return False
                return outcome.update_type is not None

        done = await asyncio.gather(*(one(charger_id) for charger_id in behind))
        return sum(done)


async def _published(db: AsyncSession, scope: str, publish_first: bool) -> int:
    """The scope's version, published first (committed) unless `publish_first` is False."""
    if not publish_first:
        row = await db.get(LocalListScope, scope)
        if row is not None:
            return row.version
    try:
        version = await publish(db, scope)
        await db.commit()
    except IntegrityError:  # another process published the scope's first version meanwhile
        await db.rollback()
        version = await publish(db, scope)
        await db.commit()
    return version


async def _record(
    db: AsyncSession,
    charger_id: str,
    copy: ChargerLocalList | None,
    outcome: str,
    *,
    scope: str | None = None,
    version: int | None = None,
) -> None:
    if copy is None:
        copy = ChargerLocalList(charger_id=charger_id)
        db.add(copy)
    copy.outcome = outcome[:32]
    copy.synced_at = utcnow()
    if version is not None:
        copy.scope, copy.version = scope, version


async def clear_cache(
    sessions: async_sessionmaker[AsyncSession], commands: ChargerCommands, charger_id: str
) -> CommandResult:
    """ClearCache: the charger forgets the cards it learnt from our answers (not its list)."""
    async with sessions() as db:
        await get_or_404(db, Charger, charger_id, "charger")
    return await commands.operate(charger_id, "ClearCache", {})


async def version_on_charger(
    sessions: async_sessionmaker[AsyncSession], commands: ChargerCommands, charger_id: str
) -> CommandResult:
    """GetLocalListVersion: `response["list_version"]` (-1: no list support, 0: empty)."""
    async with sessions() as db:
        await get_or_404(db, Charger, charger_id, "charger")
    return await commands.operate(charger_id, "GetLocalListVersion", {})
