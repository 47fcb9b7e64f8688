"""OCPP-J framing on top of the `ocpp` library: robust routing and timestamps."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import FormatViolationError
from ocpp.messages import CallError, MessageType
from ocpp.v16 import ChargePoint

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"


def ocpp_now() -> str:
    return ocpp_time(datetime.now(UTC))


def ocpp_time(value: datetime) -> str:
    """UTC with an explicit offset, as strict OCPP clients require: 2026-11-24T10:00:00.123Z."""
    if value.tzinfo is None:
        raise ValueError("naive datetime; OCPP timestamps carry an offset")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ocpp_time(value: Any) -> datetime:
    """A charger's dateTime; the library does not check the format, so we do."""
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise FormatViolationError(details={"cause": f"invalid dateTime {value!r}"}) from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class ConnectionLost(Exception):
    """The socket is gone; raised by connection adapters from recv() and send()."""


class ProtocolLogger(logging.LoggerAdapter[logging.Logger]):
    """The library logs every CallError it sends with a traceback; a warning line is enough."""

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        self.warning(msg, *args, **kwargs)


FRAME_LOGGER = ProtocolLogger(logging.getLogger("ocpp.frames"), {})


class RobustChargePoint(ChargePoint):
    """No frame a charger sends can end the connection; malformed CALLs get a CallError.

    The library only logs frames it cannot parse and lets a few kinds of malformed CALL escape
    `start()`; here every CALL with an id is answered and everything else is dropped.
    """

    _responded = False

    async def route_message(self, raw_msg: str | bytes) -> None:
        try:
            msg = json.loads(raw_msg)
        except (ValueError, RecursionError):  # not JSON, bad UTF-8, nested too deep
            log.warning("%s: dropped a frame that is not JSON", self.id)
            return
        if (
            not isinstance(msg, list)
            or len(msg) < 2
            or isinstance(msg[0], bool)
            or msg[0] not in (MessageType.Call, MessageType.CallResult, MessageType.CallError)
        ):
            log.warning("%s: dropped a frame that is not an OCPP message", self.id)
            return
        if msg[0] == MessageType.Call:
            if not isinstance(msg[1], str):
                log.warning("%s: dropped a CALL without a string message id", self.id)
                return
            if len(msg) == 4 and isinstance(msg[2], str) and msg[3] is None:
                raw_msg = json.dumps([MessageType.Call, msg[1], msg[2], {}])
            elif len(msg) != 4 or not isinstance(msg[2], str) or not isinstance(msg[3], dict):
                await self._send(
                    CallError(msg[1], "FormatViolation", "Malformed CALL frame", {}).to_json()
                )
                return
        self._responded = False
        try:
            await super().route_message(raw_msg)
        except ConnectionLost:
            raise
        except Exception:
            log.exception("%s: error while routing a frame", self.id)
            if msg[0] == MessageType.Call and not self._responded:
                await self._send(CallError(msg[1], "InternalError", "Internal error", {}).to_json())

    async def _send(self, message: str) -> None:
        if message.startswith(("[3,", "[4,")):
            self._responded = True
        await super()._send(message)
