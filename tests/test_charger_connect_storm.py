"""Connect storms (issue #15): cheap connects, coalesced heartbeats, admission control.

Seen from the charger's side: the keys still guard every connect after a verified one is
remembered, a heartbeat is written by the next flush (and at shutdown) rather than at once,
a boot beyond capacity is told Pending with a retry interval, and boots arriving together
are written together. Statement counts are behavioural bounds, never timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from websockets.exceptions import InvalidStatus

from backend.app import create_app
from backend.db import create_engine, session_factory
from backend.models import Charger, Connector
from backend.services.charger_keys import VerifiedKeys
from backend.settings import Settings
from tests.helpers.factories import make_charger, make_station
from tests.helpers.server import LiveServer, served
from tests.helpers.statements import statements_matching
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
# Statements on the charger table: what connects and boots cost (timers are kept quiet).
_ON_CHARGER = re.compile(r"^\s*(SELECT .* FROM charger\b|UPDATE charger\b)", re.S | re.I)
_ON_CHARGER_OR_CONNECTOR = re.compile(
    r"^\s*(SELECT .* FROM (charger|connector)\b|UPDATE (charger|connector)\b)", re.S | re.I
)


def _settings(settings: Settings, **overrides: Any) -> Settings:
    quiet = {"ocpp_call_timeout": 5.0, "sweep_interval": 60.0}
    return settings.model_copy(update={**quiet, **overrides})


@contextlib.asynccontextmanager
async def _server(settings: Settings, **overrides: Any) -> AsyncIterator[LiveServer]:
    async with served(create_app(_settings(settings, **overrides))) as live:
        yield live


def _statements(
    engine: AsyncEngine, tables: re.Pattern[str] = _ON_CHARGER
) -> contextlib.AbstractContextManager[list[str]]:
    """Every statement on the charger table (or `tables`) the app's engine runs while inside."""
    return statements_matching(engine, tables)


async def _refused(live: LiveServer, charger_id: str, password: str | bytes | None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with bare_charger(live.ocpp_url, charger_id, password=password):
            pass
    return refused.value.response.status_code


async def _boots(live: LiveServer, charger_id: str, password: str) -> str:
    async with bare_charger(live.ocpp_url, charger_id, password=password) as cp:
        return str((await cp.boot()).status)


async def _last_seen(live: LiveServer, charger_id: str) -> datetime | None:
    async with live.app.state.sessions() as db:
        charger = await db.get(Charger, charger_id, populate_existing=True)
        assert charger is not None
        at: datetime | None = charger.last_seen_at
        return at


async def _set(live: LiveServer, charger_id: str, **values: Any) -> None:
    async with live.app.state.sessions() as db:
        await db.execute(update(Charger).where(col(Charger.id) == charger_id).values(**values))
        await db.commit()


async def _online(live: LiveServer, ids: list[str]) -> None:
    """Until every one of `ids` is marked online (its connect's write is done)."""

    async def flags() -> list[bool]:
        async with live.app.state.sessions() as db:
            rows = await db.execute(select(col(Charger.online)).where(col(Charger.id).in_(ids)))
            return [bool(row[0]) for row in rows]

    await eventually(flags, lambda online: len(online) == len(ids) and all(online))


async def _heartbeat(cp: BareChargePoint) -> None:
    await cp.call(call.Heartbeat(), suppress=False)


# --- keys -------------------------------------------------------------------------------


async def test_a_wrong_key_is_refused_right_after_the_right_one_was_remembered(
    settings: Settings,
) -> None:
    async with _server(settings) as live:
        charger = await make_charger(live.http)
        assert await _boots(live, charger["id"], charger["key"]) == "Accepted"
        assert len(live.app.state.central.verified_keys) == 1  # the right key is remembered
        other = await make_charger(live.http)
        for wrong in ("0" * 40, other["key"], charger["key"][:-1] + "x", b"\x00" * 20):
            assert await _refused(live, charger["id"], wrong) == 401
        assert await _boots(live, charger["id"], charger["key"]) == "Accepted"


async def test_a_replaced_key_stops_working_at_once(settings: Settings) -> None:
    async with _server(settings) as live:
        charger = await make_charger(live.http)
        old = charger["key"]
        assert await _boots(live, charger["id"], old) == "Accepted"
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/key", json={"handshake": False}
        )
        assert response.status_code == 200, response.text
        new = response.json()["key"]
        assert await _refused(live, charger["id"], old) == 401
        assert await _boots(live, charger["id"], new) == "Accepted"


