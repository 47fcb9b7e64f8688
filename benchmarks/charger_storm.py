"""Benchmark: charger storms against `chargebot serve` and a bare `ocpp` central system.

    .venv/bin/python -m benchmarks.charger_storm --chargers 1000
    .venv/bin/python -m benchmarks.charger_storm --chargers 1000 --database postgresql
    .venv/bin/python -m benchmarks.charger_storm --chargers 200 --only connect,restart

Both servers run as subprocesses, one after the other, in one run: `chargebot serve` (SQLite
by default, or a throwaway PostgreSQL database on 127.0.0.1:5432) and a bare central system
written with the `ocpp` library and `websockets` (the same handlers, no persistence, no auth).
The charge points are this script's own: raw OCPP-J over `websockets` (JSON arrays, subprotocol
ocpp1.6), many per asyncio loop, spread over `--client-processes` processes. A share of them
(`--password-share`) sends HTTP Basic auth (identity + key); the bare server ignores it.
Before anything is measured, a station with a tariff, a driver and its id tag are made through
the admin API and the chargers (keys as the server's keyed hash) go straight into the database:
10,000 POSTs would each read every connector code.

Scenarios (`--only`, comma-separated; all by default):
  connect     all chargers connect at once; each sends BootNotification (until Accepted) and a
              StatusNotification per connector; time until all are booted, server CPU per charger
  start       `--starts` chargers send StartTransaction together: p50 / p99 answer time
  saturation  `--saturation-chargers` chargers in a transaction send MeterValues as fast as the
              answers come, for `--seconds`: answers per second, server CPU per 1,000 messages
  restart     the server is stopped (SIGTERM) and started again; time from the new process's
              start until every charger has reconnected and booted again
Peak RSS is the largest VmHWM of the server's processes. Chargers answer TriggerMessage and
ChangeConfiguration Accepted, retry a lost or refused connection after `--retry-seconds`
(± 50 %) and a BootNotification answered with a CALLERROR on the same socket, and send Heartbeats
at the interval the server gives. Server logs stay in /tmp/chargebot-storm-*. The machine is
shared: compare the ratios of one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import itertools
import json
import os
import random
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import websockets
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, RegistrationStatus
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from backend.chargers.typed_ocpp import ChargePoint, on
from benchmarks.common import CHARGEBOT, cpu_seconds, free_port, percentile

COMMAND = ".venv/bin/python -m benchmarks.charger_storm"
SCENARIOS = ("connect", "start", "saturation", "steady", "restart")
TOKEN = "benchmark-admin-token-0123456789abcdef"
SECRET = "benchmark-secret-key-0123456789abcdefghijkl"
ID_TAG = "BENCH"
SUBPROTOCOL = Subprotocol("ocpp1.6")
ROOT = Path(__file__).resolve().parents[1]
ENERGY = "Energy.Active.Import.Register"


def ocpp_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def process_tree(pid: int) -> list[int]:
    """`pid` and every live descendant (the workers of `chargebot serve --workers N`)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            todo.extend(int(child) for child in children)
    return tree


