"""The charge points connected to this process, one live connection per identity."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Connection:
    """One WebSocket of one charger; `closed` is set when it ends."""

    charger_id: str
    charge_point: Any  # the ocpp ChargePoint serving it
    close: Any  # async callable closing the socket: close(code, reason)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    # How this socket's last BootNotification was answered (None: it has not booted on it,
    # e.g. a reconnect after a network blip, which OCPP allows without a new boot).
    boot_answer: str | None = None


class ChargerRegistry:
    def __init__(self) -> None:
        self._connections: dict[str, Connection] = {}

    def get(self, charger_id: str) -> Connection | None:
        return self._connections.get(charger_id)

    def register(self, connection: Connection) -> Connection | None:
        """Make `connection` current; returns the stale one it replaces, if any."""
        previous = self._connections.get(connection.charger_id)
        self._connections[connection.charger_id] = connection
        return previous

    def unregister(self, connection: Connection) -> bool:
        """Forget `connection` if it is still current; False if a newer one replaced it."""
        if self._connections.get(connection.charger_id) is connection:
            del self._connections[connection.charger_id]
            return True
        return False

    def __len__(self) -> int:
        return len(self._connections)

    def ids(self) -> list[str]:
        return list(self._connections)
