"""Prices on the charger's display (the Open Charge Alliance's California Pricing messages over
DataTransfer): the driver's price at the start, the running cost, the final cost, from the
tariff billing uses, in the driver's language; nothing for chargers that do not show them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.app import create_app
from backend.chargers.simulator import SimulatedChargePoint
from backend.services.price_display import PriceDisplay
from backend.settings import Settings
from tests.helpers.charging import driver_with_tag, priced_charger, session_of, simulator
from tests.helpers.server import LiveServer, served
from tests.helpers.statements import statements_matching
from tests.helpers.waiting import eventually

_SUPPORT_READ = re.compile(r"^\s*SELECT\b.*\bFROM charger_configuration_key\b", re.I | re.S)


def shown(sim: SimulatedChargePoint, message_id: str) -> list[dict[str, Any]]:
    return [data for kind, data in sim.display if kind == message_id]


async def _display(sim: SimulatedChargePoint) -> list[str]:
    return [kind for kind, _ in sim.display]


async def _configuration_read(live: LiveServer, charger_id: str) -> None:
    """Wait until the upkeep has read the charger's configuration (and so knows its display)."""
    await eventually(
        lambda: live.http.get(f"/admin/chargers/{charger_id}/configuration"),
        lambda r: r.json()["reported_at"] is not None,
    )


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
        await _configuration_read(live, cid)
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


async def test_a_charger_that_shows_no_prices_is_not_asked_about_it_at_every_meter_value(
    upkeep: LiveServer,
) -> None:
    """The running cost is due at every MeterValues here; whether the charger shows prices is
    read once, not once per reading (ten thousand chargers send a hundred a second)."""
    live = upkeep
    display: PriceDisplay = live.app.state.price_display
    display.running_every = 0.0
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SHOW-ONCE")
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        await _configuration_read(live, cid)
        with statements_matching(
            live.app.state.db_engine, _SUPPORT_READ, bound="CustomDisplayCostAndPrice"
        ) as reads:
            transaction_id = await sim.start_local(1, "SHOW-ONCE")
            assert transaction_id is not None
            # MeterValues every 0.1 s: wait for a dozen readings on the session.
            await eventually(
                lambda: session_of(live.http, transaction_id), lambda s: s["energy_wh"] > 0
            )
            first = await session_of(live.http, transaction_id)
            await asyncio.sleep(1.2)
            later = await session_of(live.http, transaction_id)
        assert later["energy_wh"] > first["energy_wh"]  # the readings did arrive meanwhile
        await sim.stop_local(1)
    assert len(reads) == 1, reads
    assert sim.display == []


async def test_a_charger_that_starts_showing_prices_gets_the_running_cost_once_read_again(
    upkeep: LiveServer,
) -> None:
    live = upkeep
    display: PriceDisplay = live.app.state.price_display
    display.running_every = 0.0
    display.support_ttl = 0.3
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SHOW-LATER")
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        await _configuration_read(live, cid)
        transaction_id = await sim.start_local(1, "SHOW-LATER")
        assert transaction_id is not None
        await eventually(
            lambda: session_of(live.http, transaction_id), lambda s: s["energy_wh"] > 0
        )
        assert shown(sim, "RunningCost") == []
        sim._config.cost_display = True  # e.g. a firmware update turned the display on
        fetched = await live.http.post(
            f"/admin/chargers/{cid}/configuration/fetch",
            json={"keys": ["CustomDisplayCostAndPrice"]},
        )
        assert fetched.status_code == 200, fetched.text
        await eventually(lambda: _display(sim), lambda kinds: "RunningCost" in kinds)
        assert shown(sim, "RunningCost")[0]["transactionId"] == transaction_id
        await sim.stop_local(1)
