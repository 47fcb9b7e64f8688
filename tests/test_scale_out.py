"""Scale-out: two `chargebot serve` processes on one PostgreSQL database and one Redis.

A simulated charger (in this test process) holds its socket on process A; process B starts
a charge through its signed SMS webhook and stops it through its admin API, both relayed
over Redis to A. Then A is killed: the lease sweeper shows the charger offline, it
reconnects to B and is commanded there.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from backend.chargers.simulator import SimulatedChargePoint, SimulatorConfig
from bot.adapters.sms import SIGNATURE_HEADER
from tests.helpers.charging import charger_of, priced_charger, session_of
from tests.helpers.factories import charger_key, make_driver
from tests.helpers.processes import CHARGEBOT, clean_env, free_port, wait_for_health
from tests.helpers.server import (
    ADMIN_TOKEN,
    SECRET_KEY,
    create_postgres_database,
    drop_postgres_database,
)
from tests.helpers.sms import PUBLIC, inbound, twiml_text
from tests.helpers.twilio_double import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, signature
from tests.helpers.waiting import eventually, settle

ANNA = "+46701234567"
LEASE_SECONDS = 3.0


@pytest.fixture
def scale_out_env(
    postgres_admin_url: str, redis_url: str, redis_prefix: str
) -> Iterator[dict[str, str]]:
    """The settings both processes share: a fresh PostgreSQL database, Redis, a prefix."""
    database_url = create_postgres_database(postgres_admin_url)
    env = clean_env(
        DATABASE_URL=database_url,
        ENVIRONMENT="production",
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY,
        PUBLIC_BASE_URL=PUBLIC,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=redis_prefix,
        REDIS_LEASE_SECONDS=str(LEASE_SECONDS),
        OCPP_CALL_TIMEOUT="5",
        SWEEP_INTERVAL="0.5",
        # The simulators run compressed time (time_scale=600): see tests/conftest.py `settings`.
        METER_POWER_TOLERANCE="1000",
        METER_SLACK_WH="1000000",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
    )
    upgrade = subprocess.run(
        [CHARGEBOT, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    yield env
    drop_postgres_database(postgres_admin_url, database_url)


class Server:
    """One `chargebot serve` process and an admin client to it."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, *options: str) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [CHARGEBOT, "serve", "--port", str(self.port), *options],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.http = httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )

    @property
    def ocpp_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def sms(self, sender: str, body: str) -> str | None:
        """An SMS posted to this process's webhook, signed like Twilio; the TwiML answer."""
        params = inbound(sender, body)
        headers = {SIGNATURE_HEADER: signature(f"{PUBLIC}/sms/twilio", params)}
        async with httpx.AsyncClient(base_url=self.base, timeout=30) as plain:
            response = await plain.post("/sms/twilio", data=params, headers=headers)
        assert response.status_code == 200, response.text
        return twiml_text(response.text)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def stop(self) -> None:
        await self.http.aclose()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(self.process.wait, 20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.asynccontextmanager
async def servers(env: dict[str, str], workdir: Path) -> AsyncIterator[tuple[Server, Server]]:
    a, b = Server("a", env, workdir), Server("b", env, workdir)
    try:
        for server in (a, b):
            await asyncio.to_thread(wait_for_health, server.base, server.process)
        yield a, b
    finally:
        await a.stop()
        await b.stop()
        for server in (a, b):
            assert "Traceback" not in server.output(), server.output()


@contextlib.asynccontextmanager
async def charger_on(
    server: Server, charger_id: str, **config: Any
) -> AsyncIterator[SimulatedChargePoint]:
    config = {
        "meter_interval": 0.2,
        "time_scale": 600.0,
        "backoff_max": 1.0,
        "password": charger_key(charger_id),
        **config,
    }
    sim = SimulatedChargePoint(
        SimulatorConfig(url=server.ocpp_url, charge_point_id=charger_id, **config)
    )
    task = asyncio.create_task(sim.run())
    try:
        await asyncio.wait_for(sim.booted.wait(), 15)
        yield sim
    finally:
        await sim.stop()
        await asyncio.wait_for(task, 10)


def available(charger: dict[str, Any]) -> bool:
    return bool(charger["online"]) and all(
        c["status"] == "Available" for c in charger["connectors"]
    )


async def test_two_processes_share_chargers_through_redis(
    scale_out_env: dict[str, str], tmp_path: Path
) -> None:
    async with servers(scale_out_env, tmp_path) as (a, b):
        charger = await priced_charger(b.http)
        charger_id, code = charger["id"], charger["connectors"][0]["code"]
        await make_driver(b.http, name="Anna", phone=ANNA, billing="invoice")

        async with charger_on(a, charger_id) as sim:
            # Online as seen by B: the database is shared, the socket is on A.
            await eventually(lambda: charger_of(b.http, charger_id), available)

            # A start by SMS to B reaches the charger on A (over Redis) ...
            offer = await b.sms(ANNA, f"LADDA {code}")
            assert offer is not None and "1) Starta laddningen" in offer
            starting = await b.sms(ANNA, "1")
            assert starting is not None and "Startar laddaren" in starting
            sessions = await eventually(
                lambda: _sessions(b), lambda s: len(s) == 1 and s[0]["status"] == "charging"
            )
            session_id = sessions[0]["id"]
            await eventually(lambda: session_of(b.http, session_id), lambda s: s["energy_wh"] > 0)
            assert "RemoteStartTransaction" in [name for name, _ in sim.received]

            # ... and so does a stop through B's admin API.
            assert "RemoteStopTransaction" not in [name for name, _ in sim.received]
            stop = await b.http.post(f"/admin/sessions/{session_id}/stop")
            assert stop.status_code == 200, stop.text
            assert stop.json()["status"] == "Accepted"
            await eventually(
                lambda: session_of(b.http, session_id),
                lambda s: s["status"] == "completed",
            )

            # A command with an answer that carries data: GetConfiguration's keys travel back.
            fetched = await b.http.post(f"/admin/chargers/{charger_id}/configuration/fetch")
            assert fetched.status_code == 200, fetched.text
            keys = {k["key"]: k["value"] for k in fetched.json()["keys"]}
            assert keys["HeartbeatInterval"] == sim._configuration()["HeartbeatInterval"]
            # Every other operation travels the same way (ChargerCommands.operate).
            version = await b.http.post(f"/admin/chargers/{charger_id}/local-list/version")
            assert version.json() == {"list_version": sim.authorization.list_version()}

            # A dies without a word: the lease lapses and B's sweeper marks the charger offline.
            holder = lease_holder(scale_out_env, charger_id)
            assert await holder() is not None  # A holds the charger's lease
            a.process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(a.process.wait, 10)
            killed = time.monotonic()
            await eventually(
                lambda: charger_of(b.http, charger_id), lambda c: not c["online"], within=60
            )
            print(f"charger shown offline {time.monotonic() - killed:.1f} s after SIGKILL of A")
            # Offline because the lease lapsed (nobody renewed it), not for another reason.
            assert await holder() is None
            gone = await b.http.post(
                f"/admin/chargers/{charger_id}/unlock", json={"connector_id": 1}
            )
            assert gone.status_code == 409 and gone.json()["reason"] == "offline", gone.text

        # The charger reconnects, now to B, and is commanded there.
        async with charger_on(b, charger_id):
            await eventually(lambda: charger_of(b.http, charger_id), available)
            unlock = await b.http.post(
                f"/admin/chargers/{charger_id}/unlock", json={"connector_id": 1}
            )
            assert unlock.status_code == 200, unlock.text
            assert unlock.json()["status"] == "Unlocked"


async def _sessions(server: Server) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = (await server.http.get("/admin/sessions")).json()
    return sessions


async def test_a_charger_that_moves_to_another_process_is_dropped_by_the_old_one(
    scale_out_env: dict[str, str], tmp_path: Path
) -> None:
    async with servers(scale_out_env, tmp_path) as (a, b):
        charger_id = (await priced_charger(a.http))["id"]
        async with charger_on(a, charger_id, reconnect=False) as old:
            await eventually(lambda: charger_of(b.http, charger_id), available)
            async with charger_on(b, charger_id):
                # B took the lease and told A over Redis to drop its stale socket.
                await eventually(_connected(old), lambda connected: not connected)
                # A's dropped socket did not mark it offline; it stays online past a lease.
                await settle(LEASE_SECONDS * 1.5)
                assert (await charger_of(a.http, charger_id))["online"]
                # A command through A now travels to B, which holds the socket.
                unlock = await a.http.post(
                    f"/admin/chargers/{charger_id}/unlock", json={"connector_id": 2}
                )
                assert unlock.status_code == 200, unlock.text
                assert unlock.json()["status"] == "Unlocked"
            # Gone from B too (a clean close): offline at once, whoever asks.
            await eventually(lambda: charger_of(a.http, charger_id), lambda c: not c["online"])


def lease_holder(env: dict[str, str], charger_id: str) -> Callable[[], Awaitable[object]]:
    """Who holds the charger's lease in Redis now (the relay's `holder_key`); None: nobody."""
    key = f"{env['REDIS_KEY_PREFIX']}charger:{charger_id}:holder"

    def read() -> object:
        client = redis.Redis.from_url(env["REDIS_URL"])
        try:
            return client.get(key)
        finally:
            client.close()

    async def probe() -> object:
        return await asyncio.to_thread(read)

    return probe


def _connected(sim: SimulatedChargePoint) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return sim.connected.is_set()

    return probe


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned for `pid` (not its helpers)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


async def test_serve_with_workers_runs_processes_that_share_one_port(
    scale_out_env: dict[str, str], tmp_path: Path
) -> None:
    server = Server("workers", scale_out_env, tmp_path, "--workers", "2")
    try:
        await asyncio.to_thread(wait_for_health, server.base, server.process)
        await eventually(
            lambda: asyncio.sleep(0, _workers(server.process.pid)), lambda w: len(w) == 2
        )
        chargers = [await priced_charger(server.http) for _ in range(6)]
        async with contextlib.AsyncExitStack() as stack:
            sims = [await stack.enter_async_context(charger_on(server, c["id"])) for c in chargers]
            for charger in chargers:
                await eventually(
                    functools.partial(charger_of, server.http, charger["id"]), available
                )
            # Whichever worker took the request, the command reaches the worker holding
            # the charger's socket (the kernel spreads both over the two).
            for round_ in range(2):
                for charger, sim in zip(chargers, sims, strict=True):
                    unlock = await server.http.post(
                        f"/admin/chargers/{charger['id']}/unlock", json={"connector_id": 1}
                    )
                    assert unlock.status_code == 200, unlock.text
                    assert unlock.json()["status"] == "Unlocked"
                    unlocks = [name for name, _ in sim.received].count("UnlockConnector")
                    assert unlocks == round_ + 1
    finally:
        await server.stop()
    assert "Traceback" not in server.output(), server.output()


def test_serve_with_workers_needs_redis(tmp_path: Path) -> None:
    env = clean_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'workers.sqlite3'}",
        ENVIRONMENT="development",
    )
    env.pop("REDIS_URL", None)
    refused = subprocess.run(
        [CHARGEBOT, "serve", "--port", str(free_port()), "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "--workers N > 1 needs REDIS_URL" in refused.stderr
