"""Shared fixtures: every database test runs on SQLite and on a fresh PostgreSQL database.

PostgreSQL is on by default (it runs on this machine and in CI). If it is unreachable the
run fails and names it; `CHARGEBOT_TEST_POSTGRES=off` is the explicit switch for machines
without it.

Redis the same way: tests that need it (scale-out) fail naming Redis when it is unreachable;
`CHARGEBOT_TEST_REDIS=off` is the explicit switch that skips them with that reason.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
from fastapi import FastAPI
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import SQLModel

from backend import migrate
from backend.app import create_app
from backend.db import create_engine, session_factory
from backend.settings import Settings
from tests.helpers.server import (
    ADMIN_TOKEN,
    SECRET_KEY,
    LiveServer,
    create_postgres_database,
    drop_postgres_database,
    libpq_url,
    served,
)
from tests.helpers.sms import Twilio, sms_settings, twilio_app
from tests.helpers.twilio_double import RecordingTwilioClient

POSTGRES_SWITCH = os.environ.get("CHARGEBOT_TEST_POSTGRES", "on").strip().lower()
POSTGRES_ENABLED = POSTGRES_SWITCH not in {"off", "0", "no", "false"}
POSTGRES_ADMIN_URL = os.environ.get(
    "CHARGEBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", "postgresql"] if POSTGRES_ENABLED else ["sqlite"]
REDIS_SWITCH = os.environ.get("CHARGEBOT_TEST_REDIS", "on").strip().lower()
REDIS_ENABLED = REDIS_SWITCH not in {"off", "0", "no", "false"}
REDIS_TEST_URL = os.environ.get("CHARGEBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(autouse=True)
def no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the settings they give: none exported in the caller's shell.

    Settings reads every field from the environment (DATABASE_URL, ADMIN_TOKEN, STRIPE_API_KEY,
    ..., in any case); a developer's exported values must not change what a test checks.
    """
    fields = {name.lower() for name in Settings.model_fields}
    for variable in list(os.environ):
        if variable.lower() in fields:
            monkeypatch.delenv(variable)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The server's maintenance database; fails the run loudly if PostgreSQL is down."""
    try:
        psycopg.connect(libpq_url(POSTGRES_ADMIN_URL), connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({exc}). Start it, point "
            "CHARGEBOT_TEST_POSTGRES_URL at one, or run with CHARGEBOT_TEST_POSTGRES=off "
            "to test on SQLite only.",
            pytrace=False,
        )
    return POSTGRES_ADMIN_URL


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis for scale-out tests; fails the run loudly if it is down (never a silent skip)."""
    if not REDIS_ENABLED:
        pytest.skip("CHARGEBOT_TEST_REDIS=off: scale-out tests need Redis")
    try:
        client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=5)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_TEST_URL} ({exc}). Start it, point "
            "CHARGEBOT_TEST_REDIS_URL at one, or run with CHARGEBOT_TEST_REDIS=off to skip "
            "the scale-out tests.",
            pytrace=False,
        )
    return REDIS_TEST_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test alone (parallel runs never collide); its keys are removed."""
    prefix = f"chargebot-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session")
def postgres_database(postgres_admin_url: str) -> Iterator[str]:
    """A fresh database for this run, dropped at the end."""
    url = create_postgres_database(postgres_admin_url)
    yield url
    drop_postgres_database(postgres_admin_url, url)


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_template(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """(backend, url) of a database brought to head by the real migrations."""
    backend = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.sqlite3"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_database")
    asyncio.run(migrate.upgrade(url))
    return backend, url


def _truncate_postgres(url: str) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


@pytest.fixture
def database_url(migrated_template: tuple[str, str], tmp_path: Path) -> str:
    """An empty, migrated database for one test (a copied SQLite file or truncated PG)."""
    backend, url = migrated_template
    if backend == "sqlite":
        template = Path(make_url(url).database or "")
        target = tmp_path / "test.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    _truncate_postgres(url)
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        environment="production",
        database_url=database_url,
        admin_token=ADMIN_TOKEN,
        secret_key=SECRET_KEY,
        public_base_url="https://chargebot.example.se",
        telegram_bot_username="chargebot_test_bot",
        sms_number="+46766862334",
        support_hours="24/7",  # texts independent of the hour; tests of closed hours set theirs
        # Meter plausibility bounds energy by connector power × elapsed time. Simulated chargers
        # run compressed time (time_scale=600: ten minutes of energy per real second) and bare
        # test chargers report energy the instant a session starts, so both would be flagged;
        # every test here allows far more. tests/test_meter_plausibility.py uses the defaults.
        meter_power_tolerance=1000.0,
        meter_slack_wh=1_000_000,
        # A silent charger is asked for its statuses after half a second, not ten.
        ocpp_status_trigger_seconds=0.5,
        # One process runs a thousand apps here: no freezing (tests/test_collector.py and the
        # `chargebot serve` subprocess tests run the policy).
        gc_full_pass_seconds=0,
        # Local lists are sent when a test asks (tests/test_local_list.py runs the timer).
        charger_sync_seconds=0,
    )


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with session_factory(engine)() as session:
        yield session


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends the admin bearer token."""
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=headers
    ) as client:
        yield client


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    """Short OCPP timers so timeouts are testable; tests may override more."""
    return settings.model_copy(
        update={"ocpp_call_timeout": 5.0, "ocpp_start_timeout": 30.0, "sweep_interval": 0.1}
    )


@pytest.fixture
async def live(live_settings: Settings) -> AsyncIterator[LiveServer]:
    async with served(create_app(live_settings)) as running:
        yield running


@pytest.fixture
async def twilio(settings: Settings) -> AsyncIterator[Twilio]:
    """The served app with SMS on, over a fresh Twilio REST double (test_sms.py has its own)."""
    async with twilio_app(sms_settings(settings), RecordingTwilioClient()) as running:
        yield running
