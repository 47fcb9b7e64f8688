"""Simulated OCPP 1.6-J charge point (``ocpp`` library + ``websockets`` client).

Used by the demo, by protocol tests and for load benchmarks: hundreds of instances share one
event loop (no per-charger threads, no polling); an idle charger only sends Heartbeats.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError
from ocpp.messages import CallError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    AvailabilityStatus,
    AvailabilityType,
    ChargePointErrorCode,
    ChargePointStatus,
    ConfigurationStatus,
    DataTransferStatus,
    Location,
    Measurand,
    MessageTrigger,
    ReadingContext,
    Reason,
    RegistrationStatus,
    RemoteStartStopStatus,
    ResetStatus,
    ResetType,
    TriggerMessageStatus,
    UnitOfMeasure,
    UnlockStatus,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, NegotiationError
from websockets.typing import Subprotocol

__all__ = [
    "SimulatedChargePoint",
    "SimulatorConfig",
    "run_simulators",
    "simulate_forever",
]

_LOG = logging.getLogger(__name__)

_OCPP16 = "ocpp1.6"
_REMOTE_START_MODES = ("accept", "reject", "accept_without_start")

_RESPONSE_TIMEOUT = 30.0  # seconds to wait for a CALLRESULT (ocpp's response_timeout)
_OPEN_TIMEOUT = 15.0  # TCP + WebSocket handshake
_CLOSE_TIMEOUT = 5.0
_PING_INTERVAL = 60.0  # WebSocket keepalive; detects half-open links between Heartbeats
_PING_TIMEOUT = 60.0
_DEFAULT_HEARTBEAT = 300.0  # until the central system tells us otherwise
_BOOT_ERROR_RETRY = 10.0  # BootNotification answered with a CALLERROR or not at all
_TAPER_SOC = 0.8  # constant power below this state of charge
_END_POWER_FRACTION = 0.1  # fraction of the rated power just before 100 %
_HEARTBEAT_KEY = "HeartbeatInterval"
_METER_KEY = "MeterValueSampleInterval"
_AUTHORIZATION_KEY = "AuthorizationKey"  # 1.6 security whitepaper: write-only, 16-20 bytes hex
_TX_ATTEMPTS_KEY = "TransactionMessageAttempts"
_TX_INTERVAL_KEY = "TransactionMessageRetryInterval"
_FRAME_LENGTHS = {2: 4, 3: 3, 4: 5}  # OCPP-J MessageTypeId -> number of elements

# What a failed call() may raise: a CALLERROR, no answer in time, or no connection.
_CALL_ERRORS = (OCPPError, TimeoutError, ConnectionError)

_PlanFactory = Callable[[], Coroutine[Any, Any, Any]]


@dataclass
class SimulatorConfig:
    """Settings of one simulated charge point."""

    url: str  # central system endpoint base; "/<percent-encoded identity>" is appended
    charge_point_id: str
    password: str | None = None  # HTTP Basic auth, username = identity
    connectors: int = 2
    power_kw: float = 11.0
    meter_interval: float = 10.0  # real seconds between MeterValues while charging
    battery_kwh: float = 60.0
    time_scale: float = 1.0  # simulated seconds per real second for the energy curve
    vendor: str = "chargebot"
    model: str = "SimCP-1"
    remote_start: str = "accept"  # "accept" | "reject" | "accept_without_start"
    reconnect: bool = True
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    response_timeout: float = _RESPONSE_TIMEOUT  # no CALLRESULT by then: the call failed
    # OCPP 1.6 TransactionMessageAttempts / TransactionMessageRetryInterval: tries per
    # Start/StopTransaction or transaction MeterValues the central system fails to process,
    # waiting interval x previous attempts between them (also set by ChangeConfiguration).
    transaction_message_attempts: int = 5
    transaction_message_retry_interval: float = 10.0


def _utc_now() -> str:
    """OCPP timestamp: UTC, ISO 8601, milliseconds, "Z" suffix."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _power_fraction(soc: float) -> float:
    """Share of the rated power the car draws at this state of charge (0..1)."""
    if soc >= 1.0:
        return 0.0
    if soc < _TAPER_SOC:
        return 1.0
    return 1.0 - (1.0 - _END_POWER_FRACTION) * (soc - _TAPER_SOC) / (1.0 - _TAPER_SOC)


def _charge(soc: float, hours: float, power_kw: float, battery_kwh: float) -> float:
    """State of charge after charging for `hours` along the constant-power/linear-taper curve."""
    if hours <= 0.0 or power_kw <= 0.0 or battery_kwh <= 0.0 or soc >= 1.0:
        return soc
    if soc < _TAPER_SOC:
        constant_hours = (_TAPER_SOC - soc) * battery_kwh / power_kw
        if hours <= constant_hours:
            return soc + power_kw * hours / battery_kwh
        hours -= constant_hours
        soc = _TAPER_SOC
    # Taper: P(x) = P0 * (a - b*x), so dx/dt = (P0/B) * (a - b*x) decays exponentially
    # towards x_inf = a/b (> 1); it crosses 100 % after a finite time.
    b = (1.0 - _END_POWER_FRACTION) / (1.0 - _TAPER_SOC)
    x_inf = (1.0 + b * _TAPER_SOC) / b
    k = b * power_kw / battery_kwh
    hours_to_full = math.log((x_inf - soc) / (x_inf - 1.0)) / k
    if hours >= hours_to_full:
        return 1.0
    return x_inf - (x_inf - soc) * math.exp(-k * hours)


def _cancel_once(task: asyncio.Task[Any]) -> None:
    """Cancel unless a cancellation is already pending (a second one would hit its cleanup)."""
    if not task.cancelling():
        task.cancel()


def _fmt_seconds(value: float) -> str:
    return f"{value:g}"


