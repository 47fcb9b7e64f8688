"""Quick actions of an agent holding a chat: stop the driver's charging, unlock the connector,
send an FAQ answer; through the support API, with a simulated charger on the served app."""

from __future__ import annotations

from backend.settings import Settings
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import PHONE, chat_driver, invoice_driver, wait_for_text
from tests.helpers.factories import make_driver
from tests.helpers.server import LiveServer
from tests.helpers.sms import ANNA, sms_settings, twilio_app
from tests.helpers.support import agent, conversation_id
from tests.helpers.twilio_double import RecordingTwilioClient
from tests.helpers.waiting import eventually


async def test_an_agent_stops_the_drivers_charging_and_unlocks_the_connector(
    live: LiveServer,
) -> None:
    http = live.http
    charger = await priced_charger(http)
    await invoice_driver(live)
    anna = chat_driver(live.app, phone=PHONE)
    code = charger["connectors"][0]["code"]
    lena = await agent(http, "lena@example.se")
    async with simulator(live, charger["id"], power_kw=22):
        await anna.say(code)
        await anna.press(f"start:{code}")
        await wait_for_text(anna, "Laddningen har startat")
        session_id = (await http.get("/admin/sessions")).json()[0]["id"]
        await anna.command("support")
        cid = await conversation_id(http, lena, PHONE)
        url = f"/support/conversations/{cid}"

        # Not held yet: no action.
        assert (await http.post(f"{url}/actions/stop", headers=lena)).status_code == 403
        assert (await http.post(f"{url}/claim", headers=lena)).status_code == 200

        stop = await http.post(f"{url}/actions/stop", headers=lena)
        assert stop.status_code == 200, stop.text
        assert stop.json()["outcome"] == "stopping"
        done = await eventually(
            lambda: session_of(http, session_id), lambda s: s["status"] == "completed"
        )
        assert done["energy_wh"] > 0
        await wait_for_text(anna, "Kvitto")  # the driver gets their receipt as usual

        again = await http.post(f"{url}/actions/stop", headers=lena)
        assert again.status_code == 409  # nothing is charging any more

        unlock = await http.post(f"{url}/actions/unlock", headers=lena)
        assert unlock.status_code == 200 and unlock.json()["outcome"] == "accepted"

        first = next(iter(live.app.state.chat_engine.services.faq.index.entries))
        sent = await http.post(f"{url}/actions/faq", json={"entry_id": first.id}, headers=lena)
        assert sent.status_code == 200 and sent.json()["outcome"] == "sent"
        assert any(first.answer("sv") in reply.text for reply in anna.inbox)

    transcript = (await http.get(url, headers=lena)).json()["messages"]
    events = [m["text"] for m in transcript if m["kind"] == "event"]
    assert f"Lena stopped session {session_id}: stopping" in events
    assert any(text.startswith(f"Lena unlocked {charger['id']} connector 1") for text in events)
    agent_lines = [m for m in transcript if m["author"] == "agent" and m["kind"] == "message"]
    assert agent_lines[-1]["text"] == first.answer("sv")
    assert agent_lines[-1]["staff_name"] == "Lena"


async def test_actions_need_the_conversation_held_by_the_caller(live: LiveServer) -> None:
    http = live.http
    lena = await agent(http, "lena@example.se")
    omar = await agent(http, "omar@example.se")
    await invoice_driver(live)
    anna = chat_driver(live.app, phone=PHONE)
    await anna.command("support")
    cid = await conversation_id(http, lena, PHONE)
    url = f"/support/conversations/{cid}"
    assert (await http.post(f"{url}/claim", headers=lena)).status_code == 200
    first = next(iter(live.app.state.chat_engine.services.faq.index.entries))
    for action, body in [("faq", {"entry_id": first.id}), ("stop", None), ("unlock", None)]:
        refused = await http.post(f"{url}/actions/{action}", json=body, headers=omar)
        assert refused.status_code == 403, (action, refused.text)
    no_session = await http.post(f"{url}/actions/unlock", headers=lena)
    assert no_session.status_code == 409 and "no session" in no_session.json()["detail"]
    no_stripe = await http.post(f"{url}/actions/card-link", headers=lena)
    assert no_stripe.status_code == 409 and "not configured" in no_stripe.json()["detail"]
    unknown = await http.post(f"{url}/actions/faq", json={"entry_id": "nope"}, headers=lena)
    assert unknown.status_code == 404
    blank = await http.post(f"{url}/messages", json={"text": " \n "}, headers=lena)
    assert blank.status_code == 422  # never an empty SMS or Telegram message


