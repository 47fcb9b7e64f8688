"""Operators' commands reach the charger; registration states steer its boot."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from backend.services.events import IdleFeeSoon
from backend.settings import Settings
from tests.helpers.charging import (
    charger_of,
    driver_with_tag,
    priced_charger,
    record_events,
    session_of,
    simulator,
)
from tests.helpers.factories import make_charger
from tests.helpers.processes import CHARGEBOT, clean_env
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually
from tests.ocpp_client import bare_charger


async def test_unlock_availability_trigger_and_reset_reach_the_charger(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}"
    async with simulator(live, charger["id"]) as sim:
        unlock = await live.http.post(f"{base}/unlock", json={"connector_id": 1})
        assert unlock.json() == {"status": "Unlocked", "session_id": None, "session": None}
        off = await live.http.post(
            f"{base}/availability", json={"connector_id": 2, "available": False}
        )
        assert off.json()["status"] == "Accepted"
        await eventually(
            lambda: charger_of(live.http, charger["id"]),
            lambda c: c["connectors"][1]["status"] == "Unavailable",
        )
        trigger = await live.http.post(f"{base}/trigger", json={"message": "Heartbeat"})
        assert trigger.json()["status"] == "Accepted"
        reset = await live.http.post(f"{base}/reset", json={"type": "Soft"})
        assert reset.status_code == 200, reset.text
        assert reset.json()["status"] == "Accepted"
        await eventually(lambda: asyncio.sleep(0, sim.booted.is_set()), lambda b: not b)
        await asyncio.wait_for(sim.booted.wait(), 15)  # it rebooted and came back
        names = [name for name, _ in sim.received]
        assert {"UnlockConnector", "ChangeAvailability", "TriggerMessage", "Reset"} <= set(names)
    offline = await live.http.post(f"{base}/unlock", json={"connector_id": 1})
    assert offline.status_code == 409
    assert offline.json()["reason"] == "offline"
    assert (await live.http.post("/admin/chargers/NOPE/reset", json={})).status_code == 404


async def test_a_session_is_stopped_by_its_id(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "BY-ID")
    async with simulator(live, charger["id"]):
        started = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 2, "id_tag": "BY-ID"},
        )
        session_id = started.json()["session_id"]
        await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "charging"
        )
        stop = await live.http.post(f"/admin/sessions/{session_id}/stop")
        assert stop.status_code == 200
        assert stop.json()["status"] == "Accepted"
        done = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "completed"
        )
        again = await live.http.post(f"/admin/sessions/{session_id}/stop")
    assert done["cost_minor"] is not None
    assert again.status_code == 409


async def test_a_transaction_we_hold_no_session_of_is_stopped_if_the_charger_says_so(
    live: LiveServer,
) -> None:
    """OCPP 1.6 §5.12 (OCTT TC_028): the operator's RemoteStopTransaction for a transaction we
    never issued, or lost, still goes out; the charger's answer is the outcome."""
    charger = await priced_charger(live.http)
    url = f"/admin/chargers/{charger['id']}/remote-stop"
    async with simulator(live, charger["id"]) as sim:
        unknown = await live.http.post(url, json={"transaction_id": 987_654})
        assert unknown.status_code == 200, unknown.text
        assert unknown.json() == {"status": "Rejected", "session_id": None, "session": None}
        assert ("RemoteStopTransaction", {"transaction_id": 987_654}) in sim.received
    async with bare_charger(live.ocpp_url, charger["id"]) as bare:  # it knows the transaction
        await bare.boot()
        lost = await live.http.post(url, json={"transaction_id": 4242})
        assert lost.json()["status"] == "Accepted", lost.text
        assert ("RemoteStopTransaction", {"transaction_id": 4242}) in bare.received
    offline = await live.http.post(url, json={"transaction_id": 987_654})
    assert offline.status_code == 409 and offline.json()["reason"] == "offline"
    nobody = await live.http.post("/admin/chargers/NOPE/remote-stop", json={"transaction_id": 1})
    assert nobody.status_code == 404


