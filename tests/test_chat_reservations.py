"""Drivers reserve a connector and queue at a busy station from the chat, in Swedish and
English: the price and terms first, the charger holding the connector for them only, the
fee on the receipt, the queue's turns told on their channel and passed on when let go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.chargers.simulator import SimulatedChargePoint
from backend.settings import Settings
from tests.helpers.charging import TARIFF, charger_of, session_of, simulator
from tests.helpers.chat import chat_driver, invoice_driver, payloads, text_of, wait_for_text
from tests.helpers.factories import make_charger, make_station
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually

ANNA, EMMA, OLLE = "+46701111111", "+46702222222", "+46703333333"


@pytest.fixture
async def live(live_settings: Settings) -> AsyncIterator[LiveServer]:
    """A queue's offer is held for three seconds here, not five minutes."""
    settings = live_settings.model_copy(update={"queue_claim_minutes": 0.05, "sweep_interval": 0.1})
    async with served(create_app(settings)) as running:
        yield running


async def station_with(
    http: httpx.AsyncClient, connectors: int = 2, **tariff: Any
) -> dict[str, Any]:
    station = await make_station(http)
    response = await http.put(f"/admin/stations/{station['id']}/tariff", json={**TARIFF, **tariff})
    assert response.status_code == 200, response.text
    body = [
        {"connector_id": n, "connector_type": "type2", "max_power_kw": 22}
        for n in range(1, connectors + 1)
    ]
    return await make_charger(http, station["id"], connectors=body)


def held_for(sim: SimulatedChargePoint, connector_id: int) -> str | None:
    held = sim._outlets[connector_id].held
    return held.id_tag if held is not None else None


async def test_a_driver_reserves_then_charges_and_pays_the_fee(live: LiveServer) -> None:
    charger = await station_with(live.http, reservation_minutes=10, reservation_fee_minor=500)
    code = charger["connectors"][0]["code"]
    await invoice_driver(live, phone=ANNA)
    await invoice_driver(live, phone=EMMA, language="en")
    anna = chat_driver(live.app, phone=ANNA)
    emma = chat_driver(live.app, phone=EMMA, language_code="en", name="Emma")
    async with simulator(live, charger["id"]) as sim:
        shown = await anna.say(code)
        assert "Du kan reservera uttaget i 10 minuter för 5,00 kr, som läggs på laddningen" in (
            text_of(shown)
        )
        assert payloads(shown) == [f"start:{code}", f"reserve:{code}", "cancel"]
        reserved = text_of(await anna.press(f"reserve:{code}"))
        assert f"Reserverat: uttag {code} vid " in reserved
        assert "(10 min). Reservationsavgift 5,00 kr läggs på laddningen" in reserved
        assert (held_for(sim, 1) or "").startswith("CB-")  # the driver's own virtual tag
        await eventually(
            lambda: charger_of(live.http, charger["id"]),
            lambda c: c["connectors"][0]["status"] == "Reserved",
        )

        other = await emma.say(code)
        assert "reserved for someone else right now" in text_of(other)
        assert payloads(other) == [f"queue:{code}"]
        assert "already have a reservation" not in text_of(await emma.say(f"RESERVE {code}"))

        twice = text_of(await anna.say(f"RESERVERA {charger['connectors'][1]['code']}"))
        assert "Du har redan en reservation" in twice

        starting = await anna.press(f"start:{code}")
        assert "Startar laddaren" in text_of(starting)
        await wait_for_text(anna, "Laddningen har startat")
        sessions = (await live.http.get("/admin/sessions")).json()
        session_id = sessions[0]["id"]
        used = (await live.http.get("/admin/reservations", params={"status": "used"})).json()
        assert [r["session_id"] for r in used] == [session_id]
        await eventually(lambda: session_of(live.http, session_id), lambda s: s["energy_wh"] > 0)
        await anna.command("stop")
        receipt = await wait_for_text(anna, "Kvitto:")
    assert "Reservationsavgift: 5,00 kr" in receipt
    done = await session_of(live.http, session_id)
    energy = round(done["energy_wh"] * 450 / 1000 + 0.000001)
    assert done["cost_minor"] == energy + 500 + 500  # energy, start fee, reservation fee


