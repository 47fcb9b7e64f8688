"""Pay per session with Stripe: hold, start on the webhook, capture exactly the cost, refunds.

The only double is at the network boundary to Stripe: `RecordingStripeClient`, handed to the
real `stripe.StripeClient`. Webhooks are signed exactly as Stripe signs them. The chat runs
through the conversation engine (a non-SMS channel: the Telegram branch of the start flow)
against the whole app and a simulated charge point.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.settings import ConfigurationError, Settings
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import chat_driver, text_of, wait_for_text
from tests.helpers.factories import make_charger, make_driver, make_station
from tests.helpers.payments import (
    PHONE,
    WEBHOOK,
    Paying,
    ask_to_pay,
    card_driver,
    paying_app,
    save_a_card,
    stripe_settings,
)
from tests.helpers.server import LiveServer, served
from tests.helpers.stripe_double import (
    API_KEY,
    WEBHOOK_SECRET,
    RecordingStripeClient,
    event,
    signed,
)
from tests.helpers.telegram import ANNA, TelegramBot, telegram_settings
from tests.helpers.telegram_double import RecordingRequest, callback_update, message_update
from tests.helpers.waiting import background_work_done, eventually


@pytest.fixture
async def paying(settings: Settings) -> AsyncIterator[Paying]:
    async with paying_app(stripe_settings(settings)) as running:
        yield running


async def payment_of(paying: Paying, session_id: int) -> dict[str, Any]:
    payment: dict[str, Any] = (await session_of(paying.live.http, session_id))["payment"]
    return payment


async def test_pay_hold_start_stop_capture_exactly_the_cost_then_refund(paying: Paying) -> None:
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"], power_kw=22):
        before = int(time.time())
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        [created] = paying.stripe.posts("/v1/checkout/sessions")
        params = created.params
        assert params["mode"] == "payment"
        assert params["line_items[0][price_data][unit_amount]"] == "30000"
        assert params["line_items[0][price_data][currency]"] == "sek"
        assert params["line_items[0][quantity]"] == "1"
        assert params["payment_intent_data[capture_method]"] == "manual"
        assert params["payment_intent_data[metadata][charging_session_id]"] == str(session_id)
        assert params["metadata[charging_session_id]"] == str(session_id)
        assert 30 * 60 <= int(params["expires_at"]) - before <= 32 * 60
        # Nothing reaches the charger before Stripe holds the money.
        await background_work_done(paying.live.app)
        waiting = await session_of(paying.live.http, session_id)
        assert waiting["status"] == "pending"
        assert waiting["payment"]["status"] == "pending"
        assert waiting["payment"]["stripe_checkout_session_id"] == cs_id

        completed = event("checkout.session.completed", paying.stripe.pay(cs_id))
        assert (await paying.webhook(completed)).status_code == 200
        await wait_for_text(anna, "Laddningen har startat")
        held = await payment_of(paying, session_id)
        assert held["status"] == "authorized"
        assert held["amount_authorized_minor"] == 30000
        # A replay (Stripe retries) changes nothing: no second look-up, no second start.
        calls = len(paying.stripe.calls)
        assert (await paying.webhook(completed)).status_code == 200
        assert len(paying.stripe.calls) == calls

        await eventually(
            lambda: session_of(paying.live.http, session_id), lambda s: s["energy_wh"] > 0
        )
        await anna.command("stop")
        await wait_for_text(anna, "Kvitto:")
        paid = await wait_for_text(anna, "Betalt med kort:")
    done = await session_of(paying.live.http, session_id)
    cost = done["cost_minor"]
    assert 0 < cost < 30000
    [capture] = paying.stripe.posts("/capture")
    assert capture.params == {"amount_to_capture": str(cost)}
    assert capture.idempotency_key == f"capture-{session_id}"
    assert f"{cost // 100},{cost % 100:02d} kr" in paid
    assert done["payment"]["status"] == "captured"
    assert done["payment"]["amount_captured_minor"] == cost
    assert done["payment"]["amount_uncollected_minor"] == 0
    assert not paying.stripe.posts("/cancel")

    refund_url = f"/admin/sessions/{session_id}/refund"
    partial = await paying.live.http.post(refund_url, json={"amount_minor": 100})
    assert partial.status_code == 200, partial.text
    assert partial.json()["payment"]["amount_refunded_minor"] == 100
    too_much = await paying.live.http.post(refund_url, json={"amount_minor": cost})
    assert too_much.status_code == 409
    rest = await paying.live.http.post(refund_url, json={})
    assert rest.status_code == 200
    assert rest.json()["payment"]["amount_refunded_minor"] == cost
    assert rest.json()["payment"]["status"] == "refunded"
    assert (await paying.live.http.post(refund_url, json={})).status_code == 409
    refunds = paying.stripe.posts("/v1/refunds")
    assert [(r.params["amount"], r.idempotency_key) for r in refunds] == [
        ("100", f"refund-{session_id}-1"),
        (str(cost - 100), f"refund-{session_id}-2"),
    ]
    assert sum(r["amount"] for r in paying.stripe.refunds) == cost


async def test_a_bad_signature_or_a_stale_timestamp_is_400_and_changes_nothing(
    paying: Paying,
) -> None:
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"]):
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        body = event("checkout.session.completed", paying.stripe.pay(cs_id))
        forged = await paying.webhook(body, signed(body, secret="whsec_someone_else"))
        stale = await paying.webhook(body, signed(body, timestamp=int(time.time()) - 600))
        unsigned = await paying.live.http.post(WEBHOOK, content=body)
        tampered = await paying.webhook(body.replace(b"complete", b"COMPLETE"), signed(body))
        assert [r.status_code for r in (forged, stale, unsigned, tampered)] == [400] * 4
        await background_work_done(paying.live.app)
        session = await session_of(paying.live.http, session_id)
        assert session["status"] == "pending"
        assert session["payment"]["status"] == "pending"
        assert not [c for c in paying.stripe.calls if c.path.startswith("/v1/payment_intents")]
        # The same event, properly signed, is still processed (nothing was stored for it).
        assert (await paying.webhook(body)).status_code == 200
        await wait_for_text(anna, "Laddningen har startat")


async def test_a_rejected_start_after_the_hold_cancels_the_payment_intent(
    paying: Paying,
) -> None:
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"], remote_start="reject"):
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        completed = paying.stripe.pay(cs_id)
        assert (await paying.webhook(event("checkout.session.completed", completed))).is_success
        told = await wait_for_text(anna, "Laddaren sa nej till starten")
    assert "har släppts" in told
    await eventually(lambda: payment_of(paying, session_id), lambda p: p["status"] == "released")
    [cancel] = paying.stripe.posts("/cancel")
    assert cancel.path == f"/v1/payment_intents/{completed['payment_intent']}/cancel"
    assert cancel.idempotency_key == f"cancel-{session_id}"
    assert paying.stripe.intents[completed["payment_intent"]]["status"] == "canceled"
    assert not paying.stripe.posts("/capture")
    assert (await session_of(paying.live.http, session_id))["status"] == "failed"


async def test_an_expired_checkout_cancels_the_intent_and_tells_the_driver(
    paying: Paying,
) -> None:
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"]):
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        # The driver started paying (an intent exists) but never finished.
        paying.stripe.pay(cs_id, status="requires_payment_method")
        expired = event("checkout.session.expired", paying.stripe.expire(cs_id))
        assert (await paying.webhook(expired)).status_code == 200
        await wait_for_text(anna, "Betalningen blev inte klar i tid")
        assert (await paying.webhook(expired)).status_code == 200  # a replay: nothing more
        session = await session_of(paying.live.http, session_id)
        assert session["status"] == "failed"
        assert session["failure_reason"] == "payment_expired"
        await eventually(
            lambda: payment_of(paying, session_id), lambda p: p["status"] == "released"
        )
        [cancel] = paying.stripe.posts("/cancel")
        assert cancel.idempotency_key == f"cancel-{session_id}"
        # The connector is free again for the next driver.
        again = await anna.say(code)
        assert f"start:{code}" in [c.payload for r in again for c in r.choices]
    told = [r.text for r in anna.inbox if "Betalningen blev inte klar" in r.text]
    assert len(told) == 1


async def test_a_cost_above_the_hold_captures_the_hold_and_flags_the_rest(
    settings: Settings,
) -> None:
    async with paying_app(stripe_settings(settings, stripe_hold_amount_minor=300)) as paying:
        charger = await priced_charger(paying.live.http)
        code = charger["connectors"][0]["code"]
        anna = await card_driver(paying)
        async with simulator(paying.live, charger["id"], power_kw=22):
            await anna.say(code)
            replies = await anna.press(f"start:{code}")
            cs_id = replies[0].links[0].url.rsplit("/", 1)[1]
            session_id = int(paying.stripe.checkout_sessions[cs_id]["client_reference_id"])
            completed = event("checkout.session.completed", paying.stripe.pay(cs_id))
            assert (await paying.webhook(completed)).status_code == 200
            await wait_for_text(anna, "Laddningen har startat")
            await anna.command("stop")
            paid = await wait_for_text(anna, "Kvitto:")
        done = await eventually(  # the capture may finish after the receipt
            lambda: session_of(paying.live.http, session_id),
            lambda s: s["payment"]["status"] == "captured",
        )
        cost = done["cost_minor"]
        assert cost > 300  # the 5 kr start fee alone is above the 3 kr hold
        [capture] = paying.stripe.posts("/capture")
        assert capture.params == {"amount_to_capture": "300"}
        assert done["payment"]["amount_captured_minor"] == 300
        assert done["payment"]["amount_uncollected_minor"] == cost - 300
        # The receipt says it: paid once captured, to be charged if written before the capture.
        lines = paid.splitlines()
        assert "Betalt med kort: 3,00 kr" in lines or "Dras från ditt kort: 3,00 kr" in lines
        rest = cost - 300
        assert f"Obetalt: {rest // 100},{rest % 100:02d} kr (mer än de 3,00 kr" in paid


async def test_without_a_stripe_key_card_drivers_are_not_started_and_no_webhook(
    live: LiveServer,
) -> None:
    await make_driver(live.http, name="Anna", phone=PHONE, billing="pay_per_session")
    charger = await priced_charger(live.http)
    code = charger["connectors"][0]["code"]
    anna = chat_driver(live.app, phone=PHONE)
    async with simulator(live, charger["id"]):
        await anna.say(code)
        replies = await anna.press(f"start:{code}")
    assert "faktura" in text_of(replies)
    assert not [link for r in replies for link in r.links]
    body = event("checkout.session.completed", {"id": "cs_x", "mode": "payment"})
    response = await live.http.post(WEBHOOK, content=body, headers=signed(body))
    assert response.status_code == 404


def test_production_refuses_a_stripe_key_without_a_webhook_secret(settings: Settings) -> None:
    for secret in ("", "changeme"):
        unsafe = settings.model_copy(
            update={"stripe_api_key": API_KEY, "stripe_webhook_secret": secret}
        )
        with pytest.raises(ConfigurationError, match="STRIPE_WEBHOOK_SECRET"):
            unsafe.check_secrets()
    settings.model_copy(
        update={"stripe_api_key": API_KEY, "stripe_webhook_secret": WEBHOOK_SECRET}
    ).check_secrets()
    settings.model_copy(
        update={"environment": "development", "stripe_api_key": API_KEY}
    ).check_secrets()


async def test_a_saved_card_is_charged_off_session_for_exactly_the_cost(paying: Paying) -> None:
    await make_driver(paying.live.http, name="Anna", phone=PHONE, billing="pay_per_session")
    anna = chat_driver(paying.live.app, phone=PHONE)
    driver_id = (await paying.live.http.get("/admin/drivers")).json()[0]["id"]
    method = await save_a_card(paying, anna)
    [customer_call] = paying.stripe.posts("/v1/customers")
    assert customer_call.idempotency_key == f"customer-{driver_id}"
    [setup] = paying.stripe.posts("/v1/checkout/sessions")
    assert setup.params["mode"] == "setup"
    assert setup.params["customer"] in paying.stripe.customers
    driver = (await paying.live.http.get(f"/admin/drivers/{driver_id}")).json()
    assert driver["billing"] == "card_on_file"
    assert driver["has_saved_card"] is True
    assert driver["stripe_customer_id"] == setup.params["customer"]

    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(paying.live, charger["id"], power_kw=22):
        await anna.say(code)
        starting = await anna.press(f"start:{code}")
        assert "Startar laddaren" in text_of(starting)  # no payment page, no hold
        await wait_for_text(anna, "Laddningen har startat")
        sessions = (await paying.live.http.get("/admin/sessions")).json()
        session_id = sessions[0]["id"]
        await anna.command("stop")
        paid = await wait_for_text(anna, "Betalt med kort:")
    done = await session_of(paying.live.http, session_id)
    cost = done["cost_minor"]
    [charge] = paying.stripe.posts("/v1/payment_intents")
    assert charge.idempotency_key == f"charge-{session_id}"
    assert charge.params["amount"] == str(cost)
    assert charge.params["currency"] == "sek"
    assert charge.params["customer"] == setup.params["customer"]
    assert charge.params["payment_method"] == method
    assert charge.params["off_session"] == "true"
    assert charge.params["confirm"] == "true"
    assert f"{cost // 100},{cost % 100:02d} kr" in paid
    assert done["payment"]["method"] == "card_on_file"
    assert done["payment"]["status"] == "captured"
    assert done["payment"]["amount_captured_minor"] == cost
    assert not paying.stripe.posts("/v1/checkout/sessions")[1:]  # no hold page for the charge


async def test_a_declined_saved_card_is_flagged_and_support_can_send_a_new_link(
    paying: Paying,
) -> None:
    await make_driver(paying.live.http, name="Anna", phone=PHONE, billing="pay_per_session")
    anna = chat_driver(paying.live.app, phone=PHONE)
    driver_id = (await paying.live.http.get("/admin/drivers")).json()[0]["id"]
    paying.stripe.declined_methods.add(await save_a_card(paying, anna))
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(paying.live, charger["id"], power_kw=22):
        await anna.say(code)
        await anna.press(f"start:{code}")
        await wait_for_text(anna, "Laddningen har startat")
        session_id = (await paying.live.http.get("/admin/sessions")).json()[0]["id"]
        await anna.command("stop")
        await wait_for_text(anna, "Kvitto:")
    done = await eventually(
        lambda: session_of(paying.live.http, session_id),
        lambda s: s["payment"] is not None and s["payment"]["status"] == "failed",
    )
    assert done["payment"]["amount_uncollected_minor"] == done["cost_minor"]
    assert done["payment"]["amount_captured_minor"] == 0
    link = await paying.live.http.post(f"/admin/drivers/{driver_id}/card-link")
    assert link.status_code == 200
    assert link.json()["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert len(paying.stripe.posts("/v1/customers")) == 1  # the same customer again


async def test_a_card_on_file_driver_without_a_saved_card_is_asked_to_save_one(
    paying: Paying,
) -> None:
    await make_driver(paying.live.http, name="Anna", phone=PHONE, billing="card_on_file")
    anna = chat_driver(paying.live.app, phone=PHONE)
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(paying.live, charger["id"]):
        await anna.say(code)
        replies = await anna.press(f"start:{code}")
    assert "/card" in text_of(replies)
    assert (await paying.live.http.get("/admin/sessions")).json() == []


async def test_a_free_charge_cancels_the_hold_instead_of_capturing(paying: Paying) -> None:
    station = await make_station(paying.live.http)  # no tariff: charging here is free
    charger = await make_charger(paying.live.http, station["id"])
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"]):
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        completed = paying.stripe.pay(cs_id)
        assert (await paying.webhook(event("checkout.session.completed", completed))).is_success
        await wait_for_text(anna, "Laddningen har startat")
        await anna.command("stop")
        await wait_for_text(anna, "Kvitto:")
    await eventually(lambda: payment_of(paying, session_id), lambda p: p["status"] == "released")
    assert (await session_of(paying.live.http, session_id))["cost_minor"] == 0
    [cancel] = paying.stripe.posts("/cancel")
    assert cancel.idempotency_key == f"cancel-{session_id}"
    assert not paying.stripe.posts("/capture")


async def test_the_whole_flow_on_telegram_with_a_pay_button(settings: Settings) -> None:
    both = stripe_settings(telegram_settings(settings))
    double = RecordingStripeClient()
    api = RecordingRequest(username="chargebot_test_bot")
    app = create_app(both)
    app.state.stripe_http_client = double
    app.state.telegram_request = api
    async with served(app) as live:
        await asyncio.wait_for(app.state.telegram.registered.wait(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}") as telegram:
            bot = TelegramBot(live, api, telegram)
            paying = Paying(live, double)
            await make_driver(live.http, name="Anna", telegram_user_id=ANNA["id"], language="en")
            charger = await priced_charger(live.http)
            code = charger["connectors"][0]["code"]
            async with simulator(live, charger["id"], power_kw=22) as sim:
                await bot.send(message_update(ANNA, f"/start {code}"))
                offer = await bot.reply(ANNA, lambda m: "Start charging" in str(m))
                await bot.send(callback_update(ANNA, f"start:{code}", offer))
                pay = await bot.says(ANNA, "300.00 kr is reserved on your card")
                [[button]] = pay["reply_markup"]["inline_keyboard"]
                cs_id = button["url"].rsplit("/", 1)[1]
                assert button == {"text": "Pay", "url": double.checkout_sessions[cs_id]["url"]}
                assert not [r for r in sim.received if r[0] == "RemoteStartTransaction"]

                completed = event("checkout.session.completed", double.pay(cs_id))
                assert (await paying.webhook(completed)).status_code == 200
                await bot.says(ANNA, "Charging has started")
                assert [r for r in sim.received if r[0] == "RemoteStartTransaction"]
                session_id = int(double.checkout_sessions[cs_id]["client_reference_id"])
                await eventually(
                    lambda: session_of(live.http, session_id), lambda s: s["energy_wh"] > 0
                )
                await bot.send(message_update(ANNA, "/stop"))
                paid = await bot.says(ANNA, "Paid by card:")
            cost = (await session_of(live.http, session_id))["cost_minor"]
            assert f"{cost // 100}.{cost % 100:02d} kr" in paid["text"]
            [capture] = double.posts("/capture")
            assert capture.params == {"amount_to_capture": str(cost)}
            assert capture.idempotency_key == f"capture-{session_id}"


async def test_a_payment_that_arrives_after_the_session_ended_is_cancelled(
    paying: Paying,
) -> None:
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"]) as sim:
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        closed = await paying.live.http.post(f"/admin/sessions/{session_id}/close")
        assert closed.status_code == 200
        late = paying.stripe.pay(cs_id)  # paid at the last moment, webhook arrives after
        assert (await paying.webhook(event("checkout.session.completed", late))).is_success
        await eventually(
            lambda: payment_of(paying, session_id), lambda p: p["status"] == "released"
        )
        assert not [r for r in sim.received if r[0] == "RemoteStartTransaction"]
    [cancel] = paying.stripe.posts("/cancel")
    assert cancel.idempotency_key == f"cancel-{session_id}"
    assert paying.stripe.intents[late["payment_intent"]]["status"] == "canceled"


async def test_no_start_without_a_hold_and_a_cancelled_intent_ends_the_wait(
    paying: Paying,
) -> None:
    charger = await priced_charger(paying.live.http)
    code = charger["connectors"][0]["code"]
    anna = await card_driver(paying)
    async with simulator(paying.live, charger["id"]) as sim:
        session_id, cs_id = await ask_to_pay(paying, anna, code)
        # Completed, but the intent holds nothing (not requires_capture): never started.
        unheld = paying.stripe.pay(cs_id, status="requires_payment_method")
        assert (await paying.webhook(event("checkout.session.completed", unheld))).is_success
        await background_work_done(paying.live.app)
        waiting = await session_of(paying.live.http, session_id)
        assert waiting["status"] == "pending"
        assert waiting["payment"]["status"] == "pending"
        assert not [r for r in sim.received if r[0] == "RemoteStartTransaction"]
        intent = dict(paying.stripe.intents[unheld["payment_intent"]], status="canceled")
        canceled = event("payment_intent.canceled", intent)
        assert (await paying.webhook(canceled)).status_code == 200
        await wait_for_text(anna, "Betalningen avbröts")
        assert (await paying.webhook(canceled)).status_code == 200
    session = await session_of(paying.live.http, session_id)
    assert session["status"] == "failed"
    assert session["failure_reason"] == "payment_canceled"
    assert session["payment"]["status"] == "released"
    assert len([r for r in anna.inbox if "Betalningen avbröts" in r.text]) == 1


async def test_subscription_changes_record_the_plan_even_out_of_order(paying: Paying) -> None:
    driver = await make_driver(paying.live.http, name="Anna", phone=PHONE)
    url = f"/admin/drivers/{driver['id']}"
    assert (await paying.live.http.post(f"{url}/card-link")).status_code == 200
    customer = (await paying.live.http.get(url)).json()["stripe_customer_id"]
    subscription = {
        "id": "sub_test_1",
        "object": "subscription",
        "customer": customer,
        "status": "active",
    }
    paying.stripe.subscriptions["sub_test_1"] = subscription
    created = event("customer.subscription.created", dict(subscription))
    assert (await paying.webhook(created)).status_code == 200
    assert (await paying.live.http.get(url)).json()["plan"] == "member"

    stale_update = event("customer.subscription.updated", dict(subscription))  # sent earlier
    subscription["status"] = "canceled"
    deleted = event("customer.subscription.deleted", dict(subscription))
    assert (await paying.webhook(deleted)).status_code == 200
    assert (await paying.live.http.get(url)).json()["plan"] == "payg"
    # The older update arrives last: Stripe's current state wins, not the event's copy.
    assert (await paying.webhook(stale_update)).status_code == 200
    assert (await paying.live.http.get(url)).json()["plan"] == "payg"


async def test_the_member_plan_side_by_side_subscribe_and_pay_the_member_price(
    settings: Settings,
) -> None:
    member_settings = stripe_settings(
        settings,
        member_price_per_kwh_discount_percent=20,
        member_monthly_fee_minor=9900,
        stripe_member_price_id="price_test_member",
    )
    async with paying_app(member_settings) as paying:
        http = paying.live.http
        driver = await make_driver(http, name="Anna", phone=PHONE, billing="invoice")
        anna = chat_driver(paying.live.app, phone=PHONE)
        charger = await priced_charger(http)
        code = charger["connectors"][0]["code"]
        prices = text_of(await anna.command("prices"))
        assert "Löpande: ingen månadsavgift, stationens pris per kWh." in prices
        assert (
            "Medlem: 99,00 kr per månad och 20 % lägre pris per kWh "
            "(just nu 3,60 kr till 3,60 kr per kWh)" in prices
        )

        replies = await anna.command("member")
        [link] = [link for reply in replies for link in reply.links]
        assert link.label == "Bli medlem"
        [checkout] = paying.stripe.posts("/v1/checkout/sessions")
        assert checkout.params["mode"] == "subscription"
        assert checkout.params["line_items[0][price]"] == "price_test_member"
        customer = checkout.params["customer"]
        assert customer in paying.stripe.customers
        subscription = {"id": "sub_m", "object": "subscription", "customer": customer}
        subscription["status"] = "active"
        paying.stripe.subscriptions["sub_m"] = subscription
        created = event("customer.subscription.created", dict(subscription))
        assert (await paying.webhook(created)).status_code == 200
        assert (await http.get(f"/admin/drivers/{driver['id']}")).json()["plan"] == "member"
        assert "redan medlem" in text_of(await anna.command("member"))

        async with simulator(paying.live, charger["id"], power_kw=22):
            shown = text_of(await anna.say(code))
            assert "Energi: 3,60 kr per kWh (ditt medlemspris)" in shown
            await anna.press(f"start:{code}")
            await wait_for_text(anna, "Laddningen har startat")
            session_id = (await http.get("/admin/sessions")).json()[0]["id"]
            await eventually(lambda: session_of(http, session_id), lambda s: s["energy_wh"] > 0)
            await anna.command("stop")
            await wait_for_text(anna, "Kvitto:")
        done = await session_of(http, session_id)
        # 3.60 kr per kWh (4.50 less 20 %), rounded half up to whole öre, plus the 5 kr fee.
        assert done["cost_minor"] == (done["energy_wh"] * 360 + 500) // 1000 + 500
