"""Ports to the outside world that services use (implemented in backend/chargers and later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol


class CommandStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OFFLINE = "offline"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class CommandResult:
    """What became of a command to a charger; `ocpp_status` is the charger's own word."""

    status: CommandStatus
    ocpp_status: str | None = None
    detail: str | None = None
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status is CommandStatus.ACCEPTED


class ChargerCommands(Protocol):
    """Commands to a charge point, wherever its socket is held."""

    async def remote_start(
        self, charger_id: str, connector_id: int, id_tag: str
    ) -> CommandResult: ...

    async def remote_stop(self, charger_id: str, transaction_id: int) -> CommandResult: ...

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult: ...

    async def reset(self, charger_id: str, kind: Literal["Soft", "Hard"]) -> CommandResult: ...

    async def change_availability(
        self, charger_id: str, connector_id: int, available: bool
    ) -> CommandResult: ...

    async def trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult: ...

    async def change_configuration(
        self, charger_id: str, key: str, value: str
    ) -> CommandResult: ...