async def test_a_reservation_can_be_cancelled_and_is_offered_only_where_allowed(
    live: LiveServer,
) -> None:
    charger = await station_with(live.http, reservation_minutes=15)
    plain = await station_with(live.http)  # reservation_minutes 0: not offered
    await invoice_driver(live, phone=EMMA, language="en")
    emma = chat_driver(live.app, phone=EMMA, language_code="en", name="Emma")
    code = charger["connectors"][1]["code"]
    plain_code = plain["connectors"][0]["code"]
    async with simulator(live, charger["id"]) as sim, simulator(live, plain["id"]):
        no_terms = await emma.say(plain_code)
        assert payloads(no_terms) == [f"start:{plain_code}", "cancel"]
        refused = text_of(await emma.say(f"RESERVE {plain_code}"))
        assert "can't be reserved at this station" in refused
        shown = text_of(await emma.say(code))
        assert "You can reserve this connector for 15 minutes." in shown  # no fee, none said
        reserved = text_of(await emma.say("reserve"))  # the connector just shown
        assert f"Reserved: connector {code}" in reserved and "fee" not in reserved
        assert held_for(sim, 2) is not None
        cancelled = text_of(await emma.say("unbook"))
        assert "Your reservation is cancelled" in cancelled
        assert held_for(sim, 2) is None
        assert "You have no reservation" in text_of(await emma.say("unbook"))


async def test_the_queue_offers_a_freed_connector_in_turn(live: LiveServer) -> None:
    charger = await station_with(live.http, connectors=1)
    code = charger["connectors"][0]["code"]
    await invoice_driver(live, phone=EMMA, language="en")
    await invoice_driver(live, phone=OLLE)
    rfid = await live.http.post("/admin/drivers", json={"name": "Card"})
    await live.http.post(f"/admin/drivers/{rfid.json()['id']}/id-tags", json={"id_tag": "BUSY"})
    emma = chat_driver(live.app, phone=EMMA, language_code="en", name="Emma")
    olle = chat_driver(live.app, phone=OLLE, name="Olle")
    async with simulator(live, charger["id"], connectors=1) as sim:
        assert await sim.start_local(1, "BUSY") is not None
        await eventually(
            lambda: charger_of(live.http, charger["id"]),
            lambda c: c["connectors"][0]["status"] == "Charging",
        )
        busy = await emma.say(code)
        assert f"All connectors busy? Type QUEUE {code}" in text_of(busy)
        assert payloads(busy) == [f"queue:{code}"]
        joined = text_of(await emma.press(f"queue:{code}"))
        assert "You're in the queue at " in joined and "number 1" in joined
        second = text_of(await olle.say(f"KÖ {code}"))
        assert "Du står i kö vid " in second and "plats 2" in second
        assert "plats 2" in text_of(await olle.say("kö"))  # where they stand

        await sim.stop_local(1)  # the car leaves: Emma's turn
        turn = await wait_for_text(emma, "Your turn!")
        assert f"Connector {code}" in turn and "1 minutes" in turn
        assert (held_for(sim, 1) or "").startswith("CB-")
        assert "plats 1" in text_of(await olle.say("kö"))

        # Emma lets it pass: it lapses and goes to Olle.
        await wait_for_text(emma, "Time ran out")
        await wait_for_text(olle, "Din tur!")
        shown = await olle.say(f"LADDA {code}")  # as the notice says
        assert payloads(shown)[0] == f"start:{code}"  # reserved for him: he may start
        claimed = await olle.press(f"start:{code}")
        assert "Startar laddaren" in text_of(claimed)
        await wait_for_text(olle, "Laddningen har startat")
        assert "Du står inte i någon kö" in text_of(await olle.say("lämna kön"))