def peak_rss_mib(pid: int) -> float:
    """VmHWM summed over the process tree: an upper bound of the memory it needed at once."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total


def tree_cpu_seconds(pid: int) -> float:
    """Server CPU (user + system) of `pid` and its live workers."""
    total = 0.0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(member)
    return total


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This checkout first on the path: a snapshot of the code runs as a whole."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


# --- the charge points (client processes) --------------------------------------------------


class CallFailedError(Exception):
    """No CALLRESULT: a CALLERROR, a timeout or a lost connection."""


class CallErrorAnsweredError(CallFailedError):
    """The server answered CALLERROR (e.g. InternalError): the connection is still up."""


@dataclass
class ClientSettings:
    url: str
    connectors: int
    retry_seconds: float
    call_timeout: float


class RawChargePoint:
    """One charge point speaking OCPP-J itself: JSON arrays over a websockets connection."""

    def __init__(self, charger_id: str, key: str | None, settings: ClientSettings) -> None:
        self.id = charger_id
        self.settings = settings
        self.headers: dict[str, str] = {}
        if key is not None:
            token = base64.b64encode(f"{charger_id}:{key}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.ws: ClientConnection | None = None
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.ids = itertools.count(1)
        self.boots: list[float] = []  # monotonic times of completed boots
        self.failures = 0
        self.call_errors = 0
        self.heartbeat_interval = 300.0
        self.transaction_id: int | None = None
        self.meter_start = 1000
        self.charging_since = 0.0
        self.stopping = False
        self.tasks: set[asyncio.Task[None]] = set()

    # The connection and its reader.

    async def run(self) -> None:
        url = f"{self.settings.url}/{self.id}"
        while not self.stopping:
            try:
                async with connect(
                    url,
                    additional_headers=self.headers,
                    subprotocols=[SUBPROTOCOL],
                    compression=None,
                    open_timeout=self.settings.call_timeout,
                    ping_interval=None,
                    close_timeout=2,
                    max_size=2**20,
                ) as ws:
                    self.ws = ws
                    reader = asyncio.create_task(self._read(ws))
                    try:
                        await self._boot()
                        while not reader.done():
                            done, _ = await asyncio.wait({reader}, timeout=self.heartbeat_interval)
                            if not done:
                                await self.call("Heartbeat", {})
                    finally:
                        self.ws = None
                        reader.cancel()
                        for future in self.pending.values():
                            if not future.done():
                                future.set_exception(CallFailedError("connection lost"))
                        self.pending.clear()
            except (
                OSError,
                TimeoutError,
                websockets.exceptions.WebSocketException,
                CallFailedError,
            ):
                self.failures += 1
            if not self.stopping:
                await asyncio.sleep(self.settings.retry_seconds * random.uniform(0.5, 1.5))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                kind = message[0]
                if kind == 2:
                    await self._answer(ws, message[1], message[2], message[3])
                    continue
                future = self.pending.pop(message[1], None)
                if future is None or future.done():
                    continue
                if kind == 3:
                    future.set_result(message[2])
                else:
                    self.call_errors += 1
                    future.set_exception(CallErrorAnsweredError(f"{message[2]}: {message[3]}"))
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:  # whoever waits for an answer on this socket hears now, not at its timeout
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(CallFailedError("connection lost"))
            self.pending.clear()

    async def _answer(self, ws: ClientConnection, uid: str, action: str, payload: Any) -> None:
        if action == "TriggerMessage":
            await ws.send(json.dumps([3, uid, {"status": "Accepted"}]))
            if payload.get("requestedMessage") == "StatusNotification":
                self._spawn(self._triggered_statuses(payload.get("connectorId")))
        elif action in ("ChangeConfiguration", "RemoteStartTransaction", "RemoteStopTransaction"):
            await ws.send(json.dumps([3, uid, {"status": "Accepted"}]))
        else:
            await ws.send(json.dumps([4, uid, "NotImplemented", f"{action} not simulated", {}]))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        ws = self.ws
        if ws is None:
            raise CallFailedError("not connected")
        uid = str(next(self.ids))
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[uid] = future
        try:
            await ws.send(json.dumps([2, uid, action, payload]))
            return await asyncio.wait_for(future, self.settings.call_timeout)
        except (TimeoutError, websockets.exceptions.ConnectionClosed) as error:
            raise CallFailedError(f"{action}: {error!r}") from error
        finally:
            self.pending.pop(uid, None)

    # What a charger says.

    async def _boot(self) -> None:
        while True:
            try:
                answer = await self.call(
                    "BootNotification",
                    {
                        "chargePointVendor": "Bench",
                        "chargePointModel": "Storm",
                        "chargePointSerialNumber": self.id,
                        "firmwareVersion": "1.0",
                    },
                )
            except CallErrorAnsweredError:  # a charger tries its boot again, on the same socket
                await asyncio.sleep(self.settings.retry_seconds * random.uniform(0.5, 1.5))
                continue
            interval = float(answer.get("interval") or 0)
            if answer.get("status") == "Accepted":
                self.heartbeat_interval = max(interval, 10.0)
                break
            await asyncio.sleep(interval if interval > 0 else 10.0)  # Pending / Rejected
        await self._statuses(None)
        self.boots.append(time.monotonic())

    async def _statuses(self, connector: int | None) -> None:
        """A StatusNotification per connector (or the one asked for); a CALLERROR is an answer."""
        connectors = range(1, self.settings.connectors + 1) if connector is None else [connector]
        for n in connectors:
            charging = self.transaction_id is not None and n == 1
            with contextlib.suppress(CallErrorAnsweredError):
                await self.call(
                    "StatusNotification",
                    {
                        "connectorId": n,
                        "errorCode": "NoError",
                        "status": "Charging" if charging else "Available",
                        "timestamp": ocpp_now(),
                    },
                )

    async def _triggered_statuses(self, connector: int | None) -> None:
        with contextlib.suppress(CallFailedError):  # nobody waits for these
            await self._statuses(connector)

    def meter(self) -> int:
        return self.meter_start + int((time.monotonic() - self.charging_since) * 2)  # 7.2 kW

    async def start_transaction(self) -> tuple[float, str]:
        began = time.monotonic()
        answer = await self.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": ID_TAG,
                "meterStart": self.meter_start,
                "timestamp": ocpp_now(),
            },
        )
        elapsed = time.monotonic() - began
        self.transaction_id = int(answer["transactionId"])
        self.charging_since = began
        return elapsed, str(answer.get("idTagInfo", {}).get("status"))

    async def meter_values(self) -> None:
        payload: dict[str, Any] = {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": ocpp_now(),
                    "sampledValue": [
                        {
                            "value": str(self.meter()),
                            "context": "Sample.Periodic",
                            "measurand": ENERGY,
                            "unit": "Wh",
                        }
                    ],
                }
            ],
        }
        if self.transaction_id is not None:
            payload["transactionId"] = self.transaction_id
        await self.call("MeterValues", payload)

    async def stop_transaction(self) -> float:
        if self.transaction_id is None:
            return 0.0
        began = time.monotonic()
        await self.call(
            "StopTransaction",
            {
                "transactionId": self.transaction_id,
                "idTag": ID_TAG,
                "meterStop": self.meter(),
                "timestamp": ocpp_now(),
                "reason": "Local",
            },
        )
        self.transaction_id = None
        return time.monotonic() - began


async def _sleep_until(at: float) -> None:
    await asyncio.sleep(max(0.0, at - time.monotonic()))


class ClientWorker:
    """A client process: its share of the chargers, driven by JSON lines on stdin."""

    def __init__(self) -> None:
        self.chargers: list[RawChargePoint] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command["cmd"]
        if name == "setup":
            settings = ClientSettings(**command["settings"])
            self.chargers = [RawChargePoint(i, key, settings) for i, key in command["chargers"]]
            return {}
        if name == "connect":
            await _sleep_until(command["at"])
            self.tasks = [asyncio.create_task(cp.run()) for cp in self.chargers]
            return {}
        if name == "await_boots":
            return await self._await_boots(command["after"], command["deadline"])
        if name == "start":
            await _sleep_until(command["at"])
            idle = [cp for cp in self.chargers if cp.transaction_id is None]
            chosen = idle[: command["count"]]
            results = await asyncio.gather(
                *(cp.start_transaction() for cp in chosen), return_exceptions=True
            )
            latencies = [r[0] for r in results if isinstance(r, tuple)]
            statuses = [r[1] for r in results if isinstance(r, tuple)]
            return {
                "latencies": latencies,
                "statuses": statuses,
                "errors": len(chosen) - len(latencies),
            }
        if name in ("saturate", "steady"):
            # The harness's own full collections over 5,000 sockets would stall the answers
            # it times (seconds at 10,000 chargers): its connected state is frozen first.
            gc.collect()
            gc.freeze()
        if name == "saturate":
            return await self._saturate(command["count"], command["at"], command["seconds"])
        if name == "steady":
            return await self._steady(
                command["at"], command["seconds"], command["meter_s"], command["heartbeat_s"]
            )
        if name == "idle_ids":
            return {"ids": [cp.id for cp in self.chargers if cp.transaction_id is None]}
        if name == "stop":
            charging = [cp for cp in self.chargers if cp.transaction_id is not None]
            stopped = await asyncio.gather(
                *(cp.stop_transaction() for cp in charging), return_exceptions=True
            )
            return {"latencies": [r for r in stopped if isinstance(r, float)]}
        if name == "quit":
            for cp in self.chargers:
                cp.stopping = True
            counts = {
                "failures": sum(cp.failures for cp in self.chargers),
                "call_errors": sum(cp.call_errors for cp in self.chargers),
            }
            for task in self.tasks:  # no closing handshakes: 10,000 of them on a busy server
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            return counts
        raise ValueError(f"unknown command {name!r}")

    async def _await_boots(self, after: float, deadline: float) -> dict[str, Any]:
        def first_boot(cp: RawChargePoint) -> float | None:
            return next((t for t in cp.boots if t >= after), None)

        while time.monotonic() < deadline:
            if all(first_boot(cp) is not None for cp in self.chargers):
                break
            await asyncio.sleep(0.05)
        times = [first_boot(cp) for cp in self.chargers]
        booted = [t for t in times if t is not None]
        return {"times": booted, "missing": len(times) - len(booted)}

    async def _saturate(self, count: int, at: float, seconds: float) -> dict[str, Any]:
        chosen = [cp for cp in self.chargers if cp.transaction_id is not None][:count]
        answered = 0
        errors = 0
        latencies: list[float] = []
        end = at + seconds

        async def loop(cp: RawChargePoint) -> None:
            nonlocal answered, errors
            while time.monotonic() < end:
                began = time.monotonic()
                try:
                    await cp.meter_values()
                except CallFailedError:
                    errors += 1
                    await asyncio.sleep(0.1)
                    continue
                done = time.monotonic()
                if done <= end:
                    answered += 1
                    if len(latencies) < 100_000:
                        latencies.append(done - began)

        await _sleep_until(at)
        await asyncio.gather(*(loop(cp) for cp in chosen))
        return {"answered": answered, "errors": errors, "latencies": latencies[::10]}

    async def _steady(
        self, at: float, seconds: float, meter_s: float, heartbeat_s: float
    ) -> dict[str, Any]:
        """Every charger heartbeats every `heartbeat_s`, those charging send MeterValues every
        `meter_s`, each at its own random phase; the answer times of all of them."""
        latencies: list[float] = []
        errors = 0
        end = at + seconds

        async def every(period: float, send: Any) -> None:
            nonlocal errors
            next_at = at + random.uniform(0, period)
            while next_at < end:
                await _sleep_until(next_at)
                began = time.monotonic()
                try:
                    await send()
                except CallFailedError:
                    errors += 1
                else:
                    latencies.append(time.monotonic() - began)
                next_at += period

        async def heartbeat(cp: RawChargePoint) -> None:
            await cp.call("Heartbeat", {})

        loops = [every(heartbeat_s, lambda cp=cp: heartbeat(cp)) for cp in self.chargers]
        loops += [
            every(meter_s, cp.meter_values) for cp in self.chargers if cp.transaction_id is not None
        ]
        await asyncio.gather(*loops)
        return {"latencies": latencies, "errors": errors}


async def client_main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    worker = ClientWorker()
    while line := await reader.readline():
        command = json.loads(line)
        reply = await worker.handle(command)
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if command["cmd"] == "quit":
            return


# --- the bare central system (a server process) --------------------------------------------


class BareCentral(ChargePoint):
    """The `ocpp` library's own ChargePoint with the same handlers: no database, no auth."""

    transaction_ids = itertools.count(1)

    @on(Action.boot_notification)
    async def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=ocpp_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=ocpp_now())

    @on(Action.status_notification)
    async def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.authorize)
    async def on_authorize(self, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info={"status": "Accepted"})

    @on(Action.start_transaction)
    async def on_start_transaction(self, **_: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(
            transaction_id=next(self.transaction_ids), id_tag_info={"status": "Accepted"}
        )

    @on(Action.stop_transaction)
    async def on_stop_transaction(self, **_: Any) -> call_result.StopTransaction:
        return call_result.StopTransaction()

    @on(Action.meter_values)
    async def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()


async def bare_main(port: int) -> None:
    async def handler(connection: ServerConnection) -> None:
        charger_id = (
            connection.request.path.rstrip("/").rsplit("/", 1)[-1] if connection.request else "?"
        )
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await BareCentral(charger_id, connection).start()

    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", port, subprotocols=[SUBPROTOCOL], backlog=2048, max_size=65536
    ):
        await stop


