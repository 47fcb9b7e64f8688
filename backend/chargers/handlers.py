"""The OCPP 1.6 messages a charge point sends us, answered through the domain services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OccurenceConstraintViolationError, PropertyConstraintViolationError
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, DataTransferStatus, RegistrationStatus

from backend.chargers.protocol import (
    FRAME_LOGGER,
    RobustChargePoint,
    ocpp_now,
    ocpp_time,
    parse_ocpp_time,
)
from backend.chargers.registry import Connection
from backend.chargers.typed_ocpp import after, on
from backend.db import utcnow
from backend.services import charger_jobs as jobs
from backend.services.charger_state import BootInfo
from backend.services.charging import ENERGY, Sample
from backend.services.errors import NotFoundError

if TYPE_CHECKING:
    from backend.chargers.central import CentralSystem

log = logging.getLogger(__name__)

_TO_BASE_UNIT = {"kWh": 1000.0, "kW": 1000.0, "kvarh": 1000.0, "kvar": 1000.0}

# What a charger may tell us, beyond the JSON schema (which says only "integer"). Ids and meter
# readings land in 32-bit columns; PostgreSQL refuses larger ones, so they are refused here
# with a CALLERROR first and nothing is written.
INT32_MAX = 2**31 - 1
# An energy register above this (about 2.1 GWh) is refused; a meter that large would need a
# BIGINT column. Negative registers are refused too.
MAX_METER_WH = INT32_MAX
# A charger's clock may run this far ahead of ours; a later start or stop time would bill
# minutes that have not happened (chargers set their clock from our Boot/Heartbeat answers).
MAX_CLOCK_AHEAD = timedelta(minutes=10)
# Sampled values in one MeterValues frame; a real charger sends a few dozen at most.
MAX_SAMPLED_VALUES = 200


def _bounded(name: str, value: Any, low: int, high: int) -> int:
    """An integer field within [low, high], else CALLERROR PropertyConstraintViolation."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise PropertyConstraintViolationError(
            description=f"{name} must be an integer from {low} to {high}",
            details={"field": name},
        )
    return value


def _not_ahead(name: str, at: datetime) -> datetime:
    if at > utcnow() + MAX_CLOCK_AHEAD:
        raise PropertyConstraintViolationError(
            description=f"{name} is more than {MAX_CLOCK_AHEAD} ahead of the central "
            "system's clock; set the clock from the BootNotification/Heartbeat currentTime",
            details={"field": name},
        )
    return at


def _count_sampled(meter_value: list[dict[str, Any]], field: str) -> None:
    total = sum(len(entry.get("sampled_value") or []) for entry in meter_value)
    if len(meter_value) > MAX_SAMPLED_VALUES or total > MAX_SAMPLED_VALUES:
        raise OccurenceConstraintViolationError(
            description=f"at most {MAX_SAMPLED_VALUES} sampled values in {field} per message",
            details={"field": field},
        )


def parse_meter_values(meter_value: list[dict[str, Any]]) -> list[Sample]:
    """MeterValues' sampledValue entries in base units (Wh, W); spec defaults applied.

    An energy register outside 0..MAX_METER_WH refuses the whole frame (CALLERROR).
    """
    samples = []
    for entry in meter_value:
        at = parse_ocpp_time(entry["timestamp"])
        for sampled in entry.get("sampled_value", []):
            unit = sampled.get("unit")
            measurand = sampled.get("measurand", ENERGY)
            if measurand == ENERGY and unit is None:
                unit = "Wh"
            try:
                value = float(sampled["value"]) * _TO_BASE_UNIT.get(unit or "", 1.0)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                log.warning("skipped a sampled value that is not a number: %.24r", sampled["value"])
                continue
            if measurand == ENERGY and not 0 <= value <= MAX_METER_WH:
                raise PropertyConstraintViolationError(
                    description=f"{ENERGY} must be from 0 to {MAX_METER_WH} Wh",
                    details={"field": "sampledValue.value"},
                )
            base_unit = {"kWh": "Wh", "kW": "W"}.get(unit or "", unit)
            samples.append(Sample(measurand, value, base_unit, sampled.get("phase"), at))
    return samples


