"""Smart charging (OCPP 1.6: SetChargingProfile, ClearChargingProfile, GetCompositeSchedule,
RemoteStart with a profile; OCTT TC_056, 057, 059, 066, 067) and a station's power limit,
with the simulator drawing no more than its profiles allow."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.chargers.simulator import SimulatedChargePoint
from backend.settings import Settings
from tests.helpers.charging import driver_with_tag, priced_charger, session_of, simulator
from tests.helpers.factories import make_charger
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually


def profile(
    connector_id: int, purpose: str, *periods: tuple[int, float], **extra: Any
) -> dict[str, Any]:
    return {
        "connector_id": connector_id,
        "purpose": purpose,
        "periods": [{"start_seconds": s, "limit": limit} for s, limit in periods],
        **extra,
    }


async def send(http: httpx.AsyncClient, charger_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(f"/admin/chargers/{charger_id}/charging-profiles", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def drawing(sim: SimulatedChargePoint, connector_id: int) -> float:
    """What the connector draws now (W)."""
    return sim._outlets[connector_id].power_w(sim._config)


async def test_a_default_profile_limits_every_session(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SMART-1")
    cid = charger["id"]
    async with simulator(live, cid, power_kw=22.0) as sim:
        limited = await send(live.http, cid, profile(0, "TxDefaultProfile", (0, 7000)))
        assert limited["status"] == "Accepted" and limited["profile"]["source"] == "operator"
        started = await live.http.post(
            f"/admin/chargers/{cid}/remote-start", json={"connector_id": 1, "id_tag": "SMART-1"}
        )
        session_id = started.json()["session_id"]
        await eventually(lambda: session_of(live.http, session_id), lambda s: s["energy_wh"] > 0)
        assert 0 < drawing(sim, 1) <= 7000  # 22 kW without the profile
        listed = (await live.http.get(f"/admin/chargers/{cid}/charging-profiles")).json()
        assert [p["id"] for p in listed] == [limited["profile"]["id"]]


async def test_a_transaction_s_own_profile_needs_its_transaction(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SMART-2")
    cid = charger["id"]
    async with simulator(live, cid, power_kw=22.0) as sim:
        early = await send(live.http, cid, profile(1, "TxProfile", (0, 3000)))
        assert early["status"] == "Rejected"  # no transaction on connector 1 yet
        transaction_id = await sim.start_local(1, "SMART-2")
        assert transaction_id is not None
        own = await send(
            live.http, cid, profile(1, "TxProfile", (0, 3000), transaction_id=transaction_id)
        )
        assert own["status"] == "Accepted"
        assert 0 < drawing(sim, 1) <= 3000
        await sim.stop_local(1)
        assert sim.profiles.installed == []  # it lasted as long as its transaction


async def test_a_remote_start_carries_the_session_s_limit(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "SMART-3")
    cid = charger["id"]
    async with simulator(live, cid, power_kw=22.0) as sim:
        started = await live.http.post(
            f"/admin/chargers/{cid}/remote-start",
            json={"connector_id": 2, "id_tag": "SMART-3", "max_power_kw": 4},
        )
        assert started.json()["status"] == "Accepted", started.text
        await eventually(lambda: _charging(sim, 2), bool)
        assert 0 < drawing(sim, 2) <= 4000
        listed = (await live.http.get(f"/admin/chargers/{cid}/charging-profiles")).json()
        assert [(p["source"], p["purpose"], p["connector_id"]) for p in listed] == [
            ("session", "TxProfile", 2)
        ]


async def _charging(sim: SimulatedChargePoint, connector_id: int) -> bool:
    return sim._outlets[connector_id].tx_id is not None


async def test_the_composite_schedule_and_clearing(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    cid = charger["id"]
    async with simulator(live, cid, power_kw=22.0):
        await send(live.http, cid, profile(0, "ChargePointMaxProfile", (0, 11000)))
        stepped = await send(
            live.http, cid, profile(1, "TxDefaultProfile", (0, 6000), (120, 16000), stack_level=1)
        )
        composite = await live.http.get(
            f"/admin/chargers/{cid}/composite-schedule", params={"connector_id": 1, "duration": 300}
        )
        assert composite.status_code == 200, composite.text
        body = composite.json()
        assert body["status"] == "Accepted" and body["connector_id"] == 1
        periods = body["charging_schedule"]["charging_schedule_period"]
        # 6 kW first, then the station's 11 kW cap binds the 16 kW period.
        assert [(p["start_period"], p["limit"]) for p in periods] == [(0, 6000.0), (120, 11000.0)]

        profile_id = stepped["profile"]["id"]
        clear = f"/admin/chargers/{cid}/charging-profiles/clear"
        assert (await live.http.post(clear, json={"id": profile_id})).json() == {
            "status": "Accepted"
        }
        assert (await live.http.post(clear, json={"id": profile_id})).json() == {
            "status": "Unknown"
        }
        listed = (await live.http.get(f"/admin/chargers/{cid}/charging-profiles")).json()
        assert [p["purpose"] for p in listed] == ["ChargePointMaxProfile"]
        everything = await live.http.post(clear, json={})
        assert everything.json() == {"status": "Accepted"}
        assert (await live.http.get(f"/admin/chargers/{cid}/charging-profiles")).json() == []


async def test_profiles_an_operator_cannot_send(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    url = f"/admin/chargers/{charger['id']}/charging-profiles"
    wrong_connector = profile(1, "ChargePointMaxProfile", (0, 11000))
    assert (await live.http.post(url, json=wrong_connector)).status_code == 422
    late_start = profile(0, "TxDefaultProfile", (60, 11000))
    assert (await live.http.post(url, json=late_start)).status_code == 422
    offline = await live.http.post(url, json=profile(0, "TxDefaultProfile", (0, 11000)))
    assert offline.status_code == 409


@pytest.fixture
async def upkeep(live_settings: Settings) -> AsyncIterator[LiveServer]:
    settings = live_settings.model_copy(update={"charger_sync_seconds": 0.2})
    async with served(create_app(settings)) as live:
        yield live


async def test_a_station_limit_is_shared_and_reaches_late_chargers(upkeep: LiveServer) -> None:
    live = upkeep
    first = await priced_charger(live.http)
    second = await make_charger(live.http, first["station_id"])
    url = f"/admin/stations/{first['station_id']}/power-limit"
    async with simulator(live, first["id"]) as one:
        limited = await live.http.put(url, json={"max_power_kw": 20})
        assert limited.status_code == 200, limited.text
        shares = {c["charger_id"]: c["status"] for c in limited.json()["chargers"]}
        assert shares == {first["id"]: "Accepted", second["id"]: "offline"}
        assert one.profiles.limit_w(1, None, None) == 10000.0
        async with simulator(live, second["id"]) as two:
            await eventually(
                lambda: _limit(two), lambda limit: limit == 10000.0
            )  # the upkeep sent it once it was back
        lifted = await live.http.put(url, json={"max_power_kw": None})
        assert {c["status"] for c in lifted.json()["chargers"]} == {"Accepted", "offline"}
        assert one.profiles.installed == []


async def _limit(sim: SimulatedChargePoint) -> float | None:
    return sim.profiles.limit_w(1, None, None)
