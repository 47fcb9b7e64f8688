"""Faults lose nothing (issue #13), on SQLite and PostgreSQL.

Incident: a StopTransaction that arrived while the database refused writes was answered
InternalError and never retried, so the session stayed `charging`; and during a full outage
`/healthz` kept answering 200 while everything else failed, so no load balancer noticed.

Writes are refused for real, by a trigger created over a separate connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.app import create_app
from backend.services import readiness
from backend.services.pricing import TariffSnapshot, compute_cost
from backend.settings import Settings
from tests.helpers.charging import TARIFF, driver_with_tag, priced_charger, session_of, simulator
from tests.helpers.refusals import writes_refused
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually


async def test_a_stop_transaction_refused_by_the_database_completes_the_session_after_retries(
    live: LiveServer, database_url: str
) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "TAG-FAULT")
    async with simulator(
        live,
        charger["id"],
        power_kw=22,
        time_scale=10.0,  # plausible for the connector, and the register visibly moves
        meter_interval=60.0,  # no MeterValues in flight: the StopTransaction meets the refusal
        transaction_message_attempts=100,
        transaction_message_retry_interval=0.05,
    ) as sim:
        meter_start = sim.meter_wh(1)
        response = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "TAG-FAULT"},
        )
        assert response.json()["status"] == "Accepted", response.text
        session_id = response.json()["session_id"]
        await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "charging"
        )
        await eventually(lambda: asyncio.sleep(0.05, sim.meter_wh(1)), lambda wh: wh > meter_start)

        async with writes_refused(database_url, "charging_session", "UPDATE"):
            await sim.stop_local(1)  # the driver stops at the charger
            meter_stop = sim.meter_wh(1)  # the register stands still once the transaction ends
            await eventually(
                lambda: asyncio.sleep(
                    0, [o for a, _, o in sim.transaction_log if a == "StopTransaction"]
                ),
                lambda outcomes: outcomes.count("InternalError") >= 3,  # retried, refused again
            )
            still_open = await session_of(live.http, session_id)
            assert still_open["status"] == "charging"
            assert still_open["stopped_at"] is None
            assert sim.queued_transaction_messages == ["StopTransaction"]  # kept, retried
            assert (await live.http.get("/healthz")).status_code == 200
        loop = asyncio.get_running_loop()
        writes_back = loop.time()
        done = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "completed"
        )
        recovered_after = loop.time() - writes_back
        # The session may show completed a moment before the answer reaches the charger.
        await eventually(
            lambda: asyncio.sleep(0, sim.queued_transaction_messages), lambda q: q == []
        )
    stop_attempts = [(n, o) for a, n, o in sim.transaction_log if a == "StopTransaction"]
    refused, last = stop_attempts[:-1], stop_attempts[-1]
    assert refused and all(outcome == "InternalError" for _, outcome in refused), stop_attempts
    assert last == (len(refused) + 1, "accepted"), stop_attempts
    print(  # figures for the record, never asserted: tests do not time things
        f"StopTransaction refused {len(refused)}x, accepted on attempt {last[0]}; "
        f"completed {recovered_after:.2f}s after writes came back"
    )
    energy = meter_stop - meter_start
    assert energy > 0
    assert done["energy_wh"] == energy  # exactly what the simulator sent
    started = datetime.fromisoformat(done["started_at"])
    stopped = datetime.fromisoformat(done["stopped_at"])
    expected = compute_cost(TariffSnapshot(vat_rate_percent=25, **TARIFF), energy, started, stopped)
    assert done["cost_minor"] == expected.total_minor
    assert done["cost_minor"] == 500 + (energy * 450 + 500) // 1000  # fee + 4.50 SEK/kWh, half up


async def test_readyz_is_503_naming_the_database_while_it_refuses_writes_and_healthz_stays_200(
    app: FastAPI, anonymous: httpx.AsyncClient, database_url: str
) -> None:
    readiness.cache_of(app.state.sessions).ttl = 0  # every probe checks: no cached answer
    ready = await anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "redis": "not configured"}
    async with writes_refused(database_url, "readiness_probe", "INSERT", "UPDATE"):
        refused = await anonymous.get("/readyz")
        alive = await anonymous.get("/healthz")
    assert refused.status_code == 503
    body = refused.json()
    assert body["status"] == "unavailable"
    assert body["database"] not in ("ok", "")  # the error class, e.g. IntegrityError
    assert body["redis"] == "not configured"
    assert str(make_url(database_url).database) not in refused.text  # no DSN, no path
    assert "read-only" not in refused.text  # nor the database's own message
    assert alive.status_code == 200
    again = await anonymous.get("/readyz")
    assert again.status_code == 200
    assert again.json()["status"] == "ready"


async def test_a_flood_of_readyz_probes_writes_the_probe_row_once_a_second(
    app: FastAPI, anonymous: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every probe rewrote the one probe row: a flood of them queued on its lock."""
    writes: list[int] = []
    real_write = readiness._write_probe

    async def counting(sessions: async_sessionmaker[AsyncSession]) -> None:
        writes.append(1)
        await real_write(sessions)

    monkeypatch.setattr(readiness, "_write_probe", counting)
    now = [1000.0]
    cache = readiness.cache_of(app.state.sessions)
    cache.clock = lambda: now[0]
    answers = await asyncio.gather(*[anonymous.get("/readyz") for _ in range(20)])
    assert [a.status_code for a in answers] == [200] * 20
    assert all(a.json()["status"] == "ready" for a in answers)
    assert len(writes) == 1  # the probes that came while it ran shared the one check
    now[0] += 0.5
    assert (await anonymous.get("/readyz")).status_code == 200
    assert len(writes) == 1  # answered from the cache
    now[0] += cache.ttl
    assert (await anonymous.get("/readyz")).status_code == 200
    assert len(writes) == 2  # checked again once the report is a second old


class _Forwarder:
    """A TCP port forwarding to Redis; `close()` makes it a closed port (Redis "gone")."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.writers: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def test_readyz_is_503_naming_redis_when_it_stops_answering(
    settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    target = urlsplit(redis_url)
    forwarder = _Forwarder(target.hostname or "127.0.0.1", target.port or 6379)
    port = await forwarder.start()
    app: FastAPI = create_app(
        settings.model_copy(
            update={
                "redis_url": f"redis://127.0.0.1:{port}{target.path}",
                "redis_key_prefix": redis_prefix,
            }
        )
    )
    try:
        async with app.router.lifespan_context(app):
            readiness.cache_of(app.state.sessions).ttl = 0  # every probe checks
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json() == {"status": "ready", "database": "ok", "redis": "ok"}
                await forwarder.close()  # Redis's port is closed from now on
                gone = await http.get("/readyz")
                alive = await http.get("/healthz")
    finally:
        await forwarder.close()
    assert gone.status_code == 503
    body = gone.json()
    assert body["status"] == "unavailable"
    assert body["database"] == "ok"
    assert body["redis"] not in ("ok", "not configured")  # the error class
    assert str(port) not in gone.text  # no address
    assert alive.status_code == 200
