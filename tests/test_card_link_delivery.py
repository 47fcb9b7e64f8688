"""Support sends a card-saving link to a driver without a smartphone, by SMS (the admin
API, and the quick action of an agent holding the driver's SMS chat)."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from backend.app import create_app
from backend.settings import Settings
from bot.adapters.sms import SIGNATURE_HEADER
from tests.helpers.factories import make_driver
from tests.helpers.payments import stripe_settings
from tests.helpers.server import served
from tests.helpers.sms import PUBLIC, inbound, sms_settings
from tests.helpers.stripe_double import RecordingStripeClient
from tests.helpers.support import agent, conversation_id
from tests.helpers.twilio_double import RecordingTwilioClient, signature
from tests.helpers.waiting import eventually

PHONE = "+46706660011"


def card_and_sms_app(settings: Settings, twilio_api: RecordingTwilioClient) -> FastAPI:
    """The app with Stripe and Twilio on, each behind its double."""
    app = create_app(sms_settings(stripe_settings(settings)))
    app.state.stripe_http_client = RecordingStripeClient()
    app.state.twilio_http_client = twilio_api
    app.state.twilio_retry_first = 0.01
    return app


async def test_support_sends_the_card_link_by_sms_to_open_on_any_device(
    settings: Settings,
) -> None:
    twilio_api = RecordingTwilioClient()
    async with served(card_and_sms_app(settings, twilio_api)) as live:
        driver = await make_driver(live.http, name="Gunnar", phone=PHONE, language="sv")
        response = await live.http.post(
            f"/admin/drivers/{driver['id']}/card-link", params={"send": "sms"}
        )
        assert response.status_code == 200, response.text
        url = response.json()["url"]
        assert response.json()["sent"] == "sms"
        await eventually(lambda: asyncio.sleep(0, twilio_api.bodies_to(PHONE)), bool, within=10)
        bodies = twilio_api.bodies_to(PHONE)
        assert len(bodies) == 1 and url in bodies[0]
        unknown_chat = await live.http.post(
            f"/admin/drivers/{driver['id']}/card-link", params={"send": "telegram"}
        )
        assert unknown_chat.status_code == 409


async def test_the_quick_action_sends_the_card_link_on_the_sms_drivers_chat(
    settings: Settings,
) -> None:
    twilio_api = RecordingTwilioClient()
    async with served(card_and_sms_app(settings, twilio_api)) as live:
        await make_driver(live.http, name="Gunnar", phone=PHONE, language="sv", billing="invoice")
        lena = await agent(live.http, "lena@example.se")
        params = inbound(PHONE, "SUPPORT")
        signed = {SIGNATURE_HEADER: signature(f"{PUBLIC}/sms/twilio", params)}
        assert (await live.http.post("/sms/twilio", data=params, headers=signed)).is_success
        cid = await conversation_id(live.http, lena, PHONE)
        url = f"/support/conversations/{cid}"
        assert (await live.http.post(f"{url}/claim", headers=lena)).status_code == 200
        sent = await live.http.post(f"{url}/actions/card-link", headers=lena)
        assert sent.status_code == 200, sent.text
        assert sent.json() == {"outcome": "sent", "delivered": True, "detail": None}
        await eventually(
            lambda: asyncio.sleep(0, twilio_api.bodies_to(PHONE)),
            lambda bodies: any("checkout" in body for body in bodies),
            within=10,
        )
        links = [body for body in twilio_api.bodies_to(PHONE) if "http" in body]
        assert len(links) == 1, twilio_api.bodies_to(PHONE)
        messages = (await live.http.get(url, headers=lena)).json()["messages"]
        sent_link = [m for m in messages if m["author"] == "agent" and "http" in m["text"]]
        assert len(sent_link) == 1 and sent_link[0]["staff_name"] == "Lena"
