"""Telegram end to end: real Update JSON posted to the real webhook of a served app.

The only double is at the network boundary to Telegram: `RecordingRequest`, the HTTP layer
python-telegram-bot sends Bot API calls through. Chargers are the OCPP simulator on real
WebSockets; drivers and stations are created through the admin API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from telegram import InlineKeyboardMarkup, ReplyKeyboardMarkup, Update

from backend.settings import Settings
from bot.adapters.telegram import (
    COMMANDS,
    LOCATION_LABEL,
    SECRET_HEADER,
    parse_update,
    render_markup,
    split_text,
)
from bot.messages import ChannelUser, Choice, Inbound, Link, Reply
from tests.helpers.charging import priced_charger, session_of, simulator
from tests.helpers.factories import make_driver
from tests.helpers.telegram import ANNA, SECRET, TelegramBot, telegram_bot, telegram_settings
from tests.helpers.telegram_double import (
    RecordingRequest,
    callback_update,
    location_update,
    message_update,
    telegram_user,
)
from tests.helpers.waiting import background_work_done, eventually

ERIK = telegram_user(444_555_666, "Erik", "Svensson", "sv")
JOHN = telegram_user(777_888_999, "John", "Smith", "en-GB")


@pytest.fixture
def api() -> RecordingRequest:
    return RecordingRequest(username="chargebot_test_bot")


@pytest.fixture
async def bot(settings: Settings, api: RecordingRequest) -> AsyncIterator[TelegramBot]:
    async with telegram_bot(telegram_settings(settings), api) as running:
        yield running


async def charging_driver(bot: TelegramBot, user: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """An invoice driver linked to `user`, and a priced charger's first connector code."""
    await make_driver(
        bot.live.http,
        name=f"{user['first_name']} {user.get('last_name', '')}".strip(),
        telegram_user_id=user["id"],
        billing="invoice",
        language="en",
    )
    charger = await priced_charger(bot.live.http)
    return charger, charger["connectors"][0]["code"]


async def start_charging(bot: TelegramBot, user: dict[str, Any], code: str) -> dict[str, Any]:
    """Deep link, press "Start charging", wait for the notification; the session."""
    await bot.send(message_update(user, f"/start {code}"))
    offer = await bot.reply(user, lambda m: "reply_markup" in m)
    await bot.send(callback_update(user, f"start:{code}", offer))
    await bot.says(user, "Charging has started")
    sessions = (await bot.live.http.get("/admin/sessions")).json()
    session: dict[str, Any] = await eventually(
        lambda: session_of(bot.live.http, sessions[0]["id"]), lambda s: s["status"] == "charging"
    )
    return session


# --- the webhook ---------------------------------------------------------------------------


async def test_a_wrong_or_missing_secret_is_403_and_nothing_is_processed(bot: TelegramBot) -> None:
    wrong = await bot.post(message_update(ERIK, "/start"), secret="not-the-secret")
    missing = await bot.post(message_update(ERIK, "/start"), secret=None)
    assert (wrong.status_code, missing.status_code) == (403, 403)
    await bot.send(message_update(ERIK, "/help"))  # the chat's next update: a barrier
    await bot.says(ERIK, "/status")
    assert len(bot.api.texts(ERIK["id"])) == 1


async def test_malformed_json_is_400(bot: TelegramBot) -> None:
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    for body in (b"{not json", b"[]", b'{"message": {}}'):
        response = await bot.telegram.post("/telegram/webhook", content=body, headers=headers)
        assert response.status_code == 400, body