async def test_boot_follows_the_registration_state(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    url = f"/admin/chargers/{charger['id']}"
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        assert (await cp.boot()).status == "Accepted"
        await live.http.patch(url, json={"boot_status": "Rejected"})
        rejected = await cp.boot()
        assert rejected.status == "Rejected"
    shown = await charger_of(live.http, charger["id"])
    assert (shown["vendor"], shown["model"]) == ("Test", "Bare")


async def test_a_charger_not_accepted_by_its_boot_gets_no_operator_commands(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "NOT-YET")
    url = f"/admin/chargers/{charger['id']}"
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await live.http.patch(url, json={"boot_status": "Pending"})
        assert (await cp.boot()).status == "Pending"
        await cp.status(1, "Available")
        refused = await live.http.post(
            f"{url}/remote-start", json={"connector_id": 1, "id_tag": "NOT-YET"}
        )
        assert refused.status_code == 409, refused.text
        assert refused.json()["reason"] == "offline"
        assert "Pending" in refused.json()["detail"]
        unlock = await live.http.post(f"{url}/unlock", json={"connector_id": 1})
        assert unlock.status_code == 409
        # OCPP 1.6 lets a Pending charge point be asked for information and configuration.
        trigger = await live.http.post(f"{url}/trigger", json={"message": "Heartbeat"})
        assert trigger.json()["status"] == "Accepted"
        await live.http.patch(url, json={"boot_status": "Rejected"})
        assert (await cp.boot()).status == "Rejected"
        nothing = await live.http.post(f"{url}/trigger", json={"message": "Heartbeat"})
        assert nothing.status_code == 409  # a Rejected one is sent nothing at all
        sent = [name for name, _ in cp.received]
        assert "RemoteStartTransaction" not in sent and "UnlockConnector" not in sent
        await live.http.patch(url, json={"boot_status": "Accepted"})
        assert (await cp.boot()).status == "Accepted"
        started = await live.http.post(
            f"{url}/remote-start", json={"connector_id": 1, "id_tag": "NOT-YET"}
        )
        assert started.json()["status"] == "Accepted", started.text
        assert "RemoteStartTransaction" in [name for name, _ in cp.received]


async def test_a_charger_stored_as_pending_gets_no_commands_without_booting(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    url = f"/admin/chargers/{charger['id']}"
    await live.http.patch(url, json={"boot_status": "Pending"})
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:  # reconnects, never boots
        await cp.status(1, "Available")
        unlock = await live.http.post(f"{url}/unlock", json={"connector_id": 1})
        assert unlock.status_code == 409, unlock.text
        assert "Pending" in unlock.json()["detail"]
        assert "UnlockConnector" not in [name for name, _ in cp.received]


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    # A lab: unknown chargers register themselves, and (having no key yet) connect unsecured.
    return settings.model_copy(
        update={"ocpp_auto_register": True, "ocpp_allow_unsecured": True, "sweep_interval": 0.1}
    )


async def test_auto_registered_chargers_wait_as_pending_until_accepted(
    live: LiveServer,
) -> None:
    async with bare_charger(live.ocpp_url, "NEW-CP-77") as cp:
        first = await cp.boot()
        assert first.status == "Pending"
        shown = await charger_of(live.http, "NEW-CP-77")
        assert shown["boot_status"] == "Pending"
        assert shown["station_id"] is None
        assert shown["online"] is True
        patched = await live.http.patch(
            "/admin/chargers/NEW-CP-77", json={"boot_status": "Accepted"}
        )
        assert patched.status_code == 200
        assert (await cp.boot()).status == "Accepted"


async def test_the_driver_is_warned_before_idle_fees_begin(live: LiveServer) -> None:
    charger = await priced_charger(live.http)  # idle fee 2 kr/min after 15 min grace
    await driver_with_tag(live.http, "IDLE")
    events = record_events(live)
    charging = live.app.state.charging
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        start = await cp.start_transaction(1, "IDLE", 1000)
        await cp.meter(1, start.transaction_id, 9000, 11000.0)
        await cp.meter(1, start.transaction_id, 9500, 0.0)  # the car is full
    session = await session_of(live.http, start.transaction_id)
    assert session["status"] == "charging"
    from backend.models import ChargingSession

    async with live.app.state.sessions() as db:
        row = await db.get(ChargingSession, start.transaction_id)
        finished = row.charging_finished_at
    assert finished is not None
    await charging.run_timers(now=finished + timedelta(minutes=9))  # 6 min before fees
    assert not [e for e in events if isinstance(e, IdleFeeSoon)]
    await charging.run_timers(now=finished + timedelta(minutes=11))
    await charging.run_timers(now=finished + timedelta(minutes=12))  # warned once only
    warnings = [e for e in events if isinstance(e, IdleFeeSoon)]
    assert [(w.session_id, w.minutes) for w in warnings] == [(start.transaction_id, 4)]


async def test_authorize_refuses_a_non_member_at_a_restricted_station(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    member = await driver_with_tag(live.http, "MEMBER")
    await driver_with_tag(live.http, "VISITOR", name="Visitor")
    group = (await live.http.post("/admin/groups", json={"name": "Brf Ängen"})).json()
    await live.http.put(f"/admin/groups/{group['id']}/members/{member['id']}")
    await live.http.put(
        f"/admin/stations/{charger['station_id']}/access",
        json={"access": "restricted", "group_ids": [group["id"]], "opening_hours": None},
    )
    from ocpp.v16 import call

    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        member_answer = await cp.call(call.Authorize(id_tag="MEMBER"), suppress=False)
        visitor_answer = await cp.call(call.Authorize(id_tag="VISITOR"), suppress=False)
        visitor_start = await cp.start_transaction(1, "VISITOR", 0)
    assert member_answer.id_tag_info["status"] == "Accepted"
    assert visitor_answer.id_tag_info["status"] == "Invalid"
    assert visitor_start.id_tag_info["status"] == "Invalid"
    refused = await session_of(live.http, visitor_start.transaction_id)
    assert refused["status"] == "failed"


async def test_the_simulate_command_connects_a_charger(live: LiveServer) -> None:
    charger = await make_charger(live.http, password="sim-password-0123456")
    process = await asyncio.create_subprocess_exec(
        CHARGEBOT,
        "simulate",
        "--url",
        live.ocpp_url,
        "--id",
        charger["id"],
        "--password",
        "sim-password-0123456",
        "--connectors",
        "2",
        env=clean_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        shown = await eventually(
            lambda: charger_of(live.http, charger["id"]),
            lambda c: c["online"] and c["connectors"][0]["status"] == "Available",
            within=30,
        )
        assert shown["vendor"] == "chargebot"
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), 20)
    assert b"Traceback" not in err
    await eventually(lambda: charger_of(live.http, charger["id"]), lambda c: not c["online"])
