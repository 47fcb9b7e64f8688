"""Operators register chargers; every connector gets a short code drivers can type."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import Charger
from backend.services.codes import CODE_PATTERN
from tests.helpers.factories import charger_body, make_charger, make_station

CHARGER_FIELDS = {"id", "station_id", "online", "boot_status", "last_seen_at", "connectors"}
CONNECTOR_FIELDS = {"connector_id", "code", "connector_type", "max_power_kw", "status"}


async def test_a_charger_is_created_with_its_connectors_and_codes(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    response = await admin.post(
        "/admin/chargers", json=charger_body(station["id"], id="SE-STO-SUN-01")
    )
    assert response.status_code == 201
    charger = response.json()
    assert charger.keys() >= CHARGER_FIELDS
    assert charger["id"] == "SE-STO-SUN-01"
    assert charger["online"] is False
    assert charger["boot_status"] == "Accepted"
    assert [c["connector_id"] for c in charger["connectors"]] == [1, 2]
    for connector in charger["connectors"]:
        assert connector.keys() >= CONNECTOR_FIELDS
        assert CODE_PATTERN.match(connector["code"])
    assert charger["connectors"][0]["connector_type"] == "ccs"
    assert charger["connectors"][0]["max_power_kw"] == 150
    # The server made its key: shown in this answer once, never again.
    assert re.fullmatch(r"[0-9a-f]{40}", charger["key"])
    assert charger["has_key"] is True
    fetched = (await admin.get("/admin/chargers/SE-STO-SUN-01")).json()
    assert fetched == {**charger, "key": None}
    listed = (await admin.get("/admin/chargers")).json()
    assert charger["key"] not in repr(listed)


async def test_connector_codes_are_unique_across_the_network(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    codes = []
    for _ in range(10):
        charger = await make_charger(admin, station["id"])
        codes += [c["code"] for c in charger["connectors"]]
    assert len(codes) == len(set(codes)) == 20


async def test_a_duplicate_charger_id_is_409_and_writes_nothing(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    await make_charger(admin, station["id"], id="CP-1")
    again = charger_body(
        station["id"],
        id="cp-1",
        connectors=[{"connector_id": 7, "connector_type": "type2", "max_power_kw": 22}],
    )
    response = await admin.post("/admin/chargers", json=again)
    assert response.status_code == 409
    assert "CP-1" in response.json()["detail"]
    listed = (await admin.get("/admin/chargers")).json()
    assert [c["id"] for c in listed] == ["CP-1"]
    assert [c["connector_id"] for c in listed[0]["connectors"]] == [1, 2]


async def test_a_charger_needs_an_existing_station(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/admin/chargers", json=charger_body(4711))
    assert response.status_code == 404
    assert (await admin.get("/admin/chargers")).json() == []


async def test_bad_charger_input_is_422_naming_the_field(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    sid = station["id"]
    twice = [
        {"connector_id": 1, "connector_type": "ccs", "max_power_kw": 50},
        {"connector_id": 1, "connector_type": "ccs", "max_power_kw": 50},
    ]
    cases = {
        "connectors": charger_body(sid, connectors=twice),
        "id": charger_body(sid, id="has space"),
        "password": charger_body(sid, password="short"),
        "connector_type": charger_body(
            sid, connectors=[{"connector_id": 1, "connector_type": "schuko", "max_power_kw": 3}]
        ),
        "max_power_kw": charger_body(
            sid, connectors=[{"connector_id": 1, "connector_type": "ccs", "max_power_kw": 0}]
        ),
    }
    for field, body in cases.items():
        response = await admin.post("/admin/chargers", json=body)
        assert response.status_code == 422, field
        locations = [error["loc"] for error in response.json()["detail"]]
        assert any(field in loc for loc in locations), (field, locations)
    empty = await admin.post("/admin/chargers", json=charger_body(sid, connectors=[]))
    assert empty.status_code == 422
    assert (await admin.get("/admin/chargers")).json() == []


async def test_connector_type_spellings_are_normalised(admin: httpx.AsyncClient) -> None:
    connectors = [
        {"connector_id": 1, "connector_type": "CCS2", "max_power_kw": 150},
        {"connector_id": 2, "connector_type": "Type 2", "max_power_kw": 22},
        {"connector_id": 3, "connector_type": "CHAdeMO", "max_power_kw": 50},
    ]
    charger = await make_charger(admin, connectors=connectors)
    assert [c["connector_type"] for c in charger["connectors"]] == ["ccs", "type2", "chademo"]


async def test_a_charger_password_is_stored_salted_and_hashed(
    admin: httpx.AsyncClient, db: AsyncSession
) -> None:
    password = "correct-horse-battery-staple"
    first = await make_charger(admin, password=password)
    second = await make_charger(admin, password=password)
    assert first["has_password"] is True
    assert first["key"] is None  # the operator's own key is never echoed
    rows = [await db.get(Charger, c["id"]) for c in (first, second)]
    hashes = [row.password_hash for row in rows if row is not None]
    assert len(hashes) == 2
    # A keyed hash (HMAC-SHA256 under the server's pepper), salted by the charger id.
    assert all(h is not None and h.startswith("hmac-sha256$") and password not in h for h in hashes)
    assert hashes[0] != hashes[1]


async def test_patch_accepts_a_pending_charger_and_clears_its_password(
    admin: httpx.AsyncClient,
) -> None:
    charger = await make_charger(admin, password="0123456789abcdef")
    url = f"/admin/chargers/{charger['id']}"
    assert (await admin.patch(url, json={"boot_status": "Pending"})).json()["boot_status"] == (
        "Pending"
    )
    response = await admin.patch(url, json={"boot_status": "Accepted", "password": None})
    assert response.status_code == 200
    assert response.json()["boot_status"] == "Accepted"
    assert response.json()["has_password"] is False
    bad = await admin.patch(url, json={"boot_status": "Maybe"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][-1] == "boot_status"


async def test_moving_a_charger_to_an_unknown_station_is_404(admin: httpx.AsyncClient) -> None:
    charger = await make_charger(admin)
    response = await admin.patch(f"/admin/chargers/{charger['id']}", json={"station_id": 999})
    assert response.status_code == 404
    assert (await admin.get(f"/admin/chargers/{charger['id']}")).json()["station_id"] == (
        charger["station_id"]
    )


async def test_chargers_are_listed_per_station(admin: httpx.AsyncClient) -> None:
    north = await make_station(admin, name="Umeå C", city="Umeå")
    south = await make_station(admin, name="Hyllie", city="Malmö")
    await make_charger(admin, north["id"], id="N-1")
    await make_charger(admin, south["id"], id="S-1")
    await make_charger(admin, south["id"], id="S-2")
    listed = (await admin.get("/admin/chargers", params={"station_id": south["id"]})).json()
    assert [c["id"] for c in listed] == ["S-1", "S-2"]


async def test_delete_removes_the_charger_and_frees_its_codes(admin: httpx.AsyncClient) -> None:
    charger = await make_charger(admin)
    code = charger["connectors"][0]["code"]
    assert (await admin.delete(f"/admin/chargers/{charger['id']}")).status_code == 204
    assert (await admin.get(f"/admin/chargers/{charger['id']}")).status_code == 404
    assert (await admin.get(f"/admin/connectors/{code}/qr.svg")).status_code == 404
    assert (await admin.delete(f"/admin/chargers/{charger['id']}")).status_code == 404
