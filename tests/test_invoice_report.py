"""GET /admin/reports/invoices.csv: invoice accounts' completed sessions of a month, with VAT."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app import create_app
from backend.models import ChargingSession, SessionStatus
from backend.services.pricing import TariffSnapshot, compute_cost
from backend.settings import Settings
from tests.helpers.chat import chat_driver, text_of
from tests.helpers.factories import make_charger, make_driver, make_station
from tests.helpers.server import ADMIN_TOKEN

TARIFF = TariffSnapshot("SEK", 450, 0, 500, 0, 0, 25)


def completed(
    driver_id: int, charger_id: str, stopped_at: datetime, energy_wh: int
) -> ChargingSession:
    started = stopped_at - timedelta(hours=1)
    cost = compute_cost(TARIFF, energy_wh, started, stopped_at)
    return ChargingSession(
        driver_id=driver_id,
        charger_id=charger_id,
        connector_id=1,
        status=SessionStatus.COMPLETED,
        energy_wh=energy_wh,
        started_at=started,
        stopped_at=stopped_at,
        cost_minor=cost.total_minor,
        cost_breakdown=cost.to_json(),
        tariff_snapshot=TARIFF.to_json(),
    )


async def test_the_monthly_invoice_report(admin: httpx.AsyncClient, db: AsyncSession) -> None:
    station = await make_station(admin, name="Kista Galleria")
    charger = await make_charger(admin, station["id"])
    bo = await make_driver(admin, name="Bo AB", phone="+46701111111", billing="invoice")
    cia = await make_driver(admin, name="Cia", phone="+46702222222", billing="invoice")
    card = await make_driver(admin, name="Dan", phone="+46703333333")  # pay_per_session
    cid = charger["id"]
    db.add_all(
        [
            # 00:30 on 1 November in Stockholm: November.
            completed(bo["id"], cid, datetime(2026, 10, 31, 23, 30, tzinfo=UTC), 10_000),
            completed(bo["id"], cid, datetime(2026, 11, 15, 12, 0, tzinfo=UTC), 3_333),
            # 00:30 on 1 December in Stockholm: December, not in the report.
            completed(bo["id"], cid, datetime(2026, 11, 30, 23, 30, tzinfo=UTC), 5_000),
            completed(cia["id"], cid, datetime(2026, 11, 2, 8, 0, tzinfo=UTC), 1_001),
            completed(card["id"], cid, datetime(2026, 11, 3, 8, 0, tzinfo=UTC), 9_000),
        ]
    )
    failed = completed(cia["id"], cid, datetime(2026, 11, 4, 8, 0, tzinfo=UTC), 0)
    failed.status = SessionStatus.FAILED
    db.add(failed)
    await db.commit()

    response = await admin.get("/admin/reports/invoices.csv", params={"month": "2026-11"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["driver_name"], r["row"]) for r in rows] == [
        ("Bo AB", "session"),
        ("Bo AB", "session"),
        ("Bo AB", "total"),
        ("Cia", "session"),
        ("Cia", "total"),
    ]
    first, second, bo_total = rows[0], rows[1], rows[2]
    # 10 kWh at 4.50 kr + 5 kr = 50.00 kr, of which VAT 25 % = 10.00 kr.
    assert (first["total_minor"], first["vat_minor"], first["net_minor"]) == (
        "5000",
        "1000",
        "4000",
    )
    assert first["stopped_at"].startswith("2026-11-01T00:30:00+01:00")
    assert first["station"] == "Kista Galleria"
    # 3.333 kWh: 1499.85 → 1500 öre + 500 = 2000; VAT 400.
    assert (second["total_minor"], second["vat_minor"]) == ("2000", "400")
    assert bo_total["session_id"] == "2"  # the number of sessions
    assert bo_total["energy_wh"] == "13333"
    assert (bo_total["net_minor"], bo_total["vat_minor"], bo_total["total_minor"]) == (
        "5600",
        "1400",
        "7000",
    )
    for row in rows:
        assert int(row["net_minor"]) + int(row["vat_minor"]) == int(row["total_minor"])
        assert row["currency"] == "SEK"

    december = await admin.get("/admin/reports/invoices.csv", params={"month": "2026-12"})
    assert [r["energy_wh"] for r in csv.DictReader(io.StringIO(december.text))] == [
        "5000",
        "5000",
    ]
    for bad in ("2026-13", "2026-1", "nov"):
        wrong = await admin.get("/admin/reports/invoices.csv", params={"month": bad})
        assert wrong.status_code == 422


@pytest.fixture
async def app_in_february(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    app.state.clock = lambda: datetime(2027, 2, 10, 12, 0, tzinfo=UTC)
    async with app.router.lifespan_context(app):
        yield app


async def test_a_session_from_2330_to_0030_over_month_end_is_one_month_in_history_and_invoice(
    app_in_february: FastAPI, db: AsyncSession
) -> None:
    """Incident: /history counted a session by its start, the invoice by its end."""
    app = app_in_february
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as admin:
        station = await make_station(admin, name="Kista Galleria")
        charger = await make_charger(admin, station["id"])
        bo = await make_driver(admin, name="Bo AB", phone="+46701111111", billing="invoice")
        # 23:30 on 31 January to 00:30 on 1 February in Stockholm (CET, UTC+1).
        db.add(
            completed(bo["id"], charger["id"], datetime(2027, 1, 31, 23, 30, tzinfo=UTC), 10_000)
        )
        await db.commit()

        async def report(month: str) -> list[dict[str, str]]:
            response = await admin.get("/admin/reports/invoices.csv", params={"month": month})
            return list(csv.DictReader(io.StringIO(response.text)))

        assert await report("2027-01") == []
        [row, _] = await report("2027-02")
        assert row["stopped_at"].startswith("2027-02-01T00:30:00+01:00")
    bo_chat = chat_driver(app, phone="+46701111111")
    history = text_of(await bo_chat.command("history"))
    assert "2027-02-01 Kista Galleria: 10,0 kWh, 50,00 kr" in history
    assert "2027-02: 1 laddning, 10,0 kWh, totalt 50,00 kr" in history
