"""The chat uses what it knows: the open menu, the station being charged at, the channel."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from backend.demo import PROMPTS, _chat_lines
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import ChatDriver, chat_driver, payloads, text_of
from tests.helpers.factories import make_driver
from tests.helpers.server import LiveServer
from tests.helpers.sms import ANNA, Twilio
from tests.helpers.waiting import eventually

PHONE = "+46705551234"


async def charging(live: LiveServer, language: str = "sv") -> tuple[dict[str, Any], str]:
    """An invoice driver charging at Sundbyberg Centrum from the demo chat; (driver, code)."""
    await make_driver(live.http, name="Anna", phone=PHONE, billing="invoice", language=language)
    charger = await priced_charger(live.http)
    return charger, charger["connectors"][0]["code"]


async def test_asked_about_the_idle_fee_while_charging_the_answer_names_this_station(
    live: LiveServer,
) -> None:
    charger, code = await charging(live)
    anna = chat_driver(live.app, phone=PHONE)
    general = text_of(await anna.say("vad är blockeringsavgiften?"))
    assert "Sundbyberg" not in general  # nothing charging: the general answer only
    async with simulator(live, str(charger["id"]), power_kw=22):
        await start_and_wait(live, anna, code)
        here = text_of(await anna.say("vad kostar det att stå kvar när bilen är full?"))
    assert "Här vid Sundbyberg Centrum: 15 min" in here and "2,00 kr per minut" in here, here


async def start_and_wait(live: LiveServer, anna: ChatDriver, code: str) -> None:
    """Confirm the start at `code` and wait until the session is charging."""
    await anna.say(code)
    await anna.press(f"start:{code}")
    sessions = await eventually(lambda: _sessions(live), bool)
    await eventually(
        lambda: session_of(live.http, sessions[0]["id"]), lambda s: s["status"] == "charging"
    )


async def _sessions(live: LiveServer) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = (await live.http.get("/admin/sessions")).json()
    return sessions


async def test_a_number_answers_the_open_menu_only(app: FastAPI) -> None:
    anna = chat_driver(app, phone=PHONE)
    choose = await anna.command("language")
    assert payloads(choose) == ["lang:sv", "lang:en"]
    assert "1-2" in text_of(await anna.say("7"))  # out of range: the menu stays open
    assert "English" in text_of(await anna.say("2"))
    later = text_of(await anna.say("2"))  # the menu closed with the answer
    assert "there is none open now" in later


async def test_yes_and_no_answer_the_question_asked_last(app: FastAPI, admin: object) -> None:
    anna = chat_driver(app, phone=PHONE)
    assert "Vad kan jag hjälpa dig med" in text_of(await anna.say("ja"))  # nothing was asked
    assert "Okej" in text_of(await anna.say("nej tack"))


async def test_the_sms_greeting_offers_no_location_sharing(twilio: Twilio) -> None:
    hello = await twilio.text(ANNA, "Hej!")
    assert hello is not None and "position" not in hello and "NÄRA" in hello, hello


async def test_after_stop_the_number_gets_nothing_until_start(twilio: Twilio) -> None:
    assert await twilio.text(ANNA, "status") is not None
    assert await twilio.text(ANNA, "STOP") is None
    assert await twilio.text(ANNA, "status") is None  # opted out: Twilio would refuse it
    assert await twilio.text(ANNA, "START") is None  # Twilio's own keyword: Twilio answers
    assert await twilio.text(ANNA, "status") is not None  # opted back in


async def test_sms_keywords_are_recorded_as_the_driver_wrote_them(
    twilio: Twilio,
) -> None:
    await twilio.text(ANNA, "SUPPORT")
    async with twilio.live.app.state.sessions() as db:
        from sqlmodel import col, select

        from backend.models import Message

        said = (await db.scalars(select(Message.text).where(col(Message.author) == "driver"))).all()
    assert said == ["SUPPORT"]


def test_the_demo_chat_speaks_the_drivers_language_and_says_who_it_is() -> None:
    assert PROMPTS == {"sv": "du> ", "en": "you> "}
    sms = " ".join(_chat_lines(True, "+46701234567", False))
    assert "SMS" in sms and "+46701234567" in sms and "invoice" not in sms
    walk_in = " ".join(_chat_lines(True, None, True))
    assert "pays per session" in walk_in and "invoice" not in walk_in
    assert "invoice account" in " ".join(_chat_lines(True, None, False))


def test_one_numbered_choice_by_sms_says_reply_1_not_1_to_1() -> None:
    from bot.adapters.sms import render
    from bot.messages import Choice, Reply

    text, payloads = render([Reply("Bara en typ.", (Choice("Alla typer", "find:all"),))], "sv")
    assert text.endswith("1) Alla typer\n\nSvara 1.") and payloads == ["find:all"]


async def test_a_late_ja_after_another_message_starts_nothing(live: LiveServer) -> None:
    """A start offer, then something else, then "ja": the offer was closed by then."""
    charger, code = await charging(live)
    anna = chat_driver(live.app, phone=PHONE)
    async with simulator(live, str(charger["id"]), power_kw=22):
        offer = await anna.say(code)
        assert f"start:{code}" in payloads(offer)
        await anna.say("hur går det?")  # another message closes the offer
        assert "Vad kan jag hjälpa dig med" in text_of(await anna.say("ja"))
        assert await _sessions(live) == []
        await anna.say(code)
        assert "Startar laddaren" in text_of(await anna.say("ja"))  # while open, it confirms


async def test_asked_the_price_while_charging_the_answer_is_this_stations(
    live: LiveServer,
) -> None:
    charger, code = await charging(live)
    anna = chat_driver(live.app, phone=PHONE)
    async with simulator(live, str(charger["id"]), power_kw=22):
        await start_and_wait(live, anna, code)
        here = text_of(await anna.say("vad kostar det?"))
    assert "Sundbyberg Centrum" in here and "Energi: 4,50 kr per kWh" in here, here


async def test_prices_of_a_station_or_town_by_name(live: LiveServer) -> None:
    await priced_charger(live.http)
    anna = chat_driver(live.app, phone=PHONE)
    by_name = text_of(await anna.say("PRIS Sundbyberg Centrum"))
    assert by_name.startswith("Sundbyberg Centrum") and "4,50 kr per kWh" in by_name
    unknown = text_of(await anna.say("PRIS Kiruna"))
    assert "Kiruna" in unknown and "station" in unknown
    general = text_of(await anna.say("vad kostar det att ladda?"))
    assert "Just nu: 4,50 kr per kWh." in general  # one price, not "4,50 till 4,50"


async def test_after_stop_an_sms_still_acts_but_sends_nothing(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice")
    assert await twilio.text(ANNA, "hej") is not None
    assert await twilio.text(ANNA, "STOP") is None
    assert await twilio.text(ANNA, "SUPPORT") is None  # no answer: Twilio would refuse it
    async with twilio.live.app.state.sessions() as db:
        from sqlmodel import col, select

        from backend.models import Conversation

        conversation = await db.scalar(
            select(Conversation).where(col(Conversation.address) == ANNA)
        )
    assert conversation is not None and conversation.mode == "waiting"  # but it was heard
