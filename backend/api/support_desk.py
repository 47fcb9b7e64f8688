"""What an agent does to a conversation they hold: reply, and the quick actions.

Shared by the JSON support API and the console pages, so both behave the same: every
action needs the conversation held by the agent (403 otherwise, whatever their role), is
written to the transcript with the agent's name, and reaches the driver on their own channel
(Telegram or SMS). A charge stop or unlock is in the staff audit log before it is sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import stripe
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.models import (
    ChargingSession,
    Conversation,
    SessionStatus,
    StaffUser,
)
from backend.services import audit, support
from backend.services.audit import AuditAction
from backend.services.charging import ChargingService
from backend.services.errors import ConflictError, NotFoundError
from backend.services.payments import PaymentService
from backend.services.ports import ChargerCommands
from bot.conversations import record
from bot.faq.matcher import FaqService
from bot.i18n import t
from bot.messages import Link, Reply
from bot.outbox import Outbox

log = logging.getLogger(__name__)

OPEN_STATUSES = (
    SessionStatus.PENDING,
    SessionStatus.STARTING,
    SessionStatus.CHARGING,
    SessionStatus.STOPPING,
)


@dataclass(frozen=True)
class ActionResult:
    """What happened, in a word the console and the API both show (`sent`, `stopping`...)."""

    outcome: str
    delivered: bool = False
    detail: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "delivered": self.delivered, "detail": self.detail}


@dataclass
class SupportDesk:
    sessions: async_sessionmaker[AsyncSession]
    charging: ChargingService
    commands: ChargerCommands
    outbox: Outbox
    faq: FaqService
    payments: PaymentService | None

    @classmethod
    def of(cls, app: FastAPI) -> SupportDesk:
        state = app.state
        return cls(
            sessions=state.sessions,
            charging=state.charging,
            commands=state.commands,
            outbox=state.outbox,
            faq=state.engine.services.faq,
            payments=state.payments,
        )

    async def reply(self, conversation_id: int, staff: StaffUser, text: str) -> ActionResult:
        """The agent's own words: recorded, then sent on the driver's channel."""
        async with self.sessions() as db:
            conversation = await support.record_reply(db, conversation_id, staff, text)
        delivered = await self._deliver(conversation, [Reply(text)])
        return ActionResult("sent", delivered)

    async def release(
        self, conversation_id: int, staff: StaffUser, seen_unanswered: int = 0
    ) -> ActionResult:
        """Hand the chat back to the bot, and tell the driver so on their channel."""
        async with self.sessions() as db:
            await support.release(db, conversation_id, staff, seen_unanswered=seen_unanswered)
            conversation = await db.get(Conversation, conversation_id)
            assert conversation is not None
            text = t(conversation.language, "agent_released")
            await record(db, conversation, "out", "bot", text)
            await db.commit()
        delivered = await self._deliver(conversation, [Reply(text)])
        return ActionResult("released", delivered)

    async def send_faq(self, conversation_id: int, staff: StaffUser, entry_id: str) -> ActionResult:
        """An FAQ answer, in the driver's language, sent as the agent's reply."""
        entry = self.faq.index.get(entry_id)
        if entry is None:
            raise NotFoundError(f"FAQ entry {entry_id!r} not found")
        async with self.sessions() as db:
            conversation = await self._held(db, conversation_id, staff, "send an FAQ answer")
            language = conversation.language
        return await self.reply(conversation_id, staff, entry.answer(language))

    async def stop_charging(self, conversation_id: int, staff: StaffUser) -> ActionResult:
        """RemoteStopTransaction for the driver's charging session."""
        async with self.sessions() as db:
            conversation = await self._held(db, conversation_id, staff, "stop the charge")
            session = await self._session(db, conversation, open_only=True)
            if session is None or session.status not in {
                SessionStatus.CHARGING,
                SessionStatus.STOPPING,
            }:
                raise ConflictError("the driver has no charging session to stop")
            session_id = session.id
            where = f"{session.charger_id} connector {session.connector_id}"
            audit.record(
                db, staff, AuditAction.STOP, conversation_id, f"session {session_id} at {where}"
            )
            await db.commit()
        outcome = await self.charging.request_stop(session_id=session_id, by_operator=True)
        word = "stopping" if outcome.result.accepted else outcome.result.status.value
        await self._note(conversation_id, staff, f"stopped session {session_id}: {word}")
        return ActionResult(word, detail=outcome.result.detail)

    async def unlock(self, conversation_id: int, staff: StaffUser) -> ActionResult:
        """UnlockConnector on the connector of the driver's current or last session."""
        async with self.sessions() as db:
            conversation = await self._held(db, conversation_id, staff, "unlock the connector")
            session = await self._session(db, conversation, open_only=True)
            session = session or await self._session(db, conversation, open_only=False)
            if session is None:
                raise ConflictError("the driver has no session, so no connector to unlock")
            charger_id, connector_id = session.charger_id, session.connector_id
            if await self._someone_else_charging(db, session):
                # UnlockConnector would end that other driver's transaction.
                raise ConflictError(
                    f"another session is open on {charger_id} connector {connector_id}"
                )
            where = f"{charger_id} connector {connector_id}"
            audit.record(
                db, staff, AuditAction.UNLOCK, conversation_id, f"{where} (session {session.id})"
            )
            await db.commit()
        result = await self.commands.unlock(charger_id, connector_id)
        word = result.status.value
        await self._note(conversation_id, staff, f"unlocked {where}: {word}")
        return ActionResult(word, detail=result.detail)

    async def send_card_link(self, conversation_id: int, staff: StaffUser) -> ActionResult:
        """A link to save a card (Stripe Checkout, setup mode), sent on the driver's channel."""
        async with self.sessions() as db:
            conversation = await self._held(db, conversation_id, staff, "send a card link")
            driver_id = conversation.driver_id
            language = conversation.language
        if self.payments is None:
            raise ConflictError("card payments are not configured (no STRIPE_API_KEY)")
        if driver_id is None:
            raise ConflictError("this conversation has no driver")
        try:
            url = await self.payments.card_setup_link(driver_id)
        except stripe.StripeError as exc:
            raise ConflictError(f"Stripe refused: {exc}") from exc
        text, button = t(language, "card_link"), t(language, "card_button")
        async with self.sessions() as db:  # in the transcript as the agent's message, link too
            await support.record_reply(db, conversation_id, staff, f"{text}\n{button}: {url}")
        reply = Reply(text, links=(Link(button, url),))
        delivered = await self._deliver(conversation, [reply])
        return ActionResult("sent", delivered)

    async def _held(
        self, db: AsyncSession, conversation_id: int, staff: StaffUser, doing: str
    ) -> Conversation:
        """The conversation `staff` holds; StaffForbiddenError (403) for any other."""
        conversation = await db.get(Conversation, conversation_id)
        if conversation is None:
            raise NotFoundError(f"conversation {conversation_id} not found")
        if not support.holds(conversation, staff):
            raise support.not_held(conversation, doing)
        return conversation

    async def _session(
        self, db: AsyncSession, conversation: Conversation, *, open_only: bool
    ) -> ChargingSession | None:
        """The driver's newest session (with `open_only`: one not finished yet)."""
        if conversation.driver_id is None:
            return None
        query = select(ChargingSession).where(
            col(ChargingSession.driver_id) == conversation.driver_id
        )
        if open_only:
            query = query.where(col(ChargingSession.status).in_(OPEN_STATUSES))
        session: ChargingSession | None = await db.scalar(
            query.order_by(
                col(ChargingSession.created_at).desc(), col(ChargingSession.id).desc()
            ).limit(1)
        )
        return session

    async def _someone_else_charging(self, db: AsyncSession, session: ChargingSession) -> bool:
        other = await db.scalar(
            select(col(ChargingSession.id)).where(
                col(ChargingSession.charger_id) == session.charger_id,
                col(ChargingSession.connector_id) == session.connector_id,
                col(ChargingSession.status).in_(OPEN_STATUSES),
                col(ChargingSession.id) != session.id,
            )
        )
        return other is not None

    async def _note(self, conversation_id: int, staff: StaffUser, text: str) -> None:
        async with self.sessions() as db:
            await support.note(db, conversation_id, staff, text)
            await db.commit()

    async def _deliver(self, conversation: Conversation, replies: list[Reply]) -> bool:
        try:
            return await self.outbox.deliver(conversation.channel, conversation.address, replies)
        except Exception:  # recorded either way; the agent sees delivered=false
            log.exception("agent message to conversation %s not delivered", conversation.id)
            return False
