"""The conversation engine: one channel-neutral Inbound in, a list of Replies out."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import (
    Connector,
    Conversation,
    ConversationMode,
    Driver,
    EscalationReason,
    ProcessedEvent,
)
from backend.services.codes import normalize_code
from backend.services.places import fold
from bot.context import BotServices, Context
from bot.conversations import conversation_for, locked, record
from bot.flows import charging, faq, find, info, payment, start, support
from bot.messages import Inbound, Reply

log = logging.getLogger(__name__)

GREETINGS = {"hej", "hejsan", "hallo", "tjena", "tja", "god morgon", "hi", "hello", "hey"}
THANKS = {"tack", "tack sa mycket", "tusen tack", "thanks", "thank you", "thx"}


CHOICE_LABELS = "choice_labels"  # Conversation.data: the labels of the buttons last offered


def describe(inbound: Inbound, labels: dict[str, str] | None = None) -> str:
    """The inbound as a line of the transcript; a pressed button by its label when known."""
    if inbound.command:
        return f"/{inbound.command} {inbound.args}".strip()
    if inbound.choice:
        return f"[{(labels or {}).get(inbound.choice, inbound.choice)}]"  # SMS "1" too
    if inbound.location:
        return f"[location {inbound.location[0]:.5f}, {inbound.location[1]:.5f}]"
    return inbound.text or ""


class Engine:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], services: BotServices) -> None:
        self._sessions = sessions
        self.services = services

    async def handle(self, inbound: Inbound) -> list[Reply]:
        async with self._sessions() as db:
            conversation = await self._locked(db, await conversation_for(db, inbound))
            if inbound.message_id and not await self._first_time(db, inbound):
                return []  # a retried delivery of a message we already answered
            driver = await db.get(Driver, conversation.driver_id)
            assert driver is not None
            ctx = Context(db, inbound, conversation, driver, self.services)
            labels = (conversation.data or {}).get(CHOICE_LABELS) or {}
            await record(db, conversation, "in", "driver", describe(inbound, labels))
            replies = await self._dispatch(ctx)
            for reply in replies:
                await record(db, conversation, "out", "bot", reply.text)
            offered = {c.payload: c.label for reply in replies for c in reply.choices}
            if offered:  # so a later press reads as its label in the transcript
                conversation.data = {**(conversation.data or {}), CHOICE_LABELS: offered}
            conversation.version += 1
            conversation.updated_at = utcnow()
            await db.commit()
        return replies

    async def _locked(self, db: AsyncSession, conversation: Conversation) -> Conversation:
        """The conversation row, locked until commit and read fresh after the lock.

        Two messages of one driver may reach two processes at once: the second waits for the
        first's commit, so state, mode (the support queue) and `version` never lose an
        update. No retry is needed, so a flow's side effects (a remote start) never run twice.
        """
        return await locked(db, conversation)

    async def _first_time(self, db: AsyncSession, inbound: Inbound) -> bool:
        # Flushed, not committed: it lands with the answer, so a failed attempt can be retried.
        db.add(ProcessedEvent(source=inbound.channel, event_id=str(inbound.message_id)))
        try:
            await db.flush()
        except IntegrityError:
            await db.rollback()
            return False
        return True

    async def _dispatch(self, ctx: Context) -> list[Reply]:
        inbound = ctx.inbound
        if inbound.choice:
            return await self._on_choice(ctx, inbound.choice)
        if inbound.command:
            return await self._on_command(ctx, inbound.command, inbound.args)
        if inbound.location:
            return await find.near(ctx, *inbound.location)
        return await self._on_text(ctx, (inbound.text or "").strip())

    async def _on_command(self, ctx: Context, command: str, args: str) -> list[Reply]:
        if command == "start":
            return await start.show(ctx, args) if args.strip() else await info.welcome(ctx)
        if command == "find":
            return await find.by_text(ctx, args) if args.strip() else await find.ask(ctx)
        if command == "status":
            return await charging.status(ctx)
        if command == "stop":
            return await charging.stop(ctx)
        if command == "history":
            return await charging.history(ctx)
        if command == "prices":
            return await info.prices(ctx, args)
        if command == "support":
            return await support.request(ctx)
        if command == "card":
            return await payment.card(ctx)
        if command == "member":
            return await payment.member(ctx)
        if command == "language":
            return await info.language(ctx, args)
        return await info.help_text(ctx)

    async def _on_choice(self, ctx: Context, payload: str) -> list[Reply]:
        kind, _, value = payload.partition(":")
        if kind == "start" and value:
            return await start.confirm(ctx, value)
        if kind == "cancel":
            return await start.cancel(ctx)
        if kind == "faq" and value:
            return await faq.answer(ctx, value)
        if kind == "support" and value == "offer":
            return [faq.offer_support(ctx)]
        if kind == "support":
            faq_miss = value == support.AFTER_FAQ
            reason = EscalationReason.FAQ_MISS if faq_miss else EscalationReason.ASKED
            return await support.request(ctx, reason)
        if kind == "nothanks":
            return [ctx.reply(ctx.t("no_thanks_reply"))]
        if kind == "lang" and value in {"sv", "en"}:
            return await info.set_language(ctx, value)
        if kind == "find" and value:
            return await find.by_filter(ctx, value)
        return [ctx.reply(ctx.t("stale_choice"))]

    async def _on_text(self, ctx: Context, text: str) -> list[Reply]:
        if not text:
            return await info.help_text(ctx)
        mode = ctx.conversation.mode
        if mode == ConversationMode.AGENT:
            return []  # a person from support holds this chat; the bot stays quiet
        if mode == ConversationMode.WAITING:
            return [support.already(ctx)]
        if ctx.conversation.state == "find:place":
            return await find.by_text(ctx, text)
        small_talk = fold(text).rstrip("!. ")
        if small_talk in GREETINGS:
            return await info.welcome(ctx)
        if small_talk in THANKS:
            return [ctx.reply(ctx.t("greeting_thanks"))]
        code = normalize_code(text)
        if code is not None and await self._is_connector(ctx, code):
            return await start.show(ctx, code)
        return await faq.ask(ctx, text)

    async def _is_connector(self, ctx: Context, code: str) -> bool:
        found = await ctx.db.scalar(select(col(Connector.id)).where(col(Connector.code) == code))
        return found is not None
