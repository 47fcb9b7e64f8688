"""`chargebot demo`: the embedded default in one process, with a seeded Swedish network."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from backend import migrate
from backend.app import create_app
from backend.db import create_engine, session_factory
from backend.services import network
from backend.services.network import ConnectorListing
from backend.services.seed import seed_demo_network
from backend.settings import Settings

DEMO_DATABASE = Path("var/demo.sqlite3")


def _banner(settings: Settings, base: str, connectors: list[ConnectorListing]) -> str:
    first = connectors[0].code if connectors else "CODE"
    token = settings.admin_token
    lines = [
        "",
        "chargebot demo - the embedded default (SQLite, one process)",
        f"  health        {base}/healthz",
        f"  admin docs    {base}/docs   (Authorize with the bearer token below)",
        f"  admin token   {token}",
        f"  sticker       {base}/admin/connectors/{first}/qr.svg  (send the bearer token)",
        f"  try           curl -H 'Authorization: Bearer {token}' {base}/admin/stations",
        f"  database      {settings.database_url}",
        "",
        f"  {'code':<6} {'type':<8} {'kW':>5}  {'charger':<18} station",
    ]
    for c in connectors:
        lines.append(
            f"  {c.code:<6} {c.connector_type:<8} {c.max_power_kw:>5.0f}  {c.charger_id:<18} "
            f"{c.station}, {c.city}"
        )
    lines += ["", "Ctrl-C stops the demo.", ""]
    return "\n".join(lines)


async def _prepare(settings: Settings) -> list[ConnectorListing]:
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade_engine(engine)
        async with session_factory(engine)() as db:
            if not await network.list_stations(db):
                return await seed_demo_network(db)
            return await network.connector_listings(db)
    finally:
        await engine.dispose()


def reset_demo_database(path: Path = DEMO_DATABASE) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def run_demo(host: str, port: int) -> int:
    """Migrate and seed the demo database, print where everything is, serve until Ctrl-C."""
    settings = Settings(
        _env_file=None,
        environment="development",
        database_url=f"sqlite:///{DEMO_DATABASE}",
        public_base_url=f"http://{host}:{port}",
    )
    connectors = await _prepare(settings)
    print(_banner(settings, settings.public_base_url, connectors), flush=True)
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level="warning")
    await uvicorn.Server(config).serve()
    return 0
