"""Support staff: accounts and roles, the queue, claiming, replies on the driver's channel.

Drivers chat on the `console` channel through the real engine, or by SMS and Telegram
through the served app with the Twilio and Telegram doubles at the network boundary.
"""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest
from fastapi import FastAPI

from backend.cli import main
from backend.services.staff import issue_token
from backend.settings import Settings
from tests.helpers.chat import ChatDriver, chat_driver, text_of
from tests.helpers.server import SECRET_KEY
from tests.helpers.sms import EMMA, sms_settings, twilio_app
from tests.helpers.support import PASSWORD, add_staff, agent, bearer, conversation_id, login
from tests.helpers.telegram import telegram_bot, telegram_settings
from tests.helpers.telegram_double import RecordingRequest, message_update, telegram_user
from tests.helpers.twilio_double import RecordingTwilioClient
from tests.helpers.waiting import eventually

ANNA_PHONE = "+46701112233"


# --- staff, tokens and roles -------------------------------------------------------------------


async def test_staff_are_added_by_admins_with_checked_fields(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    staff = await add_staff(admin, "lena@example.se", "support", "Lena")
    assert staff["role"] == "support" and "password" not in str(staff)
    good = {"email": "x@example.se", "name": "X", "role": "support", "password": PASSWORD}
    duplicate = {**good, "email": "LENA@example.se"}
    assert (await admin.post("/admin/staff", json=duplicate)).status_code == 409
    bad_role = await admin.post("/admin/staff", json={**good, "role": "boss"})
    assert bad_role.status_code == 422 and bad_role.json()["detail"][0]["loc"][-1] == "role"
    short = await admin.post("/admin/staff", json={**good, "password": "short"})
    assert short.status_code == 422 and short.json()["detail"][0]["loc"][-1] == "password"
    assert (await anonymous.post("/admin/staff", json=good)).status_code == 401


async def test_the_password_flow_gives_a_bearer_token_and_refuses_wrong_passwords(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    token = await login(anonymous, "lena@example.se")
    assert (await anonymous.get("/support/queue", headers=bearer(token))).status_code == 200
    wrong = await anonymous.post(
        "/auth/token", data={"username": "lena@example.se", "password": "not the password"}
    )
    assert wrong.status_code == 401
    unknown = await anonymous.post(
        "/auth/token", data={"username": "nobody@example.se", "password": PASSWORD}
    )
    assert unknown.status_code == 401


async def test_roles_are_enforced(admin: httpx.AsyncClient, anonymous: httpx.AsyncClient) -> None:
    support = await agent(admin, "lena@example.se", "support")
    operator = await agent(admin, "olof@example.se", "operator")
    # operators reach /admin with their token, support agents are forbidden, strangers not known
    assert (await anonymous.get("/admin/stations", headers=operator)).status_code == 200
    assert (await anonymous.get("/admin/stations", headers=support)).status_code == 403
    new = {"email": "x@example.se", "name": "X", "role": "operator", "password": PASSWORD}
    assert (await anonymous.post("/admin/staff", json=new, headers=support)).status_code == 403
    assert (await anonymous.get("/admin/stations")).status_code == 401
    assert (await anonymous.get("/admin/stations", headers=bearer("forged"))).status_code == 401
    # both roles work the queue; strangers (and the machine ADMIN_TOKEN) do not
    for headers in (support, operator):
        assert (await anonymous.get("/support/queue", headers=headers)).status_code == 200
    assert (await anonymous.get("/support/queue")).status_code == 401
    assert (await anonymous.get("/support/queue", headers=bearer("forged"))).status_code == 401
    assert (await admin.get("/support/queue")).status_code == 401


async def test_an_expired_or_foreign_token_is_401(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, app: FastAPI
) -> None:
    from backend.models import StaffUser

    staff = await add_staff(admin, "olof@example.se", "operator")
    async with app.state.sessions() as db:
        user = await db.get(StaffUser, staff["id"])
    assert user is not None
    expired = issue_token(SECRET_KEY, user, hours=-1)
    foreign = issue_token("another-key-0123456789abcdef0123456789", user, hours=1)
    for token in (expired, foreign):
        assert (await anonymous.get("/admin/stations", headers=bearer(token))).status_code == 401
        assert (await anonymous.get("/support/queue", headers=bearer(token))).status_code == 401
    assert (
        await anonymous.get("/admin/stations", headers=bearer(issue_token(SECRET_KEY, user, 1)))
    ).status_code == 200


def test_the_cli_adds_staff_with_the_password_from_stdin(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("ENVIRONMENT", "development")
    argv = ["staff", "add", "--email", "Lena@Example.se", "--name", "Lena", "--role", "support"]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*argv, "--password-stdin"]) == 0
    assert "lena@example.se (support)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main([*argv, "--password-stdin"]) == 1  # the email is taken
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    other = ["staff", "add", "--email", "b@example.se", "--name", "B", "--role", "operator"]
    assert main([*other, "--password-stdin"]) == 1
    assert "password" in capsys.readouterr().err


# --- the queue and a takeover on the console channel -------------------------------------------


async def queued_driver(app: FastAPI) -> ChatDriver:
    driver = chat_driver(app, phone=ANNA_PHONE, language_code="en", name="Anna")
    assert "in line" in text_of(await driver.command("support"))
    return driver


async def test_a_driver_who_asks_for_a_person_is_queued_with_context(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    driver = chat_driver(app, phone=ANNA_PHONE, language_code="en", name="Anna")
    await driver.say("hej")
    assert (await admin.get("/support/queue", headers=lena)).json() == []
    await driver.command("support")
    [item] = (await admin.get("/support/queue", headers=lena)).json()
    assert item["channel"] == "console" and item["address"] == ANNA_PHONE
    assert item["driver_name"] == "Anna" and item["assigned_to"] is None
    assert item["waiting_since"] is not None
    assert "in line" in item["last_message"]["text"]
    detail = await admin.get(f"/support/conversations/{item['conversation_id']}", headers=lena)
    body = detail.json()
    assert body["mode"] == "waiting" and body["channel"] == "console"
    context = body["context"]
    assert context["driver"]["name"] == "Anna" and context["driver"]["phone"] == ANNA_PHONE
    assert context["driver"]["billing"] and context["session"] is None
    assert any("in line" in turn for turn in context["recent_bot_turns"])
    assert [m["author"] for m in body["messages"]][:2] == ["driver", "bot"]
    assert (await admin.get("/support/conversations/999999", headers=lena)).status_code == 404


async def test_takeover_silences_the_bot_and_the_reply_reaches_the_driver(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    per = await agent(admin, "per@example.se")
    driver = await queued_driver(app)
    cid = await conversation_id(admin, lena, ANNA_PHONE)
    url = f"/support/conversations/{cid}"

    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200  # idempotent
    assert (await admin.post(f"{url}/claim", headers=per)).status_code == 409
    refused = await admin.post(f"{url}/messages", json={"text": "Hi"}, headers=per)
    assert refused.status_code == 403 and refused.json()["reason"] == "held_by_other"

    # the driver's free text is not answered by the bot while Lena holds the chat
    assert await driver.say("My car will not charge at the garage") == []
    sent = await admin.post(f"{url}/messages", json={"text": "Hi Anna, Lena here."}, headers=lena)
    assert sent.status_code == 201 and sent.json()["delivered"] is True
    assert [r.text for r in driver.inbox] == ["Hi Anna, Lena here."]

    # Lena's chat is hers to read, not Per's (issue #13)
    assert (await admin.get(url, headers=per)).status_code == 403
    body = (await admin.get(url, headers=lena)).json()
    assert body["mode"] == "agent" and body["assigned_to"] is not None
    said = [(m["author"], m["text"]) for m in body["messages"] if m["kind"] == "message"]
    assert ("driver", "My car will not charge at the garage") in said
    assert said[-1] == ("agent", "Hi Anna, Lena here.")
    assert body["messages"][-1]["staff_name"] == "Lena"
    assert not any(
        a == "bot"
        for a, _ in said[said.index(("driver", "My car will not charge at the garage")) :]
    )
    events = [m["text"] for m in body["messages"] if m["kind"] == "event"]
    assert events == [
        "Escalated: asked",
        "Lena claimed the conversation",
        "Lena claimed the conversation",
    ]
    [item] = (await admin.get("/support/queue", headers=per)).json()
    assert item["assigned_to"] == body["assigned_to"]

    # hand-back: only the holder releases; then the bot answers again
    assert (await admin.post(f"{url}/release", headers=per)).status_code == 403
    assert (await admin.post(f"{url}/release", headers=lena)).status_code == 200
    assert (await admin.get("/support/queue", headers=lena)).json() == []
    assert "Anna" in text_of(await driver.say("hi"))
    late = await admin.post(f"{url}/messages", json={"text": "one more"}, headers=lena)
    assert late.status_code == 403 and late.json()["reason"] == "not_in_queue"
    # Back with the bot, the transcript is no longer Lena's to read; an operator reads it.
    assert (await admin.get(url, headers=lena)).status_code == 403
    olof = await agent(admin, "olof@example.se", "operator")
    events = [m["text"] for m in (await admin.get(url, headers=olof)).json()["messages"]]
    assert "Lena released the conversation to the bot" in events


async def test_close_takes_the_chat_out_of_the_queue_and_is_recorded(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    lena = await agent(admin, "lena@example.se")
    per = await agent(admin, "per@example.se", "operator")
    driver = await queued_driver(app)
    cid = await conversation_id(admin, lena, ANNA_PHONE)
    url = f"/support/conversations/{cid}"
    assert (await admin.post(f"{url}/claim", headers=lena)).status_code == 200
    assert (await admin.post(f"{url}/close", headers=per)).status_code == 403  # Lena holds it
    closed = await admin.post(f"{url}/close", headers=lena)
    assert closed.status_code == 200 and closed.json()["closed"] is True
    body = (await admin.get(url, headers=per)).json()
    assert body["mode"] == "bot" and body["assigned_to"] is None
    assert body["messages"][-1]["text"] == "Lena closed the conversation"
    assert (await admin.get("/support/queue", headers=lena)).json() == []
    again = await admin.post(f"{url}/close", headers=per)  # with the bot: nothing to close
    assert again.status_code == 403 and "not in the support queue" in again.json()["detail"]
    assert (await admin.post("/support/conversations/999999/close", headers=per)).status_code == 404
    assert "Anna" in text_of(await driver.say("hi"))  # the bot is back
    assert (
        await admin.post("/support/conversations/999999/claim", headers=lena)
    ).status_code == 404


async def test_two_agents_claiming_at_once_have_exactly_one_winner(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    agents = [await agent(admin, f"agent{i}@example.se") for i in range(2)]
    driver = await queued_driver(app)
    cid = await conversation_id(admin, agents[0], ANNA_PHONE)
    for attempt in range(3):
        if attempt:  # released to the bot: claimable again only once she asks again
            await driver.command("support")
        claims = await asyncio.gather(
            *(admin.post(f"/support/conversations/{cid}/claim", headers=h) for h in agents)
        )
        assert sorted(r.status_code for r in claims) == [200, 409]
        winner = agents[[r.status_code for r in claims].index(200)]
        release = await admin.post(f"/support/conversations/{cid}/release", headers=winner)
        assert release.status_code == 200


# --- replies on the driver's own channel -------------------------------------------------------


async def test_an_agent_reply_reaches_an_sms_driver_through_twilio(
    settings: Settings,
) -> None:
    api = RecordingTwilioClient()
    async with twilio_app(sms_settings(settings), api) as twilio:
        http = twilio.live.http  # sends the admin token; staff headers replace it
        lena = await agent(http, "lena@example.se")
        assert "support" in (await twilio.text(EMMA, "SUPPORT") or "")
        cid = await conversation_id(http, lena, EMMA)
        url = f"/support/conversations/{cid}"
        assert (await http.post(f"{url}/claim", headers=lena)).status_code == 200
        assert await twilio.text(EMMA, "Laddaren svarar inte") is None  # the bot is quiet
        text = "Hej Emma – jag heter Lena och hjälper dig. Vilken laddare står du vid?"
        sent = await http.post(f"{url}/messages", json={"text": text}, headers=lena)
        assert sent.status_code == 201 and sent.json()["delivered"] is True
        body = await twilio.sent(EMMA, "jag heter Lena")
        assert body.startswith("Hej Emma - jag")  # SMS rendering: GSM-7 transliteration
        messages = (await http.get(url, headers=lena)).json()["messages"]
        assert ("driver", "Laddaren svarar inte") in [(m["author"], m["text"]) for m in messages]


async def _transcript(http: httpx.AsyncClient, url: str, staff: dict[str, str]) -> list[str]:
    return [m["text"] for m in (await http.get(url, headers=staff)).json()["messages"]]


async def test_an_agent_reply_reaches_a_telegram_driver(settings: Settings) -> None:
    anna = telegram_user(123_123_123, "Anna", "Lindqvist", "en")
    api = RecordingRequest(username="chargebot_test_bot")
    async with telegram_bot(telegram_settings(settings), api) as bot:
        http = bot.live.http
        lena = await agent(http, "lena@example.se")
        await bot.send(message_update(anna, "/support"))
        await bot.says(anna, "in line")
        cid = await conversation_id(http, lena, str(anna["id"]))
        url = f"/support/conversations/{cid}"
        assert (await http.post(f"{url}/claim", headers=lena)).status_code == 200
        before = len(api.messages(anna["id"]))
        await bot.send(message_update(anna, "The cable is stuck"))
        # Updates are handled after the webhook answers: the agent answers once it is there
        # (a message after her reply would be unanswered, and the release would say so).
        await eventually(
            lambda: _transcript(http, url, lena),
            lambda texts: "The cable is stuck" in texts,
        )
        sent = await http.post(f"{url}/messages", json={"text": "Lena here, on it."}, headers=lena)
        assert sent.status_code == 201
        reply = await bot.says(anna, "Lena here")
        assert reply["text"] == "Lena here, on it."
        assert len(api.messages(anna["id"])) == before + 1  # no bot answer to the free text
        assert (await http.post(f"{url}/release", headers=lena)).status_code == 200
        await bot.send(message_update(anna, "hi"))
        await bot.says(anna, "Hi Anna")
