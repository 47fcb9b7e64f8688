"""Drivers write the way people write: effects, not wording, on every channel.

Natural utterances (typos, no å/ä/ö, colloquial, polite, impatient) go through the signed
Twilio webhook against the OCPP simulator, and the checks are what happened: the right station
listed, kWh in the status, RemoteStopTransaction at the charger, the chat in the support queue.
The same utterances on Telegram and in the demo chat lead to the same action.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fastapi import FastAPI

from backend.models import Conversation
from backend.settings import Settings
from bot.i18n import t
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.chat import chat_driver, text_of
from tests.helpers.factories import make_driver
from tests.helpers.sms import ANNA, Twilio, sessions_of
from tests.helpers.telegram import TelegramBot, telegram_bot, telegram_settings
from tests.helpers.telegram_double import RecordingRequest, message_update, telegram_user
from tests.helpers.waiting import eventually


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[TelegramBot]:
    api = RecordingRequest(username="chargebot_test_bot")
    async with telegram_bot(telegram_settings(settings), api) as running:
        yield running


KWH = re.compile(r"\d+,\d+ kWh|\d+\.\d+ kWh")

# (language, how the driver starts, confirms, asks how it goes, stops), written as people do.
CHARGES = [
    ("sv", "jag vill ladda på {code} tack", "ja", "hur går det?", "kan du stoppa laddningen tack"),
    ("sv", "ladda {code}", "1", "e laddningen klar snart? status", "STOPP!!"),
    ("sv", "{code}", "ja", "hur mkt har jag laddat", "stopa laddningen nu"),
    ("en", "i want to charge at {code}", "1", "how is my charging going", "stop charging please"),
    ("en", "charge {code} pls", "1", "hows it going", "pls end my session"),
]


@pytest.mark.parametrize(("lang", "begin", "confirm", "progress", "finish"), CHARGES)
async def test_a_charge_by_sms_in_the_drivers_own_words(
    twilio: Twilio, lang: str, begin: str, confirm: str, progress: str, finish: str
) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice", language=lang)
    charger = await priced_charger(twilio.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(twilio.live, charger["id"], power_kw=22) as sim:
        offer = await twilio.text(ANNA, begin.format(code=code.lower()))
        assert offer is not None and "1)" in offer  # the price, then a confirmation
        await twilio.text(ANNA, confirm)
        sessions = await eventually(lambda: sessions_of(twilio), bool)
        session_id = sessions[0]["id"]
        await eventually(
            lambda: session_of(twilio.live.http, session_id),
            lambda s: s["status"] == "charging" and s["energy_wh"] > 0,
        )
        status = await twilio.text(ANNA, progress)
        assert status is not None and KWH.search(status), status
        await twilio.text(ANNA, finish)
        await eventually(
            lambda: _received(sim.received), lambda calls: "RemoteStopTransaction" in calls
        )
        done = await eventually(
            lambda: session_of(twilio.live.http, session_id), lambda s: s["status"] == "completed"
        )
    assert done["energy_wh"] > 0
    assert len(await sessions_of(twilio)) == 1


async def _received(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [action for action, _ in calls]


@pytest.mark.parametrize(
    "text",
    ["lediga laddare i sundbyberg", "nara sundbyberg", "where can i charge near sundbyberg?"],
)
async def test_find_by_sms_lists_the_station_of_the_named_place(twilio: Twilio, text: str) -> None:
    await priced_charger(twilio.live.http)  # Sundbyberg Centrum
    found = await twilio.text(ANNA, text)
    assert found is not None and "Sundbyberg Centrum" in found, found


@pytest.mark.parametrize(
    "text",
    ["i need to speak to someone", "agent", "kan jag få prata med en människa", "kundtjänst"],
)
async def test_asking_for_a_person_by_sms_queues_the_chat(twilio: Twilio, text: str) -> None:
    await twilio.text(ANNA, text)
    conversation = await _conversation(twilio.live.app, "sms", ANNA)
    assert conversation is not None and conversation.mode == "waiting"


async def test_a_bare_number_without_a_menu_is_explained_not_answered_from_the_faq(
    twilio: Twilio,
) -> None:
    answer = await twilio.text(ANNA, "2")
    assert answer is not None and "siffra" in answer and "lista" in answer, answer
    assert await sessions_of(twilio) == []


async def test_a_stop_that_is_only_likely_is_confirmed_first(twilio: Twilio) -> None:
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, billing="invoice", language="en")
    charger = await priced_charger(twilio.live.http)
    code = charger["connectors"][0]["code"]
    async with simulator(twilio.live, charger["id"], power_kw=22) as sim:
        await twilio.text(ANNA, f"CHARGE {code}")
        await twilio.text(ANNA, "1")
        session_id = (await eventually(lambda: sessions_of(twilio), bool))[0]["id"]
        await eventually(
            lambda: session_of(twilio.live.http, session_id), lambda s: s["status"] == "charging"
        )
        asked = await twilio.text(ANNA, "how do i stop the charging?")
        assert asked is not None and "1) Yes, end it" in asked, asked
        assert "RemoteStopTransaction" not in await _received(sim.received)
        await twilio.text(ANNA, "1")
        await eventually(
            lambda: _received(sim.received), lambda calls: "RemoteStopTransaction" in calls
        )


async def _conversation(app: FastAPI, channel: str, address: str) -> Conversation | None:
    from sqlmodel import col, select

    async with app.state.sessions() as db:
        found: Conversation | None = await db.scalar(
            select(Conversation).where(
                col(Conversation.channel) == channel, col(Conversation.address) == address
            )
        )
        return found


# --- the same utterance, the same action, on every channel ---------------------------------

Say = Callable[[str], Awaitable[str]]
SAME_EVERYWHERE = [
    # (text, language, what must follow: a fragment of the answer or the queue)
    ("hur går det?", "sv", t("sv", "status_none")),
    ("how is my charging going", "en", t("en", "status_none")),
    ("lediga laddare i sundbyberg", "sv", "Sundbyberg Centrum"),
    ("where can i charge near sundbyberg", "en", "Sundbyberg Centrum"),
    ("2", "sv", t("sv", "numbers_no_menu")[:40]),
    ("stop charging please", "en", "no charging in progress to end"),
    ("visa mina tidigare laddningar", "sv", t("sv", "history_none")),
    ("i need to speak to someone", "en", "queue"),
    ("kan jag få prata med en människa", "sv", "queue"),
    ("vad kostar det att ladda?", "sv", t("sv", "prices_intro")[:40]),
    ("how much per kwh?", "en", t("en", "prices_intro")[:40]),
    ("skriv på engelska tack", "sv", t("en", "language_set")),
    ("swedish please", "en", t("sv", "language_set")),
    ("hej hej", "sv", "chargebot"),
    ("hi there", "en", "chargebot"),
    ("tack så mycket!", "sv", t("sv", "greeting_thanks")),
    ("thank u so much", "en", t("en", "greeting_thanks")),
    ("my previous sessions pls", "en", t("en", "history_none")),
]


@pytest.mark.parametrize(("text", "lang", "expected"), SAME_EVERYWHERE)
async def test_the_demo_chat_acts_on_the_same_words(
    app: FastAPI, admin: Any, text: str, lang: str, expected: str
) -> None:
    await priced_charger(admin)
    driver = chat_driver(app, phone="+46709990000", language_code=lang)
    answer = text_of(await driver.say(text))
    await _check(app, "console", "+46709990000", answer, expected)


@pytest.mark.parametrize(("text", "lang", "expected"), SAME_EVERYWHERE)
async def test_sms_acts_on_the_same_words(
    twilio: Twilio, text: str, lang: str, expected: str
) -> None:
    await priced_charger(twilio.live.http)
    await make_driver(twilio.live.http, name="Anna", phone=ANNA, language=lang)
    answer = await twilio.text(ANNA, text) or ""
    await _check(twilio.live.app, "sms", ANNA, answer, expected)


@pytest.mark.parametrize(("text", "lang", "expected"), SAME_EVERYWHERE)
async def test_telegram_acts_on_the_same_words(
    bot: TelegramBot, text: str, lang: str, expected: str
) -> None:
    await priced_charger(bot.live.http)
    user = telegram_user(123_456_789, "Anna", "Berg", lang)
    await bot.send(message_update(user, text))
    answer = (await bot.reply(user, lambda m: True))["text"]
    await _check(bot.live.app, "telegram", str(user["id"]), answer, expected)


async def _check(app: FastAPI, channel: str, address: str, answer: str, expected: str) -> None:
    if expected == "queue":
        conversation = await _conversation(app, channel, address)
        assert conversation is not None and conversation.mode == "waiting", answer
    else:
        assert expected in answer, answer
