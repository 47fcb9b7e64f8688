"""kill -9 under load loses nothing a charger was told is stored.

`chargebot serve` runs as a real process on SQLite and on PostgreSQL. Twenty chargers keep it
busy (StartTransaction, MeterValues, StatusNotification, StopTransaction, over and over, each
charger waiting for every answer), so the group commits are full when the process is killed
mid-stream. Then the database, read directly, must hold every message that was answered:
a session for each transactionId handed out, each acknowledged meter reading, each
acknowledged stop, and each connector's last acknowledged status (or the one in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlmodel import col, select

from backend.db import create_engine, session_factory
from backend.models import ChargingSession, Connector, MeterSample
from tests.helpers.charging import driver_with_tag, priced_charger
from tests.helpers.factories import make_charger
from tests.helpers.processes import CHARGEBOT, clean_env, free_port, wait_for_health
from tests.helpers.server import ADMIN_TOKEN, SECRET_KEY
from tests.ocpp_client import BareChargePoint, bare_charger

CHARGERS = 20
ACKNOWLEDGED_BEFORE_THE_KILL = 400  # answered messages, across all chargers
ENERGY = "Energy.Active.Import.Register"


@dataclass
class Acknowledged:
    """What one charger was answered (so what must be stored), and what it was still sending."""

    charger_id: str
    starts: dict[int, int] = field(default_factory=dict)  # transactionId → meterStart
    readings: list[tuple[int, int]] = field(default_factory=list)  # (transactionId, Wh)
    stops: dict[int, int] = field(default_factory=dict)  # transactionId → meterStop
    statuses: list[str] = field(default_factory=list)
    in_flight_status: str | None = None

    @property
    def count(self) -> int:
        return len(self.starts) + len(self.readings) + len(self.stops) + len(self.statuses)


def _serve(database_url: str, workdir: Path, port: int) -> subprocess.Popen[str]:
    env = clean_env(
        DATABASE_URL=database_url,
        ENVIRONMENT="production",
        ADMIN_TOKEN=ADMIN_TOKEN,
        SECRET_KEY=SECRET_KEY,
        PUBLIC_BASE_URL="https://chargebot.example.se",
        # Bare chargers report energy the instant a session starts: see tests/conftest.py.
        METER_POWER_TOLERANCE="1000",
        METER_SLACK_WH="1000000",
    )
    with (workdir / "serve.log").open("w") as out:
        return subprocess.Popen(
            [CHARGEBOT, "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


@contextlib.asynccontextmanager
async def serving(
    database_url: str, workdir: Path
) -> AsyncIterator[tuple[subprocess.Popen[str], int]]:
    """`chargebot serve` on a free port; killed at the end if it still runs."""
    port = free_port()
    process = _serve(database_url, workdir, port)
    try:
        await asyncio.to_thread(wait_for_health, f"http://127.0.0.1:{port}", process)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        await asyncio.to_thread(process.wait, 20)


async def keep_charging(charger: BareChargePoint, tag: str, acked: Acknowledged) -> None:
    """Sessions back to back on connector 1, each answer recorded; ends when the socket does."""
    wh = 1_000
    with contextlib.suppress(Exception):  # the kill: a closed socket or an unanswered call
        await charger.boot()
        while True:
            start = await charger.start_transaction(1, tag, wh)
            transaction_id = int(start.transaction_id)
            acked.starts[transaction_id] = wh
            await _status(charger, acked, "Charging")
            for _ in range(5):
                wh += 250
                await charger.meter(1, transaction_id, wh, 11_000.0)
                acked.readings.append((transaction_id, wh))
            await charger.stop_transaction(transaction_id, wh)
            acked.stops[transaction_id] = wh
            await _status(charger, acked, "Available")


async def _status(charger: BareChargePoint, acked: Acknowledged, status: str) -> None:
    acked.in_flight_status = status
    await charger.status(1, status)
    acked.statuses.append(status)
    acked.in_flight_status = None


async def test_kill_9_under_load_loses_nothing_acknowledged(
    database_url: str, tmp_path: Path
) -> None:
    async with serving(database_url, tmp_path) as (server, port):
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as http:
            station_id = (await priced_charger(http))["station_id"]
            chargers = [(await make_charger(http, station_id))["id"] for _ in range(CHARGERS)]
            tags = [f"KILL{n:04d}" for n in range(CHARGERS)]
            for n, tag in enumerate(tags):
                await driver_with_tag(http, tag, name=f"Driver {n}", billing="invoice")
        acked = [Acknowledged(charger_id) for charger_id in chargers]
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(
                    bare_charger(f"ws://127.0.0.1:{port}/ocpp", charger_id)
                )
                for charger_id in chargers
            ]
            load = [
                asyncio.create_task(keep_charging(socket, tag, record))
                for socket, tag, record in zip(sockets, tags, acked, strict=True)
            ]
            while (
                sum(record.count for record in acked) < ACKNOWLEDGED_BEFORE_THE_KILL
                or not all(record.stops for record in acked)  # each finished a session
            ):
                assert not any(task.done() for task in load), (tmp_path / "serve.log").read_text()
                await asyncio.sleep(0.02)
            server.send_signal(signal.SIGKILL)
            await asyncio.to_thread(server.wait, 20)
            await asyncio.wait_for(asyncio.gather(*load), 30)

    await _assert_stored(database_url, acked)


async def _assert_stored(database_url: str, acked: list[Acknowledged]) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as db:
            for record in acked:
                sessions = {
                    s.transaction_id: s
                    for s in await db.scalars(
                        select(ChargingSession).where(
                            col(ChargingSession.charger_id) == record.charger_id
                        )
                    )
                }
                for transaction_id, meter_start in record.starts.items():
                    stored = sessions.get(transaction_id)
                    assert stored is not None, f"{record.charger_id}: start {transaction_id} lost"
                    assert stored.meter_start_wh == meter_start
                for transaction_id, meter_stop in record.stops.items():
                    stopped = sessions[transaction_id]
                    assert stopped.stopped_at is not None, f"stop of {transaction_id} lost"
                    assert stopped.meter_stop_wh == meter_stop
                readings = {
                    (s.session_id, round(s.value))
                    for s in await db.scalars(
                        select(MeterSample).where(
                            col(MeterSample.session_id).in_(
                                [s.id for s in sessions.values() if s.id is not None]
                            ),
                            col(MeterSample.measurand) == ENERGY,
                        )
                    )
                }
                missing = [
                    reading
                    for reading in record.readings
                    if (sessions[reading[0]].id, reading[1]) not in readings
                ]
                assert not missing, f"{record.charger_id}: acknowledged readings lost: {missing}"
                connector = await db.scalar(
                    select(Connector).where(
                        col(Connector.charger_id) == record.charger_id,
                        col(Connector.connector_id) == 1,
                    )
                )
                assert connector is not None
                allowed = {record.statuses[-1], record.in_flight_status} - {None}
                assert connector.status in allowed, (record.charger_id, connector.status, allowed)
    finally:
        await engine.dispose()
