"""The simulated charge point: connection, boot, heartbeat, statuses, transactions, metering.

Hundreds of instances share one event loop (no per-charger threads, no polling); an idle
charger only sends Heartbeats.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ocpp.exceptions import OCPPError
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    ConfigurationStatus,
    ReadingContext,
    Reason,
    RegistrationStatus,
    ReservationStatus,
    ResetType,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI, NegotiationError
from websockets.typing import Subprotocol

from backend.chargers.simulator.authorization import LocalAuthorization
from backend.chargers.simulator.certificates import Certificates
from backend.chargers.simulator.config import (
    BOOT_ERROR_RETRY,
    CLOSE_TIMEOUT,
    DEFAULT_HEARTBEAT,
    HEARTBEAT_KEY,
    METER_KEY,
    OCPP16,
    OPEN_TIMEOUT,
    PING_INTERVAL,
    PING_TIMEOUT,
    REMOTE_START_MODES,
    SECURITY_PROFILE_KEY,
    TX_ATTEMPTS_KEY,
    TX_INTERVAL_KEY,
    SimulatorConfig,
)
from backend.chargers.simulator.connector import Connector, Held, Tx, utc_now
from backend.chargers.simulator.maintenance import Maintenance
from backend.chargers.simulator.session import Session
from backend.chargers.simulator.smart import Profiles
from backend.chargers.simulator.tx_queue import TransactionQueue, TxMessage

# The package's logger, named as before the split: the CLI quiets it and tests filter on it.
LOG = logging.getLogger("backend.chargers.simulator")

# What a failed call() may raise: a CALLERROR, no answer in time, or no connection.
_CALL_ERRORS = (OCPPError, TimeoutError, ConnectionError)


def _cancel_once(task: asyncio.Task[Any]) -> None:
    """Cancel unless a cancellation is already pending (a second one would hit its cleanup)."""
    if not task.cancelling():
        task.cancel()


def _fmt_seconds(value: float) -> str:
    return f"{value:g}"


class SimulatedChargePoint:
    """One simulated OCPP 1.6-J charge point; `run()` keeps it connected until `stop()`."""

    def __init__(self, config: SimulatorConfig, logger: logging.Logger | None = None) -> None:
        if config.connectors < 1:
            raise ValueError("connectors must be >= 1")
        if config.remote_start not in REMOTE_START_MODES:
            raise ValueError(f"remote_start must be one of {REMOTE_START_MODES}")
        if config.meter_interval <= 0 or config.backoff_initial <= 0 or config.time_scale < 0:
            raise ValueError("meter_interval and backoff_initial must be > 0, time_scale >= 0")
        if config.transaction_message_attempts < 1 or config.transaction_message_retry_interval < 0:
            raise ValueError("transaction_message_attempts must be >= 1, the interval >= 0")
        self._config = config
        self._id = config.charge_point_id
        self._log = logger or LOG
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
        self._heartbeat_interval = DEFAULT_HEARTBEAT
        self._meter_interval = config.meter_interval
        self._accepted = False  # BootNotification Accepted on the current connection
        self.authorization = LocalAuthorization(
            supported=config.local_list,
            max_length=config.local_list_max_length,
            send_max_length=config.send_local_list_max_length,
        )
        self.maintenance = Maintenance(self)
        self.profiles = Profiles()
        self.display: list[tuple[str, Any]] = []
        self.certificates = Certificates()  # California Pricing messages shown, in order
        self._link_up = asyncio.Event()  # cleared by go_offline(): no connection until online
        self._link_up.set()
        ident = config.charge_point_id
        self._conn0 = Connector(0, 0.0)
        self._outlets = {
            c: Connector(c, float(random.Random(f"{ident}#{c}").randint(100_000, 900_000)))
            for c in range(1, config.connectors + 1)
        }
        self._session: Session | None = None
        self._tasks: set[asyncio.Task[Any]] = set()  # everything we spawned (connection-scoped)
        self._meter_tasks: dict[int, asyncio.Task[Any]] = {}
        self._heartbeat_task: asyncio.Task[Any] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stop_fut: asyncio.Future[None] | None = None
        self._stopping = False
        self._reset_requested = False
        self._attempt = 0
        # Transaction messages in order; lives as long as this object, across connections.
        self._tx_queue = TransactionQueue(
            self._id,
            self._log,
            config.transaction_message_attempts,
            config.transaction_message_retry_interval,
            self.transaction_log,
        )
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
                if not self._link_up.is_set():
                    link: asyncio.Future[Any] = asyncio.ensure_future(self._link_up.wait())
                    await asyncio.wait({link, stop_fut}, return_when=asyncio.FIRST_COMPLETED)
                    link.cancel()
                    if stop_fut.done():
                        break
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

    async def go_offline(self) -> None:
        """Pull the network cable: the connection closes and none is made until go_online()."""
        self._link_up.clear()
        session, runner = self._session, self._runner
        if session is not None:
            await session.close()
        if runner is not None and not runner.done():
            await asyncio.wait({runner})  # the connection's task ends with it

    async def send_security_event(self, kind: str, tech_info: str | None = None) -> None:
        """SecurityEventNotification (e.g. "InvalidCentralSystemCertificate")."""
        await self._call(
            call.SecurityEventNotification(type=kind, timestamp=utc_now(), tech_info=tech_info)
        )

    async def request_certificate(self) -> str:
        """SignCertificate with a new key's CSR (CN = our identity); the central system's
        answer. The certificate itself comes later, with CertificateSigned."""
        res = await self._call(call.SignCertificate(csr=self.certificates.csr(self._id)))
        return str(res.status)

    def go_online(self) -> None:
        """Plug the cable back in: the charge point reconnects (and boots) by itself."""
        self._link_up.set()

    async def start_local(self, connector_id: int, id_tag: str) -> int | None:
        """RFID start: Authorize, then StartTransaction; the transaction id, or None if refused.

        Offline (no connection or not booted), a card its local list or authorization cache
        holds as Accepted starts at once (LocalAuthorizeOffline); the StartTransaction waits in
        the transaction queue, and the id comes once it is answered after the reconnect.
        """
        conn = self._outlet_or_raise(connector_id)
        if not self._accepted and conn.is_free_offline(id_tag):
            if not self.authorization.offline_accepts(id_tag):
                self._log.info("%s: offline, id tag not accepted locally", self._id)
                return None
            return await self._start_transaction(conn, id_tag)
        if not self._accepted or not conn.is_free(id_tag):
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
            self.authorization.remember(id_tag, res.id_tag_info)
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
        conn.advance(self._config)
        return int(conn.energy_wh)

    @property
    def queued_transaction_messages(self) -> list[str]:
        """Actions of the transaction messages not yet delivered, oldest first."""
        return self._tx_queue.actions

    # ---- helpers used by the session handlers -------------------------------------------------

    def _is_current(self, session: Session) -> bool:
        return self._session is session

    def _outlet(self, connector_id: int | None) -> Connector | None:
        """Connector 1..N by id, None for 0/unknown."""
        return self._outlets.get(connector_id) if connector_id is not None else None

    def _pick_connector(self, connector_id: int | None, id_tag: str) -> Connector | None:
        """Connector for a RemoteStart: the given one if free, else the first free one (one
        reserved for `id_tag` first)."""
        if connector_id is None:
            mine = [c for c in self._outlets.values() if c.held and c.held.id_tag == id_tag]
            return next((c for c in [*mine, *self._outlets.values()] if c.is_free(id_tag)), None)
        conn = self._outlet(connector_id)
        return conn if conn is not None and conn.is_free(id_tag) else None

    def refresh_limits(self) -> None:
        """Each connector's power from its charging profiles, from now on (the energy so far
        is integrated at the old power first)."""
        for conn in self._outlets.values():
            conn.advance(self._config)
            limit = self.profiles.limit_w(conn.id, conn.tx_id, conn.tx_started)
            conn.limit_kw = None if limit is None else limit / 1000.0

    def _reserve(self, connector_id: int, held: Held) -> str:
        """ReserveNow: Accepted, Faulted, Occupied, Rejected or Unavailable."""
        if not self._config.reservations:
            return str(ReservationStatus.rejected)
        for conn in self._outlets.values():  # the same reservationId: it is replaced
            if conn.held is not None and conn.held.reservation_id == held.reservation_id:
                conn.held = None
                conn.status = conn.idle_status() if conn.status == "Reserved" else conn.status
        if connector_id == 0:
            free = [c for c in self._outlets.values() if c.is_free()]
            if not free:
                return str(ReservationStatus.occupied)
            conn = free[0]
        else:
            found = self._outlet(connector_id)
            if found is None:
                return str(ReservationStatus.rejected)
            conn = found
        if conn.status == ChargePointStatus.faulted:
            return str(ReservationStatus.faulted)
        if not conn.operative:
            return str(ReservationStatus.unavailable)
        if not conn.is_free() or conn.held is not None:
            return str(ReservationStatus.occupied)
        conn.held = held
        return str(ReservationStatus.accepted)

    def _reserved_connector(self, reservation_id: int) -> Connector | None:
        return next(
            (
                c
                for c in self._outlets.values()
                if c.held is not None and c.held.reservation_id == reservation_id
            ),
            None,
        )

    async def _hold_until_expiry(self, conn: Connector, held: Held) -> None:
        """Reserved now; Available again when the reservation expires unused."""
        await self._send_status(conn, ChargePointStatus.reserved)
        wait = (held.expires_at - datetime.now(UTC)).total_seconds()
        await asyncio.sleep(max(0.0, wait))
        if conn.held is held:
            conn.held = None
            if conn.status == ChargePointStatus.reserved:
                await self._send_status(conn, conn.idle_status())

    async def _release(self, conn: Connector) -> None:
        """CancelReservation: the connector is free again."""
        conn.held = None
        if conn.status == ChargePointStatus.reserved:
            await self._send_status(conn, conn.idle_status())

    def _connector_with_tx(self, transaction_id: int) -> Connector | None:
        return next((c for c in self._outlets.values() if c.tx_id == transaction_id), None)

    def _configuration(self) -> dict[str, str]:
        return {
            HEARTBEAT_KEY: _fmt_seconds(self._heartbeat_interval),
            METER_KEY: _fmt_seconds(self._meter_interval),
            TX_ATTEMPTS_KEY: str(self._tx_queue.attempts),
            TX_INTERVAL_KEY: _fmt_seconds(self._tx_queue.retry_interval),
            **self.authorization.configuration(),
            "CustomDisplayCostAndPrice": "true" if self._config.cost_display else "false",
            SECURITY_PROFILE_KEY: str(self._config.security_profile),
            "SupportedFileTransferProtocols": self._config.file_transfer_protocols,
        }

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a tracked task (cancelled on disconnect and on stop())."""
        task = asyncio.create_task(coro, name=f"{self._id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _change_availability(
        self, connector_id: int, operative: bool
    ) -> tuple[list[Connector], bool] | None:
        """Apply ChangeAvailability; (connectors to report, scheduled?) or None if unknown."""
        if connector_id == 0:
            targets = list(self._outlets.values())
        elif connector_id in self._outlets:
            targets = [self._outlets[connector_id]]
        else:
            return None
        changed: list[Connector] = []
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

    async def _send_idle_statuses(self, conns: list[Connector]) -> None:
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
                conn.advance(self._config)
                conn.status = (
                    ChargePointStatus.charging
                    if conn.power_w(self._config) > 0
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
                    firmware_version=self.maintenance.firmware_version,
                )
            )
        except _CALL_ERRORS as exc:
            self._log.warning("%s: BootNotification failed: %r", self._id, exc)
            return BOOT_ERROR_RETRY
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

    async def _start_transaction(self, conn: Connector, id_tag: str) -> int | None:
        """Preparing, StartTransaction (queued), Charging + metering (connector already reserved).

        Returns the transaction id once answered (after retries or a reconnect if need be),
        None if the central system never took it or refused the id tag.
        """
        conn.starting = True
        try:
            await self._send_status(conn, ChargePointStatus.preparing)
            conn.advance(self._config)
            tx = Tx(conn.id, id_tag)
            conn.tx = tx
            held, conn.held = conn.held, None  # a reservation for this id tag is used now
            payload = call.StartTransaction(
                connector_id=conn.id,
                id_tag=id_tag,
                meter_start=int(conn.energy_wh),
                timestamp=utc_now(),
                reservation_id=held.reservation_id if held is not None else None,
            )
            self._tx_queue.enqueue(
                TxMessage(
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

    def _on_start_answer(self, conn: Connector, tx: Tx, res: Any) -> None:
        """The StartTransaction answer (None: dropped): the transaction runs under its id."""
        if res is None:
            self._log.warning("%s: StartTransaction on connector %d dropped", self._id, conn.id)
            if conn.tx is tx:
                conn.tx = None
                tx.followup = self._spawn(self._send_status(conn, conn.idle_status()), "tx-drop")
        else:
            tx.id = int(res.transaction_id)
            self.authorization.remember(tx.id_tag, res.id_tag_info)
            if conn.tx is tx:  # not stopped locally while the start was queued
                conn.tx_started = time.time()
                if conn.pending_profile is not None:
                    self.profiles.set(conn.id, conn.pending_profile, tx.id)
                    conn.pending_profile = None
                conn.sessions += 1
                conn.tx_id = tx.id
                conn.id_tag = tx.id_tag
                seed = f"{self._id}#{conn.id}#{conn.sessions}"
                conn.soc = random.Random(seed).uniform(0.2, 0.4)
                conn.last_update = time.monotonic()
                self.transactions[conn.id] = tx.id
                self.refresh_limits()  # its TxProfile or the TxDefaultProfile applies now
                status = res.id_tag_info.get("status")
                tx.followup = self._spawn(self._after_start(conn, tx, status), "tx-started")
        tx.answered.set()

    async def _after_start(self, conn: Connector, tx: Tx, status: str | None) -> None:
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
        conn: Connector,
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
        sample, _ = conn.sample(self._config, ReadingContext.transaction_end)
        meter_stop = int(conn.energy_wh)
        timestamp = utc_now()
        if conn.tx_id is not None:
            self.profiles.transaction_ended(conn.tx_id)
        conn.tx = None
        conn.tx_id = None
        conn.id_tag = None
        conn.tx_started = None
        self.transactions.pop(conn.id, None)
        self.refresh_limits()
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

        message = self._tx_queue.enqueue(TxMessage(Action.stop_transaction, build))
        await message.tried.wait()  # Finishing follows the stop's first attempt on the wire
        if final_statuses:
            await self._send_status(conn, ChargePointStatus.finishing)
            await self._send_status(conn, conn.idle_status())
        else:
            conn.status = conn.idle_status()
        return True

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

    def _take_security_profile(self, value: str, reconnect_after: Callable[[], None]) -> Any:
        """A higher security profile, used from a fresh connection. Profile 3 needs wss:// and
        our own client certificate (SignCertificate, CertificateSigned); never lowered."""
        profile = int(value) if value in ("0", "1", "2", "3") else -1
        secure = self._url().startswith("wss://")
        if (
            profile < self._config.security_profile
            or (profile >= 2 and not secure)
            or (profile == 3 and self.certificates.client_certificate is None)
        ):
            return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)
        self._config.security_profile = profile
        reconnect_after()
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)

    async def _rekey(self) -> None:
        """After the answer: reconnect so the new key is what authenticates us."""
        self._reset_requested = True  # a planned reconnect, not a lost connection
        session = self._session
        if session is not None:
            self._log.info("%s: new AuthorizationKey, reconnecting with it", self._id)
            await session.close()

    def _tls(self) -> ssl.SSLContext | None:
        """For wss://: the system's trust store, or only `ca_file` when given."""
        if not self._url().startswith("wss://"):
            return None
        context = ssl.create_default_context(cafile=self._config.ca_file)
        if self._config.security_profile == 3:
            self.certificates.load_into(context)
        return context

    def _headers(self) -> dict[str, str]:
        if self._config.password is None or self._config.security_profile == 3:
            return {}
        raw = f"{self._config.charge_point_id}:{self._config.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    def _backoff_delay(self) -> float:
        cfg = self._config
        factor: int = 2 ** min(self._attempt, 30)  # int ** int is typed Any (may be a float)
        base = min(cfg.backoff_max, cfg.backoff_initial * factor)
        return min(cfg.backoff_max, base * random.uniform(0.8, 1.2))

    async def _connect_and_serve(self) -> None:
        ws = await connect(
            self._url(),
            subprotocols=[Subprotocol(OCPP16)],
            additional_headers=self._headers(),
            ssl=self._tls(),
            compression=None,  # permessage-deflate costs ~100 KiB of zlib state per connection
            proxy=None,
            open_timeout=OPEN_TIMEOUT,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            close_timeout=CLOSE_TIMEOUT,
        )
        session: Session | None = None
        try:
            if ws.subprotocol != OCPP16:
                raise NegotiationError(
                    f"server did not agree on subprotocol {OCPP16} (got {ws.subprotocol!r})"
                )
            session = Session(self, ws)
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

    async def _serve(self, session: Session) -> None:
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
        self._tx_queue.worker = self._spawn(
            self._tx_queue.deliver(self._call), "transaction-messages"
        )
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
        self, conn: Connector, status: str, error_code: str = "NoError", force: bool = False
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
                        timestamp=utc_now(),
                    )
                )
            except _CALL_ERRORS as exc:
                self._log.warning("%s: StatusNotification failed: %r", self._id, exc)

    def _start_meter_loop(self, conn: Connector) -> None:
        if self._session is None or not self._accepted:
            return
        task = self._meter_tasks.get(conn.id)
        if task is None or task.done():
            self._meter_tasks[conn.id] = self._spawn(self._meter_loop(conn), f"meter{conn.id}")

    def _stop_meter_loop(self, conn: Connector) -> None:
        task = self._meter_tasks.pop(conn.id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _meter_loop(self, conn: Connector) -> None:
        tx_id = conn.tx_id
        while tx_id is not None:
            await asyncio.sleep(self._meter_interval)
            if conn.tx_id != tx_id:
                return
            await self._send_meter_values(conn, ReadingContext.sample_periodic)

    async def _send_meter_values(self, conn: Connector, context: str) -> None:
        self.refresh_limits()  # a schedule's next period may have begun
        tx_id = conn.tx_id
        sample, power_w = conn.sample(self._config, context)
        payload = call.MeterValues(connector_id=conn.id, meter_value=[sample], transaction_id=tx_id)
        if tx_id is not None and context != ReadingContext.trigger:
            # A transaction's own samples are transaction messages (triggered ones are not).
            message = self._tx_queue.enqueue(TxMessage(Action.meter_values, lambda: payload))
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

    def _outlet_or_raise(self, connector_id: int) -> Connector:
        conn = self._outlets.get(connector_id)
        if conn is None:
            raise ValueError(f"{self._id}: no connector {connector_id}")
        return conn
