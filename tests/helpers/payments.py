"""The served app with card payments on; Stripe is the recording double at its HTTP client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from backend.app import create_app
from backend.settings import Settings
from tests.helpers.chat import ChatDriver, chat_driver, text_of
from tests.helpers.factories import make_driver
from tests.helpers.server import LiveServer, served
from tests.helpers.stripe_double import (
    API_KEY,
    WEBHOOK_SECRET,
    RecordingStripeClient,
    event,
    signed,
)

PHONE = "+46709876543"
WEBHOOK = "/payments/stripe/webhook"


@dataclass
class Paying:
    live: LiveServer
    stripe: RecordingStripeClient

    async def webhook(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        return await self.live.http.post(WEBHOOK, content=body, headers=headers or signed(body))


def stripe_settings(settings: Settings, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ocpp_call_timeout": 5.0,
        "ocpp_start_timeout": 30.0,
        "sweep_interval": 0.1,
        "stripe_api_key": API_KEY,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "stripe_api_base": "https://stripe.double.invalid",
    }
    values.update(overrides)
    return settings.model_copy(update=values)


@contextlib.asynccontextmanager
async def paying_app(settings: Settings) -> AsyncIterator[Paying]:
    double = RecordingStripeClient()
    app: FastAPI = create_app(settings)
    app.state.stripe_http_client = double  # in place of HTTPS to Stripe
    async with served(app) as live:
        yield Paying(live, double)


async def card_driver(paying: Paying, phone: str = PHONE) -> ChatDriver:
    await make_driver(paying.live.http, name="Anna", phone=phone, billing="pay_per_session")
    return chat_driver(paying.live.app, phone=phone)


async def ask_to_pay(paying: Paying, anna: ChatDriver, code: str) -> tuple[int, str]:
    """Confirm the price; returns (charging session id, Checkout Session id) of the link."""
    await anna.say(code)
    replies = await anna.press(f"start:{code}")
    links = [link for reply in replies for link in reply.links]
    assert [link.label for link in links] == ["Betala"], text_of(replies)
    assert "300,00 kr" in text_of(replies)
    [created] = paying.stripe.posts("/v1/checkout/sessions")
    cs_id = links[0].url.rsplit("/", 1)[1]
    assert links[0].url == paying.stripe.checkout_sessions[cs_id]["url"]
    return int(created.params["client_reference_id"]), cs_id


async def save_a_card(paying: Paying, anna: ChatDriver) -> str:
    """/card → the setup page → the driver saves a card → the signed webhook; the card's id."""
    replies = await anna.command("card")
    [link] = [link for reply in replies for link in reply.links]
    assert link.label == "Spara kort"
    cs_id = link.url.rsplit("/", 1)[1]
    saved = paying.stripe.save_card(cs_id)
    assert (await paying.webhook(event("checkout.session.completed", saved))).status_code == 200
    method: str = paying.stripe.setup_intents[saved["setup_intent"]]["payment_method"]
    return method
