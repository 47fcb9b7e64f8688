"""The demo network: realistic Swedish stations, tariffs, chargers and connectors."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import Station
from backend.paths import DATA_DIR
from backend.services import drivers, network

DEMO_NETWORK_FILE = DATA_DIR / "demo_network.yaml"


def _document(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document


def load_network(path: Path = DEMO_NETWORK_FILE) -> list[dict[str, Any]]:
    stations: list[dict[str, Any]] = _document(path)["stations"]
    return stations


async def seed_demo_network(
    db: AsyncSession, path: Path = DEMO_NETWORK_FILE, seed: int = 2026
) -> list[network.ConnectorListing]:
    """Create the demo network in an empty database; codes are reproducible from `seed`."""
    if await db.scalar(select(func.count()).select_from(Station)):
        raise RuntimeError("the database already holds stations; seed only an empty one")
    rng = random.Random(seed)
    for entry in load_network(path):
        station = await network.create_station(
            db,
            name=entry["name"],
            address=entry["address"],
            city=entry["city"],
            latitude=entry["latitude"],
            longitude=entry["longitude"],
        )
        assert station.id is not None
        await network.put_tariff(db, station.id, {"currency": "SEK", **entry["tariff"]})
        for charger in entry["chargers"]:
            await network.create_charger(
                db,
                charger_id=charger["id"],
                station_id=station.id,
                password=charger.get("password"),
                connectors=[network.ConnectorSpec(**c) for c in charger["connectors"]],
                choice=rng.choice,
            )
    for entry in _document(path).get("drivers", []):
        fields = {k: v for k, v in entry.items() if k != "id_tags"}
        driver = await drivers.create_driver(db, fields, region="SE")
        assert driver.id is not None
        for tag in entry.get("id_tags", []):
            await drivers.add_id_tag(db, driver.id, {"id_tag": tag})
    return await network.connector_listings(db)