# Handled without a database slot: no query (Heartbeat, DataTransfer), or batched, so that
# one connection at most serves them however many arrive (BootNotification, also bounded by
# boot admission; StatusNotification; MeterValues, group-committed in services/metering.py;
# Start/StopTransaction, group-committed in services/shared_transactions.py). A slot held
# while waiting for a batch would cap the batch at OCPP_HANDLER_CONCURRENCY messages.
_SLOT_FREE = frozenset(
    {
        "Heartbeat",
        "DataTransfer",
        "BootNotification",
        "StatusNotification",
        "MeterValues",
        "StartTransaction",
        "StopTransaction",
    }
)


class CentralChargePoint(RobustChargePoint):
    """One connected charger, as the central system sees it."""

    def __init__(self, charger_id: str, connection: Any, central: CentralSystem) -> None:
        super().__init__(
            charger_id,
            connection,
            response_timeout=central.call_timeout,
            logger=FRAME_LOGGER,
        )
        self.central = central
        self.connection: Connection | None = None  # set by the central system once registered
        # Set by the first BootNotification or StatusNotification: the charger reports itself.
        self.reported = asyncio.Event()

    def call_slot(self, action: str) -> AbstractAsyncContextManager[Any]:
        if action in _SLOT_FREE:
            return contextlib.nullcontext()
        return self.central.handler_slots

    @on(Action.boot_notification)
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        info = BootInfo(
            vendor=charge_point_vendor,
            model=charge_point_model,
            serial_number=kwargs.get("charge_point_serial_number")
            or kwargs.get("charge_box_serial_number"),
            firmware_version=kwargs.get("firmware_version"),
        )
        if not self.central.boot_admitted():
            # A connect storm: OCPP 1.6 §4.2 lets a Pending charge point boot again after
            # `interval`; that beats a boot left to time out in a queue.
            self._answered(RegistrationStatus.pending)
            return call_result.BootNotification(
                current_time=ocpp_now(),
                interval=self.central.boot_retry_interval(),
                status=RegistrationStatus.pending,
            )
        status = await self.central.state.boot(self.id, info)
        self._answered(status)
        accepted = status == RegistrationStatus.accepted
        interval = self.central.heartbeat_interval if accepted else 30
        return call_result.BootNotification(
            current_time=ocpp_now(), interval=interval, status=status
        )

    def _answered(self, status: str) -> None:
        """What the commands to this socket may be (see chargers/relay.py)."""
        self.reported.set()
        if self.connection is not None:
            self.connection.boot_answer = str(status)

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        self.central.seen(self.id)
        return call_result.Heartbeat(current_time=ocpp_now())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        connector_id = _bounded("connectorId", connector_id, 0, INT32_MAX)
        self.reported.set()
        at = parse_ocpp_time(kwargs["timestamp"]) if "timestamp" in kwargs else None
        known = await self.central.state.connector_status(
            self.id, connector_id, status, error_code, at or utcnow()
        )
        if not known:
            log.warning("%s reported unknown connector %s (%s)", self.id, connector_id, status)
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str) -> call_result.Authorize:
        status, expiry = await self.central.charging.authorize(self.id, id_tag)
        info: dict[str, Any] = {"status": status}
        if expiry is not None:
            info["expiryDate"] = ocpp_time(expiry)
        return call_result.Authorize(id_tag_info=info)

    @on(Action.start_transaction)
    async def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        reservation_id: int | None = None,
        **_: Any,
    ) -> call_result.StartTransaction:
        connector_id = _bounded("connectorId", connector_id, 1, INT32_MAX)
        meter_start = _bounded("meterStart", meter_start, 0, MAX_METER_WH)
        at = _not_ahead("timestamp", parse_ocpp_time(timestamp))
        if reservation_id is not None:
            reservation_id = _bounded("reservationId", reservation_id, 0, INT32_MAX)
        try:
            transaction_id, status = await self.central.charging.on_start_transaction(
                self.id, connector_id, id_tag, meter_start, at, reservation_id
            )
        except NotFoundError as error:  # a connector the operator never configured
            raise PropertyConstraintViolationError(
                description=str(error), details={"field": "connectorId"}
            ) from error
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": status}
        )

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        connector_id = _bounded("connectorId", connector_id, 0, INT32_MAX)
        transaction_id = kwargs.get("transaction_id")
        if transaction_id is not None:
            transaction_id = _bounded("transactionId", transaction_id, -INT32_MAX - 1, INT32_MAX)
        _count_sampled(meter_value, "meterValue")
        samples = parse_meter_values(meter_value)
        for entry in meter_value:  # a reading from the future would bill time not yet spent
            _not_ahead("meterValue.timestamp", parse_ocpp_time(entry["timestamp"]))
        await self.central.charging.on_meter_values(self.id, connector_id, transaction_id, samples)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        transaction_id = _bounded("transactionId", transaction_id, -INT32_MAX - 1, INT32_MAX)
        # Below meterStart is the service's plausibility check: recorded, not billed blindly.
        meter_stop = _bounded("meterStop", meter_stop, 0, MAX_METER_WH)
        at = _not_ahead("timestamp", parse_ocpp_time(timestamp))
        # transactionData may hold a whole session's samples: bounded by the frame size only.
        await self.central.charging.on_stop_transaction(
            self.id,
            transaction_id,
            meter_stop,
            at,
            kwargs.get("reason"),
            kwargs.get("transaction_data"),
        )
        if "id_tag" in kwargs:
            async with self.central.handler_slots:  # its own transaction, not batched
                status, _ = await self.central.charging.authorize(self.id, kwargs["id_tag"])
            return call_result.StopTransaction(id_tag_info={"status": status})
        return call_result.StopTransaction()

    # -- firmware, diagnostics and the security extension (services/charger_jobs.py) -------

    @on(Action.firmware_status_notification)
    async def on_firmware_status_notification(
        self, status: str, **_: Any
    ) -> call_result.FirmwareStatusNotification:
        await self.central.jobs.reported(self.id, (jobs.FIRMWARE,), status)
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    async def on_diagnostics_status_notification(
        self, status: str, **_: Any
    ) -> call_result.DiagnosticsStatusNotification:
        await self.central.jobs.reported(self.id, (jobs.DIAGNOSTICS,), status)
        return call_result.DiagnosticsStatusNotification()

    @on(Action.log_status_notification)
    async def on_log_status_notification(
        self, status: str, request_id: int | None = None, **_: Any
    ) -> call_result.LogStatusNotification:
        if request_id is not None:
            request_id = _bounded("requestId", request_id, -INT32_MAX - 1, INT32_MAX)
        await self.central.jobs.reported(self.id, (jobs.LOG,), status, request_id)
        return call_result.LogStatusNotification()

    @on(Action.signed_firmware_status_notification)
    async def on_signed_firmware_status_notification(
        self, status: str, request_id: int | None = None, **_: Any
    ) -> call_result.SignedFirmwareStatusNotification:
        if request_id is not None:
            request_id = _bounded("requestId", request_id, -INT32_MAX - 1, INT32_MAX)
        await self.central.jobs.reported(self.id, (jobs.SIGNED_FIRMWARE,), status, request_id)
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.security_event_notification)
    async def on_security_event_notification(
        self, type: str, timestamp: str, tech_info: str | None = None, **_: Any
    ) -> call_result.SecurityEventNotification:
        at = parse_ocpp_time(timestamp)
        await self.central.jobs.security_event(self.id, type, at, tech_info)
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    async def on_sign_certificate(self, csr: str, **_: Any) -> call_result.SignCertificate:
        """A charger asks for its client certificate: signed (after this answer) if we have
        a CA (services/certificates.py), else Rejected."""
        certificates = self.central.certificates
        accepted = certificates is not None and certificates.accepts_csr()
        return call_result.SignCertificate(status="Accepted" if accepted else "Rejected")

    @after(Action.sign_certificate)
    async def after_sign_certificate(self, csr: str, **_: Any) -> None:
        certificates = self.central.certificates
        if certificates is not None and certificates.accepts_csr():
            certificates.on_csr(self.id, csr)

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
