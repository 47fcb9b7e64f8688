"""Operators manage stations and their tariffs."""

from __future__ import annotations

import httpx

from tests.helpers.factories import make_charger, make_station, station_body


async def test_a_created_station_gets_an_id_and_can_be_read_back(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/admin/stations", json=station_body())
    assert response.status_code == 201
    created = response.json()
    assert isinstance(created["id"], int)
    fetched = (await admin.get(f"/admin/stations/{created['id']}")).json()
    assert fetched["name"] == "Sundbyberg Centrum"
    assert fetched["city"] == "Sundbyberg"
    assert fetched["latitude"] == 59.361
    assert fetched["tariff"] is None
    listed = (await admin.get("/admin/stations")).json()
    assert [s["id"] for s in listed] == [created["id"]]


async def test_patch_changes_only_the_given_fields(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    response = await admin.patch(f"/admin/stations/{station['id']}", json={"name": "Sumpan C"})
    assert response.status_code == 200
    assert response.json()["name"] == "Sumpan C"
    assert response.json()["address"] == "Landsvägen 48"


async def test_delete_removes_the_station(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    assert (await admin.delete(f"/admin/stations/{station['id']}")).status_code == 204
    assert (await admin.get(f"/admin/stations/{station['id']}")).status_code == 404


async def test_a_station_with_chargers_cannot_be_deleted(admin: httpx.AsyncClient) -> None:
    charger = await make_charger(admin)
    response = await admin.delete(f"/admin/stations/{charger['station_id']}")
    assert response.status_code == 409
    assert "chargers" in response.json()["detail"]
    assert (await admin.get(f"/admin/stations/{charger['station_id']}")).status_code == 200


async def test_unknown_stations_are_404(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/admin/stations/999")).status_code == 404
    assert (await admin.patch("/admin/stations/999", json={"name": "x"})).status_code == 404
    assert (await admin.delete("/admin/stations/999")).status_code == 404
    assert (await admin.put("/admin/stations/999/tariff", json={})).status_code == 404


async def test_bad_input_is_422_naming_the_field(admin: httpx.AsyncClient) -> None:
    cases = {
        "latitude": station_body(latitude=91),
        "longitude": station_body(longitude="east"),
        "name": station_body(name="   "),
        "city": {k: v for k, v in station_body().items() if k != "city"},
    }
    for field, body in cases.items():
        response = await admin.post("/admin/stations", json=body)
        assert response.status_code == 422, field
        assert any(error["loc"][-1] == field for error in response.json()["detail"]), field
    assert (await admin.get("/admin/stations")).json() == []


async def test_a_tariff_is_put_in_minor_units_and_shown_with_the_station(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    tariff = {
        "currency": "SEK",
        "price_per_kwh_minor": 450,
        "price_per_minute_minor": 0,
        "session_fee_minor": 500,
        "idle_fee_per_minute_minor": 200,
        "idle_grace_minutes": 15,
    }
    response = await admin.put(f"/admin/stations/{station['id']}/tariff", json=tariff)
    assert response.status_code == 200
    assert response.json()["price_per_kwh_minor"] == 450
    assert response.json()["vat_rate_percent"] == 25
    changed = await admin.put(
        f"/admin/stations/{station['id']}/tariff", json={**tariff, "price_per_kwh_minor": 399}
    )
    assert changed.status_code == 200
    shown = (await admin.get(f"/admin/stations/{station['id']}")).json()["tariff"]
    assert shown["price_per_kwh_minor"] == 399
    assert shown["session_fee_minor"] == 500
    assert shown["idle_grace_minutes"] == 15


async def test_a_tariff_refuses_negative_prices_and_foreign_currency(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    url = f"/admin/stations/{station['id']}/tariff"
    negative = await admin.put(url, json={"price_per_kwh_minor": -1})
    assert negative.status_code == 422
    assert negative.json()["detail"][0]["loc"][-1] == "price_per_kwh_minor"
    euro = await admin.put(url, json={"currency": "EUR"})
    assert euro.status_code == 422
    assert euro.json()["detail"][0]["loc"][-1] == "currency"
    fractional = await admin.put(url, json={"price_per_kwh_minor": 4.5})
    assert fractional.status_code == 422
