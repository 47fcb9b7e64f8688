"""`chargebot demo`: the embedded default in one process, with a seeded Swedish network."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import func
from sqlmodel import col, select

from backend import migrate
from backend.app import create_app
from backend.chargers.simulator import SimulatorConfig, run_simulators
from backend.db import create_engine, session_factory
from backend.demo_console import banner_lines, queue_examples, seed_console
from backend.models import Connector
from backend.services import network
from backend.services.network import ConnectorListing
from backend.services.seed import seed_demo_network
from backend.settings import Settings
from bot.adapters.console import ConsoleChat
from bot.messages import ChannelUser, Reply
from bot.outbox import Sender

log = logging.getLogger(__name__)

DEMO_DATABASE = Path("var/demo.sqlite3")
# Simulated chargers run their energy curve this much faster than the clock, so a demo
# session shows kWh and kronor within a minute.
DEMO_TIME_SCALE = 30.0


def _chat_lines(chat: bool, sms: str | None, pay: bool) -> list[str]:
    """Who the demo chat is, in the banner: the invoice driver, a walk-in payer or a phone."""
    if not chat:
        return ["Ctrl-C stops the demo."]
    if sms:
        who = [
            f"Below is the demo SMS chat: the terminal is the phone {sms} texting chargebot,",
            "with the SMS rendering (numbered choices, MER/MORE pages) and no Twilio. A number",
            "without an account is told how to get one. Type MENY, NÄRA Uppsala, or a code.",
        ]
    elif pay:
        who = [
            "Below is the demo chat as a walk-in driver who pays per session: a start opens",
            "the local test payment page (no real money). Type /help, a connector code from",
            "the list, or a question.",
        ]
    else:
        who = [
            "Below is the demo chat: the same engine as Telegram and SMS, as a demo driver",
            "with an invoice account. Type /help, a connector code from the list, or a",
            "question.",
        ]
    return [*who, "Ctrl-D (end of input) or Ctrl-C stops the demo."]


def _banner(
    settings: Settings,
    base: str,
    connectors: list[ConnectorListing],
    chat: bool,
    sms: str | None = None,
    pay: bool = False,
) -> str:
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
        *banner_lines(base),
        "",
        f"  {'code':<6} {'type':<8} {'kW':>5}  {'charger':<18} station",
    ]
    for c in connectors:
        lines.append(
            f"  {c.code:<6} {c.connector_type:<8} {c.max_power_kw:>5.0f}  {c.charger_id:<18} "
            f"{c.station}, {c.city}"
        )
    lines += [
        "",
        f"  {len({c.charger_id for c in connectors})} simulated chargers connect over OCPP 1.6-J "
        f"to ws://.../ocpp/<charger>.",
        f"  try           curl -X POST -H 'Authorization: Bearer {token}' "
        f"-H 'Content-Type: application/json' "
        f'-d \'{{"connector_id": 1, "id_tag": "DEMO-TAG"}}\' '
        f"{base}/admin/chargers/{connectors[0].charger_id if connectors else 'CP'}/remote-start",
        "",
        *_chat_lines(chat, sms, pay),
        "",
    ]
    return "\n".join(lines)


async def _prepare(settings: Settings) -> list[ConnectorListing]:
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade_engine(engine)
        async with session_factory(engine)() as db:
            if not await network.list_stations(db):
                listings = await seed_demo_network(db)
            else:
                listings = await network.connector_listings(db)
            await seed_console(db)
            return listings
    finally:
        await engine.dispose()


def _print_unconfigured_channels(app: Any) -> None:
    """Without Twilio or a Telegram bot, what the demo would send there is printed instead."""

    def printer(channel: str) -> Sender:
        async def send(address: str, replies: Sequence[Reply]) -> None:
            for reply in replies:
                links = " ".join(link.url for link in reply.links)
                print(f"[{channel} to {address}] {reply.text} {links}".rstrip(), flush=True)

        return send

    for channel in ("sms", "telegram"):
        if not app.state.outbox.handles(channel):
            app.state.outbox.register(channel, printer(channel))


class DemoServer(uvicorn.Server):
    """uvicorn with the demo's simulated chargers, which it stops before it shuts down.

    On shutdown (Ctrl-C, the end of the chat) uvicorn first closes every open WebSocket; a
    simulator still running would log that as a lost connection, one warning per charger.
    Stopped first, they leave quietly; a connection lost while the demo runs is still logged.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._simulators: asyncio.Task[None] | None = None

    def start_simulators(self, configs: list[SimulatorConfig]) -> None:
        self._simulators = asyncio.create_task(run_simulators(configs), name="demo-simulators")

    async def stop_simulators(self) -> None:
        task, self._simulators = self._simulators, None
        if task is None:
            return
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is not None:
            log.error("the simulated chargers failed", exc_info=task.exception())

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.stop_simulators()
        await super().shutdown(sockets)


