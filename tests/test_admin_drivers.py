"""Operators manage drivers, their billing and their id tags."""

from __future__ import annotations

import httpx

from tests.helpers.factories import make_driver


async def test_a_driver_is_stored_with_an_e164_phone_and_defaults(
    admin: httpx.AsyncClient,
) -> None:
    response = await admin.post(
        "/admin/drivers", json={"name": "Anna Lindqvist", "phone": "070-123 45 67"}
    )
    assert response.status_code == 201
    driver = response.json()
    assert isinstance(driver["id"], int)
    assert driver["phone"] == "+46701234567"
    assert driver["billing"] == "pay_per_session"
    assert driver["language"] == "sv"
    assert driver["blocked"] is False
    assert (await admin.get(f"/admin/drivers/{driver['id']}")).json() == driver


async def test_an_invoice_account_for_a_telegram_user(admin: httpx.AsyncClient) -> None:
    driver = await make_driver(
        admin, name="Bo Ek", telegram_user_id=123456789, language="en", billing="invoice"
    )
    assert driver["telegram_user_id"] == 123456789
    assert driver["billing"] == "invoice"
    assert driver["language"] == "en"


async def test_a_bad_phone_is_422_naming_phone_and_writes_nothing(
    admin: httpx.AsyncClient,
) -> None:
    response = await admin.post("/admin/drivers", json={"name": "X", "phone": "070"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "phone"]
    assert (await admin.get("/admin/drivers")).json() == []


async def test_bad_billing_or_language_is_422(admin: httpx.AsyncClient) -> None:
    for field, value in (("billing", "free"), ("language", "de"), ("telegram_user_id", -5)):
        response = await admin.post("/admin/drivers", json={"name": "X", field: value})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == field


async def test_the_same_phone_written_differently_is_a_duplicate(
    admin: httpx.AsyncClient,
) -> None:
    await make_driver(admin, phone="+46 70 123 45 67")
    response = await admin.post("/admin/drivers", json={"name": "Y", "phone": "0701234567"})
    assert response.status_code == 409
    assert "+46701234567" in response.json()["detail"]


async def test_a_duplicate_telegram_user_is_409(admin: httpx.AsyncClient) -> None:
    await make_driver(admin, telegram_user_id=42)
    response = await admin.post("/admin/drivers", json={"name": "Y", "telegram_user_id": 42})
    assert response.status_code == 409


async def test_patch_blocks_and_changes_billing_and_language(admin: httpx.AsyncClient) -> None:
    driver = await make_driver(admin, phone="0701234567")
    url = f"/admin/drivers/{driver['id']}"
    response = await admin.patch(
        url, json={"blocked": True, "billing": "invoice", "language": "en"}
    )
    assert response.status_code == 200
    changed = response.json()
    assert (changed["blocked"], changed["billing"], changed["language"]) == (True, "invoice", "en")
    assert changed["phone"] == "+46701234567"
    cleared = await admin.patch(url, json={"phone": None})
    assert cleared.json()["phone"] is None


async def test_patch_cannot_take_another_drivers_phone(admin: httpx.AsyncClient) -> None:
    await make_driver(admin, phone="0701234567")
    other = await make_driver(admin, phone="0731234567")
    response = await admin.patch(f"/admin/drivers/{other['id']}", json={"phone": "070-123 45 67"})
    assert response.status_code == 409
    fetched = (await admin.get(f"/admin/drivers/{other['id']}")).json()
    assert fetched["phone"] == "+46731234567"


async def test_unknown_drivers_are_404(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/admin/drivers/77")).status_code == 404
    assert (await admin.patch("/admin/drivers/77", json={"blocked": True})).status_code == 404
    assert (await admin.post("/admin/drivers/77/id-tags", json={"id_tag": "A"})).status_code == 404


async def test_id_tags_are_added_listed_and_compared_without_case(
    admin: httpx.AsyncClient,
) -> None:
    driver = await make_driver(admin)
    url = f"/admin/drivers/{driver['id']}/id-tags"
    response = await admin.post(url, json={"id_tag": "04a2b3c4d5", "expires_at": None})
    assert response.status_code == 201
    assert response.json()["id_tag"] == "04A2B3C4D5"
    assert response.json()["status"] == "Accepted"
    duplicate = await admin.post(url, json={"id_tag": "04A2B3C4D5"})
    assert duplicate.status_code == 409
    other = await make_driver(admin, name="Other")
    stolen = await admin.post(
        f"/admin/drivers/{other['id']}/id-tags", json={"id_tag": "04a2b3c4d5"}
    )
    assert stolen.status_code == 409
    assert [t["id_tag"] for t in (await admin.get(url)).json()] == ["04A2B3C4D5"]


async def test_id_tags_need_an_offset_on_expiry_and_fit_ocpp(admin: httpx.AsyncClient) -> None:
    driver = await make_driver(admin)
    url = f"/admin/drivers/{driver['id']}/id-tags"
    naive = await admin.post(url, json={"id_tag": "TAG1", "expires_at": "2027-01-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"][-1] == "expires_at"
    too_long = await admin.post(url, json={"id_tag": "X" * 21})
    assert too_long.status_code == 422
    assert too_long.json()["detail"][0]["loc"][-1] == "id_tag"
    aware = await admin.post(
        url, json={"id_tag": "TAG1", "expires_at": "2027-01-01T00:00:00+01:00"}
    )
    assert aware.status_code == 201
    assert aware.json()["expires_at"] == "2026-12-31T23:00:00Z"


async def test_an_id_tag_can_be_blocked(admin: httpx.AsyncClient) -> None:
    driver = await make_driver(admin)
    await admin.post(f"/admin/drivers/{driver['id']}/id-tags", json={"id_tag": "CARD-9"})
    response = await admin.patch(
        f"/admin/drivers/{driver['id']}/id-tags/card-9", json={"status": "Blocked"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "Blocked"
