"""Chat drivers' virtual tags: random, and good only for the start their own chat asked for."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from sqlalchemy import text, update
from sqlmodel import col, select

from backend import migrate
from backend.chargers.typed_ocpp import on
from backend.db import create_engine, utcnow
from backend.models import ChargingSession, IdTag
from backend.services.charging import VIRTUAL_TAG_PREFIX, virtual_id_tag
from tests.helpers.charging import session_of
from tests.helpers.factories import make_charger, make_driver
from tests.helpers.server import LiveServer, create_postgres_database, drop_postgres_database
from tests.ocpp_client import BareChargePoint, bare_charger

VIRTUAL = re.compile(r"CB-[0-9A-F]{16}")


async def _ready(cp: BareChargePoint) -> None:
    await cp.boot()
    for connector in (1, 2):
        await cp.status(connector, "Available")


async def _chat_start(live: LiveServer, charger_id: str, driver_id: int, connector: int = 1) -> str:
    """What a Telegram start does: RemoteStartTransaction with the driver's virtual tag."""
    outcome = await live.app.state.charging.start_remote(
        charger_id, connector, driver_id=driver_id, channel="telegram"
    )
    assert outcome.result.accepted, outcome
    tag: str | None = outcome.session.id_tag
    assert tag is not None
    return tag


def test_virtual_tags_are_random_and_fit_an_ocpp_id_token() -> None:
    tags = {virtual_id_tag() for _ in range(100)}
    assert len(tags) == 100
    assert all(VIRTUAL.fullmatch(t) and len(t) <= 20 for t in tags)
    assert all(t.startswith(VIRTUAL_TAG_PREFIX) for t in tags)


async def test_a_chat_start_sends_the_drivers_random_tag_and_it_starts_that_session(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http)
    driver = await make_driver(live.http)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await _ready(cp)
        tag = await _chat_start(live, charger["id"], driver["id"])
        assert VIRTUAL.fullmatch(tag)
        sent = [kwargs for name, kwargs in cp.received if name == "RemoteStartTransaction"]
        assert sent[-1]["id_tag"] == tag
        assert (await cp.call_authorize(tag)) == "Accepted"
        started = await cp.start_transaction(1, tag, 5000)
        assert started.id_tag_info["status"] == "Accepted"
        session = await session_of(live.http, started.transaction_id)
        assert (session["status"], session["driver_id"]) == ("charging", driver["id"])
    async with live.app.state.sessions() as db:
        row = await db.scalar(select(IdTag).where(col(IdTag.id_tag) == tag))
        assert row is not None and row.virtual is True and row.driver_id == driver["id"]


