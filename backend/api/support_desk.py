"""What an agent does to a conversation they hold: reply, and the quick actions.

Shared by the JSON support API and the console pages, so both behave the same: every
action needs the conversation held by the agent (403 otherwise, whatever their role), is
written to the transcript with the agent's name, and reaches the driver on their own channel
(Telegram or SMS). A charge stop or unlock is in the staff audit log before it is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.lifecycles import ACTIVE_SESSION_STATUSES, LIVE_SESSION_STATUSES
from backend.models import (
    ChargingSession,
    Conversation,
    StaffUser,
)
from backend.services import audit, support
from backend.services.audit import AuditAction
from backend.services.charging import ChargingService
from backend.services.errors import ConflictError, NotFoundError
from backend.services.outbound import Recipient, deliver, record_outbound, send_card_link
from backend.services.payments import PaymentService
from backend.services.ports import (
    ChargerCommands,
    FaqCatalogue,
    OutboundMessage,
    OutboundMessages,
    PaymentGatewayError,
)
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)


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
    outbound: OutboundMessages
    faq: FaqCatalogue
    payments: PaymentService | None

    @classmethod
    def of(cls, app: FastAPI) -> SupportDesk:
        state = app.state
        return cls(
            sessions=state.sessions,
            charging=state.charging,
            commands=state.commands,
            outbound=state.outbound,
            faq=state.faq,
            payments=state.payments,
        )

    async def reply(self, conversation_id: int, staff: StaffUser, text: str) -> ActionResult:
        """The agent's own words: recorded, then sent on the driver's channel."""
        async with self.sessions() as db:
            conversation = await support.record_reply(db, conversation_id, staff, text)
        delivered = await self._deliver(conversation, [OutboundMessage(text)])
        return ActionResult("sent", delivered)

    async def release(
        self, conversation_id: int, staff: StaffUser, seen_unanswered: int = 0
    ) -> ActionResult:
        """Hand the chat back to the bot, and tell the driver so on their channel."""
        async with self.sessions() as db:
            await support.release(db, conversation_id, staff, seen_unanswered=seen_unanswered)
            conversation = await db.get(Conversation, conversation_id)
            assert conversation is not None
            message = self.outbound.agent_released(conversation.language)
            record_outbound(db, conversation_id, message.text)
            await db.commit()
        delivered = await self._deliver(conversation, [message])
        return ActionResult("released", delivered)

    async def send_faq(self, conversation_id: int, staff: StaffUser, entry_id: str) -> ActionResult:
        """An FAQ answer, in the driver's language, sent as the agent's reply."""
        entry = self.faq.entry(entry_id)
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
            if session is None or session.status not in LIVE_SESSION_STATUSES:
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

        async def as_agents_reply(line: str) -> None:  # in the transcript, link too
            async with self.sessions() as db:
                await support.record_reply(db, conversation_id, staff, line)

        try:
            sent = await send_card_link(
                self.payments,
                self.outbound,
                driver_id,
                language,
                Recipient(conversation.channel, conversation.address),
                record=as_agents_reply,
                on_failure=self._not_delivered(conversation),
            )
        except PaymentGatewayError as exc:
            raise ConflictError(f"Stripe refused: {exc}") from exc
        return ActionResult("sent", bool(sent.delivered))

    async def _held(
        self, db: AsyncSession, conversation_id: int, staff: StaffUser, doing: str
    ) -> Conversation:
        """The conversation `staff` holds; StaffForbiddenError (403) for any other."""
        conversation = await get_or_404(db, Conversation, conversation_id, "conversation")
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
            query = query.where(col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES))
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
                col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES),
                col(ChargingSession.id) != session.id,
            )
        )
        return other is not None

    async def _note(self, conversation_id: int, staff: StaffUser, text: str) -> None:
        async with self.sessions() as db:
            await support.note(db, conversation_id, staff, text)
            await db.commit()

    async def _deliver(self, conversation: Conversation, messages: list[OutboundMessage]) -> bool:
        to = Recipient(conversation.channel, conversation.address)
        return await deliver(
            self.outbound, to, messages, on_failure=self._not_delivered(conversation)
        )

    @staticmethod
    def _not_delivered(conversation: Conversation) -> Callable[[Exception], None]:
        def log_it(_: Exception) -> None:  # recorded either way; the agent sees delivered=false
            log.exception("agent message to conversation %s not delivered", conversation.id)

        return log_it