# --- the controller --------------------------------------------------------------------------


@dataclass
class Figures:
    connect_s: float | None = None
    connect_p50_s: float | None = None
    connect_cpu_ms: float | None = None
    connect_missing: int = 0
    restart_s: float | None = None
    restart_cpu_ms: float | None = None
    restart_missing: int = 0
    restart_ready_s: float | None = None
    started: int = 0
    start_ms: list[float] = field(default_factory=list)
    start_statuses: dict[str, int] = field(default_factory=dict)
    start_errors: int = 0
    saturation_per_s: float | None = None
    saturation_p50_ms: float | None = None
    saturation_errors: int = 0
    cpu_per_1000_s: float | None = None
    steady_ms: list[float] = field(default_factory=list)
    steady_errors: int = 0
    steady_rate: float | None = None
    steady_charging: int = 0
    steady_cpu_share: float | None = None  # server CPU seconds per second of the steady phase
    admin_start_ms: list[float] = field(default_factory=list)
    admin_start_failed: int = 0
    peak_rss_mib: float = 0.0
    client_failures: int = 0
    call_errors: int = 0


@dataclass
class Options:
    chargers: int
    password_share: float
    database: str
    only: tuple[str, ...]
    seconds: float
    starts: int
    saturation_chargers: int
    client_processes: int
    connectors: int
    retry_seconds: float
    call_timeout: float
    deadline: float
    servers: tuple[str, ...]
    postgres_url: str
    profile: str
    profile_flags: str
    profile_during: str
    workers: int
    redis_url: str
    steady_seconds: float
    charging_share: float


class Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"client process exited during {command['cmd']!r}")
        reply: dict[str, Any] = json.loads(line)
        return reply


async def ask_all(
    workers: Sequence[Worker], commands: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(w.ask(c) for w, c in zip(workers, commands, strict=True))))


def split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


class Server:
    """A server subprocess that can be stopped and started again on the same port."""

    def __init__(self, kind: str, port: int, env: dict[str, str], workdir: Path) -> None:
        self.kind = kind
        self.port = port
        self.env = env
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.peak_rss_mib = 0.0
        self.workers = 1

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def launch(self) -> float:
        """Start the process; returns the monotonic time just before it was started."""
        self.starts += 1
        if self.kind == "chargebot":
            argv = [CHARGEBOT, "serve", "--port", str(self.port), "--log-level", "warning"]
            argv += ["--workers", str(self.workers)]
        else:
            argv = [sys.executable, "-m", "benchmarks.charger_storm", "--role", "bare-server"]
            argv += ["--port", str(self.port)]
        log = self.workdir / f"{self.kind}-{self.starts}.log"
        began = time.monotonic()
        self.process = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=child_env(self.env),
            stdout=subprocess.DEVNULL,
            stderr=open(log, "wb"),  # noqa: SIM115 - lives as long as the process
        )
        return began

    def wait_ready(self, limit_s: float = 120) -> None:
        assert self.process is not None
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited; see {self.workdir}")
            try:
                if self.kind == "chargebot":
                    url = f"http://127.0.0.1:{self.port}/healthz"
                    if httpx.get(url, timeout=1).status_code == 200:
                        return
                else:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return
            except (httpx.TransportError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not start; see {self.workdir}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.peak_rss_mib = max(self.peak_rss_mib, peak_rss_mib(self.pid))
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


async def provision(
    base: str, database_url: str, plan: list[tuple[str, str | None]], connectors: int
) -> None:
    """A station with a tariff, a driver with the tag, then the chargers straight into the table."""
    from backend.db import create_engine, session_factory
    from backend.models import Charger, Connector
    from backend.services import charger_keys, codes

    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
        station = (
            await http.post(
                "/admin/stations",
                json={
                    "name": "Storm",
                    "address": "Testvägen 1",
                    "city": "Uppsala",
                    "latitude": 59.86,
                    "longitude": 17.64,
                },
            )
        ).json()
        (
            await http.put(
                f"/admin/stations/{station['id']}/tariff", json={"price_per_kwh_minor": 450}
            )
        ).raise_for_status()
        driver = (
            await http.post("/admin/drivers", json={"name": "Storm", "billing": "invoice"})
        ).json()
        (
            await http.post(f"/admin/drivers/{driver['id']}/id-tags", json={"id_tag": ID_TAG})
        ).raise_for_status()
    pepper = charger_keys.pepper_from("", SECRET)
    engine = create_engine(database_url)
    taken: set[str] = set()
    try:
        async with session_factory(engine)() as db:
            for charger_id, key in plan:
                db.add(
                    Charger(
                        id=charger_id,
                        station_id=station["id"],
                        password_hash=charger_keys.hash_key(charger_id, key, pepper)
                        if key
                        else None,
                    )
                )
            await db.flush()
            for charger_id, _ in plan:
                for n in range(1, connectors + 1):
                    code = codes.new_code(taken)
                    taken.add(code)
                    db.add(
                        Connector(
                            charger_id=charger_id,
                            connector_id=n,
                            code=code,
                            connector_type="type2",
                            max_power_kw=22,
                        )
                    )
            await db.commit()
    finally:
        await engine.dispose()


def profiling(
    options: Options, kind: str, server: Server, scenario: str
) -> subprocess.Popen[bytes] | None:
    """py-spy on chargebot if --profile asks for this scenario; stop it with `stop_profiling`."""
    if options.profile and kind == "chargebot" and options.profile_during == scenario:
        return profiler(server.pid, options.profile, options.profile_flags)
    return None


def stop_profiling(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)


def profiler(pid: int, output: str, flags: str) -> subprocess.Popen[bytes]:
    """py-spy record (not a dependency: `.venv/bin/pip install py-spy`); .txt: collapsed stacks."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(Path(output).suffix, "raw")
    argv = [py_spy, "record", "--pid", str(pid), "--output", output, "--format", fmt]
    return subprocess.Popen(
        [*argv, "--rate", "100", *flags.split()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _steady(
    server: Server,
    port: int,
    kind: str,
    options: Options,
    workers: list[Worker],
    figures: Figures,
) -> None:
    """A network at rest: a share charging, MeterValues every 60 s, heartbeats every 300 s;
    meanwhile (chargebot) an operator's remote start twice a second on an idle charger."""
    processes = len(workers)
    charging = round(options.chargers * options.charging_share)
    for chunk in range(0, charging, 500):  # not timed: the sessions the steady state has
        count = min(500, charging - chunk)
        await ask_all(
            workers,
            [{"cmd": "start", "at": 0, "count": c} for c in split(count, processes)],
        )
    figures.steady_charging = charging
    replies = await ask_all(workers, [{"cmd": "idle_ids"}] * processes)
    idle = [charger_id for r in replies for charger_id in r["ids"]]
    random.shuffle(idle)
    at = time.monotonic() + 1.0
    seconds = options.steady_seconds
    steady = asyncio.gather(
        *(
            w.ask(
                {"cmd": "steady", "at": at, "seconds": seconds, "meter_s": 60, "heartbeat_s": 300}
            )
            for w in workers
        )
    )
    spy = profiling(options, kind, server, "steady")
    await _sleep_until(at)
    cpu_before = tree_cpu_seconds(server.pid)
    if kind == "chargebot":
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60
        ) as http:
            while time.monotonic() < at + seconds and idle:
                charger_id = idle.pop()
                began = time.monotonic()
                response = await http.post(
                    f"/admin/chargers/{charger_id}/remote-start",
                    json={"connector_id": 2, "id_tag": ID_TAG},
                )
                elapsed = time.monotonic() - began
                if response.status_code == 200 and response.json().get("status") == "Accepted":
                    figures.admin_start_ms.append(elapsed * 1000)
                else:
                    figures.admin_start_failed += 1
                await asyncio.sleep(0.5)
    replies = list(await steady)
    figures.steady_cpu_share = (tree_cpu_seconds(server.pid) - cpu_before) / seconds
    stop_profiling(spy)
    figures.steady_ms = [t * 1000 for r in replies for t in r["latencies"]]
    figures.steady_errors = sum(r["errors"] for r in replies)
    figures.steady_rate = len(figures.steady_ms) / seconds


