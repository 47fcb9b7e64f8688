"""Support sends a card-saving link to a driver without a smartphone, by SMS."""

from __future__ import annotations

import asyncio

from backend.app import create_app
from backend.settings import Settings
from tests.conftest import served
from tests.factories import make_driver
from tests.stripe_double import RecordingStripeClient
from tests.test_payments import stripe_settings
from tests.test_sms import sms_settings
from tests.twilio_double import RecordingTwilioClient

PHONE = "+46706660011"


async def test_support_sends_the_card_link_by_sms_to_open_on_any_device(
    settings: Settings,
) -> None:
    app = create_app(sms_settings(stripe_settings(settings)))
    stripe_api, twilio_api = RecordingStripeClient(), RecordingTwilioClient()
    app.state.stripe_http_client = stripe_api
    app.state.twilio_http_client = twilio_api
    app.state.twilio_retry_first = 0.01
    async with served(app) as live:
        driver = await make_driver(live.http, name="Gunnar", phone=PHONE, language="sv")
        response = await live.http.post(
            f"/admin/drivers/{driver['id']}/card-link", params={"send": "sms"}
        )
        assert response.status_code == 200, response.text
        url = response.json()["url"]
        assert response.json()["sent"] == "sms"
        for _ in range(200):
            if twilio_api.bodies_to(PHONE):
                break
            await asyncio.sleep(0.05)
        bodies = twilio_api.bodies_to(PHONE)
        assert len(bodies) == 1 and url in bodies[0]
        unknown_chat = await live.http.post(
            f"/admin/drivers/{driver['id']}/card-link", params={"send": "telegram"}
        )
        assert unknown_chat.status_code == 409
