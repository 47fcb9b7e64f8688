"""A charger's configuration keys (OCPP 1.6 Core: GetConfiguration, ChangeConfiguration).

The operator reads what the charger reports, and we keep it as its last known snapshot, so
the keys can be shown while the charger is offline. A change goes to the charger; the stored
value follows only what the charger accepted. `AuthorizationKey` never goes through here: it
is write-only (OCPP 1.6 security whitepaper) and has its own rotation, which keeps the key we
check in step with the charger (services/network.rotate_key).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import Charger, ChargerConfigurationKey
from backend.services.charger_state import security_profile_raised
from backend.services.errors import InvalidFieldError
from backend.services.pacing import Pace
from backend.services.ports import ChargerCommands, CommandResult
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

WRITE_ONLY = frozenset({"AuthorizationKey"})
# Accepted, it is the lowest profile that admits the charger from then on (no downgrade).
SECURITY_PROFILE = "SecurityProfile"
KEY_LENGTH, VALUE_LENGTH = 50, 500  # OCPP 1.6 CiString50Type, CiString500Type
CHANGE_TAKEN = frozenset({"Accepted", "RebootRequired"})


@dataclass(frozen=True)
class ConfigurationKey:
    key: str
    value: str | None
    readonly: bool


@dataclass(frozen=True)
class Fetched:
    """A GetConfiguration: the charger's verdict, the keys it reported and those it lacks."""

    result: CommandResult
    keys: list[ConfigurationKey]
    unknown: list[str]


def _reported(response: dict[str, Any]) -> tuple[list[ConfigurationKey], list[str]]:
    """The keys of a GetConfiguration answer; a write-only key's value is never kept."""
    keys = []
    for entry in response.get("configuration_key") or []:
        key = str(entry.get("key", ""))[:KEY_LENGTH]
        if not key:
            continue
        value = entry.get("value")
        value = None if key in WRITE_ONLY or value is None else str(value)[:VALUE_LENGTH]
        keys.append(ConfigurationKey(key, value, bool(entry.get("readonly", False))))
    unknown = [str(k) for k in response.get("unknown_key") or []]
    return keys, unknown


async def stored(
    db: AsyncSession, charger_id: str
) -> tuple[list[ConfigurationKey], datetime | None]:
    """The last known keys of a charger (404 if there is no such charger), and when."""
    await get_or_404(db, Charger, charger_id, "charger")
    rows = (
        await db.scalars(
            select(ChargerConfigurationKey)
            .where(col(ChargerConfigurationKey.charger_id) == charger_id)
            .order_by(col(ChargerConfigurationKey.key))
        )
    ).all()
    keys = [ConfigurationKey(r.key, r.value, r.readonly) for r in rows]
    return keys, max((r.reported_at for r in rows), default=None)


async def fetch(
    sessions: async_sessionmaker[AsyncSession],
    commands: ChargerCommands,
    charger_id: str,
    keys: list[str] | None = None,
) -> Fetched:
    """GetConfiguration (all keys, or `keys`); what the charger reports replaces what we knew
    of those keys (of all of them when it was asked for all)."""
    async with sessions() as db:
        await get_or_404(db, Charger, charger_id, "charger")
    result = await commands.get_configuration(charger_id, keys or None)
    if not result.accepted:
        return Fetched(result, [], [])
    reported, unknown = _reported(result.response)
    now = utcnow()
    async with sessions() as db:
        forget = delete(ChargerConfigurationKey).where(
            col(ChargerConfigurationKey.charger_id) == charger_id
        )
        if keys:
            forget = forget.where(col(ChargerConfigurationKey.key).in_(keys))
        await db.execute(forget)
        for entry in {k.key: k for k in reported}.values():  # a key reported twice counts once
            db.add(
                ChargerConfigurationKey(
                    charger_id=charger_id,
                    key=entry.key,
                    value=entry.value,
                    readonly=entry.readonly,
                    reported_at=now,
                )
            )
        await db.commit()
    return Fetched(result, reported, unknown)


