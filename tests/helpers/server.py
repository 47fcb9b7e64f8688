"""The app served on a loopback port, the credentials tests use, scratch PostgreSQL databases."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from backend.cli import tls_options
from tests.helpers.waiting import eventually

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_postgres_database(admin_url: str) -> str:
    name = f"chargebot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class LiveServer:
    """The whole app served by uvicorn on a loopback port, in the test's event loop."""

    app: FastAPI
    port: int
    http: httpx.AsyncClient  # sends the admin token
    tls: bool = False  # served over TLS (https://, wss://)

    @property
    def ocpp_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ocpp"


def free_port() -> int:
    """A loopback port free now (for an app that must know its own URL before it starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.asynccontextmanager
async def served(
    app: FastAPI, port: int = 0, tls: tuple[str, str, str] | None = None
) -> AsyncIterator[LiveServer]:
    """`app` served by uvicorn on a loopback port, with an admin client; stopped cleanly.

    `tls`: (certificate file, key file, CA file the client trusts): https and wss.
    """
    secured: dict[str, Any] = {}
    if tls:  # uvicorn's TLS options as `chargebot serve` builds them (client CA included)
        served_settings = app.state.settings.model_copy(
            update={"tls_certfile": tls[0], "tls_keyfile": tls[1]}
        )
        secured = tls_options(served_settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **secured
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())

    async def up_or_failed() -> bool:
        return bool(server.started) or task.done()

    await eventually(up_or_failed, bool, within=30, interval=0.01)
    if not server.started:
        task.result()  # raises the startup error
        raise AssertionError("uvicorn did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    scheme = "https" if tls else "http"
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=tls[2]) if tls else True
    try:
        async with httpx.AsyncClient(
            base_url=f"{scheme}://127.0.0.1:{port}", headers=headers, timeout=30, verify=verify
        ) as http:
            yield LiveServer(app, port, http, tls=tls is not None)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
        await _no_stuck_tasks()


async def _no_stuck_tasks() -> None:
    """Cancel what the test left running; a task that ignores cancellation fails the test.

    Without this, such a task hangs the event loop's close forever, with no clue why.
    """
    leftovers = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
    for task in leftovers:
        task.cancel()
    if not leftovers:
        return
    _, pending = await asyncio.wait(leftovers, timeout=10)
    if pending:
        stacks = "\n".join(f"{t!r}\n{t.get_stack(limit=8)}" for t in pending)
        raise AssertionError(f"tasks ignored cancellation:\n{stacks}")