async def test_during_a_takeover_sms_numbers_and_ja_are_words_for_the_agent(
    settings: Settings,
) -> None:
    """A stale "1) Starta laddningen" or "ja" never starts a charge while a person holds the
    chat; MENY is text for them too; SUPPORT says a colleague is answering."""
    api = RecordingTwilioClient()
    async with twilio_app(sms_settings(settings, support_hours="Sat 03:00-04:00"), api) as sms:
        http = sms.live.http
        await make_driver(http, name="Anna", phone=ANNA, billing="invoice")
        charger = await priced_charger(http)
        code = charger["connectors"][0]["code"]
        lena = await agent(http, "lena@example.se")
        async with simulator(sms.live, charger["id"], power_kw=22):
            await sms.text(ANNA, "SUPPORT")
            offer = await sms.text(ANNA, f"LADDA {code}")  # commands work while waiting
            assert offer is not None and "1) Starta laddningen" in offer
            cid = await conversation_id(http, lena, ANNA)
            assert (await http.post(f"/support/conversations/{cid}/claim", headers=lena)).is_success
            for body in ["ja", "1", "meny"]:
                assert await sms.text(ANNA, body) is None, body  # the bot is quiet
            assert (await http.get("/admin/sessions")).json() == []  # nothing started
            held = await sms.text(ANNA, "SUPPORT")
            assert held is not None and "En kollega från supporten svarar dig här" in held
            # "ja", "1", "meny" got no answer: the agent sees them before handing back.
            seen = (await http.get(f"/support/conversations/{cid}", headers=lena)).json()
            # Since the chat was queued only a person answers: the bot's offer and its "a
            # colleague will answer" are no answer either.
            waiting = seen["context"]["unanswered"]
            assert waiting[-4:] == ["ja", "1", "meny", "SUPPORT"] and len(waiting) == 5
            assert "stängt" not in held  # no "we are closed" while a person is on it
            transcript = (await http.get(f"/support/conversations/{cid}", headers=lena)).json()
            said = [m["text"] for m in transcript["messages"] if m["author"] == "driver"]
            assert said[-4:-1] == ["ja", "1", "meny"]
            # Handed back, the old menu is gone: "1" is a question for the FAQ, not a start.
            release = f"/support/conversations/{cid}/release"
            refused = await http.post(release, headers=lena)
            assert refused.status_code == 409 and "'meny'" in refused.json()["detail"]
            released = await http.post(f"{release}?seen_unanswered=5", headers=lena)
            assert released.is_success and released.json()["driver_told"] is True
            await sms.live.app.state.sms.drain()
            told = sms.api.bodies_to(ANNA)
            assert told and "chargebot igen" in told[-1], told
            await sms.text(ANNA, "1")
            assert (await http.get("/admin/sessions")).json() == []


async def test_unlock_never_touches_a_connector_someone_else_is_charging_at(
    live: LiveServer,
) -> None:
    """Anna charged there last; Emma charges there now: unlocking would end Emma's charge."""
    http = live.http
    charger = await priced_charger(http)
    code = charger["connectors"][0]["code"]
    await invoice_driver(live)
    await invoice_driver(live, phone="+46731234567", language="en")
    anna = chat_driver(live.app, phone=PHONE)
    emma = chat_driver(live.app, phone="+46731234567", language_code="en", name="Emma")
    lena = await agent(http, "lena@example.se")
    async with simulator(live, charger["id"], power_kw=22):
        await anna.say(code)
        await anna.press(f"start:{code}")
        await wait_for_text(anna, "Laddningen har startat")
        await anna.command("stop")
        await wait_for_text(anna, "Kvitto")
        await emma.say(code)
        await emma.press(f"start:{code}")
        await wait_for_text(emma, "Charging has started")
        await anna.command("support")
        cid = await conversation_id(http, lena, PHONE)
        url = f"/support/conversations/{cid}"
        assert (await http.post(f"{url}/claim", headers=lena)).is_success
        refused = await http.post(f"{url}/actions/unlock", headers=lena)
        assert refused.status_code == 409, refused.text
        assert "another session is open" in refused.json()["detail"]
        sessions = (await http.get("/admin/sessions")).json()
        assert sorted(s["status"] for s in sessions) == ["charging", "completed"]
