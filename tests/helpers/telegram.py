"""The served app with Telegram on, and what Telegram saw of it (the Bot API double)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from backend.app import create_app
from backend.settings import Settings
from bot.adapters.telegram import SECRET_HEADER, TelegramChannel
from tests.helpers.server import LiveServer, served
from tests.helpers.telegram_double import RecordingRequest, telegram_user
from tests.helpers.waiting import eventually

TOKEN = "123456789:AAF-test-token-never-sent-anywhere"
SECRET = "telegram-webhook-secret-0123456789"
ANNA = telegram_user(111_222_333, "Anna", "Lindqvist", "en")


@dataclass
class TelegramBot:
    """The served app with Telegram on, and what Telegram saw of it."""

    live: LiveServer
    api: RecordingRequest
    telegram: httpx.AsyncClient  # posts like Telegram: no admin token

    @property
    def channel(self) -> TelegramChannel:
        channel: TelegramChannel = self.live.app.state.telegram
        return channel

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        return await self.telegram.post("/telegram/webhook", json=update, headers=headers)

    async def send(self, update: dict[str, Any]) -> None:
        response = await self.post(update)
        assert response.status_code == 200, response.text

    async def reply(
        self, user: dict[str, Any], check: Callable[[dict[str, Any]], bool], within: float = 15
    ) -> dict[str, Any]:
        """The first message sent to the user's chat that passes `check` (waits for it)."""

        async def probe() -> list[dict[str, Any]]:
            return [m for m in self.api.messages(user["id"]) if check(m)]

        found = await eventually(probe, bool, within)
        return found[0]

    async def says(self, user: dict[str, Any], fragment: str, within: float = 15) -> dict[str, Any]:
        return await self.reply(user, lambda m: fragment in m["text"], within)


def telegram_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": TOKEN,
        "telegram_mode": "webhook",
        "telegram_webhook_secret": SECRET,
        "live_status_interval": 0.2,
        "ocpp_call_timeout": 5.0,
        "ocpp_start_timeout": 30.0,
        "sweep_interval": 0.1,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@contextlib.asynccontextmanager
async def telegram_bot(
    settings: Settings, api: RecordingRequest, *, wait_registered: bool = True
) -> AsyncIterator[TelegramBot]:
    app = create_app(settings)
    app.state.telegram_request = api  # the Bot API double, in place of HTTPS to Telegram
    async with served(app) as live:
        if wait_registered:
            await asyncio.wait_for(app.state.telegram.registered.wait(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as telegram:
            yield TelegramBot(live, api, telegram)