async def test_a_key_changed_by_another_process_stops_working_at_once(
    settings: Settings,
) -> None:
    """The remembered proof is tied to the stored hash read on each connect."""
    async with _server(settings) as live:
        charger = await make_charger(live.http)
        assert await _boots(live, charger["id"], charger["key"]) == "Accepted"
        await _set(live, charger["id"], password_hash="hmac-sha256$" + "0" * 64)
        assert await _refused(live, charger["id"], charger["key"]) == 401
        await _set(live, charger["id"], password_hash=None)  # key removed: refused too
        assert await _refused(live, charger["id"], charger["key"]) == 401


async def test_a_deleted_charger_is_refused_although_its_key_was_remembered(
    settings: Settings,
) -> None:
    async with _server(settings) as live:
        charger = await make_charger(live.http)
        assert await _boots(live, charger["id"], charger["key"]) == "Accepted"
        response = await live.http.delete(f"/admin/chargers/{charger['id']}")
        assert response.status_code == 204
        assert await _refused(live, charger["id"], charger["key"]) == 404


def test_a_remembered_key_lapses_after_its_time_and_never_vouches_for_another() -> None:
    now = [1000.0]
    keys = VerifiedKeys(ttl=60.0, max_entries=2, clock=lambda: now[0])
    keys.add("CP-1", "hash-a", b"right")
    assert keys.hit("CP-1", "hash-a", b"right")
    assert not keys.hit("CP-1", "hash-a", b"wrong")
    assert not keys.hit("CP-1", "hash-b", b"right")  # the stored hash changed: gone
    assert not keys.hit("CP-1", "hash-a", b"right")
    keys.add("CP-1", "hash-a", b"right")
    now[0] += 59.0
    assert keys.hit("CP-1", "hash-a", b"right")
    now[0] += 1.0
    assert not keys.hit("CP-1", "hash-a", b"right")  # at most `ttl` after it was verified
    for charger_id in ("CP-1", "CP-2", "CP-3"):  # bounded: the least recently used goes
        keys.add(charger_id, "hash-a", b"right")
    assert len(keys) == 2 and not keys.hit("CP-1", "hash-a", b"right")
    off = VerifiedKeys(ttl=0.0, clock=lambda: now[0])
    off.add("CP-1", "hash-a", b"right")
    assert not off.hit("CP-1", "hash-a", b"right")


# --- heartbeats and last seen ---------------------------------------------------------


async def test_heartbeats_reach_last_seen_with_the_next_flush(settings: Settings) -> None:
    async with _server(settings, ocpp_last_seen_flush_seconds=0.1) as live:
        charger = await make_charger(live.http)
        async with bare_charger(live.ocpp_url, charger["id"]) as cp:
            await cp.boot()
            await _set(live, charger["id"], last_seen_at=LONG_AGO)
            await _heartbeat(cp)
            seen = await eventually(
                lambda: _last_seen(live, charger["id"]), lambda at: at and at > LONG_AGO
            )
            assert seen is not None


async def test_a_heartbeat_is_not_a_write_of_its_own(settings: Settings) -> None:
    async with _server(settings, ocpp_last_seen_flush_seconds=60.0) as live:
        chargers = [await make_charger(live.http) for _ in range(3)]
        async with contextlib.AsyncExitStack() as stack:
            points = [
                await stack.enter_async_context(bare_charger(live.ocpp_url, c["id"]))
                for c in chargers
            ]
            for cp in points:
                await cp.boot()
            with _statements(live.app.state.db_engine) as statements:
                for _ in range(3):
                    for cp in points:
                        await _heartbeat(cp)
                assert statements == []  # nine heartbeats answered, nothing written yet
                assert await live.app.state.central.state.flush_seen() == 3
                assert len(statements) == 1  # one executemany for all three chargers


