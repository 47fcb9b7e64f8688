"""Operators list charging sessions; the database allows one active session per connector."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import ChargingSession
from tests.helpers.factories import make_charger, make_driver

SESSION_FIELDS = {
    "id",
    "driver_id",
    "charger_id",
    "connector_id",
    "transaction_id",
    "status",
    "energy_wh",
    "cost_minor",
    "currency",
    "started_at",
    "stopped_at",
}


async def _add(db: AsyncSession, **fields: object) -> ChargingSession:
    row = ChargingSession(**fields)  # type: ignore[arg-type]
    db.add(row)
    await db.commit()
    return row


async def test_sessions_are_listed_and_filtered(admin: httpx.AsyncClient, db: AsyncSession) -> None:
    charger = await make_charger(admin)
    other = await make_charger(admin, charger["station_id"])
    driver = await make_driver(admin)
    started = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    done = await _add(
        db,
        driver_id=driver["id"],
        charger_id=charger["id"],
        connector_id=1,
        transaction_id=1,
        status="completed",
        energy_wh=12_345,
        cost_minor=5_555,
        started_at=started,
        stopped_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC),
    )
    live = await _add(db, charger_id=charger["id"], connector_id=1, status="charging")
    await _add(db, driver_id=driver["id"], charger_id=other["id"], connector_id=2, status="failed")

    everything = (await admin.get("/admin/sessions")).json()
    assert len(everything) == 3
    assert everything[0].keys() >= SESSION_FIELDS

    by_charger = (await admin.get("/admin/sessions", params={"charger_id": charger["id"]})).json()
    assert {s["id"] for s in by_charger} == {done.id, live.id}
    by_driver = (await admin.get("/admin/sessions", params={"driver_id": driver["id"]})).json()
    assert len(by_driver) == 2
    completed = (await admin.get("/admin/sessions", params={"status": "completed"})).json()
    assert [s["id"] for s in completed] == [done.id]

    one = (await admin.get(f"/admin/sessions/{done.id}")).json()
    assert one["energy_wh"] == 12_345
    assert one["cost_minor"] == 5_555
    assert one["currency"] == "SEK"
    assert one["started_at"] == "2026-11-01T08:00:00Z"


async def test_an_unknown_session_is_404_and_a_bad_status_filter_422(
    admin: httpx.AsyncClient,
) -> None:
    assert (await admin.get("/admin/sessions/31337")).status_code == 404
    bad = await admin.get("/admin/sessions", params={"status": "lost"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"][-1] == "status"


async def test_two_active_sessions_on_one_connector_are_refused_by_the_database(
    admin: httpx.AsyncClient, db: AsyncSession
) -> None:
    charger = await make_charger(admin)
    await _add(db, charger_id=charger["id"], connector_id=1, status="completed")
    await _add(db, charger_id=charger["id"], connector_id=1, status="starting")
    await _add(db, charger_id=charger["id"], connector_id=2, status="charging")
    with pytest.raises(IntegrityError):
        await _add(db, charger_id=charger["id"], connector_id=1, status="pending")
    await db.rollback()
    # Finished sessions never block a connector.
    await _add(db, charger_id=charger["id"], connector_id=2, status="failed")