async def test_leaving_the_queue_passes_the_turn_on(live: LiveServer) -> None:
    charger = await station_with(live.http, connectors=1)
    code = charger["connectors"][0]["code"]
    await invoice_driver(live, phone=EMMA, language="en")
    await invoice_driver(live, phone=OLLE)
    rfid = await live.http.post("/admin/drivers", json={"name": "Card"})
    await live.http.post(f"/admin/drivers/{rfid.json()['id']}/id-tags", json={"id_tag": "BUSY2"})
    emma = chat_driver(live.app, phone=EMMA, language_code="en", name="Emma")
    olle = chat_driver(live.app, phone=OLLE, name="Olle")
    async with simulator(live, charger["id"], connectors=1) as sim:
        free = text_of(await emma.say(f"QUEUE {code}"))
        assert "There's a free connector at " in free and code in free  # no queue needed
        assert await sim.start_local(1, "BUSY2") is not None
        await eventually(
            lambda: charger_of(live.http, charger["id"]),
            lambda c: c["connectors"][0]["status"] == "Charging",
        )
        await emma.say(f"QUEUE {code}")
        await olle.say(f"KÖ {code}")
        await sim.stop_local(1)
        await wait_for_text(emma, "Your turn!")
        assert "You've left the queue" in text_of(await emma.say("leave queue"))
        await wait_for_text(olle, "Din tur!")


async def test_a_driver_holding_a_reservation_elsewhere_lets_the_next_in_line_go_first(
    live: LiveServer,
) -> None:
    busy = await station_with(live.http, connectors=1)
    elsewhere = await station_with(live.http, reservation_minutes=30)
    code = busy["connectors"][0]["code"]
    await invoice_driver(live, phone=EMMA, language="en")
    await invoice_driver(live, phone=OLLE)
    rfid = await live.http.post("/admin/drivers", json={"name": "Card"})
    await live.http.post(f"/admin/drivers/{rfid.json()['id']}/id-tags", json={"id_tag": "BUSY3"})
    emma = chat_driver(live.app, phone=EMMA, language_code="en", name="Emma")
    olle = chat_driver(live.app, phone=OLLE, name="Olle")
    async with (
        simulator(live, busy["id"], connectors=1) as sim,
        simulator(live, elsewhere["id"]),
    ):
        assert await sim.start_local(1, "BUSY3") is not None
        await eventually(
            lambda: charger_of(live.http, busy["id"]),
            lambda c: c["connectors"][0]["status"] == "Charging",
        )
        await emma.say(f"QUEUE {code}")
        await olle.say(f"KÖ {code}")
        held = text_of(await emma.say(f"RESERVE {elsewhere['connectors'][0]['code']}"))
        assert "Reserved: connector" in held  # Emma holds one at the other station
        await sim.stop_local(1)
        await wait_for_text(olle, "Din tur!")  # not stuck behind Emma
        assert "number 1" in text_of(await emma.say("queue"))  # still waiting, first in line


async def test_the_start_button_of_a_reservation_or_a_free_connector_works_at_once(
    live: LiveServer,
) -> None:
    charger = await station_with(live.http, reservation_minutes=10)
    first, second = (c["code"] for c in charger["connectors"])
    await invoice_driver(live, phone=EMMA, language="en")
    emma = chat_driver(live.app, phone=EMMA, language_code="en", name="Emma")
    async with simulator(live, charger["id"]):
        reserved = await emma.say(f"RESERVE {first}")  # typed, nothing shown before
        assert payloads(reserved)[0] == f"start:{first}"
        assert "Starting the charger" in text_of(await emma.press(f"start:{first}"))
        free = await emma.say(f"QUEUE {second}")  # no queue: one is free
        assert payloads(free) == [f"start:{second}"]
        assert "Starting the charger" in text_of(await emma.press(f"start:{second}"))
