"""Escalation: an FAQ miss, a failed start and a payment problem queue the chat for support.

Drivers chat through the real engine (console channel); starts go to a simulated charge
point over a real WebSocket; Stripe is the recording double at the network boundary. Support
hours are tested with `app.state.clock`, a fixed time the app reads instead of the wall clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.app import create_app
from backend.db import utcnow
from backend.models import Conversation, ConversationMode, EscalationReason, Message
from backend.services import support
from backend.settings import Settings
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import ChatDriver, chat_driver, payloads, text_of, wait_for_text
from tests.helpers.factories import make_driver
from tests.helpers.payments import (
    Paying,
    ask_to_pay,
    card_driver,
    paying_app,
    save_a_card,
    stripe_settings,
)
from tests.helpers.server import LiveServer, served
from tests.helpers.stripe_double import event
from tests.helpers.support import agent, queue, the_conversation
from tests.helpers.waiting import eventually

PHONE = "+46701239876"
SATURDAY_NOON = datetime(2026, 11, 28, 11, 0, tzinfo=UTC)  # 12:00 in Stockholm
CLOSED_ON_SATURDAYS = "Mon-Fri 08:00-17:00"


async def english_invoice_driver(http: httpx.AsyncClient, app: FastAPI) -> ChatDriver:
    """A driver billed by invoice: a confirmed start goes straight to the charger."""
    await make_driver(http, name="Anna", phone=PHONE, billing="invoice", language="en")
    return chat_driver(app, phone=PHONE, language_code="en")


async def start(driver: ChatDriver, code: str) -> list[Any]:
    await driver.command("start", code)  # a command works even while an agent holds the chat
    return await driver.press(f"start:{code}")


async def pay_the_hold_and_start(paying: Paying, anna: ChatDriver, code: str) -> None:
    """Confirm the price, pay the hold on Checkout (its webhook), and wait for the start."""
    await anna.say(code)
    [link] = [link for r in await anna.press(f"start:{code}") for link in r.links]
    cs_id = link.url.rsplit("/", 1)[1]
    completed = event("checkout.session.completed", paying.stripe.pay(cs_id))
    assert (await paying.webhook(completed)).status_code == 200
    await wait_for_text(anna, "Laddningen har startat")


@pytest.fixture
async def closed_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app on a Saturday noon, with support on duty only on weekdays."""
    app = create_app(settings.model_copy(update={"support_hours": CLOSED_ON_SATURDAYS}))
    app.state.clock = lambda: SATURDAY_NOON
    async with app.router.lifespan_context(app):
        yield app


# --- asking, and an FAQ miss ---------------------------------------------------------------------


