"""A simulated charge point's local authorization: its local list and its authorization cache.

OCPP 1.6 §3.5: the local authorization list is what the central system sends (SendLocalList,
versioned, Full or Differential); the cache is what the charger learnt from the central
system's answers (Authorize, StartTransaction). Offline, a charger with `LocalAuthorizeOffline`
starts a card that one of them holds as Accepted and unexpired.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ocpp.v16.enums import UpdateStatus, UpdateType

ENABLED_KEY = "LocalAuthListEnabled"
MAX_LENGTH_KEY = "LocalAuthListMaxLength"
SEND_MAX_KEY = "SendLocalListMaxLength"
CACHE_KEY = "AuthorizationCacheEnabled"
OFFLINE_KEY = "LocalAuthorizeOffline"
SWITCHES = (ENABLED_KEY, CACHE_KEY, OFFLINE_KEY)  # the boolean keys ChangeConfiguration sets


@dataclass(frozen=True)
class Entry:
    status: str
    expires_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.status == "Accepted" and (self.expires_at is None or self.expires_at > now)


def _entry(info: dict[str, Any]) -> Entry:
    expiry = info.get("expiry_date")
    expires_at = datetime.fromisoformat(str(expiry).replace("Z", "+00:00")) if expiry else None
    return Entry(str(info.get("status", "Invalid")), expires_at)


@dataclass
class LocalAuthorization:
    """The list and the cache; `supported` False: a charger without the feature profile."""

    supported: bool = True
    max_length: int = 1000
    send_max_length: int = 100
    switches: dict[str, bool] = field(
        default_factory=lambda: {ENABLED_KEY: True, CACHE_KEY: True, OFFLINE_KEY: True}
    )
    version: int = 0
    entries: dict[str, Entry] = field(default_factory=dict)
    cache: dict[str, Entry] = field(default_factory=dict)

    def list_version(self) -> int:
        """GetLocalListVersion: -1 without the feature, 0 for no list."""
        return self.version if self.supported else -1

    def update(self, version: int, update_type: str, data: list[dict[str, Any]] | None) -> str:
        """SendLocalList: Accepted, Failed, NotSupported or VersionMismatch (an UpdateStatus)."""
        if not self.supported or not self.switches[ENABLED_KEY]:
            return str(UpdateStatus.not_supported)
        data = data or []
        if len(data) > self.send_max_length:
            return str(UpdateStatus.failed)
        if update_type == UpdateType.differential and version < self.version:
            return str(UpdateStatus.version_mismatch)
        entries = {} if update_type == UpdateType.full else dict(self.entries)
        for item in data:
            info = item.get("id_tag_info")
            if info is None:
                entries.pop(str(item["id_tag"]), None)
            else:
                entries[str(item["id_tag"])] = _entry(info)
        if len(entries) > self.max_length:
            return str(UpdateStatus.failed)
        self.entries, self.version = entries, version
        return str(UpdateStatus.accepted)

    def remember(self, id_tag: str, info: dict[str, Any] | None) -> None:
        """An answer of the central system about a card goes into the cache (if enabled)."""
        if info is not None and self.switches[CACHE_KEY]:
            self.cache[id_tag] = _entry(info)

    def clear_cache(self) -> bool:
        """ClearCache: True (Accepted) unless the cache is disabled."""
        self.cache.clear()
        return self.switches[CACHE_KEY]

    def offline_accepts(self, id_tag: str, now: datetime | None = None) -> bool:
        """May a card start while the central system cannot be asked? The list decides first."""
        if not self.switches[OFFLINE_KEY]:
            return False
        now = now or datetime.now(UTC)
        if self.supported and self.switches[ENABLED_KEY] and id_tag in self.entries:
            return self.entries[id_tag].usable(now)
        cached = self.cache.get(id_tag) if self.switches[CACHE_KEY] else None
        return cached is not None and cached.usable(now)

    def configuration(self) -> dict[str, str]:
        keys = {CACHE_KEY: _flag(self.switches[CACHE_KEY])}
        keys[OFFLINE_KEY] = _flag(self.switches[OFFLINE_KEY])
        if self.supported:
            keys[ENABLED_KEY] = _flag(self.switches[ENABLED_KEY])
            keys[MAX_LENGTH_KEY] = str(self.max_length)
            keys[SEND_MAX_KEY] = str(self.send_max_length)
        return keys

    def change(self, key: str, value: str) -> bool | None:
        """ChangeConfiguration of a switch: True accepted, False rejected, None not ours."""
        if key not in SWITCHES or (key == ENABLED_KEY and not self.supported):
            return None
        if value.strip().lower() not in ("true", "false"):
            return False
        self.switches[key] = value.strip().lower() == "true"
        return True


def _flag(value: bool) -> str:
    return "true" if value else "false"
