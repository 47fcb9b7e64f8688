"""Strict OCPP input: what no real charger sends is refused with a CALLERROR, nothing written.

Each of these once left a session `charging` forever, or wrote 20,000 rows, or was an
InternalError on PostgreSQL (a 32-bit column overflowing).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import websockets
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from sqlalchemy import func
from sqlmodel import select
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from backend.chargers.protocol import ocpp_time
from backend.models import ChargingSession, MeterSample
from tests.helpers.charging import driver_with_tag, session_of
from tests.helpers.factories import make_charger
from tests.helpers.server import LiveServer
from tests.ocpp_client import bare_charger, basic_auth

TAG = "RFID-STRICT-1"


async def _count(live: LiveServer, column: Any) -> int:
    async with live.app.state.sessions() as db:
        return int(await db.scalar(select(func.count(column))) or 0)


async def _refused(request: Any) -> str:
    """The CALLERROR code a request got."""
    with pytest.raises(OCPPError) as refused:
        await request
    return str(refused.value.code)


async def _booted(live: LiveServer) -> tuple[dict[str, Any], Any]:
    charger = await make_charger(live.http)  # connectors 1 and 2
    await driver_with_tag(live.http, TAG)
    return charger, bare_charger(live.ocpp_url, charger["id"])


@pytest.mark.parametrize("connector_id", [3, 99, -1, 0, 2**31, 2**31 - 1])
async def test_start_transaction_for_a_connector_that_does_not_exist_leaves_no_session(
    live: LiveServer, connector_id: int
) -> None:
    charger, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        code = await _refused(cp.start_transaction(connector_id, TAG, 1000))
        assert code == "PropertyConstraintViolation"
        assert await _count(live, ChargingSession.id) == 0
        # The connection is fine: a real start on connector 1 still works.
        started = await cp.start_transaction(1, TAG, 1000)
        assert started.id_tag_info["status"] == "Accepted"
    del charger


@pytest.mark.parametrize("meter_start", [-1, -(2**31), 2**31, 10**12])
async def test_a_meter_start_out_of_range_leaves_no_session(
    live: LiveServer, meter_start: int
) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        code = await _refused(cp.start_transaction(1, TAG, meter_start))
        assert code == "PropertyConstraintViolation"
    assert await _count(live, ChargingSession.id) == 0


async def test_a_start_timestamp_far_in_the_future_leaves_no_session(live: LiveServer) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        future = ocpp_time(datetime.now(UTC) + timedelta(days=365))
        code = await _refused(cp.start_transaction(1, TAG, 1000, timestamp=future))
        assert code == "PropertyConstraintViolation"
        assert await _count(live, ChargingSession.id) == 0
        # A clock a little ahead is tolerated.
        soon = ocpp_time(datetime.now(UTC) + timedelta(minutes=2))
        started = await cp.start_transaction(1, TAG, 1000, timestamp=soon)
        assert started.id_tag_info["status"] == "Accepted"


@pytest.mark.parametrize("meter_stop", [-5, 2**31, 10**12])
async def test_a_stop_with_an_absurd_meter_is_refused_and_the_session_stays_open(
    live: LiveServer, meter_stop: int
) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        started = await cp.start_transaction(1, TAG, 1000)
        code = await _refused(cp.stop_transaction(started.transaction_id, meter_stop))
        assert code == "PropertyConstraintViolation"
        assert (await session_of(live.http, started.transaction_id))["status"] == "charging"
        await cp.stop_transaction(started.transaction_id, 1500)
        assert (await session_of(live.http, started.transaction_id))["status"] != "charging"


@pytest.mark.parametrize("transaction_id", [2**31, -(2**31) - 1])
async def test_a_stop_for_a_transaction_id_beyond_32_bits_is_refused(
    live: LiveServer, transaction_id: int
) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        code = await _refused(cp.stop_transaction(transaction_id, 1500))
        assert code == "PropertyConstraintViolation"


async def test_a_stop_time_far_in_the_future_is_refused(live: LiveServer) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        started = await cp.start_transaction(1, TAG, 1000)
        future = ocpp_time(datetime.now(UTC) + timedelta(days=2))
        code = await _refused(cp.stop_transaction(started.transaction_id, 1500, timestamp=future))
        assert code == "PropertyConstraintViolation"
        assert (await session_of(live.http, started.transaction_id))["status"] == "charging"


def _meter_values(transaction_id: int, samples: list[dict[str, str]]) -> call.MeterValues:
    return call.MeterValues(
        connector_id=1,
        transaction_id=transaction_id,
        meter_value=[{"timestamp": ocpp_time(datetime.now(UTC)), "sampled_value": samples}],
    )


async def test_a_meter_values_frame_with_too_many_samples_writes_nothing(
    live: LiveServer,
) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        started = await cp.start_transaction(1, TAG, 1000)
        many = [{"value": str(1000 + i), "unit": "Wh"} for i in range(201)]
        code = await _refused(cp.call(_meter_values(started.transaction_id, many), suppress=False))
        assert code == "OccurenceConstraintViolation"
        assert await _count(live, MeterSample.id) == 0
        await cp.meter(1, started.transaction_id, 1200, 7000.0)  # a real frame still counts
        assert await _count(live, MeterSample.id) == 2


@pytest.mark.parametrize("value", ["-1", "2147483648", "1e12", "5000000"])
async def test_an_energy_register_out_of_range_writes_nothing(live: LiveServer, value: str) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        started = await cp.start_transaction(1, TAG, 1000)
        unit = "kWh" if value == "5000000" else "Wh"  # 5 GWh
        sample = [{"value": value, "unit": unit, "measurand": "Energy.Active.Import.Register"}]
        code = await _refused(
            cp.call(_meter_values(started.transaction_id, sample), suppress=False)
        )
        assert code == "PropertyConstraintViolation"
        assert await _count(live, MeterSample.id) == 0
        session = await session_of(live.http, started.transaction_id)
        assert session["energy_wh"] == 0


@pytest.mark.parametrize("connector_id", [-1, 2**31])
async def test_a_status_for_an_absurd_connector_is_a_call_error(
    live: LiveServer, connector_id: int
) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        code = await _refused(cp.status(connector_id, "Available"))
        assert code == "PropertyConstraintViolation"
        await cp.status(7, "Available")  # unknown but sane: answered (and logged)


async def test_an_oversized_frame_closes_the_socket_with_1009(live: LiveServer) -> None:
    """One MeterValues with 20,000 samples once wrote 20,000 rows; now it never gets read."""
    charger, _ = await _booted(live)
    samples = [{"value": str(i), "unit": "Wh"} for i in range(20_000)]
    frame = json.dumps(
        [2, "big", "MeterValues", {"connectorId": 1, "meterValue": [{"sampledValue": samples}]}]
    )
    assert len(frame) > 64 * 1024
    async with websockets.connect(
        f"{live.ocpp_url}/{charger['id']}",
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=basic_auth(charger["id"], charger["key"]),
        max_size=None,
    ) as ws:
        await ws.send(frame)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert await _count(live, MeterSample.id) == 0


async def test_ocpp_warnings_name_the_message_never_its_id_tag_or_payload(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRET-TAG-4711"
    caplog.set_level(logging.INFO)
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        # Refused by our checks (connector 9 does not exist) ...
        await _refused(cp.start_transaction(9, secret, 1000))
        # ... and by the library's schema check, whose error quotes the value.
        too_long = secret * 2
        await _refused(
            cp.call(call.Authorize(id_tag=too_long), suppress=False, skip_schema_validation=True)
        )
    # The server's loggers; "ocpp" itself is the test client's library logger.
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "ocpp"]
    assert warnings, "the refusals are logged"
    text = "\n".join(r.getMessage() for r in warnings)
    assert "StartTransaction" in text or "Authorize" in text
    assert secret not in text and "SECRET" not in text


@pytest.mark.parametrize(
    "request_",
    [
        call.Authorize(id_tag="AB\u0000C"),
        call.StartTransaction(
            connector_id=1, id_tag="AB\u0000C", meter_start=0, timestamp="2026-01-01T00:00:00Z"
        ),
        call.BootNotification(charge_point_vendor="V\u0000", charge_point_model="M"),
        call.StatusNotification(
            connector_id=1, error_code="NoError", status="Available", info="line\nforged"
        ),
        call.DataTransfer(vendor_id="acme", data="a\u0000b"),
    ],
    ids=["authorize", "start", "boot", "status-newline", "data-transfer"],
)
async def test_nul_in_an_ocpp_string_field_is_a_callerror_not_an_internal_error(
    live: LiveServer, request_: Any
) -> None:
    """NUL in an idTag or a vendor name was an InternalError on PostgreSQL (text refuses it)."""
    charger, connect = await _booted(live)
    async with connect as cp:
        code = await _refused(cp.call(request_, suppress=False))
        assert code == "PropertyConstraintViolation"
        assert await _count(live, ChargingSession.id) == 0
        # The connection is fine, and a frame without one still works.
        assert (await cp.boot()).status == "Accepted"
        started = await cp.start_transaction(1, TAG, 1000)
        assert started.id_tag_info["status"] == "Accepted"
    shown = (await live.http.get(f"/admin/chargers/{charger['id']}")).json()
    assert "\u0000" not in json.dumps(shown)


async def test_a_data_transfer_may_carry_lines_of_text(live: LiveServer) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        answer = await cp.call(call.DataTransfer(vendor_id="acme", data="a\r\n\tb"))
        assert answer.status == "UnknownVendorId"


async def test_a_future_dated_meter_value_is_refused(live: LiveServer) -> None:
    _, connect = await _booted(live)
    async with connect as cp:
        await cp.boot()
        started = await cp.start_transaction(1, TAG, 1000)
        future = ocpp_time(datetime.now(UTC) + timedelta(days=1))
        frame = call.MeterValues(
            connector_id=1,
            transaction_id=started.transaction_id,
            meter_value=[
                {"timestamp": ocpp_time(datetime.now(UTC)), "sampled_value": [{"value": "1100"}]},
                {"timestamp": future, "sampled_value": [{"value": "90000"}]},
            ],
        )
        code = await _refused(cp.call(frame, suppress=False))
        assert code == "PropertyConstraintViolation"
        assert await _count(live, MeterSample.id) == 0
        session = await session_of(live.http, started.transaction_id)
        assert session["energy_wh"] == 0
        # A clock a little ahead is tolerated.
        soon = ocpp_time(datetime.now(UTC) + timedelta(minutes=2))
        frame = call.MeterValues(
            connector_id=1,
            transaction_id=started.transaction_id,
            meter_value=[{"timestamp": soon, "sampled_value": [{"value": "1200"}]}],
        )
        await cp.call(frame, suppress=False)
        assert await _count(live, MeterSample.id) == 1
