"""The console over HTTP: login and its cookie, CSRF, roles, the support pages and actions,
live change events, operator pages and the CSV export. The browser test is test_console_e2e.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.console import live
from backend.db import utcnow
from backend.models import Charger, ChargingSession, Connector, Conversation, Message, SessionStatus
from backend.settings import Settings
from tests.helpers import factories
from tests.helpers.chat import chat_driver
from tests.helpers.console import console_login, conversation_of, csrf_of, queued_driver
from tests.helpers.support import PASSWORD, add_staff
from tests.helpers.waiting import settle


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client without the admin token, like a staff member's browser.

    The test settings are production ones, so cookies are Secure: the client speaks https.
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


# --- login, cookie, CSRF ---------------------------------------------------------------------


async def test_pages_need_a_login_and_fragments_answer_401(
    admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    page = await browser.get("/console/queue")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=/console/queue"
    assert (await browser.get("/console/fragments/queue")).status_code == 401
    assert (await browser.get("/console/events", params={"topic": "queue"})).status_code == 401
    # The admin bearer token is for the API, never a console session.
    assert (await admin.get("/console/queue")).status_code == 303


async def test_login_sets_a_strict_http_only_session_cookie(
    admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support", "Lena")
    form = await browser.get("/console/login")
    response = await browser.post(
        "/console/login",
        data={"email": "lena@example.se", "password": PASSWORD, "csrf_token": csrf_of(form)},
    )
    assert response.status_code == 303
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("__Host-chargebot_console=")
    )
    assert (
        "Secure" in cookie
        and "HttpOnly" in cookie
        and "SameSite=strict" in cookie
        and "Path=/" in cookie
    )
    page = await browser.get("/console/queue")
    assert page.status_code == 200 and "Lena" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


async def test_production_cookies_are_secure_with_the_host_prefix(settings: Settings) -> None:
    from backend.console import session

    production = settings.model_copy(update={"environment": "production"})
    assert session.secure_cookies(production)
    assert session.session_cookie_name(production) == "__Host-chargebot_console"
    development = settings.model_copy(
        update={"environment": "development", "public_base_url": "http://127.0.0.1:8000"}
    )
    assert not session.secure_cookies(development)
    https = development.model_copy(update={"public_base_url": "https://console.example.se"})
    assert session.secure_cookies(https)


async def test_wrong_password_and_missing_login_csrf_are_refused(
    admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    form = await browser.get("/console/login")
    wrong = await browser.post(
        "/console/login",
        data={"email": "lena@example.se", "password": "nope", "csrf_token": csrf_of(form)},
    )
    assert wrong.status_code == 401
    assert "Fel e-post eller lösenord" in wrong.text or "Wrong email" in wrong.text
    forged = await browser.post(
        "/console/login",
        data={"email": "lena@example.se", "password": PASSWORD, "csrf_token": "forged"},
    )
    assert forged.status_code == 403
    assert "chargebot_console=" not in forged.headers.get("set-cookie", "")


async def test_forms_without_the_session_csrf_token_are_refused(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    token = await console_login(browser, "lena@example.se")
    conversation_id = await queued_driver(app)
    forged = await browser.post(
        f"/console/conversations/{conversation_id}/claim", data={"csrf_token": "x" * len(token)}
    )
    assert forged.status_code == 403
    missing = await browser.post(f"/console/conversations/{conversation_id}/claim")
    assert missing.status_code == 403
    async with app.state.sessions() as db:
        conversation = await db.get(Conversation, conversation_id)
        assert conversation is not None and conversation.assigned_to is None  # nobody holds it


async def test_the_next_parameter_never_leads_off_the_console(
    admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    form = await browser.get("/console/login")
    response = await browser.post(
        "/console/login",
        data={
            "email": "lena@example.se",
            "password": PASSWORD,
            "csrf_token": csrf_of(form),
            "next": "//evil.example/console/",
        },
    )
    assert response.headers["location"] == "/console/queue"


async def test_logout_ends_the_session_and_a_deactivated_account_is_out(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    staff = await add_staff(admin, "lena@example.se", "support")
    token = await console_login(browser, "lena@example.se")
    out = await browser.post("/console/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await browser.get("/console/queue")).status_code == 303
    await console_login(browser, "lena@example.se")
    patched = await admin.patch(f"/admin/staff/{staff['id']}", json={"active": False})
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert (await browser.get("/console/queue")).status_code == 303


async def test_support_agents_cannot_open_operator_pages(
    admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    await console_login(browser, "lena@example.se")
    for path in [
        "/console/network",
        "/console/usage",
        "/console/sessions",
        "/console/sessions.csv",
    ]:
        assert (await browser.get(path)).status_code == 403, path
    assert (await browser.get("/console/events", params={"topic": "network"})).status_code == 403


# --- the queue, a conversation, the actions --------------------------------------------------


async def test_an_agent_claims_replies_and_hands_back_through_the_console(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support", "Lena")
    token = await console_login(browser, "lena@example.se")
    conversation_id = await queued_driver(app, name="Anna Berg")
    queue = await browser.get("/console/queue")
    assert "Anna Berg" in queue.text and f"/console/conversations/{conversation_id}" in queue.text
    url = f"/console/conversations/{conversation_id}"
    claimed = await browser.post(f"{url}/claim", data={"csrf_token": token})
    assert claimed.status_code == 303 and claimed.headers["location"] == url
    page = await browser.get(url)
    assert 'id="reply-text"' in page.text  # only the holder gets the reply form
    sent = await browser.post(
        f"{url}/actions/reply", data={"csrf_token": token, "text": "Hej Anna!"}
    )
    assert sent.status_code == 303
    transcript = (await browser.get(f"/console/fragments/conversations/{conversation_id}")).text
    assert "Hej Anna!" in transcript and "Lena claimed the conversation" in transcript
    # A browser sends newlines as CRLF: 800 lines of "a" are 1599 characters, not 2398.
    lines = "\r\n".join(["a"] * 800)
    long_ok = await browser.post(f"{url}/actions/reply", data={"csrf_token": token, "text": lines})
    assert long_ok.status_code == 303
    too_long = await browser.post(
        f"{url}/actions/reply", data={"csrf_token": token, "text": "b" * 1601}
    )
    assert too_long.status_code == 303
    notice = (await browser.get(url)).text
    assert "1600" in notice and "b" * 1601 not in notice
    released = await browser.post(f"{url}/release", data={"csrf_token": token})
    assert released.headers["location"] == "/console/queue"
    assert (
        f"/console/conversations/{conversation_id}"
        not in (await browser.get("/console/fragments/queue")).text
    )


async def test_a_second_agent_sees_who_holds_it_and_cannot_reply(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support", "Lena")
    await add_staff(admin, "omar@example.se", "support", "Omar")
    token = await console_login(browser, "lena@example.se")
    conversation_id = await queued_driver(app)
    url = f"/console/conversations/{conversation_id}"
    await browser.post(f"{url}/claim", data={"csrf_token": token})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as other:
        other_token = await console_login(other, "omar@example.se")
        page = await other.get(url)  # Lena's chat is not Omar's to read (issue #13)
        assert page.status_code == 403
        assert "held by Lena" in page.text and 'id="reply-text"' not in page.text
        refused = await other.post(
            f"{url}/actions/reply", data={"csrf_token": other_token, "text": "x"}
        )
        assert refused.status_code == 303
        notice = await other.get(url)
        assert "Inte tillåtet" in notice.text or "Not allowed" in notice.text
    transcript = (await browser.get(f"/console/fragments/conversations/{conversation_id}")).text
    assert ">x<" not in transcript


async def test_quick_action_sends_an_faq_answer_in_the_drivers_language(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support", "Lena")
    token = await console_login(browser, "lena@example.se")
    driver = chat_driver(app, phone="+46705550001", language_code="en", name="Emma")
    await driver.command("support")
    async with app.state.sessions() as db:
        conversation = await conversation_of(db, "console", "+46705550001")
    url = f"/console/conversations/{conversation.id}"
    page = await browser.get(url)
    assert "Ta över" in page.text or "Claim" in page.text
    await browser.post(f"{url}/claim", data={"csrf_token": token})
    entry = next(iter(app.state.chat_engine.services.faq.index.entries))
    response = await browser.post(
        f"{url}/actions/faq", data={"csrf_token": token, "entry_id": entry.id}
    )
    assert response.status_code == 303
    transcript = (await browser.get(f"/console/fragments/conversations/{conversation.id}")).text
    assert _html_text(entry.answer("en")) in transcript
    unknown = await browser.post(
        f"{url}/actions/faq", data={"csrf_token": token, "entry_id": "nope"}
    )
    assert unknown.status_code == 404


def _html_text(text: str) -> str:
    """How Jinja's autoescape writes `text` into the page."""
    from markupsafe import escape

    return str(escape(text))