async def run_target(kind: str, options: Options, database_url: str) -> Figures:
    figures = Figures()
    workdir = Path(tempfile.mkdtemp(prefix=f"chargebot-storm-{kind}-"))
    port = free_port()
    env = {
        "ENVIRONMENT": "production",
        "ADMIN_TOKEN": TOKEN,
        "SECRET_KEY": SECRET,
        "DATABASE_URL": database_url,
        "OCPP_ALLOW_UNSECURED": "true",
        "OCPP_START_TIMEOUT": "600",
        "OCPP_CALL_TIMEOUT": str(options.call_timeout),
    }
    keyed = round(options.chargers * options.password_share)
    plan: list[tuple[str, str | None]] = [
        (f"STORM-{n:05d}", os.urandom(20).hex() if n < keyed else None)
        for n in range(options.chargers)
    ]
    if options.workers > 1:  # the workers share chargers through Redis (README)
        env["REDIS_URL"] = options.redis_url
        env["REDIS_KEY_PREFIX"] = f"storm-{uuid.uuid4().hex[:8]}:"
    server = Server(kind, port, env, workdir)
    server.workers = options.workers
    workers: list[Worker] = []
    try:
        server.launch()
        await asyncio.to_thread(server.wait_ready)
        if kind == "chargebot":
            await provision(f"http://127.0.0.1:{port}", database_url, plan, options.connectors)
        settings = {
            "url": f"ws://127.0.0.1:{port}/ocpp",
            "connectors": options.connectors,
            "retry_seconds": options.retry_seconds,
            "call_timeout": options.call_timeout,
        }
        processes = max(1, min(options.client_processes, options.chargers))
        for n in range(processes):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "benchmarks.charger_storm",
                "--role",
                "client",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=child_env(),
                limit=2**26,
            )
            workers.append(Worker(process))
            await workers[-1].ask(
                {"cmd": "setup", "settings": settings, "chargers": plan[n::processes]}
            )

        # Connect storm.
        spy = profiling(options, kind, server, "connect")
        cpu_before = tree_cpu_seconds(server.pid)
        at = time.monotonic() + 0.5
        await ask_all(workers, [{"cmd": "connect", "at": at}] * processes)
        replies = await ask_all(
            workers,
            [{"cmd": "await_boots", "after": at, "deadline": at + options.deadline}] * processes,
        )
        cpu_used = tree_cpu_seconds(server.pid) - cpu_before
        stop_profiling(spy)
        times = [t - at for r in replies for t in r["times"]]
        figures.connect_missing = sum(r["missing"] for r in replies)
        figures.connect_s = max(times) if times else None
        figures.connect_p50_s = statistics.median(times) if times else None
        figures.connect_cpu_ms = cpu_used / options.chargers * 1000
        await asyncio.sleep(3)  # triggered statuses and stragglers settle

        wants = set(options.only)
        if "start" in wants:
            figures.started = min(options.starts, options.chargers)
            at = time.monotonic() + 0.5
            spy = profiling(options, kind, server, "start")
            replies = await ask_all(
                workers,
                [{"cmd": "start", "at": at, "count": c} for c in split(figures.started, processes)],
            )
            stop_profiling(spy)
            figures.start_ms = [t * 1000 for r in replies for t in r["latencies"]]
            figures.start_errors = sum(r["errors"] for r in replies)
            for r in replies:
                for status in r["statuses"]:
                    figures.start_statuses[status] = figures.start_statuses.get(status, 0) + 1
            await asyncio.sleep(1)
        if "saturation" in wants:  # the saturating chargers are in a transaction
            more = min(options.saturation_chargers, options.chargers) - figures.started
            if more > 0:
                at = time.monotonic()
                await ask_all(
                    workers,
                    [{"cmd": "start", "at": at, "count": c} for c in split(more, processes)],
                )
        if "saturation" in wants:
            count = min(options.saturation_chargers, options.chargers)
            at = time.monotonic() + 0.5
            tasks = asyncio.gather(
                *(
                    w.ask({"cmd": "saturate", "at": at, "count": c, "seconds": options.seconds})
                    for w, c in zip(workers, split(count, processes), strict=True)
                )
            )
            await _sleep_until(at)
            spy = profiling(options, kind, server, "saturation")
            cpu_before = tree_cpu_seconds(server.pid)
            await asyncio.sleep(options.seconds)
            cpu_used = tree_cpu_seconds(server.pid) - cpu_before
            stop_profiling(spy)
            replies = list(await tasks)
            answered = sum(r["answered"] for r in replies)
            figures.saturation_per_s = answered / options.seconds
            figures.saturation_errors = sum(r["errors"] for r in replies)
            latencies = [t * 1000 for r in replies for t in r["latencies"]]
            figures.saturation_p50_ms = statistics.median(latencies) if latencies else None
            figures.cpu_per_1000_s = cpu_used / answered * 1000 if answered else None
        if wants & {"start", "saturation"}:
            await ask_all(workers, [{"cmd": "stop"}] * processes)
        if "steady" in wants:
            await _steady(server, port, kind, options, workers, figures)
        if "restart" in wants:
            await asyncio.to_thread(server.stop)
            began = server.launch()
            await asyncio.to_thread(server.wait_ready)
            figures.restart_ready_s = time.monotonic() - began
            cpu_before = tree_cpu_seconds(server.pid)
            replies = await ask_all(
                workers,
                [{"cmd": "await_boots", "after": began, "deadline": began + options.deadline}]
                * processes,
            )
            cpu_used = tree_cpu_seconds(server.pid) - cpu_before
            times = [t - began for r in replies for t in r["times"]]
            figures.restart_missing = sum(r["missing"] for r in replies)
            figures.restart_s = max(times) if times else None
            figures.restart_cpu_ms = cpu_used / options.chargers * 1000
        replies = await ask_all(workers, [{"cmd": "quit"}] * processes)
        figures.client_failures = sum(r["failures"] for r in replies)
        figures.call_errors = sum(r["call_errors"] for r in replies)
    finally:
        for worker in workers:
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.wait()
        await asyncio.to_thread(server.stop)
        figures.peak_rss_mib = server.peak_rss_mib
    return figures


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return ""
    value = a / b
    return f"{value:,.1f}×" if value >= 1 else f"{value:.3f}"


