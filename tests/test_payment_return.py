"""A payment page sends the driver back where they came from: Telegram drivers to the bot,
everyone else (SMS, a link passed on by hand) to a page saying they may close it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from backend.app import create_app
from backend.settings import Settings
from bot.adapters.telegram import SECRET_HEADER
from tests.helpers.factories import make_driver
from tests.helpers.payments import stripe_settings
from tests.helpers.server import LiveServer, served
from tests.helpers.sms import PUBLIC, sms_settings
from tests.helpers.stripe_double import RecordingStripeClient
from tests.helpers.telegram import SECRET, telegram_settings
from tests.helpers.telegram_double import RecordingRequest, message_update, telegram_user
from tests.helpers.twilio_double import RecordingTwilioClient
from tests.helpers.waiting import eventually

PHONE = "+46706660012"
ERIK = telegram_user(444_555_666, "Erik", "Berg", "sv")
BOT_NAME = "laddbot_test_bot"


@contextlib.asynccontextmanager
async def app_with_every_channel(
    settings: Settings,
) -> AsyncIterator[tuple[LiveServer, RecordingStripeClient]]:
    """Stripe, Twilio and Telegram on, each behind its double."""
    configured = telegram_settings(
        sms_settings(stripe_settings(settings)), telegram_bot_username=BOT_NAME
    )
    app = create_app(configured)
    stripe = RecordingStripeClient()
    app.state.stripe_http_client = stripe
    app.state.twilio_http_client = RecordingTwilioClient()
    app.state.telegram_request = RecordingRequest(username=BOT_NAME)
    async with served(app) as live:
        yield live, stripe


def success_urls(stripe: RecordingStripeClient) -> list[str]:
    return [call.params["success_url"] for call in stripe.posts("/v1/checkout/sessions")]


async def test_an_sms_driver_returns_to_a_page_to_close_not_to_telegram(
    settings: Settings,
) -> None:
    async with app_with_every_channel(settings) as (live, stripe):
        driver = await make_driver(live.http, name="Gunnar", phone=PHONE, language="sv")
        sent = await live.http.post(
            f"/admin/drivers/{driver['id']}/card-link", params={"send": "sms"}
        )
        assert sent.status_code == 200, sent.text
        assert success_urls(stripe) == [f"{PUBLIC}/payments/done"]
        by_hand = await live.http.post(f"/admin/drivers/{driver['id']}/card-link")
        assert by_hand.status_code == 200, by_hand.text
        assert success_urls(stripe)[-1] == f"{PUBLIC}/payments/done"
        page = await live.http.get("/payments/done")
        assert page.status_code == 200
        assert "Du kan stänga den här sidan" in page.text
        assert "You may close this page" in page.text
        assert "t.me" not in page.text


async def test_a_telegram_driver_returns_to_the_bot(settings: Settings) -> None:
    async with app_with_every_channel(settings) as (live, stripe):
        await make_driver(
            live.http, name="Erik Berg", telegram_user_id=ERIK["id"], billing="pay_per_session"
        )
        response = await live.http.post(
            "/telegram/webhook",
            json=message_update(ERIK, "/card"),
            headers={SECRET_HEADER: SECRET},
        )
        assert response.status_code == 200, response.text

        async def pages() -> list[str]:
            return success_urls(stripe)

        assert await eventually(pages, bool, within=15) == [f"https://t.me/{BOT_NAME}"]