async def test_a_guessed_virtual_tag_starts_nothing_at_another_charger(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """An RFID card with a chat driver's tag as its UID must not bill that driver."""
    home = await make_charger(live.http)
    elsewhere = await make_charger(live.http)
    driver = await make_driver(live.http)
    async with bare_charger(live.ocpp_url, home["id"]) as cp:
        await _ready(cp)
        tag = await _chat_start(live, home["id"], driver["id"])
        async with bare_charger(live.ocpp_url, elsewhere["id"]) as rogue:
            await _ready(rogue)
            assert await rogue.call_authorize(tag) == "Invalid"
            forged = await rogue.start_transaction(1, tag, 100)
            assert forged.id_tag_info["status"] == "Invalid"
            session = await session_of(live.http, forged.transaction_id)
            assert session["status"] == "failed"
            assert session["cost_minor"] in (None, 0)
            await rogue.stop_transaction(forged.transaction_id, 90_000)
            session = await session_of(live.http, forged.transaction_id)
            assert session["status"] == "failed" and session["cost_minor"] in (None, 0)
        # The driver's own start is untouched and still works.
        started = await cp.start_transaction(1, tag, 5000)
        assert started.id_tag_info["status"] == "Accepted"
    # The operator hears of it, without the tag itself in the log.
    warned = [r.getMessage() for r in caplog.records if r.name == "backend.services.charging"]
    assert any(f"{tag[:2]}…{tag[-2:]}" in m and elsewhere["id"] in m for m in warned)
    assert not any(tag in m for m in warned)


async def test_a_virtual_tag_on_another_connector_of_the_same_charger_is_invalid(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http)
    driver = await make_driver(live.http)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await _ready(cp)
        tag = await _chat_start(live, charger["id"], driver["id"], connector=1)
        wrong = await cp.start_transaction(2, tag, 100)
        assert wrong.id_tag_info["status"] == "Invalid"
        right = await cp.start_transaction(1, tag, 100)
        assert right.id_tag_info["status"] == "Accepted"
        # Once its session runs, the tag opens nothing more, not even here.
        again = await cp.start_transaction(2, tag, 200)
        assert again.id_tag_info["status"] == "Invalid"
        assert await cp.call_authorize(tag) == "Invalid"


async def test_a_virtual_tag_after_its_start_deadline_is_invalid(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    driver = await make_driver(live.http)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await _ready(cp)
        tag = await _chat_start(live, charger["id"], driver["id"])
        async with live.app.state.sessions() as db:
            await db.execute(
                update(ChargingSession)
                .where(col(ChargingSession.id_tag) == tag)
                .values(start_deadline_at=utcnow() - timedelta(seconds=1))
            )
            await db.commit()
        late = await cp.start_transaction(1, tag, 100)
        assert late.id_tag_info["status"] == "Invalid"


async def test_a_virtual_tag_is_refused_while_its_start_still_awaits_payment(
    live: LiveServer,
) -> None:
    """A pay-per-session booking waits ~35 min for its card hold before any RemoteStart;
    the driver's tag at the charger in that time once charged with no money held."""
    charger = await make_charger(live.http)
    driver = await make_driver(live.http, billing="pay_per_session")
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await _ready(cp)
        booked = await live.app.state.charging.reserve(
            charger["id"],
            1,
            driver_id=driver["id"],
            channel="sms",
            hold_until=utcnow() + timedelta(minutes=35),
        )  # what the payment page does (backend/services/payments.py checkout)
        tag = booked.id_tag
        assert tag is not None and booked.id is not None
        assert await cp.call_authorize(tag) == "Invalid"
        early = await cp.start_transaction(1, tag, 1000)
        assert early.id_tag_info["status"] == "Invalid"
        assert early.transaction_id != booked.id
        assert (await session_of(live.http, early.transaction_id))["status"] == "failed"
        assert (await session_of(live.http, booked.id))["status"] == "pending"
        assert "RemoteStartTransaction" not in [name for name, _ in cp.received]
        # The hold is in place and the RemoteStart goes out: now the tag starts that session.
        outcome = await live.app.state.charging.start_pending(booked.id)
        assert outcome.result.accepted
        assert await cp.call_authorize(tag) == "Accepted"
        started = await cp.start_transaction(1, tag, 1000)
        assert (started.transaction_id, started.id_tag_info["status"]) == (booked.id, "Accepted")


class _StartsBeforeAnswering(BareChargePoint):
    """A charger that sends Authorize and StartTransaction before its RemoteStart.conf."""

    started: asyncio.Task[Any] | None = None

    @on(Action.remote_start_transaction)
    async def on_remote_start(self, **kwargs: Any) -> call_result.RemoteStartTransaction:
        self.received.append(("RemoteStartTransaction", kwargs))

        async def begin() -> tuple[str, Any]:
            authorized = await self.call_authorize(kwargs["id_tag"])
            return authorized, await self.start_transaction(
                kwargs["connector_id"], kwargs["id_tag"], 10
            )

        self.started = asyncio.create_task(begin())
        await asyncio.sleep(0.3)  # the frames are out (and answered) before our answer
        return call_result.RemoteStartTransaction(status="Accepted")


async def test_a_charger_that_starts_before_answering_remote_start_is_accepted(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http)
    driver = await make_driver(live.http)
    async with bare_charger(
        live.ocpp_url, charger["id"], charge_point_class=_StartsBeforeAnswering
    ) as cp:
        await _ready(cp)
        outcome = await live.app.state.charging.start_remote(
            charger["id"], 1, driver_id=driver["id"], channel="telegram"
        )
        assert outcome.result.accepted
        assert isinstance(cp, _StartsBeforeAnswering) and cp.started is not None
        authorized, started = await cp.started
    assert authorized == "Accepted"
    assert (started.transaction_id, started.id_tag_info["status"]) == (
        outcome.session.id,
        "Accepted",
    )
    session = await session_of(live.http, started.transaction_id)
    assert (session["status"], session["driver_id"]) == ("charging", driver["id"])


@pytest.mark.parametrize("tag", ["CB0000000001", "CB0000000002", "CB-0000000000000001"])
async def test_an_old_format_or_guessed_tag_is_invalid(live: LiveServer, tag: str) -> None:
    charger = await make_charger(live.http)
    await make_driver(live.http)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await _ready(cp)
        assert await cp.call_authorize(tag) == "Invalid"
        started = await cp.start_transaction(1, tag, 100)
        assert started.id_tag_info["status"] == "Invalid"
        session = await session_of(live.http, started.transaction_id)
        assert session["driver_id"] is None and session["status"] == "failed"


@pytest.mark.parametrize("tag", ["CB-0123456789ABCDEF", "cb-anything", "  CB-1  "])
async def test_the_admin_api_cannot_give_a_card_a_virtual_tag(
    admin: httpx.AsyncClient, tag: str
) -> None:
    driver = await make_driver(admin)
    response = await admin.post(f"/admin/drivers/{driver['id']}/id-tags", json={"id_tag": tag})
    assert response.status_code == 422
    assert "reserved" in response.text


async def test_the_admin_api_cannot_make_a_tag_virtual(admin: httpx.AsyncClient) -> None:
    driver = await make_driver(admin)
    url = f"/admin/drivers/{driver['id']}/id-tags"
    created = await admin.post(url, json={"id_tag": "RFID-77", "virtual": True})
    assert created.status_code == 422
    assert (await admin.post(url, json={"id_tag": "RFID-77"})).status_code == 201
    patched = await admin.patch(f"{url}/RFID-77", json={"virtual": True})
    assert patched.status_code == 422


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_migration_0006_replaces_guessable_virtual_tags(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        admin_url = None
    else:
        admin_url = request.getfixturevalue("postgres_admin_url")
        url = create_postgres_database(admin_url)
    try:
        await migrate.upgrade(url, "0005")
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                now = utcnow()
                await conn.execute(
                    text(
                        "INSERT INTO driver (id, name, language, billing, blocked, plan, "
                        "created_at) VALUES (1, 'Anna', 'sv', 'pay_per_session', false, 'payg', "
                        ":now), (2, 'Bo', 'sv', 'pay_per_session', false, 'payg', :now)"
                    ),
                    {"now": now},
                )
                for row_id, tag, driver_id in [
                    (1, "CB0000000001", 1),
                    (2, "CB0000000002", 2),
                    (3, "CB12", 1),  # an RFID UID that merely starts with CB
                    (4, "04A2B3C4", 2),
                ]:
                    await conn.execute(
                        text(
                            "INSERT INTO id_tag (id, id_tag, driver_id, status, created_at) "
                            "VALUES (:id, :tag, :driver, 'Accepted', :now)"
                        ),
                        {"id": row_id, "tag": tag, "driver": driver_id, "now": now},
                    )
            await migrate.upgrade_engine(engine)
            async with engine.connect() as conn:
                rows = {
                    r.id: (r.id_tag, bool(r.virtual), r.driver_id)
                    for r in await conn.execute(
                        text("SELECT id, id_tag, virtual, driver_id FROM id_tag")
                    )
                }
        finally:
            await engine.dispose()
    finally:
        if admin_url is not None:
            drop_postgres_database(admin_url, url)
    assert VIRTUAL.fullmatch(rows[1][0]) and rows[1][1:] == (True, 1)
    assert VIRTUAL.fullmatch(rows[2][0]) and rows[2][1:] == (True, 2)
    assert rows[1][0] != rows[2][0]
    assert rows[3] == ("CB12", False, 1)
    assert rows[4] == ("04A2B3C4", False, 2)
