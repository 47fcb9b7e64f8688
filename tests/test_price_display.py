"""Prices on the charger's display (the Open Charge Alliance's California Pricing messages over
DataTransfer): the driver's price at the start, the running cost, the final cost, from the
tariff billing uses, in the driver's language; nothing for chargers that do not show them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.app import create_app
from backend.chargers.simulator import SimulatedChargePoint
from backend.settings import Settings
from tests.helpers.charging import driver_with_tag, priced_charger, session_of, simulator
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually


def shown(sim: SimulatedChargePoint, message_id: str) -> list[dict[str, Any]]:
    return [data for kind, data in sim.display if kind == message_id]


async def _display(sim: SimulatedChargePoint) -> list[str]:
    return [kind for kind, _ in sim.display]


@pytest.fixture
async def upkeep(live_settings: Settings) -> AsyncIterator[LiveServer]:
    """Chargers are read once by the upkeep, which learns which ones show prices."""
    settings = live_settings.model_copy(update={"charger_sync_seconds": 0.2})
    async with served(create_app(settings)) as live:
        yield live


async def test_the_display_shows_price_running_cost_and_final_cost(upkeep: LiveServer) -> None:
    live = upkeep
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SHOW-EN", language="en")
    cid = charger["id"]
    base = f"/admin/chargers/{cid}/configuration"
    async with simulator(live, cid, cost_display=True) as sim:
        await eventually(
            lambda: live.http.get(base),
            lambda r: (
                {k["key"]: k["value"] for k in r.json()["keys"]}.get("CustomDisplayCostAndPrice")
                == "true"
            ),
        )
        started = await live.http.post(
            f"/admin/chargers/{cid}/remote-start", json={"connector_id": 1, "id_tag": "SHOW-EN"}
        )
        session_id = started.json()["session_id"]
        await eventually(lambda: _display(sim), lambda kinds: "RunningCost" in kinds)
        (price,) = shown(sim, "SetUserPrice")
        assert price["idToken"] == "SHOW-EN"
        assert price["priceText"] == (
            "4.50 kr/kWh, start fee 5.00 kr, idle 2.00 kr/min after 15 min (incl. VAT)"
        )
        assert price["priceTextExtra"] == [
            {
                "format": "UTF8",
                "language": "sv",
                "content": "4,50 kr/kWh, startavgift 5,00 kr, tomgång 2,00 kr/min efter 15 min "
                "(inkl. moms)",
            }
        ]
        running = shown(sim, "RunningCost")[0]
        assert running["transactionId"] == session_id
        assert running["chargingPrice"] == {"kWhPrice": 4.5, "hourPrice": 0.0, "flatFee": 5.0}
        assert running["cost"] >= 5.0  # the start fee at least
        stopped = await live.http.post(f"/admin/sessions/{session_id}/stop")
        assert stopped.json()["status"] == "Accepted"
        session = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "completed"
        )
        await eventually(lambda: _display(sim), lambda kinds: "FinalCost" in kinds)
        (final,) = shown(sim, "FinalCost")
        assert final["transactionId"] == session_id
        assert final["cost"] == session["cost_minor"] / 100  # what the receipt says
        assert final["priceText"].startswith("Total ")


async def test_chargers_that_show_no_prices_get_none(upkeep: LiveServer) -> None:
    live = upkeep
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SHOW-NONE")
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        await eventually(
            lambda: live.http.get(f"/admin/chargers/{cid}/configuration"),
            lambda r: r.json()["reported_at"] is not None,
        )
        transaction_id = await sim.start_local(1, "SHOW-NONE")
        assert transaction_id is not None
        await sim.stop_local(1)
        await eventually(
            lambda: session_of(live.http, transaction_id), lambda s: s["status"] == "completed"
        )
        await asyncio.sleep(0.3)  # time for a message that should not come
    assert sim.display == []
    calls = [action for action, _ in sim.received]
    assert "GetConfiguration" in calls  # the upkeep read it (and so knows it shows nothing)
    assert "DataTransfer" not in calls