async def test_stop_needs_a_charging_session_and_says_so(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    token = await console_login(browser, "lena@example.se")
    conversation_id = await queued_driver(app)
    url = f"/console/conversations/{conversation_id}"
    await browser.post(f"{url}/claim", data={"csrf_token": token})
    stop = await browser.post(f"{url}/actions/stop", data={"csrf_token": token})
    assert stop.status_code == 303
    page = (await browser.get(url)).text
    assert "no charging session to stop" in page
    card = await browser.post(f"{url}/actions/card-link", data={"csrf_token": token})
    assert "card payments are not configured" in (await browser.get(card.headers["location"])).text


async def test_pages_switch_language(admin: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    await add_staff(admin, "lena@example.se", "support")
    await console_login(browser, "lena@example.se")
    await browser.get("/console/language/en", params={"next": "/console/queue"})
    assert "Support queue" in (await browser.get("/console/queue")).text
    await browser.get("/console/language/sv", params={"next": "/console/queue"})
    assert "Supportkö" in (await browser.get("/console/queue")).text


# --- live changes ----------------------------------------------------------------------------


async def test_the_queue_fingerprint_changes_with_a_new_escalation_and_a_message(
    app: FastAPI,
) -> None:
    async with app.state.sessions() as db:
        before = await live.queue_fingerprint(db)
    driver = chat_driver(app, phone="+46705550002")
    await driver.command("support")
    async with app.state.sessions() as db:
        queued = await live.queue_fingerprint(db)
    assert queued != before
    await driver.say("Hallå? Laddaren blinkar rött")
    async with app.state.sessions() as db:
        after_message = await live.queue_fingerprint(db)
        conversation = await conversation_of(db, "console", "+46705550002")
        assert conversation.id is not None
        one = await live.conversation_fingerprint(db, conversation.id)
    assert after_message != queued
    await driver.say("Hallå igen")
    async with app.state.sessions() as db:
        assert await live.conversation_fingerprint(db, conversation.id) != one


async def test_the_change_stream_emits_on_connect_and_on_change(app: FastAPI) -> None:
    stream = live.change_stream(
        app.state.sessions, live.queue_fingerprint, interval=0.02, max_seconds=5
    )
    assert (await anext(stream)).startswith("retry:")
    assert (await anext(stream)) == "event: change\ndata: 1\n\n"
    next_event = asyncio.ensure_future(anext(stream))
    await settle(0.1)  # the stream polls every 0.02 s; nothing marks a poll that found no change
    assert not next_event.done()  # nothing changed: no event
    await chat_driver(app, phone="+46705550003").command("support")
    assert (await asyncio.wait_for(next_event, 5)) == "event: change\ndata: 2\n\n"
    await stream.aclose()


async def test_the_network_fingerprint_sees_charger_and_connector_changes(
    admin: httpx.AsyncClient, db: AsyncSession
) -> None:
    station = await factories.make_station(admin)
    await factories.make_charger(admin, station["id"], id="CB-LIVE-1")
    await factories.make_charger(admin, station["id"], id="CB-LIVE-2")
    seen = [await live.network_fingerprint(db)]

    async def after(statement: Any) -> None:
        await db.execute(statement)
        await db.commit()
        seen.append(await live.network_fingerprint(db))
        assert seen[-1] != seen[-2], statement

    await after(update(Charger).where(col(Charger.id) == "CB-LIVE-1").values(online=True))
    # One goes offline as the other comes online: the same count, another picture.
    await after(
        update(Charger).values(online=case((col(Charger.id) == "CB-LIVE-1", False), else_=True))
    )
    await after(update(Charger).where(col(Charger.id) == "CB-LIVE-2").values(status="Faulted"))
    await after(
        update(Connector)
        .where(col(Connector.charger_id) == "CB-LIVE-1", col(Connector.connector_id) == 1)
        .values(status="Charging")
    )


async def test_unknown_topics_are_404(admin: httpx.AsyncClient, browser: httpx.AsyncClient) -> None:
    await add_staff(admin, "lena@example.se", "support")
    await console_login(browser, "lena@example.se")
    assert (await browser.get("/console/events", params={"topic": "nope"})).status_code == 404
    for topic in ["conversation:abc", "conversation:²", "conversation:99999999999999999999"]:
        assert live.fingerprint_for(topic) is None, topic
    assert live.fingerprint_for("conversation:12") is not None


# --- operator pages --------------------------------------------------------------------------


async def test_operators_see_stations_sessions_charts_and_export_csv(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient, db: AsyncSession
) -> None:
    await add_staff(admin, "olle@example.se", "operator", "Olle")
    await console_login(browser, "olle@example.se")
    station = await factories.make_station(admin, name="Kungsgatan, Göteborg")
    await factories.make_charger(admin, station["id"], id="CB-CONSOLE-1")
    now = utcnow()
    db.add(
        ChargingSession(
            charger_id="CB-CONSOLE-1",
            connector_id=1,
            status=SessionStatus.COMPLETED,
            energy_wh=12_500,
            cost_minor=6_250,
            created_at=now - timedelta(hours=2),
            started_at=now - timedelta(hours=2),
            stopped_at=now - timedelta(hours=1),
        )
    )
    await db.commit()
    network = await browser.get("/console/network")
    assert network.status_code == 200
    assert "Kungsgatan, Göteborg" in network.text and "CB-CONSOLE-1" in network.text
    usage_page = await browser.get("/console/usage")
    assert usage_page.status_code == 200
    assert usage_page.text.count("<svg") == 6
    assert "62,50 kr" in usage_page.text  # the revenue total, Swedish format
    bad = await browser.get("/console/usage", params={"start": "2026-05-01", "end": "2026-04-01"})
    assert bad.status_code == 422
    export = await browser.get("/console/sessions.csv")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert [row["energy_wh"] for row in rows] == ["12500"]
    assert rows[0]["station"] == "Kungsgatan, Göteborg"
    sessions_page = await browser.get("/console/sessions")
    assert sessions_page.status_code == 200


async def test_driver_text_is_escaped_in_the_console(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    await console_login(browser, "lena@example.se")
    assert (await browser.get("/console")).headers["location"] == "/console/queue"
    driver = chat_driver(app, phone="+46705550004", name="<b>Mallory</b>")
    await driver.command("support")
    await driver.say('<script>alert("x")</script>')
    async with app.state.sessions() as db:
        conversation = await conversation_of(db, "console", "+46705550004")
    page = (await browser.get(f"/console/conversations/{conversation.id}")).text
    assert "<script>alert" not in page and "&lt;script&gt;alert(" in page
    queue = (await browser.get("/console/queue")).text
    assert "<b>Mallory</b>" not in queue


async def test_what_the_driver_wrote_unanswered_is_shown_before_the_agent_hands_back(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support", "Lena")
    token = await console_login(browser, "lena@example.se")
    conversation_id = await queued_driver(app, name="Anna Berg")
    url = f"/console/conversations/{conversation_id}"
    await browser.post(f"{url}/claim", data={"csrf_token": token})
    anna = chat_driver(app, phone="+46701112233", name="Anna Berg")
    assert await anna.say("är ni kvar? laddaren blinkar rött") == []  # the bot stays quiet
    page = (await browser.get(url)).text
    assert 'id="unanswered"' in page and "laddaren blinkar rött" in page
    # A release that has not seen it is refused; the page's own form has.
    blind = await browser.post(f"{url}/release", data={"csrf_token": token})
    assert blind.headers["location"].startswith(url)
    assert "laddaren blinkar" in (await browser.get(url)).text
    seen = await browser.post(f"{url}/release", data={"csrf_token": token, "seen_unanswered": 1})
    assert seen.headers["location"] == "/console/queue"
    async with app.state.sessions() as db:
        conversation = await conversation_of(db, "console", "+46701112233")
    assert conversation.mode == "bot"
    # Back with the bot it is no longer Lena's to read; the record, read directly:
    fragment = await browser.get(f"/console/fragments/conversations/{conversation_id}")
    assert fragment.status_code == 403
    async with app.state.sessions() as db:
        texts = await db.scalars(
            select(col(Message.text)).where(col(Message.conversation_id) == conversation_id)
        )
        assert any("Du pratar med chargebot igen" in text for text in texts)  # she was told