@dataclass(slots=True)
class _Connector:
    """State of one connector (connector 0 = the charge point itself)."""

    id: int
    energy_wh: float  # energy register, only grows
    status: str = ChargePointStatus.available
    error_code: str = ChargePointErrorCode.no_error
    operative: bool = True
    pending_operative: bool | None = None  # ChangeAvailability "Scheduled" until the tx ends
    starting: bool = False  # reserved by a RemoteStart / start_local in progress
    tx: _Tx | None = None  # the local transaction, from StartTransaction queued to stopped
    tx_id: int | None = None  # its transactionId, once StartTransaction is answered
    id_tag: str | None = None
    soc: float = 0.0  # of the car plugged in during a transaction
    last_update: float = 0.0  # time.monotonic() of the last energy integration
    sessions: int = 0

    def idle_status(self) -> str:
        return ChargePointStatus.available if self.operative else ChargePointStatus.unavailable

    def is_free(self) -> bool:
        return (
            self.operative
            and self.status == ChargePointStatus.available
            and self.tx is None
            and self.tx_id is None
            and not self.starting
        )


@dataclass(slots=True, eq=False)
class _Tx:
    """A transaction as the charge point knows it; `id` comes with the StartTransaction answer."""

    connector_id: int
    id_tag: str
    id: int | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # or dropped unanswered
    charging: bool = False  # authorized and metering (not stopped before the answer)
    followup: asyncio.Task[Any] | None = None  # Charging status + metering, or de-authorized stop


@dataclass(slots=True, eq=False)
class _TxMessage:
    """A queued transaction-related message: delivered in order, retried (OCPP 1.6 §4.x)."""

    action: str
    build: Callable[[], Any]  # the payload when sent; None: its transaction never got an id
    on_result: Callable[[Any], None] | None = None  # the CALLRESULT, or None if dropped
    attempts: int = 0
    tried: asyncio.Event = field(default_factory=asyncio.Event)  # first attempt made, or offline

    def finish(self, result: Any) -> None:
        self.tried.set()
        if self.on_result is not None:
            self.on_result(result)


