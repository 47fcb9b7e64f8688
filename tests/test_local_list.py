"""Local authorization lists (OCPP 1.6 SendLocalList, GetLocalListVersion, ClearCache; OCTT
TC_042, TC_043, TC_061): the operator's cards reach chargers as versioned lists, whole or as
differences, and a charger that loses its link still starts the cards on it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from backend.app import create_app
from backend.chargers.simulator import SimulatedChargePoint
from backend.models import IdTag
from backend.settings import Settings
from tests.helpers.charging import driver_with_tag, priced_charger, session_of, simulator
from tests.helpers.factories import make_charger, make_driver, make_station
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually


def listed(sim: SimulatedChargePoint) -> dict[str, str]:
    """The charger's own list: id tag -> status."""
    return {tag: entry.status for tag, entry in sim.authorization.entries.items()}


async def sync(http: httpx.AsyncClient, charger_id: str, **body: Any) -> dict[str, Any]:
    response = await http.post(f"/admin/chargers/{charger_id}/local-list/sync", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def block(http: httpx.AsyncClient, driver: dict[str, Any]) -> None:
    response = await http.patch(f"/admin/drivers/{driver['id']}", json={"blocked": True})
    assert response.status_code == 200, response.text


async def test_a_charger_gets_its_list_whole_then_only_what_changed(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    first = await driver_with_tag(live.http, "CARD-ONE")
    blocked = await driver_with_tag(live.http, "CARD-TWO", name="Blocked")
    await block(live.http, blocked)
    lapsed = await make_driver(live.http, name="Lapsed")
    expired = await live.http.post(
        f"/admin/drivers/{lapsed['id']}/id-tags",
        json={"id_tag": "CARD-OLD", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert expired.status_code == 201, expired.text
    base = f"/admin/chargers/{charger['id']}/local-list"
    before = (await live.http.get(base)).json()
    assert before["version"] == 0 and not before["in_sync"]
    async with simulator(live, charger["id"]) as sim:
        whole = await sync(live.http, charger["id"])
        assert whole["status"] == "Accepted" and whole["update_type"] == "Full"
        assert whole["sent"] == 3
        assert listed(sim) == {"CARD-ONE": "Accepted", "CARD-TWO": "Blocked", "CARD-OLD": "Expired"}
        assert sim.authorization.version == whole["version"]
        shown = (await live.http.get(base)).json()
        assert shown["in_sync"] and shown["entries"] == 3 and shown["outcome"] == "Accepted"

        again = await sync(live.http, charger["id"])
        assert again["status"] == "up_to_date" and again["update_type"] is None

        await block(live.http, first)
        await driver_with_tag(live.http, "CARD-NEW", name="Newcomer")
        changed = await sync(live.http, charger["id"])
        assert changed["update_type"] == "Differential" and changed["sent"] == 2
        assert changed["version"] == whole["version"] + 1
        assert listed(sim) == {
            "CARD-ONE": "Blocked",
            "CARD-TWO": "Blocked",
            "CARD-OLD": "Expired",
            "CARD-NEW": "Accepted",
        }
        version = await live.http.post(f"{base}/version")
        assert version.json() == {"list_version": changed["version"]}

        resent = await sync(live.http, charger["id"], full=True)
        assert resent["update_type"] == "Full" and resent["sent"] == 4
    quiet = await live.http.post(f"{base}/sync", json={})  # nothing new: no call is needed
    assert quiet.json()["status"] == "up_to_date"
    await driver_with_tag(live.http, "CARD-LATE", name="Late")
    offline = await live.http.post(f"{base}/sync", json={})
    assert offline.status_code == 409 and offline.json()["reason"] == "offline"


async def test_cards_on_the_list_start_while_the_charger_is_offline(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    driver = await driver_with_tag(live.http, "OFFLINE-OK")
    blocked = await driver_with_tag(live.http, "OFFLINE-NO", name="Blocked")
    await block(live.http, blocked)
    async with simulator(live, charger["id"]) as sim:
        assert (await sync(live.http, charger["id"]))["status"] == "Accepted"
        await sim.go_offline()
        refused = await sim.start_local(2, "OFFLINE-NO")  # the list says Blocked
        assert refused is None
        unknown = await sim.start_local(2, "NOT-LISTED")  # neither listed nor cached
        assert unknown is None
        start = asyncio.create_task(sim.start_local(1, "OFFLINE-OK"))
        await asyncio.sleep(0.2)
        assert not start.done()  # started at the charger; its StartTransaction waits
        assert sim.queued_transaction_messages == ["StartTransaction"]
        sim.go_online()
        transaction_id = await asyncio.wait_for(start, 15)
        assert transaction_id is not None
        session = await session_of(live.http, transaction_id)
        assert session["driver_id"] == driver["id"] and session["status"] == "charging"


async def test_a_members_only_station_lists_its_members_and_removes_who_leaves(
    live: LiveServer,
) -> None:
    station = await make_station(live.http)
    group = (await live.http.post("/admin/groups", json={"name": "Residents"})).json()
    access = await live.http.put(
        f"/admin/stations/{station['id']}/access",
        json={"access": "restricted", "group_ids": [group["id"]], "opening_hours": None},
    )
    assert access.status_code == 200, access.text
    charger = await make_charger(live.http, station["id"])
    member = await driver_with_tag(live.http, "RESIDENT")
    await driver_with_tag(live.http, "VISITOR", name="Visitor")
    joined = await live.http.put(f"/admin/groups/{group['id']}/members/{member['id']}")
    assert joined.status_code in (200, 204), joined.text
    async with simulator(live, charger["id"]) as sim:
        whole = await sync(live.http, charger["id"])
        assert whole["scope"] == f"station:{station['id']}"
        assert listed(sim) == {"RESIDENT": "Accepted"}
        left = await live.http.delete(f"/admin/groups/{group['id']}/members/{member['id']}")
        assert left.status_code == 204
        removed = await sync(live.http, charger["id"])
        assert removed["update_type"] == "Differential" and removed["sent"] == 1
        assert listed(sim) == {}


async def test_chat_tokens_are_never_listed(live: LiveServer, db: AsyncSession) -> None:
    charger = await priced_charger(live.http)
    driver = await driver_with_tag(live.http, "REAL-CARD")
    # Chat drivers' tokens, as the chat makes them (no API makes one).
    db.add(IdTag(id_tag="CB-0123456789", driver_id=driver["id"], virtual=True))
    db.add(IdTag(id_tag="FLAGGED-VIRTUAL", driver_id=driver["id"], virtual=True))
    await db.commit()
    async with simulator(live, charger["id"]) as sim:
        await sync(live.http, charger["id"])
        assert listed(sim) == {"REAL-CARD": "Accepted"}


async def test_long_lists_go_in_pieces_the_charger_takes(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    for n in range(5):
        await driver_with_tag(live.http, f"PIECE-{n}", name=f"Driver {n}")
    async with simulator(live, charger["id"], send_local_list_max_length=2) as sim:
        unknown = await sync(live.http, charger["id"])
        assert unknown["status"] == "Failed"  # its limit unknown: one piece, too long for it
        await live.http.post(f"/admin/chargers/{charger['id']}/configuration/fetch")
        pieces = await sync(live.http, charger["id"])
        assert pieces["status"] == "Accepted" and pieces["sent"] == 5
        assert set(listed(sim)) == {f"PIECE-{n}" for n in range(5)}


async def test_a_version_mismatch_is_answered_with_the_whole_list(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "MISMATCH-1")
    async with simulator(live, charger["id"]) as sim:
        await sync(live.http, charger["id"])
        await driver_with_tag(live.http, "MISMATCH-2", name="Second")
        sim.authorization.version = 99  # a list from elsewhere (another central system)
        sim.authorization.entries = {}
        healed = await sync(live.http, charger["id"])
        assert healed["status"] == "Accepted" and healed["update_type"] == "Full"
        assert set(listed(sim)) == {"MISMATCH-1", "MISMATCH-2"}


async def test_a_charger_that_lost_its_list_gets_it_whole_again(live: LiveServer) -> None:
    """A differential update goes only on top of the version the charger says it holds
    (GetLocalListVersion first, as OCTT TC_043_5 expects): one reset to factory settings
    would otherwise take the changes and miss every card listed before."""
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "WIPED-1")
    async with simulator(live, charger["id"]) as sim:
        await sync(live.http, charger["id"])
        await driver_with_tag(live.http, "WIPED-2", name="Second")
        sim.authorization.version, sim.authorization.entries = 0, {}  # a factory reset
        healed = await sync(live.http, charger["id"])
        assert healed["status"] == "Accepted" and healed["update_type"] == "Full"
        assert set(listed(sim)) == {"WIPED-1", "WIPED-2"}
        await driver_with_tag(live.http, "WIPED-3", name="Third")
        changed = await sync(live.http, charger["id"])  # it holds ours now: a differential
        assert changed["update_type"] == "Differential" and changed["sent"] == 1
        assert set(listed(sim)) == {"WIPED-1", "WIPED-2", "WIPED-3"}


async def test_chargers_without_a_list_or_with_it_switched_off(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "NOLIST")
    base = f"/admin/chargers/{charger['id']}"
    async with simulator(live, charger["id"], local_list=False):
        version = await live.http.post(f"{base}/local-list/version")
        assert version.json() == {"list_version": -1}
        assert (await sync(live.http, charger["id"]))["status"] == "NotSupported"
        assert (await live.http.get(f"{base}/local-list")).json()["outcome"] == "NotSupported"
    other = await priced_charger(live.http)
    async with simulator(live, other["id"]) as sim:
        off = await live.http.put(
            f"/admin/chargers/{other['id']}/configuration/LocalAuthListEnabled",
            json={"value": "false"},
        )
        assert off.json() == {"status": "Accepted"}
        disabled = await sync(live.http, other["id"])
        assert disabled["status"] == "disabled" and disabled["update_type"] is None
        assert listed(sim) == {}


async def test_clear_cache_empties_what_the_charger_learnt(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "CACHED")
    url = f"/admin/chargers/{charger['id']}/clear-cache"
    async with simulator(live, charger["id"]) as sim:
        transaction_id = await sim.start_local(1, "CACHED")  # Authorize: the answer is cached
        assert transaction_id is not None and "CACHED" in sim.authorization.cache
        cleared = await live.http.post(url)
        assert cleared.json() == {"status": "Accepted"}
        assert sim.authorization.cache == {}
        await live.http.put(
            f"/admin/chargers/{charger['id']}/configuration/AuthorizationCacheEnabled",
            json={"value": "false"},
        )
        refused = await live.http.post(url)
        assert refused.json() == {"status": "Rejected"}
    unknown = await live.http.post("/admin/chargers/NO-SUCH-CHARGER/clear-cache")
    assert unknown.status_code == 404


@pytest.fixture
def timed_settings(live_settings: Settings) -> Settings:
    return live_settings.model_copy(update={"charger_sync_seconds": 0.2})


async def test_connected_chargers_are_kept_in_sync_by_themselves(timed_settings: Settings) -> None:
    async with served(create_app(timed_settings)) as live:
        charger = await priced_charger(live.http)
        await driver_with_tag(live.http, "AUTO-1")
        async with simulator(live, charger["id"]) as sim:
            await eventually(
                lambda: asyncio.sleep(0, listed(sim)), lambda t: t == {"AUTO-1": "Accepted"}
            )
            soon = (datetime.now(UTC) + timedelta(days=30)).isoformat()
            later = await driver_with_tag(live.http, "AUTO-2", name="Later")
            await live.http.patch(
                f"/admin/drivers/{later['id']}/id-tags/AUTO-2", json={"expires_at": soon}
            )
            await eventually(lambda: asyncio.sleep(0, listed(sim)), lambda t: "AUTO-2" in t)
            entry = sim.authorization.entries["AUTO-2"]
            assert entry.expires_at is not None
            assert abs((entry.expires_at - datetime.fromisoformat(soon)).total_seconds()) < 1
