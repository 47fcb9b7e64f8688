"""Reservations (OCPP 1.6 ReserveNow, CancelReservation; OCTT TC_046-052): an operator holds
a connector for one card; the charger shows it Reserved, lets only that card start there,
and frees it when the reservation is cancelled, used or expires."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from backend.chargers.typed_ocpp import on
from tests.helpers.charging import charger_of, driver_with_tag, priced_charger, simulator
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger


async def reserve(
    http: httpx.AsyncClient, charger_id: str, connector_id: int, id_tag: str, **body: Any
) -> httpx.Response:
    return await http.post(
        f"/admin/chargers/{charger_id}/reservations",
        json={"connector_id": connector_id, "id_tag": id_tag, **body},
    )


async def reservation(http: httpx.AsyncClient, reservation_id: int) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get(f"/admin/reservations/{reservation_id}")).json()
    return found


def status_of(connector_id: int) -> Any:
    return lambda c: c["connectors"][connector_id - 1]["status"]


async def test_a_reserved_connector_waits_for_its_card(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RES-MINE")
    await driver_with_tag(live.http, "RES-OTHER", name="Other")
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        held = await reserve(live.http, cid, 1, "res-mine", minutes=10)
        assert held.status_code == 200, held.text
        body = held.json()
        assert body["status"] == "Accepted" and body["reservation"]["status"] == "active"
        assert body["reservation"]["id_tag"] == "RES-MINE"
        await eventually(
            lambda: charger_of(live.http, cid), lambda c: status_of(1)(c) == "Reserved"
        )
        assert sim._outlets[1].held is not None

        other = await live.http.post(
            f"/admin/chargers/{cid}/remote-start", json={"connector_id": 1, "id_tag": "RES-OTHER"}
        )
        assert other.status_code == 409 and other.json()["reason"] == "reserved"
        twice = await reserve(live.http, cid, 1, "RES-OTHER")
        assert twice.status_code == 409 and twice.json()["reason"] == "reserved"

        mine = await live.http.post(
            f"/admin/chargers/{cid}/remote-start", json={"connector_id": 1, "id_tag": "RES-MINE"}
        )
        assert mine.json()["status"] == "Accepted", mine.text
        session_id = mine.json()["session_id"]
        used = await eventually(
            lambda: reservation(live.http, body["reservation"]["id"]),
            lambda r: r["status"] == "used",
        )
        assert used["session_id"] == session_id  # the StartTransaction named the reservation
        assert sim._outlets[1].held is None


async def test_a_reservation_ends_at_its_expiry_on_both_sides(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RES-BRIEF")
    cid = charger["id"]
    async with simulator(live, cid):
        soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        held = (await reserve(live.http, cid, 2, "RES-BRIEF", expires_at=soon)).json()
        assert held["status"] == "Accepted"
        await eventually(
            lambda: charger_of(live.http, cid), lambda c: status_of(2)(c) == "Reserved"
        )
        await eventually(
            lambda: charger_of(live.http, cid), lambda c: status_of(2)(c) == "Available"
        )
        ended = await eventually(
            lambda: reservation(live.http, held["reservation"]["id"]),
            lambda r: r["status"] == "expired",
        )
        assert ended["ended_at"] is not None
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    refused = await reserve(live.http, cid, 1, "RES-BRIEF", expires_at=past)
    assert refused.status_code == 422


async def test_cancelling_frees_the_connector(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RES-CANCEL")
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        held = (await reserve(live.http, cid, 1, "RES-CANCEL")).json()
        rid = held["reservation"]["id"]
        await eventually(
            lambda: charger_of(live.http, cid), lambda c: status_of(1)(c) == "Reserved"
        )
        cancelled = await live.http.post(f"/admin/reservations/{rid}/cancel")
        assert cancelled.json()["status"] == "Accepted"
        assert cancelled.json()["reservation"]["status"] == "cancelled"
        await eventually(
            lambda: charger_of(live.http, cid), lambda c: status_of(1)(c) == "Available"
        )
        again = await live.http.post(f"/admin/reservations/{rid}/cancel")
        assert again.status_code == 409  # it is not active any more

        forgotten = (await reserve(live.http, cid, 2, "RES-CANCEL")).json()
        sim._outlets[2].held = None  # the charger lost it (a reboot, say)
        unknown = await live.http.post(
            f"/admin/reservations/{forgotten['reservation']['id']}/cancel"
        )
        assert unknown.json()["status"] == "Rejected"
        assert unknown.json()["reservation"]["status"] == "cancelled"  # held nowhere now
    listed = (await live.http.get("/admin/reservations", params={"charger_id": cid})).json()
    assert [r["status"] for r in listed] == ["cancelled", "cancelled"]


async def test_the_charger_refuses_what_it_cannot_hold(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RES-BUSY")
    blocked = await driver_with_tag(live.http, "RES-BLOCKED", name="Blocked")
    await live.http.patch(f"/admin/drivers/{blocked['id']}", json={"blocked": True})
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        assert await sim.start_local(1, "RES-BUSY") is not None
        occupied = (await reserve(live.http, cid, 1, "RES-BUSY")).json()
        assert occupied["status"] == "Occupied"
        assert occupied["reservation"]["status"] == "refused"
        await sim.set_status(2, "Faulted", "GroundFailure")
        faulted = (await reserve(live.http, cid, 2, "RES-BUSY")).json()
        assert faulted["status"] == "Faulted"
        assert (await reserve(live.http, cid, 5, "RES-BUSY")).status_code == 404
        assert (await reserve(live.http, cid, 2, "NO-SUCH-CARD")).status_code == 404
        assert (await reserve(live.http, cid, 2, "RES-BLOCKED")).status_code == 403
    offline = await reserve(live.http, cid, 2, "RES-BUSY")
    assert offline.status_code == 409 and offline.json()["reason"] == "offline"
    refused = (await live.http.get("/admin/reservations", params={"status": "refused"})).json()
    assert {r["outcome"] for r in refused if r["charger_id"] == cid} == {
        "Occupied",
        "Faulted",
        "offline",
    }


async def test_connector_zero_holds_any_free_connector(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RES-ANY")
    cid = charger["id"]
    async with simulator(live, cid) as sim:
        held = (await reserve(live.http, cid, 0, "RES-ANY")).json()
        assert held["status"] == "Accepted" and held["reservation"]["connector_id"] == 0
        assert sum(c.held is not None for c in sim._outlets.values()) == 1
    other = await priced_charger(live.http)
    await driver_with_tag(live.http, "RES-OTHER", name="Other")
    async with simulator(live, other["id"], reservations=False):
        twice = await reserve(live.http, other["id"], 1, "RES-ANY")
        assert twice.status_code == 409 and twice.json()["reason"] == "has_reservation"
        rejected = (await reserve(live.http, other["id"], 1, "RES-OTHER")).json()
        assert rejected["status"] == "Rejected"
        assert rejected["reservation"]["status"] == "refused"


class _Reserving(BareChargePoint):
    """Accepts every ReserveNow and says nothing more: the test sends each status itself."""

    @on(Action.reserve_now)
    async def on_reserve_now(self, **kwargs: Any) -> call_result.ReserveNow:
        self.received.append(("ReserveNow", kwargs))
        return call_result.ReserveNow(status="Accepted")


async def _reserving_charger(live: LiveServer, tag: str) -> str:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, tag)
    return str(charger["id"])


async def _ready(cp: BareChargePoint) -> None:
    await cp.boot()
    for connector in (1, 2):
        await cp.status(connector, "Available")


def _reserve_nows(cp: BareChargePoint) -> list[dict[str, Any]]:
    return [kwargs for name, kwargs in cp.received if name == "ReserveNow"]


async def test_a_reservation_the_charger_lets_go_ends_and_the_card_may_reserve_again(
    live: LiveServer,
) -> None:
    """OCTT TC_047 then TC_048: the charger cancelled (or expired) it itself: its connector,
    Reserved, is Available again; the card's next ReserveNow is sent at once."""
    cid = await _reserving_charger(live, "RES-LETGO")
    async with bare_charger(live.ocpp_url, cid, charge_point_class=_Reserving) as cp:
        await _ready(cp)
        held = await reserve(live.http, cid, 1, "RES-LETGO")
        assert held.status_code == 200 and held.json()["reservation"]["status"] == "active"
        rid = held.json()["reservation"]["id"]
        await cp.status(1, "Reserved")
        assert (await reservation(live.http, rid))["status"] == "active"
        await cp.status(1, "Available")  # answered once written
        ended = await reservation(live.http, rid)
        assert (ended["status"], ended["outcome"]) == ("ended_by_charger", "Available")
        assert ended["ended_at"] is not None and ended["session_id"] is None

        again = await reserve(live.http, cid, 1, "RES-LETGO")
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "Accepted"
        assert again.json()["reservation"]["status"] == "active"
        assert [r["reservation_id"] for r in _reserve_nows(cp)] == [
            rid,
            again.json()["reservation"]["id"],
        ]


