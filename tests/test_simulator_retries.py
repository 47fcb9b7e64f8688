"""The simulator delivers transaction messages like a real charge point (OCPP 1.6 §4.x).

Start/StopTransaction and a transaction's MeterValues go out in order; a CALLERROR or no
answer is retried after TransactionMessageRetryInterval × attempts so far, up to
TransactionMessageAttempts; a lost connection is no attempt: the message goes out after
the reconnect, before anything newer. The central system here is a small fake built on the
`ocpp` library's own server side, so each test chooses what it refuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.exceptions import InternalError
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from backend.chargers.protocol import ocpp_now
from backend.chargers.simulator import SimulatedChargePoint, SimulatorConfig
from backend.chargers.typed_ocpp import ChargePoint, on
from tests.helpers.waiting import eventually

TX_ACTIONS = {"StartTransaction", "StopTransaction", "MeterValues"}


class FakeCentral:
    """A scripted central system: refuses or drops chosen transaction messages."""

    def __init__(self) -> None:
        self.accepting = True  # False: every new connection is closed before it can boot
        self.refuse: dict[str, int] = {}  # action -> how many more to answer InternalError
        self.drop: dict[str, int] = {}  # action -> how many more to drop the link on, unanswered
        self.stall: dict[str, int] = {}  # action -> how many more to answer only after a while
        self.stalled = asyncio.Event()  # set to let the stalled answers go out (too late)
        self.seen: list[tuple[str, str, dict[str, Any]]] = []  # (action, outcome, payload)
        self.ids = itertools.count(101)
        self.side: _CentralSide | None = None
        self.port = 0

    def delivered(self) -> list[tuple[str, Any]]:
        """(action, transactionId) of what was answered with a CALLRESULT, in order."""
        return [(a, p.get("transaction_id")) for a, o, p in self.seen if o == "accepted"]

    async def handle(self, ws: ServerConnection) -> None:
        if not self.accepting:
            await ws.close()
            return
        side = _CentralSide("CP-RETRY", ws, self)
        self.side = side
        with contextlib.suppress(ConnectionClosed):
            await side.start()


class _CentralSide(ChargePoint):
    def __init__(self, cp_id: str, ws: ServerConnection, script: FakeCentral) -> None:
        super().__init__(cp_id, ws, response_timeout=5)
        self.script = script

    async def _transaction_message(self, action: str, payload: dict[str, Any]) -> None:
        script = self.script
        if script.drop.get(action, 0) > 0:
            script.drop[action] -= 1
            script.seen.append((action, "dropped the link", payload))
            await self._connection.close()
            raise ConnectionClosed(None, None)
        if script.stall.get(action, 0) > 0:
            script.stall[action] -= 1
            script.seen.append((action, "stalled", payload))
            await script.stalled.wait()  # the charger has given up on this answer by then
            return
        if script.refuse.get(action, 0) > 0:
            script.refuse[action] -= 1
            script.seen.append((action, "InternalError", payload))
            raise InternalError(description="database is read-only (test)")
        script.seen.append((action, "accepted", payload))

    @on(Action.boot_notification)
    async def on_boot(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=ocpp_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.status_notification)
    async def on_status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=ocpp_now())

    @on(Action.authorize)
    async def on_authorize(self, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.start_transaction)
    async def on_start(self, **payload: Any) -> call_result.StartTransaction:
        await self._transaction_message("StartTransaction", payload)
        return call_result.StartTransaction(
            transaction_id=next(self.script.ids), id_tag_info={"status": "Accepted"}
        )

    @on(Action.meter_values)
    async def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        await self._transaction_message("MeterValues", payload)
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    async def on_stop(self, **payload: Any) -> call_result.StopTransaction:
        await self._transaction_message("StopTransaction", payload)
        return call_result.StopTransaction()


@pytest.fixture
async def central() -> AsyncIterator[FakeCentral]:
    script = FakeCentral()
    async with serve(
        script.handle, "127.0.0.1", 0, subprotocols=[Subprotocol("ocpp1.6")]
    ) as server:
        script.port = server.sockets[0].getsockname()[1]
        yield script


@contextlib.asynccontextmanager
async def charge_point(central: FakeCentral, **config: Any) -> AsyncIterator[SimulatedChargePoint]:
    config = {
        "meter_interval": 60.0,  # no periodic MeterValues unless a test asks for them
        "backoff_initial": 0.05,
        "backoff_max": 0.2,
        "transaction_message_retry_interval": 0.02,
        **config,
    }
    sim = SimulatedChargePoint(
        SimulatorConfig(
            url=f"ws://127.0.0.1:{central.port}/ocpp", charge_point_id="CP-RETRY", **config
        )
    )
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.booted.wait(), 10)
        yield sim
    finally:
        await sim.stop()
        await asyncio.wait_for(task, 10)


def stops(sim: SimulatedChargePoint) -> list[tuple[int, str]]:
    return [(n, outcome) for a, n, outcome in sim.transaction_log if a == "StopTransaction"]


async def test_a_refused_stop_transaction_is_retried_after_interval_times_attempts(
    central: FakeCentral, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.chargers.simulator")
    async with charge_point(central, transaction_message_attempts=5) as sim:
        tx = await sim.start_local(1, "TAG")
        central.refuse["StopTransaction"] = 2
        await sim.stop_local(1)
        await eventually(lambda: asyncio.sleep(0, stops(sim)), lambda s: s[-1][1] == "accepted")
    assert stops(sim) == [(1, "InternalError"), (2, "InternalError"), (3, "accepted")]
    refused_then_taken = [(a, o) for a, o, p in central.seen if a == "StopTransaction"]
    assert refused_then_taken == [("StopTransaction", "InternalError")] * 2 + [
        ("StopTransaction", "accepted")
    ]
    assert central.delivered()[-1] == ("StopTransaction", tx)
    # Waits of interval × previous attempts (0.02 s): 1 × after the first, 2 × after the second.
    waits = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [w.rsplit(" ", 1)[-1] for w in waits] == ["0.02s", "0.04s"]
    assert sim.queued_transaction_messages == []


async def test_a_message_refused_every_time_is_dropped_with_a_log_and_the_queue_moves_on(
    central: FakeCentral, caplog: pytest.LogCaptureFixture
) -> None:
    async with charge_point(central, transaction_message_attempts=5) as sim:
        assert central.side is not None
        # The central system lowers the attempts, as an operator would.
        changed = await central.side.call(
            call.ChangeConfiguration(key="TransactionMessageAttempts", value="3")
        )
        assert changed.status == "Accepted"
        config = await central.side.call(call.GetConfiguration(key=["TransactionMessageAttempts"]))
        assert config.configuration_key[0]["value"] == "3"
        first = await sim.start_local(1, "TAG")
        central.refuse["StopTransaction"] = 1000
        await sim.stop_local(1)
        await eventually(lambda: asyncio.sleep(0, stops(sim)), lambda s: s[-1][1] == "dropped")
        central.refuse.clear()
        second = await sim.start_local(1, "TAG")  # the queue is not stuck behind the dropped one
    refused = [(n, "InternalError") for n in (1, 2, 3)]
    assert stops(sim) == [*refused, (3, "dropped")]
    assert [a for a, o, _ in central.seen if a == "StopTransaction"] == ["StopTransaction"] * 3
    assert central.delivered() == [("StartTransaction", None), ("StartTransaction", None)]
    assert first is not None and second is not None and second != first
    dropped = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 1 and dropped[0].levelno == logging.ERROR
    assert "StopTransaction" in dropped[0].getMessage()


async def test_a_stop_transaction_not_answered_in_time_is_retried(central: FakeCentral) -> None:
    async with charge_point(central, response_timeout=0.5) as sim:
        tx = await sim.start_local(1, "TAG")
        central.stall["StopTransaction"] = 1
        stopping = asyncio.create_task(sim.stop_local(1))
        await eventually(lambda: asyncio.sleep(0, stops(sim)), lambda s: s[:1] == [(1, "Timeout")])
        # The stalled central system catches up: its first answer comes too late and is
        # ignored, the retry is answered in time.
        central.stalled.set()
        await eventually(lambda: asyncio.sleep(0, stops(sim)), lambda s: s[-1][1] == "accepted")
        await stopping
    assert stops(sim) == [(1, "Timeout"), (2, "accepted")]
    assert [(a, o) for a, o, _ in central.seen if a == "StopTransaction"] == [
        ("StopTransaction", "stalled"),
        ("StopTransaction", "accepted"),
    ]
    assert central.delivered()[-1] == ("StopTransaction", tx)


async def test_a_stop_behind_a_refused_start_waits_and_carries_the_start_s_transaction_id(
    central: FakeCentral,
) -> None:
    async with charge_point(central, transaction_message_retry_interval=0.2) as sim:
        central.refuse["StartTransaction"] = 2
        starting = asyncio.create_task(sim.start_local(1, "TAG"))
        await eventually(
            lambda: asyncio.sleep(0, central.seen), lambda seen: len(seen) >= 1
        )  # the first StartTransaction was refused; the charger retries it
        stopping = asyncio.create_task(sim.stop_local(1))
        await eventually(
            lambda: asyncio.sleep(0, sim.queued_transaction_messages),
            lambda q: q == ["StartTransaction", "StopTransaction"],
        )
        await stopping
        assert await starting is None  # answered, but stopped before charging began
        await eventually(lambda: asyncio.sleep(0, central.delivered()), lambda d: len(d) == 2)
    start_id = next(p for a, o, p in central.seen if a == "StopTransaction")["transaction_id"]
    assert [(a, o) for a, o, _ in central.seen] == [
        ("StartTransaction", "InternalError"),
        ("StartTransaction", "InternalError"),
        ("StartTransaction", "accepted"),
        ("StopTransaction", "accepted"),
    ]
    assert start_id == 101  # the id the accepted StartTransaction was given


async def test_messages_from_a_lost_link_go_out_after_the_reconnect_in_order_before_new_ones(
    central: FakeCentral,
) -> None:
    async with charge_point(central) as sim:
        first = await sim.start_local(1, "TAG")
        second = await sim.start_local(2, "TAG")
        # The link drops while StopTransaction waits for its answer; nothing may reconnect yet.
        central.drop["StopTransaction"] = 1
        central.accepting = False
        await sim.stop_local(1)
        await eventually(
            lambda: asyncio.sleep(0, sim.connected.is_set()), lambda connected: not connected
        )
        await sim.stop_local(2)  # offline: queued behind the unanswered one
        assert sim.queued_transaction_messages == ["StopTransaction", "StopTransaction"]
        central.accepting = True
        await eventually(
            lambda: asyncio.sleep(0, sim.queued_transaction_messages), lambda q: q == []
        )
        third = await sim.start_local(1, "TAG")
    assert central.delivered() == [
        ("StartTransaction", None),
        ("StartTransaction", None),
        ("StopTransaction", first),
        ("StopTransaction", second),
        ("StartTransaction", None),
    ]
    assert third not in (first, second)
    # The unanswered send was no attempt: the same message went out again as attempt 1.
    assert stops(sim) == [(1, "disconnected"), (1, "accepted"), (1, "accepted")]
    assert [a for a, o, _ in central.seen if o == "dropped the link"] == ["StopTransaction"]


async def test_a_transaction_s_meter_values_queue_behind_a_refused_one_in_order(
    central: FakeCentral,
) -> None:
    async with charge_point(central, meter_interval=0.05, time_scale=60.0) as sim:
        await sim.start_local(1, "TAG")
        central.refuse["MeterValues"] = 2
        await eventually(
            lambda: asyncio.sleep(0, [a for a, o, _ in central.seen if a == "MeterValues"]),
            lambda mv: len(mv) >= 5,
        )
        await sim.stop_local(1)
        await eventually(
            lambda: asyncio.sleep(0, sim.queued_transaction_messages), lambda q: q == []
        )
    delivered = [p for a, o, p in central.seen if a == "MeterValues" and o == "accepted"]
    registers = [
        int(v["value"])
        for p in delivered
        for v in p["meter_value"][0]["sampled_value"]
        if v.get("measurand") == "Energy.Active.Import.Register"
    ]
    assert registers == sorted(registers)  # in the order they were sampled
    assert central.delivered()[-1][0] == "StopTransaction"
    refused = [p for a, o, p in central.seen if a == "MeterValues" and o == "InternalError"]
    assert refused[0]["meter_value"] == delivered[0]["meter_value"]  # the same sample, retried


async def test_the_retry_settings_are_configuration_keys(central: FakeCentral) -> None:
    async with charge_point(central, transaction_message_attempts=4) as sim:
        assert central.side is not None
        side = central.side
        before = await side.call(call.GetConfiguration())
        keys = {k["key"]: k["value"] for k in before.configuration_key}
        assert keys["TransactionMessageAttempts"] == "4"
        assert keys["TransactionMessageRetryInterval"] == "0.02"
        answers = [
            (await side.call(call.ChangeConfiguration(key=key, value=value))).status
            for key, value in [
                ("TransactionMessageRetryInterval", "30"),
                ("TransactionMessageAttempts", "0"),
                ("TransactionMessageRetryInterval", "soon"),
            ]
        ]
        assert answers == ["Accepted", "Rejected", "Rejected"]
        after = await side.call(call.GetConfiguration(key=["TransactionMessageRetryInterval"]))
        assert after.configuration_key[0]["value"] == "30"
        assert sim.queued_transaction_messages == []
