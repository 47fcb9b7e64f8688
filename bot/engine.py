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
from bot.context import BotServices, Context
from bot.conversations import conversation_for, locked, record
from bot.flows import faq, find, info, intents, reserve, start, support
from bot.i18n import choose
from bot.messages import Inbound, Reply
from bot.understanding import Understanding

# Telegram's commands (and the demo chat's): each is an intent, certain.
COMMANDS = {
    "find": "find",
    "start": "start",
    "status": "status",
    "stop": "stop",
    "history": "history",
    "prices": "prices",
    "support": "support",
    "card": "card",
    "member": "member",
    "language": "language",
    "help": "help",
    "menu": "help",
    "reserve": "reserve",
    "unreserve": "unreserve",
    "queue": "queue",
    "leavequeue": "leave_queue",
}

log = logging.getLogger(__name__)

CHOICE_LABELS = "choice_labels"  # Conversation.data: the labels of the buttons last offered
# Conversation.data: the payloads a typed number (or "ja") answers now
OPEN_CHOICES = intents.OPEN_CHOICES
# Typed while waiting in the support queue, these still act; any other text is for the agent.
WHILE_WAITING = frozenset({"start", "stop", "status", "yes", "no"})
# Typed while an agent holds the chat, certain commands still act; the rest is for the agent.
WHILE_HELD = frozenset({"start", "stop", "status", "support", "find", "prices", "history"})
CODE_READINGS = frozenset({None, "start", "prices"})  # readings a code in the message decides


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
            data = dict(conversation.data or {})
            if offered:  # so a later press reads as its label in the transcript
                data[CHOICE_LABELS] = offered
            # A menu is open until the driver's next message: then numbers answer it.
            if not ctx.data.get("keep_menu"):
                data[OPEN_CHOICES] = list(offered)
            conversation.data = data
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
        if command == "start" and not args.strip():
            return await info.welcome(ctx)  # /start from Telegram's "Start" button
        intent = COMMANDS.get(command, "help")
        return await self._act(ctx, Understanding(intent, args.strip(), certain=True))

    async def _on_choice(self, ctx: Context, payload: str) -> list[Reply]:
        kind, _, value = payload.partition(":")
        if kind == "do" and value in intents.HANDLERS:
            return await self._act(ctx, Understanding(value, certain=True))
        if kind == "start" and value:
            return await start.confirm(ctx, value)
        if kind == "reserve" and value:
            return await reserve.reserve(ctx, value)
        if kind == "queue" and value:
            return await reserve.queue(ctx, value)
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
        understood = ctx.services.intents.understand(text)
        if mode == ConversationMode.AGENT:
            # A person holds this chat: the bot stays quiet, except for a clear command (a
            # yes, a number or MENY are words for the agent, never a stale menu's answer).
            if understood.certain and understood.intent in WHILE_HELD:
                return await self._act(ctx, understood)
            return []
        if understood.number is not None:
            return await self._on_number(ctx, understood.number)
        if understood.codes and (understood.alone or understood.intent in CODE_READINGS):
            code = await self._known_code(ctx, understood.codes)
            if code is not None:
                if understood.intent == "prices" and not understood.alone:
                    return await info.prices(ctx, code)
                return await start.show(ctx, code)
        if mode == ConversationMode.WAITING:
            if understood.intent in WHILE_WAITING and (understood.certain or understood.codes):
                return await self._act(ctx, understood)
            return [support.already(ctx)]
        if ctx.conversation.state == "find:place":  # answers the bot's "which place?" once
            ctx.conversation.state = None
            if not understood.certain and ctx.services.faq.match(text, ctx.lang).kind != "answer":
                return await find.by_text(ctx, text)
        if understood.intent is None:
            if understood.alone and any(char.isdigit() for char in understood.codes[0]):
                # "ZZ9ZZ": a code no connector has (a typo, a sticker of another network)
                return [ctx.reply(ctx.t("unknown_code", code=understood.codes[0]))]
            return await faq.ask(ctx, text)
        return await self._decide(ctx, understood, text)

    async def _decide(self, ctx: Context, understood: Understanding, text: str) -> list[Reply]:
        """A certain reading acts; a likely one is weighed against the FAQ and the chat."""
        if understood.certain:
            if understood.alternatives:
                return [intents.offer(ctx, (understood.intent or "", *understood.alternatives))]
            return await self._act(ctx, understood)
        intent = ctx.services.intents.intents[understood.intent or ""]
        if intent.action:
            return await intents.confirm_or_answer(ctx, understood, text)
        answer = ctx.services.faq.match(text, ctx.lang)
        about_other = answer.kind == "answer" and answer.best is not None
        if about_other and answer.best is not None and answer.best.entry.id not in intent.faq:
            return await faq.ask(ctx, text)  # "how long does charging take": a question
        if understood.alternatives:
            return [intents.offer(ctx, (intent.name, *understood.alternatives))]
        return await self._act(ctx, understood)

    async def _act(self, ctx: Context, understood: Understanding) -> list[Reply]:
        return await intents.HANDLERS[understood.intent or "help"](ctx, understood)

    async def _on_number(self, ctx: Context, number: int) -> list[Reply]:
        """A typed number answers the menu the bot showed last, while it is open."""
        open_choices = [str(p) for p in (ctx.conversation.data or {}).get(OPEN_CHOICES) or []]
        if not open_choices:
            return [ctx.reply(ctx.t("numbers_no_menu"))]
        if not 1 <= number <= len(open_choices):
            ctx.data["keep_menu"] = True
            return [ctx.reply(choose(ctx.lang, len(open_choices)))]
        return await self._on_choice(ctx, open_choices[number - 1])

    async def _known_code(self, ctx: Context, codes: tuple[str, ...]) -> str | None:
        """The first of `codes` that is a connector's code."""
        found = set(
            (
                await ctx.db.scalars(
                    select(col(Connector.code)).where(col(Connector.code).in_(codes))
                )
            ).all()
        )
        return next((code for code in codes if code in found), None)