async def test_an_available_before_the_first_reserved_keeps_the_reservation(
    live: LiveServer,
) -> None:
    """Right after ReserveNow the connector may still say Available once: that is not the
    charger letting go. Only an Available after a Reserved is."""
    cid = await _reserving_charger(live, "RES-EARLY")
    async with bare_charger(live.ocpp_url, cid, charge_point_class=_Reserving) as cp:
        await _ready(cp)
        rid = (await reserve(live.http, cid, 2, "RES-EARLY")).json()["reservation"]["id"]
        await cp.status(2, "Available")
        assert (await reservation(live.http, rid))["status"] == "active"
        twice = await reserve(live.http, cid, 1, "RES-EARLY")
        assert twice.status_code == 409 and twice.json()["reason"] == "has_reservation"
        assert len(_reserve_nows(cp)) == 1
        await cp.status(1, "Reserved")  # another connector's Reserved arms nothing here
        await cp.status(1, "Available")
        assert (await reservation(live.http, rid))["status"] == "active"

        await cp.status(2, "Reserved")
        await cp.status(2, "Available")
        assert (await reservation(live.http, rid))["status"] == "ended_by_charger"


async def test_a_reserved_connector_in_use_or_faulted_keeps_its_reservation(
    live: LiveServer,
) -> None:
    """Preparing to Finishing: the reservation is being used (the StartTransaction naming it
    marks it used); Faulted and Unavailable may return to Reserved. None of them ends it; the
    Available after them does."""
    cid = await _reserving_charger(live, "RES-INUSE")
    async with bare_charger(live.ocpp_url, cid, charge_point_class=_Reserving) as cp:
        await _ready(cp)
        rid = (await reserve(live.http, cid, 1, "RES-INUSE")).json()["reservation"]["id"]
        await cp.status(1, "Reserved")
        for status in ("Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing"):
            await cp.status(1, status)
            assert (await reservation(live.http, rid))["status"] == "active", status
        await cp.status(1, "Faulted", "GroundFailure")
        await cp.status(1, "Unavailable")
        await cp.status(1, "Reserved")
        assert (await reservation(live.http, rid))["status"] == "active"
        twice = await reserve(live.http, cid, 2, "RES-INUSE")
        assert twice.status_code == 409 and twice.json()["reason"] == "has_reservation"
        await cp.status(1, "Available")
        assert (await reservation(live.http, rid))["status"] == "ended_by_charger"


async def test_our_cancel_ends_it_cancelled_though_the_charger_says_available_first(
    live: LiveServer,
) -> None:
    """The Available our own CancelReservation brings, reported before its answer, is not
    the charger letting the reservation go by itself."""
    cid = await _reserving_charger(live, "RES-OURS")
    sent: list[asyncio.Task[Any]] = []

    class FreesFirst(_Reserving):
        @on(Action.cancel_reservation)
        async def on_cancel_reservation(self, **_: Any) -> call_result.CancelReservation:
            sent.append(asyncio.create_task(self.status(1, "Available")))
            await eventually(
                lambda: charger_of(live.http, cid), lambda c: status_of(1)(c) == "Available"
            )
            return call_result.CancelReservation(status="Accepted")

    async with bare_charger(live.ocpp_url, cid, charge_point_class=FreesFirst) as cp:
        await _ready(cp)
        rid = (await reserve(live.http, cid, 1, "RES-OURS")).json()["reservation"]["id"]
        await cp.status(1, "Reserved")
        cancelled = (await live.http.post(f"/admin/reservations/{rid}/cancel")).json()
        assert cancelled["status"] == "Accepted"
        assert cancelled["reservation"]["status"] == "cancelled"
        await asyncio.gather(*sent)
