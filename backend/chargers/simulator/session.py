"""One WebSocket connection of a simulated charge point: the CALLs the central system sends.

The handlers answer at once and leave the work (starting a transaction, a reset, a reconnect
with a new key) to a plan that runs once the CALLRESULT has gone out.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocpp.charge_point import camel_to_snake_case
from ocpp.messages import CallError
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    CancelReservationStatus,
    ChargingProfileStatus,
    ClearCacheStatus,
    ClearChargingProfileStatus,
    ConfigurationStatus,
    DataTransferStatus,
    GetCompositeScheduleStatus,
    LogStatus,
    MessageTrigger,
    Reason,
    RemoteStartStopStatus,
    ReservationStatus,
    ResetStatus,
    TriggerMessageStatus,
    UnlockStatus,
    UpdateFirmwareStatus,
)
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from backend.chargers.simulator.config import (
    AUTHORIZATION_KEY,
    HEARTBEAT_KEY,
    METER_KEY,
    SECURITY_PROFILE_KEY,
    TX_ATTEMPTS_KEY,
    TX_INTERVAL_KEY,
)
from backend.chargers.simulator.connector import Held
from backend.chargers.typed_ocpp import ChargePoint, after, on

if TYPE_CHECKING:
    from backend.chargers.simulator.charge_point import SimulatedChargePoint

COST_VENDOR = "org.openchargealliance.costmsg"  # California Pricing (the display's messages)
COST_MESSAGES = ("SetUserPrice", "RunningCost", "FinalCost")
FRAME_LENGTHS = {2: 4, 3: 3, 4: 5}  # OCPP-J MessageTypeId -> number of elements

# Work for after the CALLRESULT: a coroutine the charge point runs as a task of its own.
PlanFactory = Callable[[], Coroutine[Any, Any, Any]]


class Session(ChargePoint):
    """The ocpp ChargePoint for one WebSocket connection; handlers act on the simulator."""

    def __init__(self, sim: SimulatedChargePoint, ws: ClientConnection) -> None:
        timeout = sim._config.response_timeout
        super().__init__(sim._id, ws, response_timeout=timeout, logger=sim._ocpp_log)
        self._sim = sim
        self._ws = ws
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.close_exc: ConnectionClosed | None = None
        self._plans: dict[str, PlanFactory] = {}
        self._responded = False

    # ---- plumbing ---------------------------------------------------------------------------

    def mark_closed(self) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self) -> None:
        await self._ws.close()

    async def send_text(self, text: str) -> None:
        await self._ws.send(text)

    def _plan(self, unique_id: str, factory: PlanFactory) -> None:
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
            or msg[0] not in FRAME_LENGTHS
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
        elif len(msg) != FRAME_LENGTHS[msg[0]]:
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
        self,
        id_tag: str,
        call_unique_id: str,
        connector_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
        **_: Any,
    ) -> Any:
        sim = self._sim
        mode = sim._config.remote_start
        conn = sim._pick_connector(connector_id, id_tag)
        if mode == "reject" or not sim._accepted or conn is None:
            return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
        if charging_profile is not None:
            if charging_profile.get("charging_profile_purpose") != "TxProfile":
                return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.rejected)
            conn.pending_profile = charging_profile  # installed once the transaction has an id
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
        factory: PlanFactory
        if requested_message == MessageTrigger.status_notification:
            factory = functools.partial(sim._send_statuses, connector_id, force=True)
        elif requested_message == MessageTrigger.boot_notification:
            factory = sim._boot_once
        elif requested_message == MessageTrigger.heartbeat:
            factory = sim._heartbeat_once
        elif requested_message == MessageTrigger.meter_values:
            factory = functools.partial(sim._send_triggered_meter_values, connector_id)
        elif requested_message == MessageTrigger.firmware_status_notification:
            factory = sim.maintenance.report_core_firmware_status
        elif requested_message == MessageTrigger.diagnostics_status_notification:
            factory = sim.maintenance.report_diagnostics_status
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
        switched = sim.authorization.change(key, value)
        if switched is not None:
            status = ConfigurationStatus.accepted if switched else ConfigurationStatus.rejected
            return call_result.ChangeConfiguration(status=status)
        if key == AUTHORIZATION_KEY:
            return sim._take_authorization_key(
                value, lambda: self._plan(call_unique_id, sim._rekey)
            )
        if key == SECURITY_PROFILE_KEY:
            return sim._take_security_profile(value, lambda: self._plan(call_unique_id, sim._rekey))
        if key not in (HEARTBEAT_KEY, METER_KEY, TX_ATTEMPTS_KEY, TX_INTERVAL_KEY):
            return call_result.ChangeConfiguration(status=ConfigurationStatus.not_supported)
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < (0 if key == TX_INTERVAL_KEY else 1):
            return call_result.ChangeConfiguration(status=ConfigurationStatus.rejected)
        if key == HEARTBEAT_KEY:
            sim._heartbeat_interval = float(number)
            self._plan(call_unique_id, sim._apply_heartbeat_interval)
        elif key == METER_KEY:
            sim._meter_interval = float(number)  # the meter loops read it before every sleep
        elif key == TX_ATTEMPTS_KEY:
            sim._tx_queue.attempts = number  # read by the delivery loop after every failure
        else:
            sim._tx_queue.retry_interval = float(number)
        return call_result.ChangeConfiguration(status=ConfigurationStatus.accepted)

    @after(Action.change_configuration)
    async def after_change_configuration(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "configuration")

    @on(Action.send_local_list)
    async def on_send_local_list(
        self,
        list_version: int,
        update_type: str,
        local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> Any:
        status = self._sim.authorization.update(list_version, update_type, local_authorization_list)
        return call_result.SendLocalList(status=status)

    @on(Action.get_local_list_version)
    async def on_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(list_version=self._sim.authorization.list_version())

    @on(Action.clear_cache)
    async def on_clear_cache(self, **_: Any) -> Any:
        cleared = self._sim.authorization.clear_cache()
        return call_result.ClearCache(
            status=ClearCacheStatus.accepted if cleared else ClearCacheStatus.rejected
        )

    @on(Action.reserve_now)
    async def on_reserve_now(
        self,
        connector_id: int,
        expiry_date: str,
        id_tag: str,
        reservation_id: int,
        call_unique_id: str,
        **_: Any,
    ) -> Any:
        sim = self._sim
        expires_at = datetime.fromisoformat(expiry_date.replace("Z", "+00:00"))
        held = Held(reservation_id, id_tag, expires_at)
        status = sim._reserve(connector_id, held)
        conn = sim._reserved_connector(reservation_id)
        if status == ReservationStatus.accepted and conn is not None:
            hold = conn
            self._plan(call_unique_id, lambda: sim._hold_until_expiry(hold, held))
        return call_result.ReserveNow(status=status)

    @after(Action.reserve_now)
    async def after_reserve_now(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "reserve")

    @on(Action.cancel_reservation)
    async def on_cancel_reservation(
        self, reservation_id: int, call_unique_id: str, **_: Any
    ) -> Any:
        sim = self._sim
        conn = sim._reserved_connector(reservation_id)
        if conn is None:
            return call_result.CancelReservation(status=CancelReservationStatus.rejected)
        conn.held = None  # at once: a start may follow the answer immediately
        self._plan(call_unique_id, lambda: sim._release(conn))
        return call_result.CancelReservation(status=CancelReservationStatus.accepted)

    @after(Action.cancel_reservation)
    async def after_cancel_reservation(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "cancel-reservation")

    # ---- certificates (simulator/certificates.py) --------------------------------------------

    @on(Action.install_certificate)
    async def on_install_certificate(
        self, certificate_type: str, certificate: str, **_: Any
    ) -> Any:
        status = self._sim.certificates.install(certificate_type, certificate)
        return call_result.InstallCertificate(status=status)

    @on(Action.get_installed_certificate_ids)
    async def on_get_installed_certificate_ids(self, certificate_type: str, **_: Any) -> Any:
        found = self._sim.certificates.ids(certificate_type)
        return call_result.GetInstalledCertificateIds(
            status="Accepted" if found else "NotFound", certificate_hash_data=found or None
        )

    @on(Action.delete_certificate)
    async def on_delete_certificate(self, certificate_hash_data: dict[str, Any], **_: Any) -> Any:
        status = self._sim.certificates.delete(certificate_hash_data)
        return call_result.DeleteCertificate(status=status)

    @on(Action.certificate_signed)
    async def on_certificate_signed(self, certificate_chain: str, **_: Any) -> Any:
        status = self._sim.certificates.signed(certificate_chain)
        return call_result.CertificateSigned(status=status)

    # ---- smart charging (simulator/smart.py) ------------------------------------------------

    @on(Action.set_charging_profile)
    async def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> Any:
        sim = self._sim
        conn = sim._outlet(connector_id) if connector_id else None
        if connector_id and conn is None:
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        tx_id = conn.tx_id if conn is not None else None
        if not sim.profiles.set(connector_id, cs_charging_profiles, tx_id):
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        sim.refresh_limits()
        return call_result.SetChargingProfile(status=ChargingProfileStatus.accepted)

    @on(Action.clear_charging_profile)
    async def on_clear_charging_profile(
        self,
        id: int | None = None,
        connector_id: int | None = None,
        charging_profile_purpose: str | None = None,
        stack_level: int | None = None,
        **_: Any,
    ) -> Any:
        sim = self._sim
        removed = sim.profiles.clear(id, connector_id, charging_profile_purpose, stack_level)
        sim.refresh_limits()
        status = (
            ClearChargingProfileStatus.accepted if removed else ClearChargingProfileStatus.unknown
        )
        return call_result.ClearChargingProfile(status=status)

    @on(Action.get_composite_schedule)
    async def on_get_composite_schedule(
        self, connector_id: int, duration: int, charging_rate_unit: str | None = None, **_: Any
    ) -> Any:
        sim = self._sim
        conn = sim._outlet(connector_id) if connector_id else None
        if connector_id and conn is None:
            return call_result.GetCompositeSchedule(status=GetCompositeScheduleStatus.rejected)
        schedule = sim.profiles.composite(
            connector_id,
            duration,
            charging_rate_unit or "W",
            sim._config.power_kw * 1000.0,
            conn.tx_id if conn is not None else None,
            conn.tx_started if conn is not None else None,
        )
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted,
            connector_id=connector_id,
            schedule_start=schedule["start_schedule"],
            charging_schedule=schedule,
        )

    # ---- firmware, diagnostics, logs (simulator/maintenance.py) -------------------------------

    @on(Action.update_firmware)
    async def on_update_firmware(self, location: str, call_unique_id: str, **_: Any) -> Any:
        work = self._sim.maintenance
        self._plan(call_unique_id, lambda: work.update_firmware(location))
        return call_result.UpdateFirmware()

    @on(Action.signed_update_firmware)
    async def on_signed_update_firmware(
        self, request_id: int, firmware: dict[str, Any], call_unique_id: str, **_: Any
    ) -> Any:
        if "BEGIN CERTIFICATE" not in str(firmware.get("signing_certificate", "")):
            return call_result.SignedUpdateFirmware(status=UpdateFirmwareStatus.invalid_certificate)
        work = self._sim.maintenance
        location = str(firmware["location"])
        self._plan(call_unique_id, lambda: work.update_firmware(location, request_id))
        return call_result.SignedUpdateFirmware(status=UpdateFirmwareStatus.accepted)

    @on(Action.get_diagnostics)
    async def on_get_diagnostics(self, location: str, call_unique_id: str, **_: Any) -> Any:
        sim = self._sim
        if not sim._config.diagnostics:
            return call_result.GetDiagnostics()
        name = f"{sim._id}-diagnostics.txt"
        self._plan(call_unique_id, lambda: sim.maintenance.upload_diagnostics(location, name))
        return call_result.GetDiagnostics(file_name=name)

    @on(Action.get_log)
    async def on_get_log(
        self,
        log: dict[str, Any],
        log_type: str,
        request_id: int,
        call_unique_id: str,
        **_: Any,
    ) -> Any:
        sim = self._sim
        name = f"{sim._id}-{log_type.lower()}.txt"
        location = str(log["remote_location"])
        self._plan(
            call_unique_id,
            lambda: sim.maintenance.upload_log(location, name, request_id, log_type),
        )
        return call_result.GetLog(status=LogStatus.accepted, filename=name)

    @on(Action.extended_trigger_message)
    async def on_extended_trigger_message(
        self,
        requested_message: str,
        call_unique_id: str,
        connector_id: int | None = None,
        **_: Any,
    ) -> Any:
        sim = self._sim
        if connector_id not in (None, 0) and sim._outlet(connector_id) is None:
            return call_result.ExtendedTriggerMessage(status=TriggerMessageStatus.rejected)
        plans: dict[str, PlanFactory] = {
            MessageTrigger.boot_notification: sim._boot_once,
            MessageTrigger.heartbeat: sim._heartbeat_once,
            MessageTrigger.status_notification: functools.partial(
                sim._send_statuses, connector_id, force=True
            ),
            MessageTrigger.meter_values: functools.partial(
                sim._send_triggered_meter_values, connector_id
            ),
            "FirmwareStatusNotification": sim.maintenance.report_firmware_status,
            "LogStatusNotification": sim.maintenance.report_log_status,
            "SignChargePointCertificate": sim.request_certificate,
        }
        factory = plans.get(requested_message)
        if factory is None:
            return call_result.ExtendedTriggerMessage(status=TriggerMessageStatus.not_implemented)
        self._plan(call_unique_id, factory)
        return call_result.ExtendedTriggerMessage(status=TriggerMessageStatus.accepted)

    @after(Action.update_firmware)
    async def after_update_firmware(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "update_firmware")

    @after(Action.signed_update_firmware)
    async def after_signed_update_firmware(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "signed_update_firmware")

    @after(Action.get_diagnostics)
    async def after_get_diagnostics(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "get_diagnostics")

    @after(Action.get_log)
    async def after_get_log(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "get_log")

    @after(Action.extended_trigger_message)
    async def after_extended_trigger_message(self, call_unique_id: str, **_: Any) -> None:
        self._run_plan(call_unique_id, "extended_trigger_message")

    @on(Action.data_transfer)
    async def on_data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None, **_: Any
    ) -> Any:
        sim = self._sim
        if vendor_id != COST_VENDOR or not sim._config.cost_display:
            return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
        if message_id not in COST_MESSAGES:
            return call_result.DataTransfer(status=DataTransferStatus.unknown_message_id)
        try:
            shown = json.loads(data or "")
        except ValueError:
            return call_result.DataTransfer(status=DataTransferStatus.rejected)
        sim.display.append((message_id, shown))
        return call_result.DataTransfer(status=DataTransferStatus.accepted)
