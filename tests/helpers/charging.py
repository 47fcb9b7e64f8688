"""Helpers for end-to-end charging tests: a priced station, a running simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypedDict

import httpx

from backend.chargers.simulator import SimulatedChargePoint, SimulatorConfig
from backend.services.events import SessionEvent
from tests.helpers.factories import charger_key, make_charger, make_driver, make_station
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually


class TariffBody(TypedDict):
    """The body of PUT /admin/stations/{id}/tariff."""

    currency: str
    price_per_kwh_minor: int
    price_per_minute_minor: int
    session_fee_minor: int
    idle_fee_per_minute_minor: int
    idle_grace_minutes: int


TARIFF: TariffBody = {
    "currency": "SEK",
    "price_per_kwh_minor": 450,
    "price_per_minute_minor": 0,
    "session_fee_minor": 500,
    "idle_fee_per_minute_minor": 200,
    "idle_grace_minutes": 15,
}


async def priced_charger(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    station = await make_station(http)
    response = await http.put(f"/admin/stations/{station['id']}/tariff", json=TARIFF)
    assert response.status_code == 200
    return await make_charger(http, station["id"], **overrides)


async def driver_with_tag(http: httpx.AsyncClient, tag: str, **overrides: Any) -> dict[str, Any]:
    driver = await make_driver(http, **overrides)
    response = await http.post(f"/admin/drivers/{driver['id']}/id-tags", json={"id_tag": tag})
    assert response.status_code == 201
    return driver


async def session_of(http: httpx.AsyncClient, session_id: int) -> dict[str, Any]:
    response = await http.get(f"/admin/sessions/{session_id}")
    assert response.status_code == 200
    session: dict[str, Any] = response.json()
    return session


async def charger_of(http: httpx.AsyncClient, charger_id: str) -> dict[str, Any]:
    charger: dict[str, Any] = (await http.get(f"/admin/chargers/{charger_id}")).json()
    return charger


@contextlib.asynccontextmanager
async def simulator(
    live: LiveServer, charger_id: str, **config: Any
) -> AsyncIterator[SimulatedChargePoint]:
    """A simulated charge point connected to the live server, booted and reporting status.

    It authenticates with the key make_charger got, unless `password=` says otherwise.
    """
    config.setdefault("password", charger_key(charger_id))
    config.setdefault("meter_interval", 0.1)
    config.setdefault("time_scale", 600.0)
    sim = SimulatedChargePoint(
        SimulatorConfig(url=live.ocpp_url, charge_point_id=charger_id, **config)
    )
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.booted.wait(), 10)
        await eventually(
            lambda: charger_of(live.http, charger_id),
            lambda c: c["online"] and all(x["status"] == "Available" for x in c["connectors"]),
        )
        yield sim
    finally:
        await sim.stop()
        await asyncio.wait_for(task, 10)


def record_events(live: LiveServer) -> list[SessionEvent]:
    seen: list[SessionEvent] = []

    async def keep(event: SessionEvent) -> None:
        seen.append(event)

    live.app.state.events.subscribe(keep)
    return seen
