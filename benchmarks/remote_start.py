"""Benchmark: N simulated chargers on one server process; the remote-start round trip.

    .venv/bin/python -m benchmarks.remote_start --chargers 1000 --starts 300

Measures the admin request → RemoteStartTransaction at the charger → Accepted → HTTP
response time (p50/p99), and the server's RSS and CPU with N chargers held. The chargers
run in this process (the `chargebot simulate` code), the server in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

import httpx

from backend.chargers.simulator import SimulatedChargePoint, SimulatorConfig
from benchmarks.common import cpu_seconds, free_port, rss_mib, start_server, summary

TOKEN = "benchmark-admin-token-0123456789"


async def register_network(http: httpx.AsyncClient, chargers: int) -> list[str]:
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

    await asyncio.gather(*(create(i) for i in ids))
    return ids


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
            ids = await register_network(http, chargers)
            rss_registered = rss_mib(server.pid)
            for charger_id in ids:
                sim = SimulatedChargePoint(
                    SimulatorConfig(
                        url=f"ws://127.0.0.1:{port}/ocpp",
                        charge_point_id=charger_id,
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--starts", type=int, default=300)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    asyncio.run(run(args.chargers, args.starts, args.idle_seconds))


if __name__ == "__main__":
    main()
