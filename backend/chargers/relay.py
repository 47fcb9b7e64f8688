"""Commands to chargers whose socket this process holds (the embedded, in-process relay)."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any, Literal

from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from backend.chargers.registry import ChargerRegistry
from backend.services.ports import OPERATIONS, CommandResult, CommandStatus

log = logging.getLogger(__name__)

ACCEPTING = {"Accepted", "Unlocked", "Scheduled"}
# OCPP 1.6 §4.2.1: a Pending charge point may be asked for information and configuration
# only; a Rejected one nothing at all.
WHILE_PENDING = frozenset({"TriggerMessage", "ChangeConfiguration", "GetConfiguration"})
CLOSE_GRACE = 0.2  # seconds


def plain(value: Any) -> Any:
    """An answer's fields as JSON types: the ocpp library reads numbers as Decimal."""
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and "." not in str(value)
            else float(value)
        )
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


class LocalChargerCommands:
    """ChargerCommands over the registry of this process, with typed outcomes."""

    def __init__(self, registry: ChargerRegistry, timeout: float = 30.0) -> None:
        self._registry = registry
        self._timeout = timeout

    async def _call(self, charger_id: str, payload: Any) -> CommandResult:
        connection = self._registry.get(charger_id)
        if connection is None:
            return CommandResult(CommandStatus.OFFLINE, detail=f"charger {charger_id} is offline")
        answer = connection.boot_answer
        action = type(payload).__name__.removesuffix("Payload")  # as the ocpp library names it
        if answer == "Rejected" or (answer == "Pending" and action not in WHILE_PENDING):
            return CommandResult(
                CommandStatus.OFFLINE,
                detail=f"charger {charger_id} is connected but its boot was answered {answer}: "
                f"it takes no {action} until it is accepted",
            )
        request = asyncio.ensure_future(connection.charge_point.call(payload, suppress=False))
        closed = asyncio.ensure_future(connection.closed.wait())
        try:
            done, _ = await asyncio.wait(
                {request, closed}, timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if request not in done and closed in done:
                # An answer that came just before the close may still be on its way in.
                done, _ = await asyncio.wait({request}, timeout=CLOSE_GRACE)
        finally:
            closed.cancel()
            if not request.done():
                request.cancel()  # also when our caller is cancelled: free the charger's call lock
        if request not in done:
            if connection.closed.is_set():
                return CommandResult(
                    CommandStatus.OFFLINE, detail=f"charger {charger_id} disconnected"
                )
            return CommandResult(
                CommandStatus.TIMED_OUT, detail=f"no answer from {charger_id} in {self._timeout} s"
            )
        try:
            response = request.result()
        except OCPPError as error:
            return CommandResult(
                CommandStatus.REJECTED, ocpp_status=error.code, detail=str(error.description)
            )
        except TimeoutError:
            return CommandResult(CommandStatus.TIMED_OUT, detail=f"no answer from {charger_id}")
        except Exception as error:  # the socket broke while sending
            log.info("command to %s failed: %r", charger_id, error)
            return CommandResult(CommandStatus.OFFLINE, detail=f"charger {charger_id} went away")
        if not hasattr(response, "status"):  # an answer with data, no verdict (GetConfiguration)
            return CommandResult(CommandStatus.ACCEPTED, response=plain(dict(vars(response))))
        status = str(response.status)
        outcome = CommandStatus.ACCEPTED if status in ACCEPTING else CommandStatus.REJECTED
        return CommandResult(outcome, ocpp_status=status, response=plain(dict(vars(response))))

    async def remote_start(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        charging_profile: dict[str, Any] | None = None,
    ) -> CommandResult:
        return await self._call(
            charger_id,
            call.RemoteStartTransaction(
                id_tag=id_tag, connector_id=connector_id, charging_profile=charging_profile
            ),
        )

    async def remote_stop(self, charger_id: str, transaction_id: int) -> CommandResult:
        return await self._call(
            charger_id, call.RemoteStopTransaction(transaction_id=transaction_id)
        )

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        return await self._call(charger_id, call.UnlockConnector(connector_id=connector_id))

    async def reset(self, charger_id: str, kind: Literal["Soft", "Hard"]) -> CommandResult:
        return await self._call(charger_id, call.Reset(type=kind))

    async def change_availability(
        self, charger_id: str, connector_id: int, available: bool
    ) -> CommandResult:
        kind = "Operative" if available else "Inoperative"
        return await self._call(
            charger_id, call.ChangeAvailability(connector_id=connector_id, type=kind)
        )

    async def trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult:
        return await self._call(
            charger_id, call.TriggerMessage(requested_message=message, connector_id=connector_id)
        )

    async def change_configuration(self, charger_id: str, key: str, value: str) -> CommandResult:
        return await self._call(charger_id, call.ChangeConfiguration(key=key, value=value))

    async def get_configuration(self, charger_id: str, keys: list[str] | None) -> CommandResult:
        return await self._call(charger_id, call.GetConfiguration(key=keys or None))

    async def operate(self, charger_id: str, action: str, fields: dict[str, Any]) -> CommandResult:
        if action not in OPERATIONS:
            return CommandResult(CommandStatus.REJECTED, detail=f"no such operation {action}")
        payload_class = getattr(call, action)  # the ocpp library's 1.6 payload of that action
        try:
            payload = payload_class(**fields)
        except TypeError as error:
            return CommandResult(CommandStatus.REJECTED, detail=f"{action}: {error}")
        return await self._call(charger_id, payload)