async def test_the_webhook_is_404_when_telegram_is_not_configured(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post(
        "/telegram/webhook", json=message_update(ERIK, "/start"), headers={SECRET_HEADER: ""}
    )
    assert response.status_code == 404


async def test_commands_and_webhook_are_registered_at_start(bot: TelegramBot) -> None:
    assert bot.api.calls[0].method == "getMe"
    swedish, english = bot.api.of("setMyCommands")
    names = [name for name, _, _ in COMMANDS]
    assert [c["command"] for c in swedish["commands"]] == names
    assert "language_code" not in swedish  # the default: Swedish
    assert english["language_code"] == "en"
    assert [c["command"] for c in english["commands"]] == names
    descriptions = {c["command"]: c["description"] for c in english["commands"]}
    assert descriptions["find"] == "Free chargers near you"
    [webhook] = bot.api.of("setWebhook")
    assert webhook == {
        "url": "https://chargebot.example.se/telegram/webhook",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }


# --- conversations -------------------------------------------------------------------------


async def test_start_without_payload_welcomes_in_the_users_language(bot: TelegramBot) -> None:
    await bot.send(message_update(ERIK, "/start"))
    await bot.send(message_update(JOHN, "/start"))
    swedish = await bot.says(ERIK, "Hej Erik!")
    english = await bot.says(JOHN, "Hi John!")
    [erik] = bot.api.sent(ERIK["id"])
    assert "parse_mode" not in erik
    assert erik["reply_markup"] == {
        "keyboard": [[{"text": LOCATION_LABEL, "request_location": True}]],
        "resize_keyboard": True,
        "one_time_keyboard": True,
    }
    assert swedish["chat"]["id"] == ERIK["id"] and english["chat"]["id"] == JOHN["id"]


async def test_a_deep_link_shows_the_price_and_the_button_starts_the_charge(
    bot: TelegramBot,
) -> None:
    charger, code = await charging_driver(bot, ANNA)
    async with simulator(bot.live, charger["id"]) as sim:
        await bot.send(message_update(ANNA, f"/start {code}"))
        offer = await bot.reply(ANNA, lambda m: "reply_markup" in m)
        assert "Energy: 4.50 kr per kWh" in offer["text"]
        assert "Start fee: 5.00 kr" in offer["text"]
        buttons = [row[0] for row in offer["reply_markup"]["inline_keyboard"]]
        assert buttons[0] == {"text": "Start charging", "callback_data": f"start:{code}"}
        assert buttons[1]["callback_data"] == "cancel"

        press = callback_update(ANNA, f"start:{code}", offer)
        await bot.send(press)
        started = await bot.says(ANNA, "Charging has started at Sundbyberg Centrum")
        starting = await bot.says(ANNA, "Starting the charger")
        assert starting["message_id"] < started["message_id"]  # in the order they happened
        assert [r for r in sim.received if r[0] == "RemoteStartTransaction"]
        assert 1 in sim.transactions
    answered = bot.api.of("answerCallbackQuery")
    assert answered == [{"callback_query_id": press["callback_query"]["id"]}]


async def test_a_shared_location_lists_the_nearest_stations(bot: TelegramBot) -> None:
    await priced_charger(bot.live.http)
    await bot.send(location_update(JOHN, 59.3610, 17.9700))
    listing = await bot.says(JOHN, "Sundbyberg Centrum")
    assert "Landsvägen 48" in listing["text"]
    filters = [row[0]["callback_data"] for row in listing["reply_markup"]["inline_keyboard"]]
    assert filters == ["find:ccs", "find:chademo"]


async def test_live_status_is_edited_in_place(bot: TelegramBot) -> None:
    charger, code = await charging_driver(bot, ANNA)
    chat = ANNA["id"]
    async with simulator(bot.live, charger["id"], power_kw=22):
        await start_charging(bot, ANNA, code)
        await bot.send(message_update(ANNA, "/status"))
        status = await bot.says(ANNA, "Cost so far")
        sent_before = len(bot.api.sent(chat))

        def edits_of(message_id: int) -> Callable[[], Any]:
            async def probe() -> list[dict[str, Any]]:
                return [e for e in bot.api.edits(chat) if e["message_id"] == message_id]

            return probe

        edits = await eventually(edits_of(status["message_id"]), lambda e: len(e) >= 3)
        assert all("Cost so far" in e["text"] for e in edits)
        assert len({e["text"] for e in edits}) == len(edits)  # no edit repeats the text
        assert len(bot.api.sent(chat)) == sent_before  # edits, not new messages

        # Telegram's "message is not modified" is no reason for a new message...
        bot.api.fail("editMessageText", 400, "Bad Request: message is not modified")
        count = len(edits)
        await eventually(edits_of(status["message_id"]), lambda e: len(e) >= count + 2)
        assert len(bot.api.sent(chat)) == sent_before

        # ...but a message that is gone is: the status continues in a new one.
        bot.api.fail("editMessageText", 400, "Bad Request: message to edit not found")
        fresh = await bot.reply(
            ANNA, lambda m: "Cost so far" in m["text"] and m["message_id"] > status["message_id"]
        )
        await eventually(edits_of(fresh["message_id"]), lambda e: len(e) >= 2)
    shown = {status["message_id"], fresh["message_id"]}
    assert all(e["message_id"] in shown for e in bot.api.edits(chat))


async def test_a_stranger_cannot_stop_someone_elses_charging(bot: TelegramBot) -> None:
    charger, code = await charging_driver(bot, ANNA)
    async with simulator(bot.live, charger["id"]) as sim:
        session = await start_charging(bot, ANNA, code)
        await bot.send(message_update(JOHN, "/stop"))
        await bot.says(JOHN, "You have no charging in progress")
        await background_work_done(bot.live.app)
        assert (await session_of(bot.live.http, session["id"]))["status"] == "charging"
        assert not [r for r in sim.received if r[0] == "RemoteStopTransaction"]
        assert 1 in sim.transactions


async def test_a_retried_update_is_processed_once(bot: TelegramBot) -> None:
    update = message_update(ERIK, "/start")
    first, retry = await bot.post(update), await bot.post(update)
    assert (first.status_code, retry.status_code) == (200, 200)
    await bot.send(message_update(ERIK, "/help"))
    await bot.says(ERIK, "/status")
    assert [t.startswith("Hej Erik!") for t in bot.api.texts(ERIK["id"])] == [True, False]


async def test_edited_messages_channel_posts_and_stickers_get_no_reply(bot: TelegramBot) -> None:
    ignored = [
        message_update(ERIK, "/start", field_name="edited_message", edit_date=1),
        message_update(
            ERIK,
            sticker={
                "file_id": "CAACAgIAAxkBAAEB",
                "file_unique_id": "AgADBAADwDZPEw",
                "type": "regular",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
            },
        ),
        {
            "update_id": 900_000_001,
            "channel_post": {
                "message_id": 5,
                "chat": {"id": -1001234567890, "type": "channel", "title": "Laddnytt"},
                "date": 1_700_000_000,
                "text": "/start",
            },
        },
    ]
    for update in ignored:
        await bot.send(update)
    await bot.send(message_update(ERIK, "/help"))
    await bot.says(ERIK, "/status")
    assert len(bot.api.texts()) == 1


# --- Telegram unreachable ------------------------------------------------------------------


async def test_a_failed_send_is_logged_and_the_next_message_is_answered(
    bot: TelegramBot, caplog: pytest.LogCaptureFixture
) -> None:
    bot.api.fail("sendMessage", None, "connection refused")
    await bot.send(message_update(ERIK, "/start"))
    await bot.send(message_update(ERIK, "/help"))
    await bot.says(ERIK, "/status")
    assert bot.api.texts(ERIK["id"])[0].startswith("Hej Erik!")  # tried, and failed
    assert len(bot.api.messages(ERIK["id"])) == 1
    assert "sending to Telegram chat" in caplog.text


async def test_the_app_starts_while_telegram_is_unreachable_and_connects_later(
    settings: Settings, api: RecordingRequest
) -> None:
    api.fail("getMe", None, "connection refused", times=2)
    async with telegram_bot(telegram_settings(settings), api, wait_registered=False) as bot:
        assert (await bot.live.http.get("/healthz")).status_code == 200
        early = await bot.post(message_update(ERIK, "/start"))
        assert early.status_code in {200, 503}  # 503: Telegram sends it again later
        await asyncio.wait_for(bot.channel.registered.wait(), 10)
        assert [c.method for c in api.calls[:3]] == ["getMe", "getMe", "getMe"]
        await bot.send(message_update(ERIK, "/start"))
        await bot.says(ERIK, "Hej Erik!")


async def test_polling_mode_answers_updates_from_get_updates(
    settings: Settings, api: RecordingRequest
) -> None:
    async with telegram_bot(telegram_settings(settings, telegram_mode="polling"), api) as bot:
        assert api.of("deleteWebhook") and not api.of("setWebhook")
        api.push_update(message_update(JOHN, "/start"))
        await bot.says(JOHN, "Hi John!")
        assert (await bot.post(message_update(JOHN, "/start"))).status_code == 404


# --- parsing and rendering (no server) ------------------------------------------------------


def _parse(data: dict[str, Any]) -> Inbound | None:
    return parse_update(Update.de_json(data, None), "chargebot_test_bot")


def test_commands_are_parsed_with_args_and_the_bot_name_stripped() -> None:
    deep_link = _parse(message_update(ANNA, "/start K7P3Q", update_id=42))
    assert deep_link == Inbound(
        "telegram",
        str(ANNA["id"]),
        command="start",
        args="K7P3Q",
        user=ChannelUser(telegram_user_id=ANNA["id"], name="Anna Lindqvist", language_code="en"),
        message_id="42",
    )
    named = _parse(message_update(ANNA, "/Status@ChargeBot_Test_Bot"))
    assert named is not None and (named.command, named.args) == ("status", "")
    assert _parse(message_update(ANNA, "/status@some_other_bot")) is None
    menu = _parse(message_update(ANNA, "/menu"))
    assert menu is not None and menu.command == "menu"
    text = _parse(message_update(ANNA, "  hur mycket kostar det?  "))
    assert text is not None and (text.text, text.command) == ("hur mycket kostar det?", None)


def test_locations_and_button_presses_are_parsed() -> None:
    shared = _parse(location_update(ERIK, 59.3293, 18.0686))
    assert shared is not None and shared.location == (59.3293, 18.0686)
    press = _parse(callback_update(ERIK, "start:K7P3Q"))
    assert press is not None
    assert (press.choice, press.address, press.user.telegram_user_id) == (
        "start:K7P3Q",
        str(ERIK["id"]),
        ERIK["id"],
    )


def test_group_chats_are_ignored() -> None:
    update = message_update(ERIK, "/stop")
    update["message"]["chat"] = {"id": -100200300, "type": "supergroup", "title": "Garaget"}
    assert _parse(update) is None
    press = callback_update(ERIK, "start:K7P3Q")
    press["callback_query"]["message"]["chat"] = {"id": -100200300, "type": "group", "title": "G"}
    assert _parse(press) is None


def test_choices_become_inline_buttons_and_location_a_reply_keyboard() -> None:
    too_long = "faq:" + "x" * 61
    markup = render_markup(
        Reply(
            "Pick one",
            choices=(Choice("Start", "start:K7P3Q"), Choice("Too long", too_long)),
            links=(Link("Kvitto", "https://chargebot.example.se/r/1"),),
            request_location=True,
        )
    )
    assert isinstance(markup, InlineKeyboardMarkup)
    assert markup.to_dict()["inline_keyboard"] == [
        [{"text": "Start", "callback_data": "start:K7P3Q"}],
        [{"text": "Kvitto", "url": "https://chargebot.example.se/r/1"}],
    ]
    keyboard = render_markup(Reply("Where are you?", request_location=True))
    assert isinstance(keyboard, ReplyKeyboardMarkup)
    assert keyboard.one_time_keyboard and keyboard.resize_keyboard
    assert render_markup(Reply("Plain")) is None


def test_long_texts_are_split_at_line_breaks() -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(100))
    pieces = split_text(text)
    assert len(pieces) == 3
    assert all(len(p) <= 4000 for p in pieces)
    assert "\n".join(pieces) == text
