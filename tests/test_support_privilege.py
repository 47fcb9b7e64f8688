"""Issue #13, support least privilege. The incident: "A support agent can claim a conversation
that never asked for help (mode bot) and stop that driver's charge; any agent can read any
transcript by id."

Staff claim only from the queue and act only on what they hold; an agent reads queued
conversations and their own, any other only by opening it with a reason; operators read any.
Every read, claim, open, stop and unlock is in the staff audit log, which operators export.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from backend.models import Conversation, StaffAudit
from backend.timezones import STOCKHOLM
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import ChatDriver, chat_driver, invoice_driver, text_of, wait_for_text
from tests.helpers.server import LiveServer
from tests.helpers.support import PASSWORD, add_staff, agent, conversation_id
from tests.helpers.waiting import eventually

ANNA = "+46701112233"
EMMA = "+46702223344"
REASON = "Driver phoned the hotline about a double charge on her invoice"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def chatting_with_the_bot(app: FastAPI, phone: str = ANNA, name: str = "Anna") -> int:
    """A driver who talks to the bot and never asks for a person; their conversation's id."""
    driver = chat_driver(app, phone=phone, language_code="en", name=name)
    assert name in text_of(await driver.say("hi"))
    await driver.say("my secret plans for the weekend")
    return await conversation_of(app, phone)


async def conversation_of(app: FastAPI, phone: str) -> int:
    async with app.state.sessions() as db:
        conversation: Conversation | None = await db.scalar(
            select(Conversation).where(
                col(Conversation.channel) == "console", col(Conversation.address) == phone
            )
        )
    assert conversation is not None and conversation.id is not None
    return conversation.id


async def mode_of(app: FastAPI, cid: int) -> tuple[str, int | None]:
    async with app.state.sessions() as db:
        conversation = await db.get(Conversation, cid)
    assert conversation is not None
    return conversation.mode, conversation.assigned_to


async def audit_rows(app: FastAPI) -> list[StaffAudit]:
    async with app.state.sessions() as db:
        rows = await db.scalars(select(StaffAudit).order_by(col(StaffAudit.id)))
        return list(rows.all())


async def queued(app: FastAPI, phone: str = EMMA, name: str = "Emma") -> ChatDriver:
    driver = chat_driver(app, phone=phone, language_code="en", name=name)
    assert "in line" in text_of(await driver.command("support"))
    return driver


