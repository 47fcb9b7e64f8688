"""Small builders for test data through the public admin API."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

_counter = itertools.count(1)

# The key each charger made by make_charger got (shown once, in the create response), by id:
# simulator() and bare_charger() connect with it, as a configured charger would.
CHARGER_KEYS: dict[str, str] = {}


def charger_key(charger_id: str) -> str | None:
    return CHARGER_KEYS.get(charger_id)


def station_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Sundbyberg Centrum",
        "address": "Landsvägen 48",
        "city": "Sundbyberg",
        "latitude": 59.361,
        "longitude": 17.9717,
    }
    body.update(overrides)
    return body


async def make_station(admin: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await admin.post("/admin/stations", json=station_body(**overrides))
    assert response.status_code == 201, response.text
    station: dict[str, Any] = response.json()
    return station


def charger_body(station_id: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"CP-TEST-{next(_counter)}",
        "station_id": station_id,
        "connectors": [
            {"connector_id": 1, "connector_type": "ccs", "max_power_kw": 150},
            {"connector_id": 2, "connector_type": "chademo", "max_power_kw": 50},
        ],
    }
    body.update(overrides)
    return body


async def make_charger(
    admin: httpx.AsyncClient, station_id: int | None = None, **overrides: Any
) -> dict[str, Any]:
    if station_id is None:
        station_id = (await make_station(admin))["id"]
    body = charger_body(station_id, **overrides)
    response = await admin.post("/admin/chargers", json=body)
    assert response.status_code == 201, response.text
    charger: dict[str, Any] = response.json()
    key = charger.get("key") or body.get("password")
    if key:
        CHARGER_KEYS[charger["id"]] = key
    return charger


async def make_driver(admin: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Anna Lindqvist"}
    body.update(overrides)
    response = await admin.post("/admin/drivers", json=body)
    assert response.status_code == 201, response.text
    driver: dict[str, Any] = response.json()
    return driver
