"""OCPP-J framing on top of the `ocpp` library: robust routing and timestamps."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import FormatViolationError, OCPPError
from ocpp.messages import Call, CallError, CallResult, MessageType

from backend.chargers.typed_ocpp import ChargePoint

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


# A charger's key in a ChangeConfiguration frame: never logged, not even with OCPP_FRAME_LOG=1.
_KEY_IN_FRAME = re.compile(r'("key"\s*:\s*"AuthorizationKey"\s*,\s*"value"\s*:\s*")[^"]*')


def _without_keys(value: object) -> object:
    if isinstance(value, str) and "AuthorizationKey" in value:
        return _KEY_IN_FRAME.sub(r"\1(redacted)", value)
    return value


def _summary(value: object) -> object:
    """What a warning may say about a frame: its kind, action and id, never its payload."""
    if isinstance(value, Call):
        return f"CALL {value.action} {value.unique_id}"
    if isinstance(value, CallResult):
        return f"CALLRESULT {value.unique_id}"
    if isinstance(value, CallError):
        return f"CALLERROR {value.error_code} {value.unique_id}"
    if isinstance(value, OCPPError):
        return f"{value.code}: {value.description}"  # details may quote the payload
    if isinstance(value, bytes | bytearray) or (
        isinstance(value, str) and (len(value) > 64 or value.lstrip()[:1] in ("[", "{"))
    ):
        return f"<frame of {len(value)} characters>"
    return value


class ProtocolLogger(logging.LoggerAdapter[logging.Logger]):
    """The library's logger: whole frames only at INFO, i.e. only with OCPP_FRAME_LOG=1.

    Frames carry id tags (personal data, and a virtual tag is a bearer token) and, in
    ChangeConfiguration AuthorizationKey, a charger's key. The library logs the whole frame
    with its warnings and errors too, so at WARNING and above payloads become a summary. It
    also logs every CallError it sends with a traceback; a warning line is enough.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            args = tuple(_summary(arg) for arg in args)
        else:
            args = tuple(_without_keys(arg) for arg in args)
        super().log(level, msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        kwargs.pop("exc_info", None)
        error = sys.exc_info()[1]
        if isinstance(error, OCPPError):
            msg, args = f"{msg} -> %s", (*args, error)
        self.warning(msg, *args, **kwargs)


FRAME_LOGGER = ProtocolLogger(logging.getLogger("ocpp.frames"), {})


# No OCPP 1.6 string field carries control characters (CiStrings are printable ASCII); NUL is
# refused by PostgreSQL's text columns (an InternalError), the others forge log lines. Tab, CR
# and LF are let through only in DataTransfer's free-text `data` and in the security
# extension's PEM fields (a CSR is lines of base64).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FREE_TEXT = {("DataTransfer", "data"), ("SignCertificate", "csr")}


def control_character_at(action: str, payload: object) -> str | None:
    """The path of the first string (or key) in a CALL payload with a control character."""
    stack: list[tuple[str, object]] = [("", payload)]
    while stack:  # iterative: a deeply nested payload cannot exhaust the recursion limit
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if _CONTROL.search(str(key)):
                    return path or "(key)"
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item) for i, item in enumerate(value))
        elif isinstance(value, str):
            pattern = _CONTROL_IN_TEXT if (action, path) in _FREE_TEXT else _CONTROL
            if pattern.search(value):
                return path
    return None


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
            field = control_character_at(msg[2], msg[3] or {})
            if field is not None:
                log.warning("%s: refused a %.40r with a control character", self.id, msg[2])
                await self._send(
                    CallError(
                        msg[1],
                        "PropertyConstraintViolation",
                        "String fields must not contain control characters",
                        {"field": field[:200]},
                    ).to_json()
                )
                return
        self._responded = False
        try:
            if msg[0] == MessageType.Call:
                async with self.call_slot(msg[2]):
                    await super().route_message(raw_msg)
            else:  # an answer to our own CALL: never waits for a slot
                await super().route_message(raw_msg)
        except ConnectionLost:
            raise
        except Exception:
            log.exception("%s: error while routing a frame", self.id)
            if msg[0] == MessageType.Call and not self._responded:
                await self._send(CallError(msg[1], "InternalError", "Internal error", {}).to_json())

    def call_slot(self, action: str) -> AbstractAsyncContextManager[Any]:
        """Held while a CALL of `action` is handled; subclasses bound concurrent work."""
        return contextlib.nullcontext()

    async def _send(self, message: str) -> None:
        if message.startswith(("[3,", "[4,")):
            self._responded = True
        await super()._send(message)
