"""The OCPP 1.6 messages a charge point sends us, answered through the domain services."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, DataTransferStatus, RegistrationStatus

from backend.chargers.protocol import (
    FRAME_LOGGER,
    RobustChargePoint,
    ocpp_now,
    ocpp_time,
    parse_ocpp_time,
)
from backend.db import utcnow
from backend.services.charger_state import BootInfo
from backend.services.charging import ENERGY, Sample

if TYPE_CHECKING:
    from backend.chargers.central import CentralSystem

log = logging.getLogger(__name__)

_TO_BASE_UNIT = {"kWh": 1000.0, "kW": 1000.0, "kvarh": 1000.0, "kvar": 1000.0}


def parse_meter_values(meter_value: list[dict[str, Any]]) -> list[Sample]:
    """MeterValues' sampledValue entries in base units (Wh, W); spec defaults applied."""
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
                log.warning("skipped a sampled value that is not a number: %r", sampled["value"])
                continue
            base_unit = {"kWh": "Wh", "kW": "W"}.get(unit or "", unit)
            samples.append(Sample(measurand, value, base_unit, sampled.get("phase"), at))
    return samples


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
        status = await self.central.state.boot(self.id, info)
        accepted = status == RegistrationStatus.accepted
        interval = self.central.heartbeat_interval if accepted else 30
        return call_result.BootNotification(
            current_time=ocpp_now(), interval=interval, status=status
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        await self.central.seen(self.id)
        return call_result.Heartbeat(current_time=ocpp_now())

    @on(Action.status_notification)
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
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
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> call_result.StartTransaction:
        transaction_id, status = await self.central.charging.on_start_transaction(
            self.id, connector_id, id_tag, meter_start, parse_ocpp_time(timestamp)
        )
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info={"status": status}
        )

    @on(Action.meter_values)
    async def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> call_result.MeterValues:
        samples = parse_meter_values(meter_value)
        await self.central.charging.on_meter_values(
            self.id, connector_id, kwargs.get("transaction_id"), samples
        )
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        await self.central.charging.on_stop_transaction(
            self.id,
            transaction_id,
            meter_stop,
            parse_ocpp_time(timestamp),
            kwargs.get("reason"),
            kwargs.get("transaction_data"),
        )
        if "id_tag" in kwargs:
            status, _ = await self.central.charging.authorize(self.id, kwargs["id_tag"])
            return call_result.StopTransaction(id_tag_info={"status": status})
        return call_result.StopTransaction()

    @on(Action.data_transfer)
    async def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)