async def test_a_confirmed_faq_miss_is_queued_as_faq_miss_and_asking_as_asked(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    anna = chat_driver(app, phone=PHONE, language_code="en")
    lost = await anna.say("who won the eurovision song contest in 1985")
    if "support:offer" in payloads(lost):  # "none of these" first, then the offer
        lost = await anna.press("support:offer")
    assert "support:faq" in payloads(lost)
    assert await queue(admin, lena) == []  # offering is not queueing
    assert "in line" in text_of(await anna.press("support:faq"))
    body = await the_conversation(admin, lena, PHONE)
    assert body["queued"]["escalation_reason"] == "faq_miss"
    assert body["context"]["escalation"]["reason"] == "faq_miss"
    assert body["context"]["escalation"]["waiting_since"] is not None
    assert "Escalated: faq_miss" in [m["text"] for m in body["messages"] if m["kind"] == "event"]
    assert not any("Escalated" in turn for turn in body["context"]["recent_bot_turns"])
    said = [m["text"] for m in body["messages"] if m["author"] == "driver"]
    assert said[-1] == "[Talk to a person]"  # the button as the driver saw it, for the agent
    # Asking again changes nothing: the first reason stays.
    assert "already in line" in text_of(await anna.command("support"))
    assert (await the_conversation(admin, lena, PHONE))["queued"]["escalation_reason"] == "faq_miss"

    emma = chat_driver(app, phone="+46702223344", language_code="en")
    await emma.command("support")
    asked = await the_conversation(admin, lena, "+46702223344")
    assert asked["queued"]["escalation_reason"] == "asked"
    assert asked["context"]["escalation"]["detail"] is None


async def test_release_and_close_clear_the_reason(app: FastAPI, admin: httpx.AsyncClient) -> None:
    lena = await agent(admin, "lena@example.se")
    anna = chat_driver(app, phone=PHONE, language_code="en")
    await anna.command("support")
    cid = (await the_conversation(admin, lena, PHONE))["id"]
    url = f"/support/conversations/{cid}"
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200
    assert (await admin.post(f"{url}/release", headers=lena)).status_code == 200
    olof = await agent(admin, "olof@example.se", "operator")  # back with the bot: not Lena's
    released = (await admin.get(url, headers=olof)).json()
    assert released["mode"] == "bot"
    assert released["context"]["escalation"] == {
        "reason": None,
        "detail": None,
        "waiting_since": None,
    }
    await anna.command("support")
    assert (await the_conversation(admin, lena, PHONE))["queued"]["escalation_reason"] == "asked"
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200
    assert (await admin.post(f"{url}/close", headers=lena)).status_code == 200
    closed = (await admin.get(url, headers=olof)).json()
    assert closed["context"]["escalation"]["reason"] is None


# --- support hours -------------------------------------------------------------------------------


async def test_outside_support_hours_the_driver_is_told_when_support_opens(
    closed_app: FastAPI,
) -> None:
    anna = chat_driver(closed_app, phone=PHONE, language_code="en")
    queued = text_of(await anna.command("support"))
    assert queued == (
        "You are now in line for our support. We are closed right now; a colleague will answer "
        "here from Monday 08:00."
    )
    assert "from Monday 08:00" in text_of(await anna.say("hello? anyone?"))
    assert "already in line" in text_of(await anna.say("hello? anyone?"))
    emma = chat_driver(closed_app, phone="+46702223344", language_code="sv")
    assert "Vi har stängt just nu; en kollega svarar här från måndag kl. 08:00" in text_of(
        await emma.command("support")
    )


# --- a failed start -----------------------------------------------------------------------------


async def test_a_start_the_charger_rejects_queues_the_chat_with_the_session_and_charger(
    live: LiveServer,
) -> None:
    lena = await agent(live.http, "lena@example.se")
    anna = await english_invoice_driver(live.http, live.app)
    charger = await priced_charger(live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(live, charger["id"], remote_start="reject"):
        assert "refused" in text_of(await start(anna, code))
        told = await wait_for_text(anna, "in line")
    assert told.startswith("The charger refused to start. You have not been charged.")
    assert "You are now in line for our support" in told
    body = await the_conversation(live.http, lena, PHONE)
    assert body["mode"] == "waiting"
    assert body["queued"]["escalation_reason"] == "start_failed"
    context = body["context"]
    assert context["escalation"]["reason"] == "start_failed"
    assert context["escalation"]["detail"] == "rejected"
    session = context["session"]
    assert session["status"] == "failed" and session["failure_reason"] == "rejected"
    assert session["charger_id"] == charger["id"] and session["connector_code"] == code
    assert any("in line" in turn for turn in context["recent_bot_turns"])
    events = [m["text"] for m in body["messages"] if m["kind"] == "event"]
    assert events == ["Escalated: start_failed (rejected)"]


async def test_outside_hours_a_failed_start_names_the_opening(live_settings: Settings) -> None:
    app = create_app(live_settings.model_copy(update={"support_hours": CLOSED_ON_SATURDAYS}))
    app.state.clock = lambda: SATURDAY_NOON
    async with served(app) as live:
        anna = await english_invoice_driver(live.http, live.app)
        charger = await priced_charger(live.http)
        code = charger["connectors"][0]["code"]
        async with simulator(live, charger["id"], remote_start="reject"):
            await start(anna, code)
            told = await wait_for_text(anna, "in line")
    assert "We are closed right now; a colleague will answer here from Monday 08:00." in told


async def test_a_charger_that_never_starts_queues_the_chat(live_settings: Settings) -> None:
    """Accepted, but no StartTransaction before the deadline: `no_start_transaction`."""
    app = create_app(live_settings.model_copy(update={"ocpp_start_timeout": 0.5}))
    async with served(app) as live:
        lena = await agent(live.http, "lena@example.se")
        anna = await english_invoice_driver(live.http, live.app)
        charger = await priced_charger(live.http)
        code = charger["connectors"][0]["code"]
        async with simulator(live, charger["id"], remote_start="accept_without_start"):
            await start(anna, code)
            told = await wait_for_text(anna, "in line")
        body = await the_conversation(live.http, lena, PHONE)
    assert "You are now in line for our support" in told
    assert body["context"]["escalation"] == {
        "reason": "start_failed",
        "detail": "no_start_transaction",
        "waiting_since": body["waiting_since"],
    }


async def test_a_pay_per_session_start_left_unpaid_is_not_escalated(
    live_settings: Settings,
) -> None:
    """`timed_out` on a session whose payment was never held is a payment page left open."""
    development = live_settings.model_copy(update={"environment": "development"})
    async with served(create_app(development)) as live:
        lena = await agent(live.http, "lena@example.se")
        charger = await priced_charger(live.http)
        code = charger["connectors"][0]["code"]
        walk_in = chat_driver(live.app, phone="+46705550177", language_code="en")
        async with simulator(live, charger["id"]):
            await walk_in.say(code)
            await walk_in.press(f"start:{code}")  # the test payment page, never approved
            later = utcnow() + timedelta(hours=2)  # past the page's deadline
            await live.app.state.charging.run_timers(now=later)
            sessions = await eventually(
                lambda: live.http.get("/admin/sessions"),
                lambda r: r.json() and r.json()[0]["status"] == "failed",
            )
        assert sessions.json()[0]["failure_reason"] == "timed_out"
        await live.app.state.notifier.drain()
        assert await queue(live.http, lena) == []


async def test_a_held_chat_is_not_requeued_by_a_failure_and_after_release_it_is(
    live: LiveServer,
) -> None:
    lena = await agent(live.http, "lena@example.se")
    anna = await english_invoice_driver(live.http, live.app)
    await anna.command("support")
    cid = (await the_conversation(live.http, lena, PHONE))["id"]
    url = f"/support/conversations/{cid}"
    assert (await live.http.post(f"{url}/claim", headers=lena)).status_code == 200
    charger = await priced_charger(live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(live, charger["id"], remote_start="reject"):
        await start(anna, code)
        told = await wait_for_text(anna, "The charger refused to start. You have not")
        held = await the_conversation(live.http, lena, PHONE)
        assert held["mode"] == "agent" and held["assigned_to"] is not None
        assert held["queued"]["escalation_reason"] == "asked"
        assert "in line" not in told and "A colleague from support will answer you" in told
        assert not [m for m in held["messages"] if m["text"].startswith("Escalated: start")]

        seen = len(held["context"]["unanswered"])  # her start, which no person answered
        release = await live.http.post(f"{url}/release?seen_unanswered={seen}", headers=lena)
        assert release.status_code == 200
        anna.inbox.clear()
        await start(anna, code)
        await wait_for_text(anna, "in line")
    again = await the_conversation(live.http, lena, PHONE)
    assert again["mode"] == "waiting" and again["assigned_to"] is None
    assert again["queued"]["escalation_reason"] == "start_failed"


# --- payments ------------------------------------------------------------------------------------


async def test_an_expired_payment_page_is_not_escalated(settings: Settings) -> None:
    async with paying_app(stripe_settings(settings)) as paying:
        lena = await agent(paying.live.http, "lena@example.se")
        charger = await priced_charger(paying.live.http)
        anna = await card_driver(paying, phone=PHONE)
        async with simulator(paying.live, charger["id"]):
            session_id, cs_id = await ask_to_pay(paying, anna, charger["connectors"][0]["code"])
            expired = event("checkout.session.expired", paying.stripe.expire(cs_id))
            assert (await paying.webhook(expired)).status_code == 200
            told = await wait_for_text(anna, "Betalningen blev inte klar i tid")
        assert (await session_of(paying.live.http, session_id))["failure_reason"] == (
            "payment_expired"
        )
        assert "kö" not in told
        assert await queue(paying.live.http, lena) == []


async def test_a_declined_saved_card_queues_the_chat_as_a_payment_problem(
    settings: Settings,
) -> None:
    async with paying_app(stripe_settings(settings)) as paying:
        lena = await agent(paying.live.http, "lena@example.se")
        await make_driver(paying.live.http, name="Anna", phone=PHONE)
        anna = chat_driver(paying.live.app, phone=PHONE)
        paying.stripe.declined_methods.add(await save_a_card(paying, anna))
        charger = await priced_charger(paying.live.http)
        code = charger["connectors"][0]["code"]
        async with simulator(paying.live, charger["id"], power_kw=22):
            await anna.say(code)
            await anna.press(f"start:{code}")
            await wait_for_text(anna, "Laddningen har startat")
            await anna.command("stop")
            told = await wait_for_text(anna, "problem med betalningen")
        assert told == (
            "Det blev ett problem med betalningen för din laddning. Du står nu i kö till vår "
            "support. En kollega svarar här i chatten så snart som möjligt."
        )
        body = await the_conversation(paying.live.http, lena, PHONE)
        assert body["queued"]["escalation_reason"] == "payment_problem"
        assert body["context"]["escalation"]["detail"] == "charge_refused"
        payment = body["context"]["session"]["payment"]
        assert payment["status"] == "failed" and payment["amount_uncollected_minor"] > 0
        # Stripe's own webhook about the same decline queues nothing twice.
        intent = next(iter(paying.stripe.intents.values()))
        failed = event("payment_intent.payment_failed", intent)
        assert (await paying.webhook(failed)).status_code == 200
        await paying.live.app.state.notifier.drain()
        assert len([r for r in anna.inbox if "problem med betalningen" in r.text]) == 1
        events = [
            m["text"] for m in (await the_conversation(paying.live.http, lena, PHONE))["messages"]
        ]
        assert events.count("Escalated: payment_problem (charge_refused)") == 1


async def test_a_cost_above_the_hold_is_a_payment_problem_too(settings: Settings) -> None:
    async with paying_app(stripe_settings(settings, stripe_hold_amount_minor=300)) as paying:
        lena = await agent(paying.live.http, "lena@example.se")
        charger = await priced_charger(paying.live.http)
        code = charger["connectors"][0]["code"]
        anna = await card_driver(paying, phone=PHONE)
        async with simulator(paying.live, charger["id"], power_kw=22):
            await pay_the_hold_and_start(paying, anna, code)
            await anna.command("stop")
            # The receipt: paid once captured, to be charged if written before the capture.
            receipt = (await wait_for_text(anna, "Kvitto:")).splitlines()
            assert (
                "Betalt med kort: 3,00 kr" in receipt or "Dras från ditt kort: 3,00 kr" in receipt
            )
            told = await wait_for_text(anna, "problem med betalningen")
        assert "Du står nu i kö till vår support" in told
        body = await eventually(
            lambda: the_conversation(paying.live.http, lena, PHONE),
            lambda b: b["context"]["escalation"]["detail"] == "uncollected",
        )
        assert body["queued"]["escalation_reason"] == "payment_problem"


async def test_a_refused_capture_is_a_payment_problem_and_the_hold_stays(
    settings: Settings,
) -> None:
    """Stripe refuses the capture (here: the authorization lapsed at Stripe during charging)."""
    async with paying_app(stripe_settings(settings)) as paying:
        lena = await agent(paying.live.http, "lena@example.se")
        charger = await priced_charger(paying.live.http)
        code = charger["connectors"][0]["code"]
        anna = await card_driver(paying, phone=PHONE)
        async with simulator(paying.live, charger["id"], power_kw=22):
            await pay_the_hold_and_start(paying, anna, code)
            [intent] = paying.stripe.intents.values()
            intent.update(status="canceled", amount_capturable=0)  # Stripe's side only
            await anna.command("stop")
            told = await wait_for_text(anna, "problem med betalningen")
        assert "Du står nu i kö till vår support" in told
        body = await eventually(
            lambda: the_conversation(paying.live.http, lena, PHONE),
            lambda b: b["context"]["escalation"]["detail"] == "capture_refused",
        )
        assert body["queued"]["escalation_reason"] == "payment_problem"
        assert body["context"]["session"]["payment"]["status"] == "authorized"  # retry possible


async def test_a_payment_problem_moves_a_queued_chats_context_to_the_session_with_money_owed(
    db: AsyncSession,
) -> None:
    """Queued over a failed start (session 7), then session 9 ends with money owed."""
    conversation = Conversation(channel="sms", address="+46701230000")
    db.add(conversation)
    await db.flush()
    assert await support.escalate(
        db, conversation, EscalationReason.START_FAILED, "rejected", session_id=7
    )
    assert not await support.escalate(
        db, conversation, EscalationReason.PAYMENT_PROBLEM, "uncollected", session_id=9
    )  # still in line once, not queued again
    await db.commit()
    assert conversation.mode == ConversationMode.WAITING
    assert conversation.escalation_reason == EscalationReason.PAYMENT_PROBLEM
    assert support.split_detail(conversation.escalation_detail) == ("uncollected", 9)
    lines = (
        await db.scalars(
            select(col(Message.text)).where(col(Message.conversation_id) == conversation.id)
        )
    ).all()
    assert lines[-1].endswith("payment_problem (uncollected)")
    # Any other later reason leaves the first one in place.
    assert not await support.escalate(db, conversation, EscalationReason.ASKED)
    assert conversation.escalation_reason == EscalationReason.PAYMENT_PROBLEM
