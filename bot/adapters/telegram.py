"""Telegram: Bot API updates in, engine replies out, live statuses edited in place.

The adapter has three parts:

* parsing (`parse_update`): a python-telegram-bot `Update` becomes a channel-neutral `Inbound`;
  only private chats, new messages (commands, text, a shared location) and inline-button
  presses are understood; everything else is ignored without a reply;
* rendering (`render_markup`, `split_text`): a `Reply` becomes plain text (never a parse
  mode: texts contain user data) with an inline keyboard for choices and links, or a
  one-time "share location" keyboard;
* `TelegramChannel`: the PTB `Application` (webhook or polling), the handler that feeds the
  engine, the outbox sender for notifications and the live-status message ids.

Live statuses (a `Reply` with a `live_key`) are edited in place: the id of the message that
shows a chat's live status is kept in an in-memory LRU (`LiveMessages`). After a restart,
or on a second app process, the next update of a live status is therefore sent as a new
message instead of editing the old one; nothing worse happens.

Updates of one chat are handled one at a time and in order, and notifications to a chat wait
while the bot is answering that chat, so "charging has started" never overtakes "starting the
charger..." and a live update never races the /status message it should edit.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request, Response
from telegram import (
    BotCommand,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
    User,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseUpdateProcessor,
    ContextTypes,
    ExtBot,
    TypeHandler,
)
from telegram.request import BaseRequest

from backend.settings import Settings
from bot.engine import Engine
from bot.i18n import language_of
from bot.keyed_locks import KeyedLocks
from bot.messages import ChannelUser, Inbound, Reply
from bot.outbox import Outbox

log = logging.getLogger(__name__)

CHANNEL: Final = "telegram"
WEBHOOK_PATH: Final = "/telegram/webhook"
SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES: Final = ("message", "callback_query")
LOCATION_LABEL: Final = "Dela position / Share location"
MAX_TEXT: Final = 4000  # Telegram's limit is 4096 characters; leave room for counting quirks
MAX_CALLBACK_DATA: Final = 64  # bytes
LIVE_MESSAGES: Final = 4096  # (chat, live_key) pairs remembered
RETRY_FIRST: Final = 0.5  # seconds before retrying Telegram at startup; doubles up to RETRY_MAX
RETRY_MAX: Final = 300.0

# (command, Swedish description, English description); the order is the menu's.
COMMANDS: Final = (
    ("find", "Lediga laddare nära dig", "Free chargers near you"),
    ("status", "Hur laddningen går", "How your charging is going"),
    ("stop", "Avsluta din laddning", "End your charging"),
    ("history", "Dina laddningar och månadens summa", "Your sessions and this month's total"),
    ("prices", "Våra priser", "Our prices"),
    ("support", "Prata med en människa", "Talk to a person"),
    ("language", "Byt språk (English)", "Switch language (svenska)"),
    ("help", "Allt jag kan", "Everything I can do"),
)

_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?:\s+(.*))?$", re.DOTALL)
_APOLOGY = {
    "sv": "Något gick fel hos mig. Försök igen om en liten stund, eller skriv /support.",
    "en": "Something went wrong on my side. Please try again in a moment, or type /support.",
}


# --- parsing -------------------------------------------------------------------------------


def _channel_user(user: User | None) -> ChannelUser:
    if user is None:
        return ChannelUser()
    name = " ".join(part for part in (user.first_name, user.last_name) if part)
    return ChannelUser(
        telegram_user_id=user.id, name=name or None, language_code=user.language_code
    )


def parse_update(update: Update, bot_username: str | None = None) -> Inbound | None:
    """The Inbound for an update, or None for updates the bot does not answer.

    Only private chats are served: in a group, anyone could press another driver's buttons.
    """
    message_id = str(update.update_id)
    query = update.callback_query
    if query is not None:
        chat = query.message.chat if query.message is not None else None
        if chat is None or chat.type != Chat.PRIVATE or not query.data:
            return None
        return Inbound(
            CHANNEL,
            str(chat.id),
            choice=query.data,
            user=_channel_user(query.from_user),
            message_id=message_id,
        )
    message = update.message  # edited messages, channel posts etc. are other fields
    if message is None or message.chat.type != Chat.PRIVATE:
        return None
    if message.from_user is None or message.from_user.is_bot:
        return None
    address, user = str(message.chat.id), _channel_user(message.from_user)
    if message.location is not None:
        position = (message.location.latitude, message.location.longitude)
        return Inbound(CHANNEL, address, location=position, user=user, message_id=message_id)
    text = (message.text or "").strip()
    if not text:
        return None  # stickers, photos, voice, contacts, service messages...
    match = _COMMAND.match(text)
    if match is None:
        return Inbound(CHANNEL, address, text=text, user=user, message_id=message_id)
    command, addressee, args = match.groups()
    if addressee and bot_username and addressee.lower() != bot_username.lower():
        return None  # "/help@another_bot"
    return Inbound(
        CHANNEL,
        address,
        command=command.lower(),
        args=(args or "").strip(),
        user=user,
        message_id=message_id,
    )


# --- rendering -----------------------------------------------------------------------------


def _fits(payload: str) -> bool:
    return 0 < len(payload.encode("utf-8")) <= MAX_CALLBACK_DATA


def inline_markup(reply: Reply) -> InlineKeyboardMarkup | None:
    """Choices as callback buttons and links as URL buttons, one per row."""
    rows: list[list[InlineKeyboardButton]] = []
    for choice in reply.choices:
        if not _fits(choice.payload):
            log.error("choice payload %r does not fit Telegram's 64 bytes; dropped", choice.payload)
            continue
        rows.append([InlineKeyboardButton(choice.label, callback_data=choice.payload)])
    rows.extend([InlineKeyboardButton(link.label, url=link.url)] for link in reply.links)
    return InlineKeyboardMarkup(rows) if rows else None


def render_markup(reply: Reply) -> InlineKeyboardMarkup | ReplyKeyboardMarkup | None:
    """One keyboard per message: inline buttons win over the location request."""
    inline = inline_markup(reply)
    if inline is not None:
        return inline
    if reply.request_location:
        return ReplyKeyboardMarkup(
            [[KeyboardButton(LOCATION_LABEL, request_location=True)]],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    return None


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` characters, cut at line breaks where possible."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    if rest:
        pieces.append(rest)
    return pieces


# --- live statuses and per-chat order ------------------------------------------------------


@dataclass
class LiveMessage:
    message_id: int
    text: str


class LiveMessages:
    """(chat id, live_key) → the message showing it; least recently used entries go first."""

    def __init__(self, size: int = LIVE_MESSAGES) -> None:
        self._size = size
        self._items: OrderedDict[tuple[int, str], LiveMessage] = OrderedDict()

    def get(self, chat_id: int, key: str) -> LiveMessage | None:
        item = self._items.get((chat_id, key))
        if item is not None:
            self._items.move_to_end((chat_id, key))
        return item

    def put(self, chat_id: int, key: str, message_id: int, text: str) -> None:
        self._items[(chat_id, key)] = LiveMessage(message_id, text)
        self._items.move_to_end((chat_id, key))
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def forget(self, chat_id: int, key: str) -> None:
        self._items.pop((chat_id, key), None)


class ChatOrderedProcessor(BaseUpdateProcessor):
    """Different chats concurrently; the updates of one chat one after the other, in order."""

    def __init__(self, locks: KeyedLocks[int], max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._chat_locks = locks

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        async with self._chat_locks.hold(chat.id):
            await coroutine

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


# --- the channel ---------------------------------------------------------------------------


class TelegramChannel:
    """The bot on Telegram: receives updates, answers through the engine, sends notifications."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        outbox: Outbox,
        *,
        request: BaseRequest | None = None,
        retry_first: float = RETRY_FIRST,
    ) -> None:
        if not settings.telegram_bot_token:
            raise ValueError("TELEGRAM_BOT_TOKEN is empty")
        self.settings = settings
        self.mode = settings.telegram_mode
        self.webhook_url = f"{settings.public_base_url}{WEBHOOK_PATH}"
        self.webhook_secret = settings.telegram_webhook_secret
        if self.mode == "webhook" and not self.webhook_secret:
            # Only possible in development (check_secrets refuses it in production).
            self.webhook_secret = secrets.token_urlsafe(32)
            log.warning("TELEGRAM_WEBHOOK_SECRET is empty; using a random one for this process")
        self.username: str | None = settings.telegram_bot_username or None
        self.ready = asyncio.Event()  # the application processes updates
        self.registered = asyncio.Event()  # commands and webhook (or polling) are set up
        self._engine = engine
        self._outbox = outbox
        self._retry_first = retry_first
        self._locks: KeyedLocks[int] = KeyedLocks()  # one per chat
        self._live = LiveMessages()
        self._boot_task: asyncio.Task[None] | None = None
        self._stopped = False
        self.application = self._build(request)

    def _build(self, request: BaseRequest | None) -> Application[Any, Any, Any, Any, Any, Any]:
        builder: ApplicationBuilder[Any, Any, Any, Any, Any, Any] = (
            Application.builder()
            .token(self.settings.telegram_bot_token)
            .rate_limiter(AIORateLimiter(max_retries=2))
            .concurrent_updates(ChatOrderedProcessor(self._locks))
        )
        if self.settings.telegram_base_url:
            builder = builder.base_url(self.settings.telegram_base_url)
        if request is not None:
            builder = builder.request(request).get_updates_request(request)
        if self.mode == "webhook":
            builder = builder.updater(None)
        application = builder.build()
        application.add_handler(TypeHandler(Update, self._on_update))
        application.add_error_handler(self._on_error)
        return application

    @property
    def bot(self) -> ExtBot[Any]:
        bot: ExtBot[Any] = self.application.bot
        return bot

    # lifecycle

    async def start(self) -> None:
        """Register the outbox sender and connect to Telegram in the background.

        Startup never waits for Telegram and never fails because it is unreachable: the
        connection is retried with backoff, and the webhook answers 503 until it is up.
        """
        self._outbox.register(CHANNEL, self.deliver)
        self._boot_task = asyncio.create_task(self._boot(), name="telegram-boot")

    async def stop(self) -> None:
        self._stopped = True
        if self._boot_task is not None:
            self._boot_task.cancel()
            await asyncio.gather(self._boot_task, return_exceptions=True)
        application = self.application
        try:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()  # finishes the updates already accepted
            await application.shutdown()
            await application.bot.shutdown()
        except Exception:
            log.exception("stopping the Telegram application failed")

    async def _boot(self) -> None:
        try:
            await self._connect()
        except Exception:
            log.exception("starting the Telegram channel failed; it is off")

    async def _connect(self) -> None:
        if not await self._retrying("connect to Telegram", self.application.initialize):
            return
        bot_user = self.application.bot.bot
        if self.username and bot_user.username and self.username != bot_user.username:
            log.warning(
                "TELEGRAM_BOT_USERNAME is %s but the token belongs to @%s; QR codes and deep "
                "links use TELEGRAM_BOT_USERNAME",
                self.username,
                bot_user.username,
            )
        self.username = bot_user.username or self.username
        await self.application.start()
        self.ready.set()
        log.info("Telegram bot @%s started (%s mode)", self.username, self.mode)
        receive = self._set_webhook if self.mode == "webhook" else self._start_polling
        if not await self._retrying(f"set up the {self.mode}", receive):
            return
        await self._retrying("set the bot commands", self._set_commands)  # the menu: cosmetic
        self.registered.set()

    async def _retrying(self, what: str, step: Callable[[], Awaitable[Any]]) -> bool:
        """Run `step` until it succeeds, backing off while Telegram is unreachable."""
        delay = self._retry_first
        while True:
            try:
                await step()
                return True
            except InvalidToken:
                # PTB's message contains the token: never log it.
                log.error("Telegram rejected TELEGRAM_BOT_TOKEN; the Telegram channel is off")
                return False
            except BadRequest as exc:
                log.error("could not %s: Telegram said %s", what, exc.message)
                return False
            except TelegramError as exc:  # NetworkError, TimedOut, RetryAfter, ...
                log.warning("could not %s (%s); retrying in %.1f s", what, exc.message, delay)
            except Exception:
                log.exception("could not %s; the Telegram channel is off", what)
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _set_commands(self) -> None:
        swedish = [BotCommand(name, sv) for name, sv, _ in COMMANDS]
        english = [BotCommand(name, en) for name, _, en in COMMANDS]
        await self.bot.set_my_commands(swedish)
        await self.bot.set_my_commands(english, language_code="en")

    async def _set_webhook(self) -> None:
        await self.bot.set_webhook(
            url=self.webhook_url,
            secret_token=self.webhook_secret,
            allowed_updates=list(ALLOWED_UPDATES),
        )
        log.info("Telegram webhook set to %s", self.webhook_url)

    async def _start_polling(self) -> None:
        updater = self.application.updater
        assert updater is not None
        await updater.start_polling(allowed_updates=list(ALLOWED_UPDATES))

    # incoming

    @property
    def accepting(self) -> bool:
        return self.ready.is_set() and self.application.running and not self._stopped

    async def accept(self, update: Update) -> None:
        """An update from the webhook: queued, handled in the background in chat order."""
        await self.application.update_queue.put(update)

    async def _on_update(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            try:
                await self.bot.answer_callback_query(update.callback_query.id)
            except TelegramError as exc:
                log.warning("could not answer callback query: %s", exc)
        inbound = parse_update(update, self.username)
        if inbound is None:
            return
        try:
            replies = await self._engine.handle(inbound)
        except Exception:
            log.exception("the engine failed on Telegram update %s", update.update_id)
            replies = [Reply(_APOLOGY[language_of(inbound.user.language_code)])]
        await self._send(int(inbound.address), replies, edit_live=False)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error while handling Telegram update %r", update, exc_info=context.error)

    # outgoing

    async def deliver(self, address: str, replies: Sequence[Reply]) -> None:
        """The outbox sender: notifications, and live statuses edited in place."""
        if not self.ready.is_set() or self._stopped:
            log.warning("Telegram is not connected; %d notification(s) dropped", len(replies))
            return
        chat_id = int(address)
        async with self._locks.hold(chat_id):
            await self._send(chat_id, replies, edit_live=True)

    async def _send(self, chat_id: int, replies: Sequence[Reply], *, edit_live: bool) -> None:
        """Send (or edit) each reply in order; a failure is logged and ends the batch."""
        for reply in replies:
            try:
                if edit_live and reply.live_key and await self._edit_live(chat_id, reply):
                    continue
                message = await self._send_new(chat_id, reply)
            except Forbidden as exc:
                log.info("chat %s cannot be written to (%s)", chat_id, exc.message)
                return
            except TelegramError as exc:
                log.warning("sending to Telegram chat %s failed: %s", chat_id, exc.message)
                return
            if reply.live_key and message is not None:
                self._live.put(chat_id, reply.live_key, message.message_id, reply.text)

    async def _send_new(self, chat_id: int, reply: Reply) -> Message | None:
        pieces = split_text(reply.text)
        if not pieces:
            log.warning("empty reply to chat %s not sent", chat_id)
            return None
        message: Message | None = None
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            message = await self.bot.send_message(
                chat_id=chat_id, text=piece, reply_markup=render_markup(reply) if last else None
            )
        return message

    async def _edit_live(self, chat_id: int, reply: Reply) -> bool:
        """Edit the chat's message for this live key; False if a new message is needed."""
        assert reply.live_key is not None
        shown = self._live.get(chat_id, reply.live_key)
        if shown is None:
            return False
        if shown.text == reply.text:
            return True  # Telegram would answer "message is not modified"
        try:
            await self.bot.edit_message_text(
                text=reply.text[:MAX_TEXT],
                chat_id=chat_id,
                message_id=shown.message_id,
                reply_markup=inline_markup(reply),
            )
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return True
            # Deleted, too old to edit, ...: show the status as a new message instead.
            log.info("live message in chat %s not editable (%s)", chat_id, exc.message)
            self._live.forget(chat_id, reply.live_key)
            return False
        self._live.put(chat_id, reply.live_key, shown.message_id, reply.text)
        return True


# --- wiring into the app ---------------------------------------------------------------------


async def start_telegram(
    app: FastAPI, *, request: BaseRequest | None = None
) -> TelegramChannel | None:
    """Start the Telegram channel, or None when TELEGRAM_BOT_TOKEN is empty.

    `request` (or `app.state.telegram_request`, set before the lifespan starts) replaces the
    HTTP client PTB talks to the Bot API with; tests pass a recording double there.
    """
    settings: Settings = app.state.settings
    if not settings.telegram_bot_token:
        log.info("TELEGRAM_BOT_TOKEN is empty; the Telegram channel is off")
        return None
    engine = app.state.chat_engine
    if not isinstance(engine, Engine):
        raise TypeError("app.state.chat_engine must be the conversation engine")
    channel = TelegramChannel(
        settings,
        engine,
        app.state.outbox,
        request=request or getattr(app.state, "telegram_request", None),
    )
    await channel.start()
    return channel


async def stop_telegram(channel: TelegramChannel | None) -> None:
    if channel is not None:
        await channel.stop()


router = APIRouter()


@router.post(WEBHOOK_PATH, include_in_schema=False)
async def telegram_webhook(request: Request) -> Response:
    """Updates posted by Telegram; authenticated by the secret token set with setWebhook."""
    channel: TelegramChannel | None = getattr(request.app.state, "telegram", None)
    if channel is None or channel.mode != "webhook":
        return Response(status_code=404)
    given = request.headers.get(SECRET_HEADER, "").encode("utf-8")
    if not hmac.compare_digest(given, channel.webhook_secret.encode("utf-8")):
        return Response(status_code=403)
    if not channel.accepting:
        return Response(status_code=503)  # Telegram delivers it again later
    try:
        data = json.loads(await request.body())
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise ValueError("not an Update")
        update = Update.de_json(data, channel.bot)
    except Exception:
        return Response(status_code=400)
    await channel.accept(update)
    return Response(status_code=200)
