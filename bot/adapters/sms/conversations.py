"""SMS bodies in, the text to answer out: the channel's logic without HTTP or Twilio.

Twilio's own keywords (STOP, START, HELP...) are Twilio's: an opt-out is remembered and nothing
more is sent to that number until START. MER/MORE shows the next page, kept in
`conversation.data` (`sms_pages`) so it survives restarts and works across processes.
Everything else, keywords and numbers too, is text for the engine, which understands it the
same way on every channel. Replies are rendered as one GSM-7 text (`text`) with choices as a
numbered list, at most three segments; the rest waits for MER/MORE. The demo console
(`chargebot demo --sms`) uses `SmsConversations` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import Conversation, ConversationMode, ProcessedEvent
from bot.adapters.sms.grammar import OPT_OUT, Parsed, parse
from bot.adapters.sms.text import paginate, sms_words, to_gsm7
from bot.conversations import record
from bot.engine import OPEN_CHOICES, Engine
from bot.i18n import DEFAULT_LANGUAGE, choose, t
from bot.keyed_locks import KeyedLocks
from bot.messages import ChannelUser, Inbound, Reply

log = logging.getLogger(__name__)

CHANNEL: Final = "sms"
DEDUPE_SOURCE: Final = "twilio"  # ProcessedEvent.source of inbound MessageSids
OPTED_OUT: Final = "sms_opted_out"  # Conversation.data: the number texted STOP


@dataclass(frozen=True)
class _State:
    language: str
    pages: list[str]
    agent_holds: bool = False
    opted_out: bool = False


def render(replies: Sequence[Reply], lang: str) -> tuple[str, list[str]]:
    """One GSM-7 text for the replies, with choices as a numbered list, and their payloads."""
    blocks: list[str] = []
    payloads: list[str] = []
    for reply in replies:
        lines = [sms_words(reply.text, lang)]
        for choice in reply.choices:
            payloads.append(choice.payload)
            lines.append(f"{len(payloads)}) {choice.label}")
        lines.extend(f"{link.label}: {link.url}" for link in reply.links)
        blocks.append("\n".join(line for line in lines if line))
    if payloads:
        blocks.append(choose(lang, len(payloads)))
    return to_gsm7("\n\n".join(block for block in blocks if block)), payloads


class SmsConversations:
    """SMS bodies in, the text to answer out; choices and pages live in the conversation."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        engine: Engine,
        *,
        default_region: str = "SE",
    ) -> None:
        self._sessions = sessions
        self._engine = engine
        self.default_region = default_region
        self._locks: KeyedLocks[str] = KeyedLocks()  # one per phone number: its SMS in order

    async def handle(self, phone: str, body: str, message_id: str | None = None) -> str | None:
        """The answer to one SMS from `phone` (E.164), or None when none is due."""
        parsed = parse(body)
        if parsed.kind == "empty":
            return None  # a lone picture
        async with self._locks.hold(phone):
            if parsed.kind == "reserved":
                # Twilio answers its own keywords and blocks our texts after STOP; we only
                # remember the opt-out so the demo and our notifications honour it too.
                await self._opt(phone, parsed.keyword or "")
                return None
            if message_id and not await self._first_time(message_id):
                log.info("SMS %s already handled (a Twilio retry)", message_id)
                return None
            return await self._answer(phone, body, parsed, message_id)

    async def outbound(self, phone: str, replies: Sequence[Reply]) -> str | None:
        """The text to send for notifications; long ones leave the rest for MER/MORE."""
        async with self._locks.hold(phone):
            return await self._remember(phone, replies)

    async def opted_out(self, phone: str) -> bool:
        """The number has texted STOP (and not START since)."""
        state = await self._state(phone)
        return state is not None and state.opted_out

    async def _first_time(self, message_id: str) -> bool:
        async with self._sessions() as db:
            db.add(ProcessedEvent(source=DEDUPE_SOURCE, event_id=message_id[:255]))
            try:
                await db.commit()
            except IntegrityError:
                return False
        return True

    async def _state(self, phone: str) -> _State | None:
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is None:
                return None
            data = conversation.data or {}
            return _State(
                conversation.language,
                [str(p) for p in data.get("sms_pages") or []],
                conversation.mode == ConversationMode.AGENT,
                bool(data.get(OPTED_OUT)),
            )

    async def _answer(
        self, phone: str, body: str, parsed: Parsed, message_id: str | None
    ) -> str | None:
        state = await self._state(phone)
        lang = state.language if state else DEFAULT_LANGUAGE
        if parsed.kind == "more":  # pages the bot's answers and an agent's replies alike
            if state is None or not state.pages:
                return await self._local(phone, body, t(lang, "sms_no_more"))
            return await self._next_page(phone, body, state.pages)
        # Everything else is the engine's to understand, as on every other channel; a new
        # number's language is the one its first words are in ("NEAR Uppsala").
        first_words = None if state else self._engine.services.intents.understand(body).lang
        user = ChannelUser(phone=phone, language_code=first_words)
        inbound = Inbound(CHANNEL, phone, text=body.strip(), user=user, message_id=message_id)
        try:
            replies = await self._engine.handle(inbound)
        except Exception:
            log.exception("the engine failed on an SMS from %s", masked(phone))
            return to_gsm7(t(lang, "sms_error"))
        if not replies:
            return None
        return await self._remember(phone, replies)  # None after an opt-out: it acted, silently

    async def _remember(self, phone: str, replies: Sequence[Reply]) -> str | None:
        """Render, keep the pages after the first; the first page to send, None if opted out."""
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is not None and (conversation.data or {}).get(OPTED_OUT):
                return None
            lang = conversation.language if conversation else DEFAULT_LANGUAGE
            text, payloads = render(replies, lang)
            pages = paginate(text, to_gsm7(t(lang, "sms_more")))
            if not pages:
                return None
            if conversation is not None:
                data = {**(conversation.data or {}), "sms_pages": pages[1:]}
                if payloads:  # a notification's numbered choices: the menu numbers answer
                    data[OPEN_CHOICES] = payloads
                conversation.data = data
                await db.commit()
            return pages[0]

    async def _opt(self, phone: str, keyword: str) -> None:
        """STOP and its kin opt the number out of our texts (Twilio enforces it); START back in."""
        opted_out = keyword in OPT_OUT
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is None or bool((conversation.data or {}).get(OPTED_OUT)) == opted_out:
                return
            conversation.data = {**(conversation.data or {}), OPTED_OUT: opted_out}
            await record(db, conversation, "in", "driver", keyword.upper())
            await db.commit()
            log.info("SMS %s opted %s", masked(phone), "out" if opted_out else "back in")

    async def _next_page(self, phone: str, body: str, pages: list[str]) -> str:
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            assert conversation is not None
            conversation.data = {**(conversation.data or {}), "sms_pages": pages[1:]}
            await record(db, conversation, "in", "driver", body.strip())
            await record(db, conversation, "out", "bot", pages[0])
            conversation.updated_at = utcnow()
            await db.commit()
        return pages[0]

    async def _local(self, phone: str, body: str, text: str) -> str:
        """An answer the adapter gives itself (menu, hints); in the transcript if there is one."""
        answer = paginate(to_gsm7(text), "")[0]
        async with self._sessions() as db:
            conversation = await _conversation(db, phone)
            if conversation is not None:
                await record(db, conversation, "in", "driver", body.strip())
                await record(db, conversation, "out", "bot", answer)
                await db.commit()
        return answer


async def _conversation(db: AsyncSession, phone: str) -> Conversation | None:
    return await db.scalar(
        select(Conversation).where(
            col(Conversation.channel) == CHANNEL, col(Conversation.address) == phone
        )
    )


def masked(phone: str) -> str:
    """Phone numbers in logs: enough to tell them apart, not to call them."""
    return f"{phone[:4]}...{phone[-2:]}" if len(phone) > 6 else "..."