async def change(
    sessions: async_sessionmaker[AsyncSession],
    commands: ChargerCommands,
    charger_id: str,
    key: str,
    value: str,
    *,
    client_certificates: bool = False,
) -> CommandResult:
    """ChangeConfiguration; an accepted value (also RebootRequired) is stored as known.
    `client_certificates`: we verify TLS client certificates (SecurityProfile 3 possible)."""
    if key in WRITE_ONLY:
        raise InvalidFieldError(
            "key", f"{key} is changed by rotating the charger's key (POST .../key), not here"
        )
    if not key or len(key) > KEY_LENGTH:
        raise InvalidFieldError("key", f"a configuration key is 1 to {KEY_LENGTH} characters")
    if len(value) > VALUE_LENGTH:
        raise InvalidFieldError("value", f"a configuration value is at most {VALUE_LENGTH}")
    if key.lower() == SECURITY_PROFILE.lower() and value.strip() == "3" and not client_certificates:
        # It would lock the charger out: no connection here can present a certificate.
        raise InvalidFieldError("value", "security profile 3 needs TLS_CLIENT_CAFILE set here")
    async with sessions() as db:
        await get_or_404(db, Charger, charger_id, "charger")
    result = await commands.change_configuration(charger_id, key, value)
    if result.ocpp_status in CHANGE_TAKEN:
        async with sessions() as db:
            row = await db.get(ChargerConfigurationKey, (charger_id, key))
            if row is None:
                row = ChargerConfigurationKey(charger_id=charger_id, key=key, reported_at=utcnow())
                db.add(row)
            row.value, row.reported_at = value, utcnow()
            if key.lower() == SECURITY_PROFILE.lower() and value.strip() in ("1", "2", "3"):
                await db.execute(security_profile_raised(charger_id, int(value)))
            await db.commit()
    return result


async def reported_value(db: AsyncSession, charger_id: str, key: str) -> str | None:
    """A key's value as the charger last reported or accepted it; None if unknown."""
    row = await db.get(ChargerConfigurationKey, (charger_id, key))
    return row.value if row is not None else None


# Keys other features read from the snapshot (local lists, price display); the upkeep asks a
# charger for them once per process when none of its keys is known yet.
FEATURE_KEYS = [
    "LocalAuthListEnabled",
    "SendLocalListMaxLength",
    "AuthorizationCacheEnabled",
    "CustomDisplayCostAndPrice",
    "SupportedFileTransferProtocols",
]


class FirstRead:
    """Reads FEATURE_KEYS of connected chargers we know no configuration of (upkeep)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], commands: ChargerCommands
    ) -> None:
        self._sessions = sessions
        self._commands = commands
        self._asked: set[str] = set()

    async def read_unknown(
        self, charger_ids: list[str], concurrency: int = 4, pace: Pace | None = None
    ) -> int:
        """Ask those of `charger_ids` never read (once per process); how many were asked.

        With `pace`, one read starts per turn of it (background work; see services/pacing).
        """
        fresh = [c for c in charger_ids if c not in self._asked]
        if not fresh:
            return 0
        async with self._sessions() as db:
            known = set(
                (
                    await db.scalars(
                        select(col(ChargerConfigurationKey.charger_id))
                        .where(col(ChargerConfigurationKey.charger_id).in_(fresh))
                        .distinct()
                    )
                ).all()
            )
        unknown = [c for c in fresh if c not in known]
        self._asked.update(fresh)
        gate = asyncio.Semaphore(concurrency)

        async def one(charger_id: str) -> None:
            async with gate:
                if pace is not None:
                    await pace.turn()
                try:
                    await fetch(self._sessions, self._commands, charger_id, FEATURE_KEYS)
                except Exception:
                    log.exception("%s: configuration read failed", charger_id)

        await asyncio.gather(*(one(c) for c in unknown))
        return len(unknown)
