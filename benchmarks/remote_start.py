"""Benchmark: N simulated chargers on one server process; the remote-start round trip.

    .venv/bin/python -m benchmarks.remote_start --chargers 1000 --starts 300
    .venv/bin/python -m benchmarks.remote_start --via-redis --chargers 200 --starts 200

Measures the admin request → RemoteStartTransaction at the charger → Accepted → HTTP
response time (p50/p99), and the server's RSS and CPU with N chargers held. The chargers
run in this process (the `chargebot simulate` code), the server in its own process.

`--via-redis` runs two server processes on one fresh PostgreSQL database and Redis (the
scale-out layout); every charger holds its socket on process A. Starts alternate between
A (the in-process relay) and B (relayed over Redis to A and back), on distinct chargers,
and both round trips are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import redis
from sqlalchemy.engine import make_url

from backend import migrate
from backend.chargers.simulator import SimulatedChargePoint, SimulatorConfig
from benchmarks.common import cpu_seconds, free_port, rss_mib, start_server, summary

TOKEN = "benchmark-admin-token-0123456789"


async def register_network(http: httpx.AsyncClient, chargers: int) -> dict[str, str]:
    station = (
        await http.post(
            "/admin/stations",
            json={
                "name": "Bench",
                "address": "Testvägen 1",
                "city": "Uppsala",
                "latitude": 59.86,
                "longitude": 17.64,
            },
        )
    ).json()
    await http.put(f"/admin/stations/{station['id']}/tariff", json={"price_per_kwh_minor": 450})
    driver = (
        await http.post("/admin/drivers", json={"name": "Bench", "billing": "invoice"})
    ).json()
    await http.post(f"/admin/drivers/{driver['id']}/id-tags", json={"id_tag": "BENCH"})
    ids = [f"BENCH-{n:05d}" for n in range(chargers)]
    keys: dict[str, str] = {}
    semaphore = asyncio.Semaphore(20)

    async def create(charger_id: str) -> None:
        async with semaphore:
            response = await http.post(
                "/admin/chargers",
                json={
                    "id": charger_id,
                    "station_id": station["id"],
                    "connectors": [
                        {"connector_id": 1, "connector_type": "type2", "max_power_kw": 22},
                        {"connector_id": 2, "connector_type": "type2", "max_power_kw": 22},
                    ],
                },
            )
            response.raise_for_status()
            keys[charger_id] = response.json()["key"]  # shown once, at registration

    await asyncio.gather(*(create(i) for i in ids))
    return keys


async def wait_online(http: httpx.AsyncClient, expected: int, limit_s: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        chargers = (await http.get("/admin/chargers")).json()
        if sum(1 for c in chargers if c["online"]) >= expected:
            return time.perf_counter() - started
        await asyncio.sleep(0.5)
    raise RuntimeError(f"not all {expected} chargers came online in {limit_s} s")


async def run(chargers: int, starts: int, idle_seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="chargebot-bench-"))
    port = free_port()
    env = {
        # A lab: development needs no SECRET_KEY; the chargers use the keys they were given.
        "ENVIRONMENT": "development",
        "ADMIN_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "OCPP_START_TIMEOUT": "600",
    }
    server = start_server(port, env, workdir)
    base = f"http://127.0.0.1:{port}"
    sims: list[SimulatedChargePoint] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            rss_empty = rss_mib(server.pid)
            keys = await register_network(http, chargers)
            ids = list(keys)
            rss_registered = rss_mib(server.pid)
            for charger_id in ids:
                sim = SimulatedChargePoint(
                    SimulatorConfig(
                        url=f"ws://127.0.0.1:{port}/ocpp",
                        charge_point_id=charger_id,
                        password=keys[charger_id],
                        meter_interval=60.0,
                    )
                )
                sims.append(sim)
                tasks.append(asyncio.create_task(sim.run()))
            connect_s = await wait_online(http, chargers, limit_s=300)
            await asyncio.sleep(5)  # let boots, status triggers and first heartbeats settle
            rss_held = rss_mib(server.pid)
            cpu_before = cpu_seconds(server.pid)
            await asyncio.sleep(idle_seconds)
            idle_cpu = (cpu_seconds(server.pid) - cpu_before) / idle_seconds * 100

            samples = random.Random(7).sample(ids, min(starts, len(ids)))
            latencies = []
            cpu_before = cpu_seconds(server.pid)
            wall_before = time.perf_counter()
            for charger_id in samples:
                began = time.perf_counter()
                response = await http.post(
                    f"/admin/chargers/{charger_id}/remote-start",
                    json={"connector_id": 1, "id_tag": "BENCH"},
                )
                latencies.append((time.perf_counter() - began) * 1000)
                if response.status_code != 200 or response.json()["status"] != "Accepted":
                    raise RuntimeError(f"{charger_id}: {response.status_code} {response.text}")
            busy_wall = time.perf_counter() - wall_before
            busy_cpu = (cpu_seconds(server.pid) - cpu_before) / busy_wall * 100
            rss_after = rss_mib(server.pid)
        per_charger_kib = (rss_held - rss_registered) * 1024 / chargers
        print(f"chargers held          {chargers} (all online after {connect_s:.1f} s)")
        print(
            f"server RSS             empty {rss_empty:.0f} MiB, registered {rss_registered:.0f} "
            f"MiB, {chargers} connected {rss_held:.0f} MiB, after starts {rss_after:.0f} MiB"
        )
        print(f"RSS per charger        {per_charger_kib:.1f} KiB (connected minus registered)")
        print(f"server CPU idle        {idle_cpu:.1f} % of one core over {idle_seconds:.0f} s")
        print(f"server CPU starting    {busy_cpu:.1f} % of one core ({len(samples)} sequential)")
        print(f"remote-start round trip {summary(latencies)}")
    finally:
        for sim in sims:
            await sim.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.terminate()
        server.wait(30)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run_via_redis(
    chargers: int, starts: int, postgres_admin_url: str, redis_url: str
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="chargebot-bench-redis-"))
    name = f"chargebot_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = make_url(postgres_admin_url).set(database=name).render_as_string(False)
    prefix = f"chargebot-bench-{uuid.uuid4().hex[:12]}:"
    env = {
        "ADMIN_TOKEN": TOKEN,
        "DATABASE_URL": database_url,
        "OCPP_START_TIMEOUT": "600",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": prefix,
    }
    servers = []
    sims: list[SimulatedChargePoint] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await migrate.upgrade(database_url)
        for label in ("a", "b"):
            (workdir / label).mkdir()
            port = free_port()
            servers.append((port, start_server(port, env, workdir / label)))
        (port_a, _), (port_b, _) = servers
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port_a}", headers=headers, timeout=60
            ) as http_a,
            httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port_b}", headers=headers, timeout=60
            ) as http_b,
        ):
            keys = await register_network(http_a, chargers)
            ids = list(keys)
            for charger_id in ids:
                sim = SimulatedChargePoint(
                    SimulatorConfig(
                        url=f"ws://127.0.0.1:{port_a}/ocpp",
                        charge_point_id=charger_id,
                        password=keys[charger_id],
                        meter_interval=60.0,
                    )
                )
                sims.append(sim)
                tasks.append(asyncio.create_task(sim.run()))
            connect_s = await wait_online(http_b, chargers, limit_s=300)
            await asyncio.sleep(5)
            samples = random.Random(7).sample(ids, min(2 * starts, len(ids)))
            latencies: dict[str, list[float]] = {"a": [], "b": []}
            for n, charger_id in enumerate(samples):
                label, http = ("a", http_a) if n % 2 == 0 else ("b", http_b)
                began = time.perf_counter()
                response = await http.post(
                    f"/admin/chargers/{charger_id}/remote-start",
                    json={"connector_id": 1, "id_tag": "BENCH"},
                )
                latencies[label].append((time.perf_counter() - began) * 1000)
                if response.status_code != 200 or response.json()["status"] != "Accepted":
                    raise RuntimeError(f"{charger_id}: {response.status_code} {response.text}")
        print(f"chargers held          {chargers} on process A (online after {connect_s:.1f} s)")
        print(f"remote start via A     {summary(latencies['a'])} (in-process relay)")
        print(f"remote start via B     {summary(latencies['b'])} (Redis relay to A)")
    finally:
        for sim in sims:
            await sim.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, server in servers:
            server.terminate()
            server.wait(30)
        with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        client = redis.Redis.from_url(redis_url)
        leftovers = list(client.scan_iter(match=f"{prefix}*"))
        if leftovers:
            client.delete(*leftovers)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=300)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument(
        "--via-redis",
        action="store_true",
        help="two processes on PostgreSQL + Redis; starts sent to A and to B (not holding)",
    )
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if args.via_redis:
        asyncio.run(run_via_redis(args.chargers, args.starts, args.postgres_url, args.redis_url))
    else:
        asyncio.run(run(args.chargers, args.starts, args.idle_seconds))


if __name__ == "__main__":
    main()
