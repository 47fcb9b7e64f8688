"""A bare OCPP 1.6 client for protocol tests: we choose every frame it sends."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import websockets
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.typing import Subprotocol

from backend.chargers.protocol import ocpp_now
from backend.chargers.typed_ocpp import ChargePoint, on
from tests.helpers.factories import charger_key

FACTORY_KEY = "\x00the key make_charger got"  # bare_charger's default: a sentinel


def basic_auth(username: str, password: str | bytes) -> dict[str, str]:
    raw = password if isinstance(password, bytes) else password.encode()
    token = base64.b64encode(username.encode() + b":" + raw).decode("ascii")
    return {"Authorization": f"Basic {token}"}


class BareChargePoint(ChargePoint):
    """Answers the central system's CALLs plainly and records them."""

    def __init__(self, *args: Any, remote_start: str = "Accepted", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.remote_start_answer = remote_start
        self.received: list[tuple[str, dict[str, Any]]] = []

    @on(Action.trigger_message)
    async def on_trigger(self, **kwargs: Any) -> call_result.TriggerMessage:
        self.received.append(("TriggerMessage", kwargs))
        return call_result.TriggerMessage(status="Accepted")

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, **kwargs: Any) -> call_result.RemoteStartTransaction:
        self.received.append(("RemoteStartTransaction", kwargs))
        return call_result.RemoteStartTransaction(status=self.remote_start_answer)

    @on(Action.remote_stop_transaction)
    async def on_remote_stop(self, **kwargs: Any) -> call_result.RemoteStopTransaction:
        self.received.append(("RemoteStopTransaction", kwargs))
        return call_result.RemoteStopTransaction(status="Accepted")

    async def boot(self) -> Any:
        return await self.call(
            call.BootNotification(charge_point_vendor="Test", charge_point_model="Bare"),
            suppress=False,
        )

    async def call_authorize(self, id_tag: str) -> str:
        """Authorize; the idTagInfo status."""
        result = await self.call(call.Authorize(id_tag=id_tag), suppress=False)
        return str(result.id_tag_info["status"])

    async def start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str | None = None
    ) -> Any:
        return await self.call(
            call.StartTransaction(
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                timestamp=timestamp or ocpp_now(),
            ),
            suppress=False,
        )

    async def stop_transaction(self, transaction_id: int, meter_stop: int, **kwargs: Any) -> Any:
        return await self.call(
            call.StopTransaction(
                meter_stop=meter_stop,
                timestamp=kwargs.pop("timestamp", ocpp_now()),
                transaction_id=transaction_id,
                **kwargs,
            ),
            suppress=False,
        )

    async def meter(self, connector_id: int, transaction_id: int, wh: int, w: float) -> Any:
        sampled = [
            {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": str(w), "measurand": "Power.Active.Import", "unit": "W"},
        ]
        return await self.call(
            call.MeterValues(
                connector_id=connector_id,
                transaction_id=transaction_id,
                meter_value=[{"timestamp": ocpp_now(), "sampled_value": sampled}],
            ),
            suppress=False,
        )

    async def status(self, connector_id: int, status: str, error_code: str = "NoError") -> Any:
        return await self.call(
            call.StatusNotification(
                connector_id=connector_id, error_code=error_code, status=status
            ),
            suppress=False,
        )


@contextlib.asynccontextmanager
async def bare_charger(
    ocpp_url: str,
    charger_id: str,
    *,
    listen: bool = True,
    password: str | bytes | None = FACTORY_KEY,
    charge_point_class: type[BareChargePoint] = BareChargePoint,
    **kwargs: Any,
) -> AsyncIterator[BareChargePoint]:
    """Connect; with listen=False nothing reads the socket (a charger that never answers).

    It sends the key make_charger got unless `password` is given (None: no credentials).
    """
    if password == FACTORY_KEY:
        password = charger_key(charger_id)
    headers = basic_auth(charger_id, password) if password is not None else {}
    ws = await websockets.connect(
        f"{ocpp_url}/{charger_id}",
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=headers,
    )
    charge_point = charge_point_class(charger_id, ws, response_timeout=10, **kwargs)
    task = asyncio.create_task(charge_point.start()) if listen else None
    try:
        yield charge_point
    finally:
        if task is not None:
            task.cancel()
        await ws.close()
