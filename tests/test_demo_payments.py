"""The demo without Stripe: a labelled local test page walks through hold → start → capture."""

from __future__ import annotations

import pytest

from backend.models import Payment
from backend.settings import Settings
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import chat_driver, text_of, wait_for_text
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually


@pytest.fixture
def live_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"environment": "development", "ocpp_call_timeout": 5.0, "sweep_interval": 0.1}
    )


async def _payment(live: LiveServer, session_id: int) -> Payment:
    from sqlmodel import select

    async with live.app.state.sessions() as db:
        payment: Payment | None = await db.scalar(
            select(Payment).where(Payment.session_id == session_id)
        )
        assert payment is not None
        return payment


async def test_a_walk_in_pays_on_the_test_page_and_exactly_the_cost_is_captured(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    code = charger["connectors"][0]["code"]
    walk_in = chat_driver(live.app, phone="+46705550100")
    async with simulator(live, charger["id"], power_kw=22) as sim:
        await walk_in.say(code)
        replies = await walk_in.press(f"start:{code}")
        assert "DEMO: testbetalning" in text_of(replies)
        link = replies[0].links[0].url
        path = link.removeprefix(live.app.state.settings.public_base_url)
        session_id = int(path.rsplit("/", 1)[1])
        assert (await session_of(live.http, session_id))["status"] == "pending"
        assert not [name for name, _ in sim.received if name == "RemoteStartTransaction"]
        page = await live.http.get(path)
        assert page.status_code == 200
        assert "TEST PAYMENT" in page.text and "300,00 kr" in page.text
        approved = await live.http.post(f"{path}/approve")
        assert approved.status_code == 200
        await wait_for_text(walk_in, "Laddningen har startat")
        assert (await _payment(live, session_id)).status == "authorized"
        await eventually(lambda: session_of(live.http, session_id), lambda s: s["energy_wh"] > 0)
        await walk_in.command("stop")
        await wait_for_text(walk_in, "Kvitto")
        done = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["status"] == "completed"
        )
        paid = await eventually(
            lambda: _payment(live, session_id), lambda p: p.status == "captured"
        )
    assert paid.amount_captured_minor == done["cost_minor"]
    assert (await live.http.post(f"{path}/approve")).status_code == 409


async def test_cancelling_on_the_test_page_starts_nothing_and_frees_the_connector(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    code = charger["connectors"][0]["code"]
    walk_in = chat_driver(live.app, phone="+46705550101")
    async with simulator(live, charger["id"]) as sim:
        await walk_in.say(code)
        replies = await walk_in.press(f"start:{code}")
        path = replies[0].links[0].url.removeprefix(live.app.state.settings.public_base_url)
        session_id = int(path.rsplit("/", 1)[1])
        assert (await live.http.post(f"{path}/cancel")).status_code == 200
        assert (await session_of(live.http, session_id))["status"] == "failed"
        assert (await _payment(live, session_id)).status == "released"
        assert "RemoteStartTransaction" not in [name for name, _ in sim.received]
        again = await walk_in.say(code)
        assert f"start:{code}" in [c.payload for r in again for c in r.choices]


async def test_there_is_no_test_page_outside_development(settings: Settings) -> None:
    from backend.app import create_app

    app = create_app(settings)  # production settings
    import httpx

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/demo/pay/1")).status_code == 404


async def test_a_cost_above_the_test_hold_is_a_payment_problem_for_support(
    live: LiveServer,
) -> None:
    """As with Stripe: what the hold did not cover is flagged and the chat is queued."""
    live.app.state.demo_payments.hold_amount_minor = 100  # 1 kr: the 5 kr start fee is more
    charger = await priced_charger(live.http)
    code = charger["connectors"][0]["code"]
    walk_in = chat_driver(live.app, phone="+46705550101")
    async with simulator(live, charger["id"], power_kw=22):
        await walk_in.say(code)
        replies = await walk_in.press(f"start:{code}")
        path = replies[0].links[0].url.removeprefix(live.app.state.settings.public_base_url)
        assert (await live.http.post(f"{path}/approve")).status_code == 200
        await wait_for_text(walk_in, "Laddningen har startat")
        await walk_in.command("stop")
        told = await wait_for_text(walk_in, "problem med betalningen")
    assert "kö" in told
    queue = await _queue(live)
    assert [item["escalation_reason"] for item in queue] == ["payment_problem"]


async def _queue(live: LiveServer) -> list[dict[str, object]]:
    from backend.services import support

    async with live.app.state.sessions() as db:
        return await support.queue(db)