async def test_heartbeats_are_written_at_shutdown(settings: Settings) -> None:
    quiet = _settings(settings, ocpp_last_seen_flush_seconds=60.0)
    async with served(create_app(quiet)) as live:
        charger = await make_charger(live.http)
        async with bare_charger(live.ocpp_url, charger["id"]) as cp:
            await cp.boot()
            await _set(live, charger["id"], last_seen_at=LONG_AGO)
            await _heartbeat(cp)
            assert await _last_seen(live, charger["id"]) == LONG_AGO  # not flushed yet
    engine = create_engine(settings.database_url)
    try:
        async with session_factory(engine)() as db:
            stored = await db.get(Charger, charger["id"])
            assert stored is not None and stored.last_seen_at is not None
            assert stored.last_seen_at > LONG_AGO
            assert stored.online is False
    finally:
        await engine.dispose()


# --- asking for statuses -------------------------------------------------------------


def _names(cp: BareChargePoint) -> list[str]:
    return [name for name, _ in cp.received]


async def _received(cp: BareChargePoint) -> list[str]:
    return _names(cp)


async def test_only_a_silent_charger_is_asked_for_its_statuses(settings: Settings) -> None:
    async with _server(settings, ocpp_status_trigger_seconds=2.0) as live:
        station = await make_station(live.http)
        reporting = await make_charger(live.http, station["id"])
        silent = await make_charger(live.http, station["id"])
        async with bare_charger(live.ocpp_url, reporting["id"]) as cp:
            assert (await cp.boot()).status == "Accepted"  # a boot reports the charger
            async with bare_charger(live.ocpp_url, silent["id"]) as quiet:
                # Connected later and silent: asked once its two seconds are up ...
                await eventually(lambda: _received(quiet), lambda n: "TriggerMessage" in n)
                # ... by when the one that booted, connected earlier, would have been asked.
                assert "TriggerMessage" not in _names(cp)


# --- admission control and batching -----------------------------------------------------


@contextlib.asynccontextmanager
async def _writes_held(live: LiveServer, charger_id: str) -> AsyncIterator[None]:
    """An open write transaction on `charger_id`'s row: boots wait for it (a slow disk).

    SQLite locks the whole database for writing (a waiting writer gives up after its
    busy_timeout, 5 s); PostgreSQL the row. Released on leaving.
    """
    async with live.app.state.sessions() as db:
        await db.execute(
            update(Charger).where(col(Charger.id) == charger_id).values(error_code="held")
        )
        try:
            yield
        finally:
            await db.rollback()


async def test_a_boot_beyond_capacity_is_pending_and_accepted_on_retry(
    settings: Settings,
) -> None:
    async with _server(settings, ocpp_boot_capacity=1, ocpp_boot_retry_seconds=7) as live:
        station = await make_station(live.http)
        first = await make_charger(live.http, station["id"])
        second = await make_charger(live.http, station["id"])
        state = live.app.state.central.state
        async with (
            bare_charger(live.ocpp_url, first["id"]) as cp1,
            bare_charger(live.ocpp_url, second["id"]) as cp2,
        ):
            await _online(live, [first["id"], second["id"]])
            async with _writes_held(live, first["id"]):
                booting = asyncio.create_task(cp1.boot())
                await eventually(lambda: _value(state.boots_waiting), lambda n: n == 1)
                pending = await cp2.boot()
                assert pending.status == "Pending"
                assert 7 <= pending.interval <= 14  # retry interval, spread by jitter
            assert (await booting).status == "Accepted"
            retried = await cp2.boot()  # what a Pending charge point does after `interval`
            assert retried.status == "Accepted"
            assert retried.interval == live.app.state.settings.ocpp_heartbeat_interval


async def _value(value: int) -> int:
    return value