async def export(http: httpx.AsyncClient, **headers: str) -> list[dict[str, str]]:
    today = datetime.now(STOCKHOLM).date()
    params = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    response = await http.get("/admin/audit.csv", params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.fixture
async def browser(app: FastAPI) -> Any:
    """A staff member's browser: cookies, no admin token, https (production cookies)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def console_login(http: httpx.AsyncClient, email: str) -> str:
    form = await http.get("/console/login")
    token = CSRF.search(form.text)
    assert token
    response = await http.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1), "next": ""},
    )
    assert response.status_code == 303, response.text
    page = await http.get("/console/queue")
    found = CSRF.search(page.text)
    assert found
    return found.group(1)


# --- claiming ------------------------------------------------------------------------------------


async def test_an_agent_cannot_claim_a_conversation_that_never_asked_for_help(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    olof = await agent(admin, "olof@example.se", "operator")
    cid = await chatting_with_the_bot(app)
    url = f"/support/conversations/{cid}"

    for staff in (lena, olof):  # claim only from the queue, whatever the role
        refused = await admin.post(f"{url}/claim", headers=staff)
        assert refused.status_code == 403, refused.text
        assert refused.json()["reason"] == "not_in_queue"
        assert "not in the support queue" in refused.json()["detail"]
    assert await mode_of(app, cid) == ("bot", None)
    anna = chat_driver(app, phone=ANNA, language_code="en", name="Anna")
    assert text_of(await anna.say("hi"))  # the bot still answers her

    # The console says so in words, and claims nothing either.
    await add_staff(admin, "omar@example.se", "support", "Omar")
    token = await console_login(browser, "omar@example.se")
    page_url = f"/console/conversations/{cid}"
    claimed = await browser.post(f"{page_url}/claim", data={"csrf_token": token})
    assert claimed.status_code == 303 and claimed.headers["location"] == page_url
    page = await browser.get(page_url)
    assert page.status_code == 403
    assert "not in the support queue" in page.text and "cannot be claimed" in page.text
    assert await mode_of(app, cid) == ("bot", None)
    assert not [row for row in await audit_rows(app) if row.action == "claim"]

    # Once she asks for a person, the same conversation is claimable from the queue.
    await anna.command("support")
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200
    assert (await admin.post(f"{url}/claim", headers=olof)).status_code == 409  # Lena has it


# --- acting --------------------------------------------------------------------------------------


async def test_an_agent_cannot_stop_the_charge_of_a_driver_they_do_not_hold(
    live: LiveServer,
) -> None:
    http = live.http
    charger = await priced_charger(http)
    code = charger["connectors"][0]["code"]
    await invoice_driver(live, phone=ANNA, language="en")
    anna = chat_driver(live.app, phone=ANNA, language_code="en", name="Anna")
    lena = await agent(http, "lena@example.se")
    omar = await agent(http, "omar@example.se")
    olof = await agent(http, "olof@example.se", "operator")
    async with simulator(live, charger["id"], power_kw=22):
        await anna.say(code)
        await anna.press(f"start:{code}")
        await wait_for_text(anna, "Charging has started")
        session_id = (await http.get("/admin/sessions")).json()[0]["id"]
        cid = await conversation_of(live.app, ANNA)
        url = f"/support/conversations/{cid}"

        # She is charging and talking to the bot: nobody from support may touch her charge.
        for staff in (lena, olof):
            for action in ("stop", "unlock"):
                refused = await http.post(f"{url}/actions/{action}", headers=staff)
                assert refused.status_code == 403, (action, refused.text)
                assert refused.json()["reason"] == "not_in_queue"
            assert (await http.post(f"{url}/claim", headers=staff)).status_code == 403

        # She asks for help; Lena holds her chat: Omar still may not stop it, nor hand it back.
        await anna.command("support")
        queued_id = await conversation_id(http, lena, ANNA)
        assert queued_id == cid
        waiting = await http.post(f"{url}/actions/stop", headers=omar)
        assert waiting.status_code == 403 and "claim the conversation" in waiting.json()["detail"]
        assert (await http.post(f"{url}/claim", headers=lena)).status_code == 200
        for action in ("stop", "unlock", "card-link"):
            refused = await http.post(f"{url}/actions/{action}", headers=omar)
            assert refused.status_code == 403, (action, refused.text)
            assert refused.json()["reason"] == "held_by_other"
        for step in ("release", "close"):
            assert (await http.post(f"{url}/{step}", headers=omar)).status_code == 403
        reply = await http.post(f"{url}/messages", json={"text": "hi"}, headers=omar)
        assert reply.status_code == 403
        assert (await session_of(http, session_id))["status"] == "charging"
        assert not [row for row in await audit_rows(live.app) if row.action in {"stop", "unlock"}]

        # Lena, who holds it, may; the stop is in the audit log with the session.
        stop = await http.post(f"{url}/actions/stop", headers=lena)
        assert stop.status_code == 200 and stop.json()["outcome"] == "stopping"
        await eventually(lambda: session_of(http, session_id), lambda s: s["status"] == "completed")
    [row] = [row for row in await audit_rows(live.app) if row.action == "stop"]
    assert row.actor == "lena@example.se" and row.conversation_id == cid
    assert row.reason == f"session {session_id} at {charger['id']} connector 1"


async def test_a_refused_release_does_not_quote_the_driver_to_a_colleague(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    omar = await agent(admin, "omar@example.se")
    emma = await queued(app)
    cid = await conversation_id(admin, lena, EMMA)
    url = f"/support/conversations/{cid}"
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200
    assert await emma.say("my door code is 4711") == []
    refused = await admin.post(f"{url}/release", headers=omar)
    assert refused.status_code == 403 and "4711" not in refused.text
    assert "4711" in (await admin.post(f"{url}/release", headers=lena)).text  # hers: 409 names it


# --- reading -------------------------------------------------------------------------------------


async def test_an_agent_cannot_read_another_drivers_transcript_by_id(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    olof = await agent(admin, "olof@example.se", "operator")
    await add_staff(admin, "omar@example.se", "support", "Omar")
    cid = await chatting_with_the_bot(app)
    url = f"/support/conversations/{cid}"

    refused = await admin.get(url, headers=lena)
    assert refused.status_code == 403
    assert refused.json()["reason"] == "not_in_queue"
    assert "open it with a reason" in refused.json()["detail"]
    assert "secret plans" not in refused.text
    assert (await admin.get(url, headers=olof)).status_code == 200  # operators read any

    # Held by a colleague: not Lena's to read, and the queue shows only who holds it.
    await queued(app)
    emma_id = await conversation_id(admin, lena, EMMA)
    omar = await agent_token(admin, "omar@example.se")
    emma_url = f"/support/conversations/{emma_id}"
    assert (await admin.get(emma_url, headers=lena)).status_code == 200  # queued: readable
    assert (await admin.post(f"{emma_url}/claim", headers=omar)).status_code == 200
    held = await admin.get(emma_url, headers=lena)
    assert held.status_code == 403 and held.json()["reason"] == "held_by_other"
    [item] = (await admin.get("/support/queue", headers=lena)).json()
    assert item["assigned_to"] is not None and item["last_message"] is None
    [own] = (await admin.get("/support/queue", headers=omar)).json()
    assert own["last_message"] is not None
    assert (await admin.get(emma_url, headers=omar)).status_code == 200

    # The console: a readable refusal with the way in, no transcript, no live feed of it.
    await console_login(browser, "lena@example.se")
    page = await browser.get(f"/console/conversations/{cid}")
    assert page.status_code == 403
    assert "not in the support queue" in page.text and 'name="reason"' in page.text
    assert "secret plans" not in page.text
    fragment = await browser.get(f"/console/fragments/conversations/{cid}")
    assert fragment.status_code == 403 and "secret plans" not in fragment.text
    events = await browser.get("/console/events", params={"topic": f"conversation:{cid}"})
    assert events.status_code == 403
    assert (await browser.get(f"/console/conversations/{emma_id}")).status_code == 403
    assert (await browser.get("/console/conversations/999999")).status_code == 404
    reads = [(r.actor, r.conversation_id) for r in await audit_rows(app) if r.action == "read"]
    assert ("lena@example.se", cid) not in reads  # a refusal is no read


async def agent_token(admin: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await admin.post("/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_opening_a_chat_outside_the_queue_needs_a_reason_and_is_audited(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    cid = await chatting_with_the_bot(app)
    url = f"/support/conversations/{cid}"

    for body in (
        {},
        {"reason": ""},
        {"reason": "because"},
        {"reason": " " * 40},
        {"reason": "a reason with a NUL \x00 in it"},
    ):
        refused = await admin.post(f"{url}/open", json=body, headers=lena)
        assert refused.status_code == 422, (body, refused.text)
    assert (await admin.get(url, headers=lena)).status_code == 403
    assert await audit_rows(app) == []

    opened = await admin.post(f"{url}/open", json={"reason": REASON}, headers=lena)
    assert opened.status_code == 200, opened.text
    assert any("secret plans" in m["text"] for m in opened.json()["messages"])
    [row] = await audit_rows(app)
    assert (row.action, row.actor, row.conversation_id) == ("open", "lena@example.se", cid)
    assert row.reason == REASON and row.staff_id is not None
    # Read only, for a while: reading works, claiming and acting do not.
    assert (await admin.get(url, headers=lena)).status_code == 200
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 403
    assert (await admin.post(f"{url}/actions/stop", headers=lena)).status_code == 403
    async with app.state.sessions() as db:
        for row in (await db.scalars(select(StaffAudit))).all():
            row.created_at -= timedelta(minutes=31)
        await db.commit()
    assert (await admin.get(url, headers=lena)).status_code == 403  # the grant has lapsed
    missing = await admin.post(
        "/support/conversations/999999/open", json={"reason": REASON}, headers=lena
    )
    assert missing.status_code == 404

    # The console: the refusal page's form, a short reason is refused, a good one opens.
    await add_staff(admin, "omar@example.se", "support", "Omar")
    token = await console_login(browser, "omar@example.se")
    page_url = f"/console/conversations/{cid}"
    short = await browser.post(f"{page_url}/open", data={"csrf_token": token, "reason": "x"})
    assert short.status_code == 303
    again = await browser.get(page_url)
    assert again.status_code == 403 and "at least 10 characters" in again.text
    forged = await browser.post(f"{page_url}/open", data={"csrf_token": "x", "reason": REASON})
    assert forged.status_code == 403
    done = await browser.post(f"{page_url}/open", data={"csrf_token": token, "reason": REASON})
    assert done.status_code == 303 and done.headers["location"] == page_url
    page = await browser.get(page_url)
    assert page.status_code == 200 and "secret plans" in page.text
    assert 'id="read-only"' in page.text
    assert 'id="claim"' not in page.text and 'id="reply-text"' not in page.text
    actions = [(r.actor, r.action, r.reason) for r in await audit_rows(app)]
    assert ("omar@example.se", "open", REASON) in actions
    assert ("omar@example.se", "read", None) in actions


# --- the audit log -------------------------------------------------------------------------------


async def test_every_transcript_read_is_in_the_audit_export(
    app: FastAPI, admin: httpx.AsyncClient, browser: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    olof = await agent(admin, "olof@example.se", "operator")
    await queued(app)
    emma_id = await conversation_id(admin, lena, EMMA)
    anna_id = await chatting_with_the_bot(app)

    assert (await admin.get(f"/support/conversations/{emma_id}", headers=lena)).is_success
    assert (await admin.get(f"/support/conversations/{emma_id}", headers=lena)).is_success
    assert (await admin.get(f"/support/conversations/{anna_id}", headers=olof)).is_success
    formula = "=HYPERLINK(evil) driver asked by phone"
    opened = await admin.post(
        f"/support/conversations/{anna_id}/open", json={"reason": formula}, headers=lena
    )
    assert opened.is_success
    assert (await admin.post(f"/support/conversations/{emma_id}/claim", headers=lena)).is_success

    # A console page view is one read; its live refreshes add none.
    await console_login(browser, "lena@example.se")
    assert (await browser.get(f"/console/conversations/{emma_id}")).status_code == 200
    for _ in range(3):
        refresh = await browser.get(f"/console/fragments/conversations/{emma_id}")
        assert refresh.status_code == 200

    expected = [
        ("lena@example.se", "read", str(emma_id), ""),
        ("lena@example.se", "read", str(emma_id), ""),
        ("olof@example.se", "read", str(anna_id), ""),
        ("lena@example.se", "open", str(anna_id), "'" + formula),  # no formula in a spreadsheet
        ("lena@example.se", "claim", str(emma_id), ""),
        ("lena@example.se", "read", str(emma_id), ""),
    ]
    rows = await export(admin)
    assert [(r["actor"], r["action"], r["conversation_id"], r["reason"]) for r in rows] == expected
    assert rows[0]["staff_name"] == "Lena" and rows[0]["role"] == "support"
    assert rows[2]["role"] == "operator"
    iso = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")
    assert all(iso.fullmatch(row["created_at"]) for row in rows)

    # Operators export it (token or console); support agents and strangers do not.
    assert len(await export(admin, **olof)) == len(expected)
    assert (await admin.get("/admin/audit.csv", headers=lena)).status_code == 403
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as stranger:
        assert (await stranger.get("/admin/audit.csv")).status_code == 401
    bad = await admin.get("/admin/audit.csv", params={"from": "2026-05-02", "to": "2026-05-01"})
    assert bad.status_code == 422
    assert (await browser.get("/console/audit")).status_code == 403
    await add_staff(admin, "olle@example.se", "operator", "Olle")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://testserver"
    ) as operator:
        await console_login(operator, "olle@example.se")
        page = await operator.get("/console/audit")
        assert page.status_code == 200 and 'id="audit"' in page.text
        assert "lena@example.se" in page.text and "=HYPERLINK(evil)" in page.text
        download = await operator.get("/console/audit.csv")
        assert download.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(download.text)))) == len(expected)