def reset_demo_database(path: Path = DEMO_DATABASE) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


DEMO_PHONES = {"sv": "+46701234567", "en": "+46731234567"}
PROMPTS = {"sv": "du> ", "en": "you> "}
WALK_IN_PHONE = "+46705550100"  # not seeded: a pay-per-session driver on first contact


async def _chat(app: Any, lang: str, pay: bool = False) -> None:
    """The console chat as the demo driver of `lang` (an invoice account, so starts work);
    with `pay`, as a walk-in driver who pays per session on the local test payment page."""
    phone = WALK_IN_PHONE if pay else DEMO_PHONES[lang]
    user = ChannelUser(phone=phone, name="Demo", language_code=lang)
    chat = ConsoleChat(app.state.chat_engine.handle, user, prompt=PROMPTS[lang])
    app.state.outbox.register("console", chat.send)
    await chat.run(sys.stdin)
    await asyncio.sleep(0.5)  # let notifications of the last line arrive
    await app.state.notifier.drain()


async def _sms_chat(app: Any, phone: str) -> None:
    """The console as the phone `phone` texting: the SMS grammar and rendering, no Twilio."""
    from bot.adapters.console import SmsConsole
    from bot.adapters.sms import CHANNEL, SmsConversations

    conversations = SmsConversations(app.state.sessions, app.state.chat_engine)
    chat = SmsConsole(conversations, phone)
    app.state.outbox.register(CHANNEL, chat.deliver)
    await chat.run(sys.stdin)
    await asyncio.sleep(0.5)  # let notifications of the last line arrive
    await app.state.notifier.drain()


async def _until_reported(
    app: Any, connectors: int, stopping: Callable[[], bool], within: float = 20.0
) -> None:
    """Wait (at most `within` s) until every connector has reported its status once, so the
    first message typed (or piped) finds the connectors as they are, not Unavailable."""
    print("  waiting for the simulated chargers to report their connectors…", flush=True)
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline and not stopping():
        async with app.state.sessions() as db:
            reported = await db.scalar(
                select(func.count())
                .select_from(Connector)
                .where(col(Connector.status_updated_at).is_not(None))
            )
        if int(reported or 0) >= connectors:
            return
        await asyncio.sleep(0.25)


async def run_demo(
    host: str,
    port: int,
    chat: bool = True,
    lang: str = "sv",
    sms: str | None = None,
    pay: bool = False,
) -> int:
    """Migrate and seed the demo database, print where everything is, serve until Ctrl-C."""
    settings = Settings(
        _env_file=None,
        environment="development",
        database_url=f"sqlite:///{DEMO_DATABASE}",
        public_base_url=f"http://{host}:{port}",
        # The simulators deliver DEMO_TIME_SCALE times the energy a connector could in real
        # time, each at its charger's fastest connector's power (150 kW on a 50 kW CHAdeMO):
        # without room for both every demo session would end under meter review.
        meter_power_tolerance=DEMO_TIME_SCALE * 10,
    )
    connectors = await _prepare(settings)
    charger_ids = sorted({c.charger_id for c in connectors})
    print(_banner(settings, settings.public_base_url, connectors, chat, sms, pay), flush=True)
    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    server = DemoServer(config)
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    if server.started:
        _print_unconfigured_channels(app)
        await queue_examples(app)
    if server.started and not server.should_exit:  # not after a Ctrl-C during the setup
        server.start_simulators(
            [
                SimulatorConfig(
                    url=f"ws://{host}:{port}/ocpp",
                    charge_point_id=charger_id,
                    connectors=sum(1 for c in connectors if c.charger_id == charger_id),
                    power_kw=max(c.max_power_kw for c in connectors if c.charger_id == charger_id),
                    meter_interval=5.0,
                    time_scale=DEMO_TIME_SCALE,
                )
                for charger_id in charger_ids
            ]
        )
        await _until_reported(app, len(connectors), lambda: server.should_exit or serving.done())
    try:
        if chat:
            chatting = asyncio.create_task(_sms_chat(app, sms) if sms else _chat(app, lang, pay))
            await asyncio.wait({serving, chatting}, return_when=asyncio.FIRST_COMPLETED)
            if chatting.done():
                server.should_exit = True
                await serving
                chatting.result()
            else:  # Ctrl-C stopped the server: stop reading the terminal too
                chatting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await chatting
        else:
            await serving
    finally:
        await server.stop_simulators()  # if the server never started, it never stopped them
    return 0