@contextlib.asynccontextmanager
async def _connected(
    live: LiveServer, n: int
) -> AsyncIterator[tuple[list[dict[str, Any]], list[BareChargePoint]]]:
    """`n` chargers of one station, each connected and marked online, none booted yet."""
    station = await make_station(live.http)
    chargers = [await make_charger(live.http, station["id"]) for _ in range(n)]
    async with contextlib.AsyncExitStack() as stack:
        points = [
            await stack.enter_async_context(bare_charger(live.ocpp_url, c["id"])) for c in chargers
        ]
        await _online(live, [c["id"] for c in chargers])
        yield chargers, points


async def test_boots_arriving_together_are_written_together(settings: Settings) -> None:
    async with _server(settings) as live, _connected(live, 12) as (chargers, points):
        state = live.app.state.central.state
        with _statements(live.app.state.db_engine) as statements:
            async with _writes_held(live, chargers[0]["id"]):
                boots = [asyncio.create_task(points[0].boot())]
                await eventually(lambda: _value(state.boots_waiting), lambda n: n == 1)
                boots += [asyncio.create_task(cp.boot()) for cp in points[1:]]
                await eventually(lambda: _value(state.boots_waiting), lambda n: n == 12)
                statements.clear()  # the held-up first batch's statements went before
            results = await asyncio.gather(*boots)
            assert {r.status for r in results} == {"Accepted"}
            # One SELECT and one UPDATE (executemany) for the eleven that waited.
            assert len(statements) <= 2, statements


async def test_connecting_costs_a_bounded_number_of_statements_per_charger(
    settings: Settings,
) -> None:
    n = 10
    async with _server(settings) as live:
        station = await make_station(live.http)
        chargers = [await make_charger(live.http, station["id"]) for _ in range(n)]
        with _statements(live.app.state.db_engine) as statements:

            async def connect(charger: dict[str, Any]) -> str:
                return await _boots(live, charger["id"], charger["key"])

            assert set(await asyncio.gather(*(connect(c) for c in chargers))) == {"Accepted"}
            await eventually(lambda: _value(len(live.app.state.central.registry)), lambda k: k == 0)
            await live.app.state.central.state.drain()
        # Identity, online, boot (SELECT + UPDATE), offline: five when nothing is batched.
        assert len(statements) <= 5 * n, statements
        async with live.app.state.sessions() as db:
            for charger in chargers:
                stored = await db.get(Charger, charger["id"])
                assert stored is not None and stored.vendor == "Test"
                assert stored.online is False and stored.last_seen_at is not None


async def test_status_notifications_arriving_together_are_written_together(
    settings: Settings,
) -> None:
    async with _server(settings) as live, _connected(live, 13) as (chargers, points):
        state = live.app.state.central.state
        with _statements(live.app.state.db_engine, _ON_CHARGER_OR_CONNECTOR) as statements:
            async with _writes_held(live, chargers[0]["id"]):
                # Connector 0 writes the charger's own row: held up on either database.
                reports = [asyncio.create_task(points[0].status(0, "Unavailable"))]
                await eventually(lambda: _value(state.status_reports_waiting), lambda n: n == 1)
                reports += [asyncio.create_task(cp.status(1, "Preparing")) for cp in points[1:12]]
                # One call at a time per socket: the unknown connector on a charger of its own.
                reports.append(asyncio.create_task(points[12].status(99, "Available")))
                await eventually(lambda: _value(state.status_reports_waiting), lambda n: n == 13)
                statements.clear()  # the held-up first report's statements went before
            await asyncio.gather(*reports)
            # Which chargers and connectors exist, and one UPDATE for the twelve that
            # waited (connector 99 is unknown: answered, never written).
            assert len(statements) <= 3, statements
        async with live.app.state.sessions() as db:
            first = await db.get(Charger, chargers[0]["id"])
            assert first is not None and first.status == "Unavailable"
            rows = await db.execute(
                select(col(Connector.charger_id), col(Connector.status)).where(
                    col(Connector.connector_id) == 1,
                    col(Connector.charger_id).in_([c["id"] for c in chargers[1:12]]),
                )
            )
            assert sorted(status for _, status in rows) == ["Preparing"] * 11