class _Session(ChargePoint):
    """The ocpp ChargePoint for one WebSocket connection; handlers act on the simulator."""

    def __init__(self, sim: SimulatedChargePoint, ws: ClientConnection) -> None:
        timeout = sim._config.response_timeout
        super().__init__(sim._id, ws, response_timeout=timeout, logger=sim._ocpp_log)
        self._sim = sim
        self._ws = ws
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_exc: ConnectionClosed | None = None
        self._plans: dict[str, _PlanFactory] = {}
        self._responded = False

    # ---- plumbing ---------------------------------------------------------------------------

    def mark_closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        await self._ws.close()

    async def send_text(self, text: str) -> None:
        await self._ws.send(text)

    def _plan(self, unique_id: str, factory: _PlanFactory) -> None:
        """Remember work to do once the CALLRESULT has been sent (picked up by the @after hook)."""
        self._plans[unique_id] = factory

    def _run_plan(self, unique_id: str, name: str) -> None:
        factory = self._plans.pop(unique_id, None)
        if factory is None or self.closed.done() or not self._sim._is_current(self):
            return
        self._sim._spawn(factory(), name)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Record every CALL, then route it; no frame (however broken) ends the receive loop."""
        log = self._sim._log
        try:
            msg: Any = json.loads(raw_msg)
        except (ValueError, RecursionError):
            log.warning("%s: dropping a frame that is not JSON", self.id)
            return
        if (
            not isinstance(msg, list)
            or len(msg) < 2
            or not isinstance(msg[0], int)
            or isinstance(msg[0], bool)
            or msg[0] not in _FRAME_LENGTHS
            or not isinstance(msg[1], str)
        ):
            log.warning("%s: dropping a frame that is not an OCPP message", self.id)
            return
        if msg[0] == 2:
            if len(msg) == 4 and isinstance(msg[2], str) and msg[3] is None:
                msg[3] = {}
                raw_msg = json.dumps(msg)
            if len(msg) != 4 or not isinstance(msg[2], str) or not isinstance(msg[3], dict):
                await self._send(
                    CallError(msg[1], "FormatViolation", "Malformed CALL", {}).to_json()
                )
                return
            self._sim.received.append((msg[2], camel_to_snake_case(msg[3])))
            if msg[2] not in self.route_map:  # answer like the library, minus its traceback log
                known = msg[2] in Action.__members__.values()
                code, text = (
                    ("NotImplemented", "Request Action is recognized but not supported")
                    if known
                    else ("NotSupported", "Requested Action is not known by receiver")
                )
                details = {"cause": f"{msg[2]} is not supported by this simulator"}
                await self._send(CallError(msg[1], code, text, details).to_json())
                return
        elif len(msg) != _FRAME_LENGTHS[msg[0]]:
            log.warning("%s: dropping a malformed CALLRESULT/CALLERROR", self.id)
            return
        self._responded = False
        try:
            await super().route_message(raw_msg)
        except ConnectionClosed:
            raise
        except Exception:
            # The id, not the frame: frames carry id tags and keys.
            log.exception("%s: error while handling message %.40r", self.id, msg[1])
            if msg[0] == 2 and not self._responded:
                await self._send(CallError(msg[1], "InternalError", "Internal error", {}).to_json())

    async def _send(self, message: str) -> None:
        if message.startswith(("[3,", "[4,")):
            self._responded = True
        await super()._send(message)

    # ---- CALLs from the central system ---------------------------------------------------------

    @on(Action.remote_start_transaction)
    async def on_remote_start_transaction(
        self, id_tag: str, call_unique_id: str, connector_id: int | None = None, **_: Any
    ) -> Any:
        sim = self._sim
        mode = sim._config.remote_start
        conn = sim._pick_connector(connector_id)
        if mode == "reject" or not sim._accepted or conn is None:
            return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
        if mode == "accept":
            conn.starting = True  # reserve it now: a second RemoteStart must be rejected
            self._plan(call_unique_id, lambda: sim._start_transaction(conn, id_tag))
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_start_transaction)
    async def after_remote_start_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "remote-start")

    @on(Action.remote_stop_transaction)
    async def on_remote_stop_transaction(
        self, transaction_id: int, call_unique_id: str, **_: Any
    ) -> Any:
        sim = self._sim
        conn = sim._connector_with_tx(transaction_id)
        if conn is None:
            return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.rejected)
        self._plan(
            call_unique_id,
            lambda: sim._stop_transaction(conn, Reason.remote, expect_tx=transaction_id),
        )
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_stop_transaction)
    async def after_remote_stop_transaction(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "remote-stop")

    @on(Action.unlock_connector)
    async def on_unlock_connector(self, connector_id: int, call_unique_id: str, **_: Any) -> Any:
        sim = self._sim
        conn = sim._outlet(connector_id)
        if conn is None:
            return call_result.UnlockConnector(status=UnlockStatus.not_supported)
        tx_id = conn.tx_id
        if tx_id is not None:  # OCPP 1.6: a running transaction is stopped first
            self._plan(
                call_unique_id,
                lambda: sim._stop_transaction(conn, Reason.unlock_command, expect_tx=tx_id),
            )
        return call_result.UnlockConnector(status=UnlockStatus.unlocked)

    @after(Action.unlock_connector)
    async def after_unlock_connector(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "unlock")

    @on(Action.reset)
    async def on_reset(self, type: str, call_unique_id: str, **_: Any) -> Any:
        sim = self._sim
        self._plan(call_unique_id, lambda: sim._reset(type))
        return call_result.Reset(status=ResetStatus.accepted)

    @after(Action.reset)
    async def after_reset(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "reset")

    @on(Action.change_availability)
    async def on_change_availability(
        self, connector_id: int, type: str, call_unique_id: str, **_: Any
    ) -> Any:
        sim = self._sim
        result = sim._change_availability(connector_id, type == AvailabilityType.operative)
        if result is None:
            return call_result.ChangeAvailability(status=AvailabilityStatus.rejected)
        changed, scheduled = result
        self._plan(call_unique_id, lambda: sim._send_idle_statuses(changed))
        status = AvailabilityStatus.scheduled if scheduled else AvailabilityStatus.accepted
        return call_result.ChangeAvailability(status=status)

    @after(Action.change_availability)
    async def after_change_availability(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "availability")

    @on(Action.trigger_message)
    async def on_trigger_message(
        self,
        requested_message: str,
        call_unique_id: str,
        connector_id: int | None = None,
        **_: Any,
    ) -> Any:
        sim = self._sim
        if connector_id not in (None, 0) and sim._outlet(connector_id) is None:
            return call_result.TriggerMessage(status=TriggerMessageStatus.rejected)
        factory: _PlanFactory
        if requested_message == MessageTrigger.status_notification:
            factory = functools.partial(sim._send_statuses, connector_id, force=True)
        elif requested_message == MessageTrigger.boot_notification:
            factory = sim._boot_once
        elif requested_message == MessageTrigger.heartbeat:
            factory = sim._heartbeat_once
        elif requested_message == MessageTrigger.meter_values:
            factory = functools.partial(sim._send_triggered_meter_values, connector_id)
        else:
            return call_result.TriggerMessage(status=TriggerMessageStatus.not_implemented)
        self._plan(call_unique_id, factory)
        return call_result.TriggerMessage(status=TriggerMessageStatus.accepted)

    @after(Action.trigger_message)
    async def after_trigger_message(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "trigger")

    @on(Action.get_configuration)
    async def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        values = self._sim._configuration()
        requested = key if key else list(values)
        known = [
            {"key": k, "readonly": False, "value": values[k]} for k in requested if k in values
        ]
        unknown = [k for k in requested if k not in values]
        return call_result.GetConfiguration(
            configuration_key=known or None, unknown_key=unknown or None
        )

    @on(Action.change_configuration)
    async def on_change_configuration(
        self, key: str, value: str, call_unique_id: str, **_: Any
    ) -> Any:
        sim = self._sim
        if key == _AUTHORIZATION_KEY:
            return sim._take_authorization_key(
                value, lambda: self._plan(call_unique_id, sim._rekey)
            )
        if key not in (_HEARTBEAT_KEY, _METER_KEY, _TX_ATTEMPTS_KEY, _TX_INTERVAL_KEY):
            return call_result.ChangeConfiguration(status=ConfigurationStatus.not_supported)
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < (0 if key == _TX_INTERVAL_KEY else 1):
            return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)
        if key == _HEARTBEAT_KEY:
            sim._heartbeat_interval = float(number)
            self._plan(call_unique_id, sim._apply_heartbeat_interval)
        elif key == _METER_KEY:
            sim._meter_interval = float(number)  # the meter loops read it before every sleep
        elif key == _TX_ATTEMPTS_KEY:
            sim._tx_attempts = number  # read by the delivery loop after every failure
        else:
            sim._tx_retry_interval = float(number)
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)

    @after(Action.change_configuration)
    async def after_change_configuration(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "configuration")

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **_: Any) -> Any:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)


class SimulatedChargePoint:
    """One simulated OCPP 1.6-J charge point; `run()` keeps it connected until `stop()`."""

    def __init__(self, config: SimulatorConfig, logger: logging.Logger | None = None) -> None:
        if config.connectors < 1:
            raise ValueError("connectors must be >= 1")
        if config.remote_start not in _REMOTE_START_MODES:
            raise ValueError(f"remote_start must be one of {_REMOTE_START_MODES}")
        if config.meter_interval <= 0 or config.backoff_initial <= 0 or config.time_scale < 0:
            raise ValueError("meter_interval and backoff_initial must be > 0, time_scale >= 0")
        if config.transaction_message_attempts < 1 or config.transaction_message_retry_interval < 0:
            raise ValueError("transaction_message_attempts must be >= 1, the interval >= 0")
        self._config = config
        self._id = config.charge_point_id
        self._log = logger or _LOG
        self._ocpp_log = self._log.getChild("ocpp")  # the library logs every frame at INFO
        self.connected = asyncio.Event()
        self.booted = asyncio.Event()
        self.boot_status: str | None = None
        self.transactions: dict[int, int] = {}
        self.statuses: dict[int, str] = {}
        self.received: list[tuple[str, dict[str, Any]]] = []
        # (action, attempt number, outcome) of every transaction-message attempt: "accepted",
        # the CALLERROR code, "Timeout", "disconnected" (not counted) or "dropped".
        self.transaction_log: list[tuple[str, int, str]] = []
        self.last_error: BaseException | None = None
        self._heartbeat_interval = _DEFAULT_HEARTBEAT
        self._meter_interval = config.meter_interval
        self._tx_attempts = config.transaction_message_attempts
        self._tx_retry_interval = config.transaction_message_retry_interval
        self._accepted = False  # BootNotification Accepted on the current connection
        ident = config.charge_point_id
        self._conn0 = _Connector(0, 0.0)
        self._outlets = {
            c: _Connector(c, float(random.Random(f"{ident}#{c}").randint(100_000, 900_000)))
            for c in range(1, config.connectors + 1)
        }
        self._session: _Session | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # everything we spawned (connection-scoped)
        self._meter_tasks: dict[int, asyncio.Task[Any]] = {}
        self._heartbeat_task: asyncio.Task[Any] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop_fut: asyncio.Future[None] | None = None
        self._stopping = False
        self._reset_requested = False
        self._attempt = 0
        # Transaction messages in order; lives as long as this object, across connections.
        self._tx_queue: deque[_TxMessage] = deque()
        self._tx_wakeup = asyncio.Event()
        self._tx_worker: asyncio.Task[Any] | None = None  # delivers while booted
        self._status_lock = asyncio.Lock()  # keeps StatusNotifications in order

    # ---- public API ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, boot, heartbeat and serve; reconnect with backoff until `stop()`.

        With ``reconnect=False`` it returns when the first connection (attempt) ends.
        """
        stop_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop_fut = stop_fut
        self._stopping = False
        self._attempt = 0
        try:
            while not stop_fut.done():
                runner = asyncio.create_task(
                    self._connect_and_serve(), name=f"{self._id}:connection"
                )
                self._runner = runner
                await asyncio.wait({runner, stop_fut}, return_when=asyncio.FIRST_COMPLETED)
                if stop_fut.done():
                    break
                exc = None if runner.cancelled() else runner.exception()
                if isinstance(exc, InvalidURI):
                    raise exc
                if exc is not None:
                    self.last_error = exc
                    log = self._log.warning if self._attempt == 0 else self._log.info
                    log("%s: connection attempt failed: %r", self._id, exc)
                if not self._config.reconnect:
                    break
                if self._reset_requested:
                    self._reset_requested = False
                    self._attempt = 0
                delay = self._backoff_delay()
                self._attempt += 1
                await asyncio.wait({stop_fut}, timeout=delay)
        finally:
            runner_task = self._runner
            if runner_task is not None and not runner_task.done():
                _cancel_once(runner_task)
                await asyncio.wait({runner_task})
            self._runner = None
            await self._cancel_tasks()

    async def stop(self) -> None:
        """Close the connection, cancel all tasks and make `run()` return."""
        self._stopping = True
        if self._stop_fut is not None and not self._stop_fut.done():
            self._stop_fut.set_result(None)
        runner = self._runner
        if runner is not None and not runner.done():
            _cancel_once(runner)  # run() may cancel it too: a 2nd cancel would cut the cleanup
            await asyncio.wait({runner})
        await self._cancel_tasks()

    async def start_local(self, connector_id: int, id_tag: str) -> int | None:
        """RFID start: Authorize, then StartTransaction; the transaction id, or None if refused."""
        conn = self._outlet_or_raise(connector_id)
        if not self._accepted or not conn.is_free():
            self._log.info(
                "%s: local start on connector %d refused (booted=%s, status=%s, tx=%s)",
                self._id,
                connector_id,
                self._accepted,
                conn.status,
                conn.tx_id,
            )
            return None
        conn.starting = True
        try:
            try:
                res = await self._call(call.Authorize(id_tag=id_tag))
            except _CALL_ERRORS as exc:
                self._log.warning("%s: Authorize failed: %r", self._id, exc)
                return None
            status = res.id_tag_info.get("status")
            if status != AuthorizationStatus.accepted:
                masked = f"{id_tag[:2]}…{id_tag[-2:]}"  # id tags are personal data
                self._log.info("%s: id tag %s not accepted: %s", self._id, masked, status)
                return None
            return await self._start_transaction(conn, id_tag)
        finally:
            conn.starting = False

    async def stop_local(self, connector_id: int, reason: str = "Local") -> None:
        """StopTransaction (meterStop + transactionData), then Finishing -> Available."""
        conn = self._outlet_or_raise(connector_id)
        Reason(reason)  # ValueError for a reason OCPP 1.6 does not know
        if conn.tx is None:
            self._log.info("%s: no transaction on connector %d", self._id, connector_id)
            return
        await self._stop_transaction(conn, reason)

    async def set_status(self, connector_id: int, status: str, error_code: str = "NoError") -> None:
        """Send a StatusNotification (e.g. Faulted); kept and re-sent after a reconnect."""
        ChargePointStatus(status)
        ChargePointErrorCode(error_code)
        conn = self._conn0 if connector_id == 0 else self._outlet_or_raise(connector_id)
        await self._send_status(conn, status, error_code)

    async def send_raw(self, text: str) -> None:
        """Send an arbitrary text frame on the current connection (for protocol tests)."""
        session = self._session
        if session is None:
            raise ConnectionError(f"{self._id}: not connected")
        try:
            await session.send_text(text)
        except ConnectionClosed as exc:
            raise ConnectionError(str(exc)) from exc

    def meter_wh(self, connector_id: int) -> int:
        """Energy register of a connector in Wh (integrated up to now)."""
        conn = self._outlet_or_raise(connector_id)
        self._advance(conn)
        return int(conn.energy_wh)

    @property
    def queued_transaction_messages(self) -> list[str]:
        """Actions of the transaction messages not yet delivered, oldest first."""
        return [message.action for message in self._tx_queue]

    # ---- helpers used by the session handlers -------------------------------------------------

    def _is_current(self, session: _Session) -> bool:
        return self._session is session

    def _outlet(self, connector_id: int | None) -> _Connector | None:
        """Connector 1..N by id, None for 0/unknown."""
        return self._outlets.get(connector_id) if connector_id is not None else None

    def _pick_connector(self, connector_id: int | None) -> _Connector | None:
        """Connector for a RemoteStart: the given one if free, else the first free one."""
        if connector_id is None:
            return next((c for c in self._outlets.values() if c.is_free()), None)
        conn = self._outlet(connector_id)
        return conn if conn is not None and conn.is_free() else None

    def _connector_with_tx(self, transaction_id: int) -> _Connector | None:
        return next((c for c in self._outlets.values() if c.tx_id == transaction_id), None)

    def _configuration(self) -> dict[str, str]:
        return {
            _HEARTBEAT_KEY: _fmt_seconds(self._heartbeat_interval),
            _METER_KEY: _fmt_seconds(self._meter_interval),
            _TX_ATTEMPTS_KEY: str(self._tx_attempts),
            _TX_INTERVAL_KEY: _fmt_seconds(self._tx_retry_interval),
        }

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a tracked task (cancelled on disconnect and on stop())."""
        task = asyncio.create_task(coro, name=f"{self._id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _change_availability(
        self, connector_id: int, operative: bool
    ) -> tuple[list[_Connector], bool] | None:
        """Apply ChangeAvailability; (connectors to report, scheduled?) or None if unknown."""
        if connector_id == 0:
            targets = list(self._outlets.values())
        elif connector_id in self._outlets:
            targets = [self._outlets[connector_id]]
        else:
            return None
        changed: list[_Connector] = []
        if connector_id == 0:
            self._conn0.operative = operative
            changed.append(self._conn0)
        scheduled = False
        for conn in targets:
            if conn.tx is not None or conn.starting:
                conn.pending_operative = operative
                scheduled = True
            else:
                conn.operative = operative
                conn.pending_operative = None
                changed.append(conn)
        return changed, scheduled

    async def _send_idle_statuses(self, conns: list[_Connector]) -> None:
        for conn in conns:
            await self._send_status(conn, conn.idle_status())

    async def _send_statuses(self, connector_id: int | None, force: bool = False) -> None:
        """StatusNotification for one connector (0 included) or for all."""
        if connector_id is None:
            conns = [self._conn0, *self._outlets.values()]
        elif connector_id == 0:
            conns = [self._conn0]
        else:
            conns = [self._outlets[connector_id]]
        for conn in conns:
            if conn.tx_id is not None and conn.status in (
                ChargePointStatus.charging,
                ChargePointStatus.suspended_ev,
            ):
                self._advance(conn)
                conn.status = (
                    ChargePointStatus.charging
                    if self._power_w(conn) > 0
                    else ChargePointStatus.suspended_ev
                )
            await self._send_status(conn, conn.status, conn.error_code, force=force)

    async def _send_triggered_meter_values(self, connector_id: int | None) -> None:
        if connector_id is None or connector_id == 0:
            conns = list(self._outlets.values())
        else:
            conns = [self._outlets[connector_id]]
        for conn in conns:
            await self._send_meter_values(conn, ReadingContext.trigger)

    async def _heartbeat_once(self) -> None:
        try:
            await self._call(call.Heartbeat())
        except _CALL_ERRORS as exc:
            self._log.warning("%s: Heartbeat failed: %r", self._id, exc)

    async def _apply_heartbeat_interval(self) -> None:
        if self._accepted:
            self._restart_heartbeat()

    async def _boot_once(self) -> float:
        """Send one BootNotification; returns the delay before a retry (0 if Accepted)."""
        cfg = self._config
        try:
            res = await self._call(
                call.BootNotification(
                    charge_point_model=cfg.model,
                    charge_point_vendor=cfg.vendor,
                    charge_point_serial_number=cfg.charge_point_id[:25],
                    firmware_version="sim-1.0",
                )
            )
        except _CALL_ERRORS as exc:
            self._log.warning("%s: BootNotification failed: %r", self._id, exc)
            return _BOOT_ERROR_RETRY
        self.boot_status = str(res.status)
        interval = float(res.interval)
        if res.status != RegistrationStatus.accepted:
            self._log.info("%s: BootNotification %s, retry in %gs", self._id, res.status, interval)
            return min(60.0, max(1.0, interval))
        self._heartbeat_interval = max(1.0, interval)
        if self._accepted:  # triggered re-boot: only the interval may have changed
            self._restart_heartbeat()
        else:
            self._accepted = True
            await self._on_accepted()
        return 0.0

    async def _start_transaction(self, conn: _Connector, id_tag: str) -> int | None:
        """Preparing, StartTransaction (queued), Charging + metering (connector already reserved).

        Returns the transaction id once answered (after retries or a reconnect if need be),
        None if the central system never took it or refused the id tag.
        """
        conn.starting = True
        try:
            await self._send_status(conn, ChargePointStatus.preparing)
            self._advance(conn)
            tx = _Tx(conn.id, id_tag)
            conn.tx = tx
            payload = call.StartTransaction(
                connector_id=conn.id,
                id_tag=id_tag,
                meter_start=int(conn.energy_wh),
                timestamp=_utc_now(),
            )
            self._enqueue_tx(
                _TxMessage(
                    Action.start_transaction,
                    lambda: payload,
                    functools.partial(self._on_start_answer, conn, tx),
                )
            )
            await tx.answered.wait()
            if tx.followup is not None:
                await tx.followup
            return tx.id if tx.charging else None
        finally:
            conn.starting = False
            if conn.tx is None and conn.status == ChargePointStatus.preparing:
                conn.status = conn.idle_status()  # cancelled half-way (connection lost)

    def _on_start_answer(self, conn: _Connector, tx: _Tx, res: Any) -> None:
        """The StartTransaction answer (None: dropped): the transaction runs under its id."""
        if res is None:
            self._log.warning("%s: StartTransaction on connector %d dropped", self._id, conn.id)
            if conn.tx is tx:
                conn.tx = None
                tx.followup = self._spawn(self._send_status(conn, conn.idle_status()), "tx-drop")
        else:
            tx.id = int(res.transaction_id)
            if conn.tx is tx:  # not stopped locally while the start was queued
                conn.sessions += 1
                conn.tx_id = tx.id
                conn.id_tag = tx.id_tag
                seed = f"{self._id}#{conn.id}#{conn.sessions}"
                conn.soc = random.Random(seed).uniform(0.2, 0.4)
                conn.last_update = time.monotonic()
                self.transactions[conn.id] = tx.id
                status = res.id_tag_info.get("status")
                tx.followup = self._spawn(self._after_start(conn, tx, status), "tx-started")
        tx.answered.set()

    async def _after_start(self, conn: _Connector, tx: _Tx, status: str | None) -> None:
        # A task of its own: the delivery loop must never wait for what it has to deliver.
        if status != AuthorizationStatus.accepted:
            self._log.info("%s: tx %s not authorized (%s), stopping", self._id, tx.id, status)
            await self._stop_transaction(conn, Reason.de_authorized, expect_tx=tx.id)
            return
        if conn.tx is not tx:
            return
        tx.charging = True
        await self._send_status(conn, ChargePointStatus.charging)
        self._start_meter_loop(conn)

    async def _stop_transaction(
        self,
        conn: _Connector,
        reason: str,
        expect_tx: int | None = None,
        final_statuses: bool = True,
    ) -> bool:
        """StopTransaction (meterStop + transactionData, queued); then Finishing -> Available.

        A transaction whose StartTransaction is still queued stops too: its StopTransaction
        waits behind the start and carries the id the start is answered with.
        """
        tx = conn.tx
        if tx is None or (expect_tx is not None and tx.id != expect_tx):
            return False
        self._stop_meter_loop(conn)
        sample, _ = self._sample(conn, ReadingContext.transaction_end)
        meter_stop = int(conn.energy_wh)
        timestamp = _utc_now()
        conn.tx = None
        conn.tx_id = None
        conn.id_tag = None
        self.transactions.pop(conn.id, None)
        if conn.pending_operative is not None:
            conn.operative = conn.pending_operative
            conn.pending_operative = None

        def build() -> Any:
            if tx.id is None:
                return None
            return call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=timestamp,
                transaction_id=tx.id,
                reason=reason,
                id_tag=tx.id_tag,
                transaction_data=[sample],
            )

        message = self._enqueue_tx(_TxMessage(Action.stop_transaction, build))
        await message.tried.wait()  # Finishing follows the stop's first attempt on the wire
        if final_statuses:
            await self._send_status(conn, ChargePointStatus.finishing)
            await self._send_status(conn, conn.idle_status())
        else:
            conn.status = conn.idle_status()
        return True

    # ---- transaction messages: in order, retried, kept across disconnects ---------------------

    def _enqueue_tx(self, message: _TxMessage) -> _TxMessage:
        self._tx_queue.append(message)
        if self._tx_worker is None or self._tx_worker.done():
            message.tried.set()  # offline: sent after the next BootNotification is accepted
        self._tx_wakeup.set()
        return message

    async def _deliver_tx_messages(self) -> None:
        """Send the queue head until answered or out of attempts, then the next (one booted link).

        A CALLERROR or no answer is an attempt: wait TransactionMessageRetryInterval x attempts
        so far, give up after TransactionMessageAttempts. A lost connection is no attempt: the
        message stays first and goes out after the reconnect.
        """
        queue = self._tx_queue
        try:
            while True:
                if not queue:
                    self._tx_wakeup.clear()
                    await self._tx_wakeup.wait()
                    continue
                message = queue[0]
                payload = message.build()
                if payload is None:
                    queue.popleft()
                    self._drop_tx(message, "its transaction never got an id")
                    continue
                try:
                    result = await self._call(payload)
                except ConnectionError:
                    self.transaction_log.append(
                        (message.action, message.attempts + 1, "disconnected")
                    )
                    return
                except (OCPPError, TimeoutError) as exc:
                    message.attempts += 1
                    outcome = exc.code if isinstance(exc, OCPPError) else "Timeout"
                    self.transaction_log.append((message.action, message.attempts, outcome))
                    message.tried.set()
                    if message.attempts >= self._tx_attempts:
                        queue.popleft()
                        self._drop_tx(message, f"{message.attempts} attempts failed ({outcome})")
                        continue
                    delay = self._tx_retry_interval * message.attempts
                    self._log.warning(  # the outcome, not the error: its text quotes the frame
                        "%s: %s attempt %d failed (%s); retrying in %gs",
                        self._id,
                        message.action,
                        message.attempts,
                        outcome,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                queue.popleft()
                message.attempts += 1
                self.transaction_log.append((message.action, message.attempts, "accepted"))
                message.finish(result)
        finally:
            for waiting in queue:
                waiting.tried.set()  # nobody waits for a link that is gone

    def _drop_tx(self, message: _TxMessage, why: str) -> None:
        self._log.error("%s: %s dropped: %s", self._id, message.action, why)
        self.transaction_log.append((message.action, message.attempts, "dropped"))
        message.finish(None)

    async def _reset(self, reset_type: str) -> None:
        """Stop running transactions, then drop the connection and reconnect (reboot)."""
        reason = Reason.hard_reset if reset_type == ResetType.hard else Reason.soft_reset
        for conn in self._outlets.values():
            await self._stop_transaction(conn, reason, final_statuses=False)
        self._reset_requested = True
        session = self._session
        if session is not None:
            self._log.info("%s: %s reset, reconnecting", self._id, reset_type)
            await session.close()

    # ---- connection handling ----------------------------------------------------------------

    def _url(self) -> str:
        base = self._config.url.rstrip("/")
        return f"{base}/{quote(self._config.charge_point_id, safe='')}"

    def _take_authorization_key(self, value: str, reconnect_after: Callable[[], None]) -> Any:
        """A new HTTP Basic password: kept, then used from a fresh connection."""
        if (
            not 32 <= len(value) <= 40
            or len(value) % 2
            or not all(c in "0123456789abcdefABCDEF" for c in value)
        ):
            return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)
        self._config.password = value
        reconnect_after()
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)

    async def _rekey(self) -> None:
        """After the answer: reconnect so the new key is what authenticates us."""
        self._reset_requested = True  # a planned reconnect, not a lost connection
        session = self._session
        if session is not None:
            self._log.info("%s: new AuthorizationKey, reconnecting with it", self._id)
            await session.close()

    def _headers(self) -> dict[str, str]:
        if self._config.password is None:
            return {}
        raw = f"{self._config.charge_point_id}:{self._config.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def _backoff_delay(self) -> float:
        cfg = self._config
        base = min(cfg.backoff_max, cfg.backoff_initial * 2 ** min(self._attempt, 30))
        return min(cfg.backoff_max, base * random.uniform(0.8, 1.2))

    async def _connect_and_serve(self) -> None:
        ws = await connect(
            self._url(),
            subprotocols=[Subprotocol(_OCPP16)],
            additional_headers=self._headers(),
            compression=None,  # permessage-deflate costs ~100 KiB of zlib state per connection
            proxy=None,
            open_timeout=_OPEN_TIMEOUT,
            ping_interval=_PING_INTERVAL,
            ping_timeout=_PING_TIMEOUT,
            close_timeout=_CLOSE_TIMEOUT,
        )
        session: _Session | None = None
        try:
            if ws.subprotocol != _OCPP16:
                raise NegotiationError(
                    f"server did not agree on subprotocol {_OCPP16} (got {ws.subprotocol!r})"
                )
            session = _Session(self, ws)
            self._session = session
            self.connected.set()
            self._log.info("%s: connected to %s", self._id, self._url())
            serve = self._spawn(self._serve(session), "receive")
            self._spawn(self._boot_loop(), "boot")
            await asyncio.wait({serve})
            if session.close_exc is not None and not (self._stopping or self._reset_requested):
                self.last_error = session.close_exc
                self._log.warning("%s: connection lost: %r", self._id, session.close_exc)
        finally:
            self._session = None
            self._accepted = False
            self.connected.clear()
            self.booted.clear()
            if session is not None:
                session.mark_closed()
            for conn in self._outlets.values():
                if conn.tx is None:  # a queued StartTransaction keeps its connector
                    conn.starting = False
                    if conn.status == ChargePointStatus.preparing:
                        conn.status = conn.idle_status()
            try:
                await self._cancel_tasks()
            finally:
                try:
                    await ws.close()
                except asyncio.CancelledError:
                    ws.transport.abort()  # cancelled again while closing: drop the socket
                    raise

    async def _serve(self, session: _Session) -> None:
        try:
            await session.start()
        except ConnectionClosed as exc:
            session.close_exc = exc
        finally:
            session.mark_closed()

    async def _boot_loop(self) -> None:
        while not self._accepted:
            delay = await self._boot_once()
            if self._accepted:
                return
            await asyncio.sleep(delay)

    async def _on_accepted(self) -> None:
        self._attempt = 0
        self._log.info("%s: boot accepted, heartbeat every %gs", self._id, self._heartbeat_interval)
        # Queued transaction messages first: they were due before anything this link sends.
        self._tx_worker = self._spawn(self._deliver_tx_messages(), "transaction-messages")
        await self._send_statuses(None)
        self.booted.set()
        self._restart_heartbeat()
        for conn in self._outlets.values():
            if conn.tx_id is not None:
                self._start_meter_loop(conn)

    async def _call(self, payload: Any) -> Any:
        """`call(suppress=False)` on the current connection; ConnectionError if it is/gets lost."""
        session = self._session
        if session is None or session.closed.done():
            raise ConnectionError(f"{self._id}: not connected")
        fut = asyncio.ensure_future(session.call(payload, suppress=False))
        try:
            await asyncio.wait({fut, session.closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not fut.done():
                fut.cancel()
            elif not fut.cancelled():
                fut.exception()  # mark as retrieved
        if not fut.done() or fut.cancelled():
            raise ConnectionError(f"{self._id}: connection closed during call")
        try:
            return fut.result()
        except ConnectionClosed as exc:
            raise ConnectionError(str(exc)) from exc

    async def _cancel_tasks(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current and not t.done()]
        for task in tasks:
            _cancel_once(task)
        if tasks:
            await asyncio.wait(tasks)
        self._meter_tasks.clear()
        self._heartbeat_task = None

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._log.error("%s: task %s failed", self._id, task.get_name(), exc_info=exc)

    # ---- heartbeat, statuses, metering --------------------------------------------------------

    def _restart_heartbeat(self) -> None:
        if self._session is None:
            return
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
        self._heartbeat_task = self._spawn(self._heartbeat_loop(), "heartbeat")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_interval)
            await self._heartbeat_once()

    async def _send_status(
        self, conn: _Connector, status: str, error_code: str = "NoError", force: bool = False
    ) -> None:
        """Update the connector and tell the central system (if booted or triggered).

        The notification carries the status current when it is sent, so concurrent flows
        (a TriggerMessage and a remote start, say) can never leave a stale status last.
        """
        conn.status = status
        conn.error_code = error_code
        if self._session is None or not (self._accepted or force):
            return
        async with self._status_lock:
            if self._session is None:
                return
            self.statuses[conn.id] = conn.status
            try:
                await self._call(
                    call.StatusNotification(
                        connector_id=conn.id,
                        error_code=conn.error_code,
                        status=conn.status,
                        timestamp=_utc_now(),
                    )
                )
            except _CALL_ERRORS as exc:
                self._log.warning("%s: StatusNotification failed: %r", self._id, exc)

    def _start_meter_loop(self, conn: _Connector) -> None:
        if self._session is None or not self._accepted:
            return
        task = self._meter_tasks.get(conn.id)
        if task is None or task.done():
            self._meter_tasks[conn.id] = self._spawn(self._meter_loop(conn), f"meter{conn.id}")

    def _stop_meter_loop(self, conn: _Connector) -> None:
        task = self._meter_tasks.pop(conn.id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _meter_loop(self, conn: _Connector) -> None:
        tx_id = conn.tx_id
        while tx_id is not None:
            await asyncio.sleep(self._meter_interval)
            if conn.tx_id != tx_id:
                return
            await self._send_meter_values(conn, ReadingContext.sample_periodic)

    async def _send_meter_values(self, conn: _Connector, context: str) -> None:
        tx_id = conn.tx_id
        sample, power_w = self._sample(conn, context)
        payload = call.MeterValues(connector_id=conn.id, meter_value=[sample], transaction_id=tx_id)
        if tx_id is not None and context != ReadingContext.trigger:
            # A transaction's own samples are transaction messages (triggered ones are not).
            message = self._enqueue_tx(_TxMessage(Action.meter_values, lambda: payload))
            await message.tried.wait()
        else:
            try:
                await self._call(payload)
            except _CALL_ERRORS as exc:
                self._log.warning("%s: MeterValues failed: %r", self._id, exc)
        if (
            tx_id is not None
            and conn.tx_id == tx_id
            and power_w <= 0
            and conn.status == ChargePointStatus.charging
        ):
            await self._send_status(conn, ChargePointStatus.suspended_ev)  # the car is full

    def _advance(self, conn: _Connector) -> None:
        """Integrate the energy drawn since the last update (also across disconnects)."""
        now = time.monotonic()
        if conn.tx_id is not None:
            cfg = self._config
            hours = (now - conn.last_update) * cfg.time_scale / 3600.0
            soc = _charge(conn.soc, hours, cfg.power_kw, cfg.battery_kwh)
            conn.energy_wh += max(0.0, soc - conn.soc) * cfg.battery_kwh * 1000.0
            conn.soc = soc
        conn.last_update = now

    def _power_w(self, conn: _Connector) -> float:
        if conn.tx_id is None:
            return 0.0
        return self._config.power_kw * 1000.0 * _power_fraction(conn.soc)

    def _sample(self, conn: _Connector, context: str) -> tuple[dict[str, Any], float]:
        """One meterValue entry (energy, power and, during a transaction, SoC) + power in W."""
        self._advance(conn)
        power_w = self._power_w(conn)
        values: list[dict[str, Any]] = [
            {
                "value": str(int(conn.energy_wh)),
                "context": context,
                "measurand": Measurand.energy_active_import_register,
                "location": Location.outlet,
                "unit": UnitOfMeasure.wh,
            },
            {
                "value": str(round(power_w)),
                "context": context,
                "measurand": Measurand.power_active_import,
                "location": Location.outlet,
                "unit": UnitOfMeasure.w,
            },
        ]
        if conn.tx_id is not None:
            values.append(
                {
                    "value": str(min(100, int(conn.soc * 100.0))),
                    "context": context,
                    "measurand": Measurand.soc,
                    "location": Location.ev,
                    "unit": UnitOfMeasure.percent,
                }
            )
        return {"timestamp": _utc_now(), "sampledValue": values}, power_w

    def _outlet_or_raise(self, connector_id: int) -> _Connector:
        conn = self._outlets.get(connector_id)
        if conn is None:
            raise ValueError(f"{self._id}: no connector {connector_id}")
        return conn


async def run_simulators(configs: list[SimulatorConfig]) -> None:
    """Run many simulated charge points in this event loop until cancelled."""
    sims = [SimulatedChargePoint(cfg) for cfg in configs]
    async with asyncio.TaskGroup() as group:
        for sim in sims:
            group.create_task(sim.run(), name=f"sim:{sim._id}")


async def simulate_forever(config: SimulatorConfig) -> None:
    """Run one simulated charge point until cancelled (Ctrl-C)."""
    sim = SimulatedChargePoint(config)
    _LOG.info("simulating %s against %s", config.charge_point_id, config.url)
    await sim.run()
