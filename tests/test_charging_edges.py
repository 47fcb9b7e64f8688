"""Incidents the review found: each test is named after what must never happen again."""

from __future__ import annotations

from datetime import timedelta

from backend.db import utcnow
from backend.models import ChargingSession, SessionStatus
from tests.helpers.charging import charger_of, driver_with_tag, priced_charger, session_of
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually
from tests.ocpp_client import bare_charger


async def test_a_meter_that_starts_at_zero_is_still_billed(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "ZERO")
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        start = await cp.start_transaction(1, "ZERO", 0, "2026-11-24T08:00:00Z")
        await cp.stop_transaction(start.transaction_id, 10_000, timestamp="2026-11-24T09:00:00Z")
    done = await session_of(live.http, start.transaction_id)
    assert done["energy_wh"] == 10_000
    assert done["cost_minor"] == 500 + 10 * 450


async def test_a_card_tapped_during_someone_elses_remote_start_is_not_their_session(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    anna = await driver_with_tag(live.http, "ANNA")
    bo = await driver_with_tag(live.http, "BO-CARD", name="Bo")
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await eventually(lambda: charger_of(live.http, charger["id"]), lambda c: c["online"])
        await cp.status(1, "Available")
        started = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "ANNA"},
        )
        assert started.json()["status"] == "Accepted"
        annas = started.json()["session_id"]
        tapped = await cp.start_transaction(1, "BO-CARD", 100)
    assert tapped.transaction_id != annas
    bos = await session_of(live.http, tapped.transaction_id)
    assert bos["driver_id"] == bo["id"]
    assert (await session_of(live.http, annas))["driver_id"] == anna["id"]
    assert (await session_of(live.http, annas))["status"] == "failed"  # Bo's plug took it


async def test_a_start_stuck_in_pending_does_not_block_the_connector_forever(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    async with live.app.state.sessions() as db:
        stuck = ChargingSession(
            charger_id=charger["id"],
            connector_id=1,
            status=SessionStatus.PENDING,
            start_deadline_at=utcnow() - timedelta(seconds=1),
        )
        db.add(stuck)
        await db.commit()
    assert stuck.id is not None
    await live.app.state.charging.run_timers()
    reaped = await session_of(live.http, stuck.id)
    assert (reaped["status"], reaped["failure_reason"]) == ("failed", "timed_out")


async def test_an_operator_closes_a_session_the_charger_lost_billed_to_its_last_sign(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "LOST")
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        start = await cp.start_transaction(1, "LOST", 1000)
        await cp.meter(1, start.transaction_id, 6000, 7400.0)
    response = await live.http.post(f"/admin/sessions/{start.transaction_id}/close")
    assert response.status_code == 200
    closed = response.json()
    assert closed["status"] == "completed"
    assert closed["energy_wh"] == 5000
    assert closed["cost_minor"] == 500 + round(5000 * 450 / 1000)
    again = await live.http.post(f"/admin/sessions/{start.transaction_id}/close")
    assert again.status_code == 409


async def test_late_meter_values_never_change_a_priced_session(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "LATE")
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        start = await cp.start_transaction(1, "LATE", 1000)
        await cp.meter(1, start.transaction_id, 3000, 7400.0)
        await cp.stop_transaction(start.transaction_id, 4000)
        before = await session_of(live.http, start.transaction_id)
        await cp.meter(1, start.transaction_id, 9000, 0.0)
    after = await session_of(live.http, start.transaction_id)
    assert after == before


async def test_a_non_numeric_meter_value_is_skipped_not_the_whole_message(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "NAN")
    from ocpp.v16 import call

    from backend.chargers.protocol import ocpp_now

    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        start = await cp.start_transaction(1, "NAN", 1000)
        sampled = [
            {"value": "NaN", "measurand": "Power.Active.Import", "unit": "W"},
            {"value": "2500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        ]
        await cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=start.transaction_id,
                meter_value=[{"timestamp": ocpp_now(), "sampled_value": sampled}],
            ),
            suppress=False,
        )
    assert (await session_of(live.http, start.transaction_id))["energy_wh"] == 1500