def _s(value: float | None) -> str:
    return "–" if value is None else (f"{value:,.1f} s" if value >= 1 else f"{value:.2f} s")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def table(options: Options, results: dict[str, Figures]) -> str:
    chargebot = results.get("chargebot", Figures())
    bare = results.get("bare", Figures())
    n = f"{options.chargers:,}"
    wants = set(options.only)
    rows: list[tuple[str, str, str, str]] = []

    def connect_cell(total: float | None, cpu: float | None, missing: int) -> str:
        if total is None:
            return "–"
        if missing:
            return (
                f"not all: {options.chargers - missing:,} booted in {options.deadline:.0f} s, "
                f"the last after {_s(total)} ({_ms(cpu)} server CPU per charger)"
            )
        return f"{_s(total)} ({_ms(cpu)} server CPU per charger)"

    if "connect" in wants:
        rows.append(
            (
                f"{n} chargers: all booted after a connect storm",
                connect_cell(
                    chargebot.connect_s,
                    chargebot.connect_cpu_ms,
                    chargebot.connect_missing,
                ),
                connect_cell(bare.connect_s, bare.connect_cpu_ms, bare.connect_missing),
                ""
                if chargebot.connect_missing or bare.connect_missing
                else _ratio(chargebot.connect_s, bare.connect_s),
            )
        )
        rows.append(
            (
                f"{n}: connect storm, median charger booted",
                _s(chargebot.connect_p50_s),
                _s(bare.connect_p50_s),
                _ratio(chargebot.connect_p50_s, bare.connect_p50_s),
            )
        )
    if "restart" in wants:
        rows.append(
            (
                f"{n}: after a server restart, all back",
                connect_cell(
                    chargebot.restart_s,
                    chargebot.restart_cpu_ms,
                    chargebot.restart_missing,
                ),
                connect_cell(bare.restart_s, bare.restart_cpu_ms, bare.restart_missing),
                ""
                if chargebot.restart_missing or bare.restart_missing
                else _ratio(chargebot.restart_s, bare.restart_s),
            )
        )
    if "start" in wants:

        def start_cell(f: Figures) -> str:
            if not f.start_ms:
                return "–"
            text = f"{statistics.median(f.start_ms):,.0f} / {percentile(f.start_ms, 99):,.0f} ms"
            return text + (f" ({f.start_errors} failed)" if f.start_errors else "")

        rows.append(
            (
                f"{n}: StartTransaction p50 / p99 while "
                f"{chargebot.started or bare.started} start together",
                start_cell(chargebot),
                start_cell(bare),
                _ratio(
                    statistics.median(chargebot.start_ms) if chargebot.start_ms else None,
                    statistics.median(bare.start_ms) if bare.start_ms else None,
                ),
            )
        )
    if "saturation" in wants:

        def rate(f: Figures) -> str:
            if f.saturation_per_s is None:
                return "–"
            return f"{f.saturation_per_s:,.0f} (p50 {_ms(f.saturation_p50_ms)})"

        rows.append(
            (
                f"saturation: MeterValues answered per second (one process, "
                f"{min(options.saturation_chargers, options.chargers)} chargers)",
                rate(chargebot),
                rate(bare),
                _ratio(chargebot.saturation_per_s, bare.saturation_per_s),
            )
        )
        rows.append(
            (
                "server CPU per 1,000 messages",
                _s(chargebot.cpu_per_1000_s),
                _s(bare.cpu_per_1000_s),
                _ratio(chargebot.cpu_per_1000_s, bare.cpu_per_1000_s),
            )
        )
    if "steady" in wants:

        def p50_p99(values: list[float], failed: int = 0) -> str:
            if not values:
                return "–"
            text = f"{statistics.median(values):,.1f} / {percentile(values, 99):,.1f} ms"
            return text + (f" ({failed} failed)" if failed else "")

        share = chargebot.steady_charging or bare.steady_charging
        rows.append(
            (
                f"{n}, steady ({share:,} charging, MeterValues/60 s, heartbeats/300 s): answer "
                "p50 / p99",
                p50_p99(chargebot.steady_ms, chargebot.steady_errors)
                + (f" at {chargebot.steady_rate:,.0f} msg/s" if chargebot.steady_rate else ""),
                p50_p99(bare.steady_ms, bare.steady_errors)
                + (f" at {bare.steady_rate:,.0f} msg/s" if bare.steady_rate else ""),
                _ratio(
                    percentile(chargebot.steady_ms, 99) if chargebot.steady_ms else None,
                    percentile(bare.steady_ms, 99) if bare.steady_ms else None,
                ),
            )
        )

        def cpu(f: Figures) -> str:
            return f"{f.steady_cpu_share:.0%} of a core" if f.steady_cpu_share is not None else "–"

        rows.append(
            (
                f"{n}, steady: server CPU",
                cpu(chargebot),
                cpu(bare),
                _ratio(chargebot.steady_cpu_share, bare.steady_cpu_share),
            )
        )
        rows.append(
            (
                f"{n}, steady: admin remote start p50 / p99 (2 per second)",
                p50_p99(chargebot.admin_start_ms, chargebot.admin_start_failed),
                "–",
                "",
            )
        )
    rows.append(
        (
            "peak RSS (VmHWM)",
            f"{chargebot.peak_rss_mib:,.0f} MiB" if "chargebot" in results else "–",
            f"{bare.peak_rss_mib:,.0f} MiB" if "bare" in results else "–",
            _ratio(chargebot.peak_rss_mib or None, bare.peak_rss_mib or None),
        )
    )
    lines = ["| figure | chargebot | bare `ocpp` | ratio |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def run(options: Options, command: str) -> None:
    results: dict[str, Figures] = {}
    name = ""
    if options.database == "postgresql":
        from backend import migrate

        name = f"chargebot_storm_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(options.postgres_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        database_url = make_url(options.postgres_url).set(database=name).render_as_string(False)
        await migrate.upgrade(database_url)
    else:
        database_url = (
            f"sqlite:///{Path(tempfile.mkdtemp(prefix='chargebot-storm-db-')) / 'storm.sqlite3'}"
        )
    try:
        for kind in options.servers:
            results[kind] = await run_target(kind, options, database_url)
    finally:
        if name:
            with psycopg.connect(_libpq(options.postgres_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"command: {command}")
    print(
        f"{options.chargers:,} chargers ({round(options.chargers * options.password_share):,} with "
        f"a key), {options.connectors} connectors each, {options.client_processes} client "
        f"processes, chargebot on {options.database}"
        + (f" with --workers {options.workers} (Redis)" if options.workers > 1 else "")
    )
    print(table(options, results))
    for kind, f in results.items():
        notes = []
        if f.start_statuses:
            notes.append(
                "StartTransaction "
                + ", ".join(f"{k} {v}" for k, v in sorted(f.start_statuses.items()))
            )
        if f.restart_ready_s is not None:
            notes.append(
                f"restarted process ready (healthz / port) after {f.restart_ready_s:.1f} s"
            )
        if f.saturation_errors:
            notes.append(f"{f.saturation_errors} MeterValues failed")
        notes.append(f"{f.client_failures} lost or refused connections (retried)")
        notes.append(f"{f.call_errors} CALLERROR answers")
        print(f"{kind}: " + "; ".join(notes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--password-share", type=float, default=0.5, help="share with a key")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--only", default=",".join(SCENARIOS), help=f"comma-separated: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="saturation length")
    parser.add_argument("--starts", type=int, default=200, help="StartTransactions sent together")
    parser.add_argument("--saturation-chargers", type=int, default=200)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--connectors", type=int, default=2, help="per charger")
    parser.add_argument(
        "--retry-seconds", type=float, default=1.0, help="reconnect delay (± 50 %%)"
    )
    parser.add_argument("--call-timeout", type=float, default=120.0, help="charger's answer wait")
    parser.add_argument("--deadline", type=float, default=900.0, help="limit of a storm, seconds")
    parser.add_argument("--servers", default="chargebot,bare", help="chargebot, bare or both")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--profile",
        default="",
        help="py-spy record chargebot (see --profile-during) to this file (.svg, .json, .txt)",
    )
    parser.add_argument(
        "--profile-flags", default="--threads", help="more py-spy record flags, e.g. '--gil'"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="chargebot serve --workers N (uses --redis-url)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--steady-seconds", type=float, default=60.0, help="steady length")
    parser.add_argument(
        "--charging-share", type=float, default=0.3, help="chargers in a transaction (steady)"
    )
    parser.add_argument(
        "--profile-during",
        choices=("connect", "start", "saturation", "steady"),
        default="connect",
        help="the scenario --profile records",
    )
    parser.add_argument(
        "--role",
        choices=("controller", "client", "bare-server"),
        default="controller",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "client":
        asyncio.run(client_main())
        return
    if args.role == "bare-server":
        asyncio.run(bare_main(args.port))
        return
    only = tuple(s for s in args.only.split(",") if s)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")
    servers = tuple(s for s in args.servers.split(",") if s)
    if set(servers) - {"chargebot", "bare"}:
        parser.error("--servers: chargebot, bare")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    options = Options(
        chargers=args.chargers,
        password_share=args.password_share,
        database=args.database,
        only=only,
        seconds=args.seconds,
        starts=args.starts,
        saturation_chargers=args.saturation_chargers,
        client_processes=args.client_processes,
        connectors=args.connectors,
        retry_seconds=args.retry_seconds,
        call_timeout=args.call_timeout,
        deadline=args.deadline,
        servers=servers,
        postgres_url=args.postgres_url,
        profile=args.profile,
        profile_flags=args.profile_flags,
        profile_during=args.profile_during,
        workers=args.workers,
        redis_url=args.redis_url,
        steady_seconds=args.steady_seconds,
        charging_share=args.charging_share,
    )
    command = " ".join([COMMAND, shlex.join(sys.argv[1:])])
    asyncio.run(run(options, command))


if __name__ == "__main__":
    main()
