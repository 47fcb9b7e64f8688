"""Charging end to end: admin API → central system → simulated charger over real WebSockets."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from backend.models import OrphanTransaction, SessionStatus
from backend.services.errors import AccessDeniedError
from backend.services.events import (
    ChargingFinished,
    SessionCompleted,
    SessionFailed,
    SessionStarted,
)
from backend.services.pricing import TariffSnapshot, compute_cost
from backend.settings import Settings
from bot.messages import ChannelUser, Reply
from tests.helpers.charging import (
    TARIFF,
    charger_of,
    driver_with_tag,
    priced_charger,
    record_events,
    session_of,
    simulator,
)
from tests.helpers.chat import ChatDriver, wait_for_text
from tests.helpers.factories import make_charger, make_driver
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually
from tests.ocpp_client import bare_charger


async def test_remote_start_meter_values_remote_stop_gives_a_priced_session(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-ANNA")
    events = record_events(live)
    async with simulator(live, charger["id"], power_kw=22) as sim:
        meter_start = sim.meter_wh(1)  # an idle connector's register does not move
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "tag-anna"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "Accepted"
        session_id = response.json()["session_id"]
        charging = await eventually(
            lambda: session_of(live.http, session_id),
            lambda s: s["status"] == "charging" and s["energy_wh"] > 500,
        )
        transaction_id = charging["transaction_id"]
        assert transaction_id == session_id  # issued by our database
        stop = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-stop",
            json={"transaction_id": transaction_id},
        )
        assert stop.status_code == 200, stop.text
        assert stop.json()["status"] == "Accepted"
        done = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "completed"
        )
        assert 1 not in sim.transactions
    assert done["energy_wh"] == sim.meter_wh(1) - meter_start
    started = datetime.fromisoformat(done["started_at"])
    stopped = datetime.fromisoformat(done["stopped_at"])
    expected = compute_cost(
        TariffSnapshot(vat_rate_percent=25, **TARIFF), done["energy_wh"], started, stopped
    )
    assert done["cost_minor"] == expected.total_minor
    # Half an öre rounds up (490.5 → 491), as on the receipt; Python's round() would not.
    assert done["cost_minor"] == 500 + (done["energy_wh"] * 450 + 500) // 1000
    assert done["currency"] == "SEK"
    kinds = [type(e) for e in events if e.session_id == session_id]
    assert kinds[0] is SessionStarted
    assert kinds[-1] is SessionCompleted


async def test_a_charger_that_is_offline_cannot_be_started(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-1")
    response = await live.http.post(
        f"/admin/chargers/{charger['id']}/remote-start", json={"connector_id": 1, "id_tag": "TAG-1"}
    )
    assert response.status_code == 409
    assert response.json()["reason"] == "offline"
    assert "offline" in response.json()["detail"]
    assert (await live.http.get("/admin/sessions")).json() == []


async def test_a_disconnect_shows_offline_at_once(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    async with simulator(live, charger["id"]):
        assert (await charger_of(live.http, charger["id"]))["online"] is True
    # "At once": as the socket closes, not after a missed heartbeat (minutes).
    after = await eventually(
        lambda: charger_of(live.http, charger["id"]), lambda c: not c["online"], within=2
    )
    assert after["last_seen_at"] is not None


async def test_a_rejected_remote_start_fails_the_session_with_the_reason(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-2")
    events = record_events(live)
    async with simulator(live, charger["id"], remote_start="reject"):
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-2"},
        )
    assert response.status_code == 200
    assert response.json()["status"] == "Rejected"
    session = await session_of(live.http, response.json()["session_id"])
    assert session["status"] == "failed"
    assert session["failure_reason"] == "rejected"
    assert any(isinstance(e, SessionFailed) and e.reason == "rejected" for e in events)


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"ocpp_call_timeout": 1.0, "ocpp_start_timeout": 0.5, "sweep_interval": 0.1}
    )


async def test_no_start_transaction_within_the_timeout_fails_the_session(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-3")
    events = record_events(live)
    async with simulator(live, charger["id"], remote_start="accept_without_start"):
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-3"},
        )
        assert response.json()["status"] == "Accepted"
        session_id = response.json()["session_id"]
        assert (await session_of(live.http, session_id))["status"] == "starting"
        failed = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "failed"
        )
    assert failed["failure_reason"] == "no_start_transaction"
    assert any(isinstance(e, SessionFailed) and e.session_id == session_id for e in events)


async def test_a_charger_that_does_not_answer_times_out_with_504(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-4")
    async with bare_charger(live.ocpp_url, charger["id"], listen=False):
        await eventually(lambda: charger_of(live.http, charger["id"]), lambda c: c["online"])
        for connector in (1,):
            await live.app.state.central.state.connector_status(
                charger["id"], connector, "Available", "NoError", datetime.now(UTC)
            )
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-4"},
        )
    assert response.status_code == 504
    sessions = (await live.http.get("/admin/sessions")).json()
    assert [(s["status"], s["failure_reason"]) for s in sessions] == [("failed", "timed_out")]


async def test_a_connector_with_an_active_session_is_409(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-5")
    await driver_with_tag(live.http, "TAG-6", name="Other")
    async with simulator(live, charger["id"]):
        first = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-5"},
        )
        assert first.json()["status"] == "Accepted"
        second = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-6"},
        )
        assert second.status_code == 409
        assert second.json()["reason"] in {"busy", "occupied"}


async def test_two_drivers_racing_for_one_connector_cannot_both_win(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RACE-A")
    await driver_with_tag(live.http, "RACE-B", name="B")
    async with simulator(live, charger["id"]):
        url = f"/admin/chargers/{charger['id']}/remote-start"
        responses = await asyncio.gather(
            *(
                live.http.post(url, json={"connector_id": 1, "id_tag": tag})
                for tag in ("RACE-A", "RACE-B", "RACE-A", "RACE-B")
            )
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409], [r.text for r in responses]
    sessions = (await live.http.get("/admin/sessions")).json()
    assert len(sessions) == 1


async def test_a_blocked_driver_and_a_restricted_station_refuse_a_remote_start(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    blocked = await driver_with_tag(live.http, "TAG-BLOCKED")
    await live.http.patch(f"/admin/drivers/{blocked['id']}", json={"blocked": True})
    await driver_with_tag(live.http, "TAG-OUTSIDER", name="Outsider")
    group = (await live.http.post("/admin/groups", json={"name": "Brf Solrosen"})).json()
    await live.http.put(
        f"/admin/stations/{charger['station_id']}/access",
        json={"access": "restricted", "group_ids": [group["id"]], "opening_hours": None},
    )
    async with simulator(live, charger["id"]):
        url = f"/admin/chargers/{charger['id']}/remote-start"
        refused = await live.http.post(url, json={"connector_id": 1, "id_tag": "TAG-BLOCKED"})
        assert refused.status_code == 403
        assert refused.json()["reason"] == "blocked"
        outsider = await live.http.post(url, json={"connector_id": 1, "id_tag": "TAG-OUTSIDER"})
        assert outsider.status_code == 403
        assert outsider.json()["reason"] == "members_only"
        assert "Brf Solrosen" in outsider.json()["detail"]
    assert (await live.http.get("/admin/sessions")).json() == []


async def test_a_driver_can_only_stop_their_own_session(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    owner = await driver_with_tag(live.http, "OWNER")
    stranger = await make_driver(live.http, name="Stranger")
    charging_service = live.app.state.charging
    async with simulator(live, charger["id"]):
        started = await charging_service.start_remote(
            charger["id"], 1, driver_id=owner["id"], channel="telegram"
        )
        await eventually(
            lambda: session_of(live.http, started.session.id), lambda s: s["status"] == "charging"
        )
        with pytest.raises(AccessDeniedError):
            await charging_service.request_stop(
                session_id=started.session.id, driver_id=stranger["id"]
            )
        assert (await session_of(live.http, started.session.id))["status"] == "charging"
        stopped = await charging_service.request_stop(
            session_id=started.session.id, driver_id=owner["id"]
        )
        assert stopped.result.accepted
        await eventually(
            lambda: session_of(live.http, started.session.id),
            lambda s: s["status"] == "completed",
        )


async def test_the_car_stopping_to_draw_power_is_noticed(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "FULL")
    events = record_events(live)
    # A nearly full small battery: charging finishes within a second of simulated hours.
    async with simulator(live, charger["id"], battery_kwh=1.0, time_scale=3600.0):
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "FULL"},
        )
        session_id = response.json()["session_id"]
        await eventually(
            lambda: asyncio.sleep(0, [e for e in events if isinstance(e, ChargingFinished)]),
            lambda found: len(found) == 1,
        )
        # The charger reports SuspendedEV after the MeterValues that ended charging is answered.
        await eventually(
            lambda: charger_of(live.http, charger["id"]),
            lambda c: c["connectors"][0]["status"] == "SuspendedEV",
        )
    assert (await session_of(live.http, session_id))["energy_wh"] > 0


async def test_an_rfid_start_at_the_charger_opens_a_session(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    driver = await driver_with_tag(live.http, "RFID-OK")
    blocked = await driver_with_tag(live.http, "RFID-NO", name="Blocked")
    await live.http.patch(f"/admin/drivers/{blocked['id']}", json={"blocked": True})
    async with simulator(live, charger["id"]) as sim:
        transaction_id = await sim.start_local(1, "rfid-ok")
        assert transaction_id is not None
        refused = await sim.start_local(2, "RFID-NO")
        assert refused is None
        session = await session_of(live.http, transaction_id)
        assert session["driver_id"] == driver["id"]
        assert session["status"] == "charging"
        await sim.stop_local(1)
        await eventually(
            lambda: session_of(live.http, transaction_id), lambda s: s["status"] == "completed"
        )
    sessions = (await live.http.get("/admin/sessions", params={"status": "charging"})).json()
    assert sessions == []


async def test_stop_transaction_is_idempotent_and_unknown_ones_become_orphans(
    live: LiveServer, app_db_rows: None = None
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "BARE")
    # Times near our clock: billing clamps a charger's times to it (see test_meter_plausibility).
    began = datetime.now(UTC).replace(microsecond=0)
    at = began.isoformat().replace("+00:00", "Z")
    stop_at = (began + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    later = (began + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await cp.boot()
        start = await cp.start_transaction(1, "BARE", 1000, at)
        again = await cp.start_transaction(1, "BARE", 1000, at)
        assert again.transaction_id == start.transaction_id  # a retried start, the same id
        assert start.id_tag_info["status"] == "Accepted"
        await cp.meter(1, start.transaction_id, 4000, 7400.0)
        live_session = await session_of(live.http, start.transaction_id)
        assert live_session["energy_wh"] == 3000
        first = await cp.stop_transaction(start.transaction_id, 6500, timestamp=stop_at)
        second = await cp.stop_transaction(start.transaction_id, 9999, timestamp=later)
        assert first is not None and second is not None
        for unknown in (-1, 987654):
            assert await cp.stop_transaction(unknown, 100) is not None
    done = await session_of(live.http, start.transaction_id)
    assert done["status"] == "completed"
    assert done["energy_wh"] == 5500  # the first StopTransaction counts, the retry changes nothing
    assert done["cost_minor"] == 500 + round(5500 * 450 / 1000)
    assert done["stopped_at"] == stop_at
    orphans = await _orphans(live.app)
    ids = [o.transaction_id for o in orphans]
    assert None not in ids and sorted(i for i in ids if i is not None) == [-1, 987654]


async def _orphans(app: FastAPI) -> list[OrphanTransaction]:
    from sqlmodel import select

    async with app.state.sessions() as db:
        return list((await db.scalars(select(OrphanTransaction))).all())


async def test_authorize_answers_by_the_tag_and_the_drivers_status(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    ok = await driver_with_tag(live.http, "AUTH-OK")
    blocked = await driver_with_tag(live.http, "AUTH-BLOCKED", name="B")
    await live.http.patch(f"/admin/drivers/{blocked['id']}", json={"blocked": True})
    expired = await make_driver(live.http, name="E")
    await live.http.post(
        f"/admin/drivers/{expired['id']}/id-tags",
        json={"id_tag": "AUTH-OLD", "expires_at": "2020-01-01T00:00:00+00:00"},
    )
    assert ok["id"]
    from ocpp.v16 import call

    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        answers = {}
        for tag in ("AUTH-OK", "auth-ok", "AUTH-BLOCKED", "AUTH-OLD", "NOBODY"):
            result = await cp.call(call.Authorize(id_tag=tag), suppress=False)
            answers[tag] = result.id_tag_info["status"]
        boot = await cp.boot()
        data = await cp.call(call.DataTransfer(vendor_id="com.example"), suppress=False)
    assert answers == {
        "AUTH-OK": "Accepted",
        "auth-ok": "Accepted",
        "AUTH-BLOCKED": "Blocked",
        "AUTH-OLD": "Expired",
        "NOBODY": "Invalid",
    }
    assert boot.status == "Accepted"
    assert boot.current_time.endswith("Z")
    assert datetime.fromisoformat(boot.current_time).tzinfo is not None
    assert data.status == "UnknownVendorId"


async def test_status_notifications_keep_connectors_current(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await cp.status(0, "Available")
        await cp.status(2, "Faulted", "GroundFailure")
        await cp.status(7, "Available")  # unknown connector: answered, ignored
        shown = await charger_of(live.http, charger["id"])
    faulted = shown["connectors"][1]
    assert (faulted["status"], faulted["error_code"]) == ("Faulted", "GroundFailure")
    assert shown["connectors"][0]["status"] == "Unavailable"


async def test_a_reconnecting_charger_replaces_its_stale_socket(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "RECON")
    async with bare_charger(live.ocpp_url, charger["id"]) as old:
        await eventually(lambda: charger_of(live.http, charger["id"]), lambda c: c["online"])
        async with bare_charger(live.ocpp_url, charger["id"]) as new:
            await eventually(
                lambda: asyncio.sleep(0, old._connection.close_code),
                lambda code: code is not None,
            )
            assert (await charger_of(live.http, charger["id"]))["online"] is True
            # It reconnected without a boot and says nothing: it is asked for its statuses.
            await eventually(
                lambda: asyncio.sleep(0, [name for name, _ in new.received]),
                lambda names: "TriggerMessage" in names,
            )
            await new.status(1, "Available")
            response = await live.http.post(
                f"/admin/chargers/{charger['id']}/remote-start",
                json={"connector_id": 1, "id_tag": "RECON"},
            )
            assert response.json()["status"] == "Accepted"
            assert [name for name, _ in new.received].count("RemoteStartTransaction") == 1
            assert "RemoteStartTransaction" not in [name for name, _ in old.received]
        await eventually(lambda: charger_of(live.http, charger["id"]), lambda c: not c["online"])


async def test_the_charging_state_names_match_the_api(live: LiveServer) -> None:
    listed = {s.value for s in SessionStatus}
    assert listed == {
        "pending",
        "starting",
        "charging",
        "stopping",
        "completed",
        "needs_review",  # implausible meter figures: billed the plausible amount, for review
        "failed",
    }


async def test_an_admin_started_session_tells_the_drivers_sms_chat_it_started_and_its_receipt(
    live: LiveServer,
) -> None:
    """Incident: a remote start by an operator with a chatting driver's tag told them nothing."""
    charger = await priced_charger(live.http)
    phone = "+46701112233"
    await driver_with_tag(live.http, "TAG-BO", name="Bo", phone=phone, billing="invoice")
    bo = ChatDriver(live.app, ChannelUser(phone=phone, name="Bo", language_code="sv"), phone, "sms")

    async def deliver(address: str, replies: Sequence[Reply]) -> None:
        if address == phone:
            bo.inbox.extend(replies)

    live.app.state.outbox.register("sms", deliver)
    await bo.say("HJÄLP")  # the driver has chatted by SMS before
    async with simulator(live, charger["id"], power_kw=22):
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-BO"},
        )
        assert response.status_code == 200, response.text
        session_id = response.json()["session_id"]
        await wait_for_text(bo, "Laddningen har startat vid Sundbyberg Centrum")
        await eventually(lambda: session_of(live.http, session_id), lambda s: s["energy_wh"] > 0)
        assert (await live.http.post(f"/admin/sessions/{session_id}/stop")).status_code == 200
        receipt = await wait_for_text(bo, "Kvitto: Sundbyberg Centrum")
    done = await session_of(live.http, session_id)
    total = done["cost_minor"]
    assert f"Totalt: {total // 100},{total % 100:02d} kr" in receipt
