"""Domain events reach the driver on the channel the session was started from.

A session started outside any chat (by an operator over the admin API, or with an RFID card
at the charger) reaches the driver's most recent chat instead, if they have one.

A failed start the driver needs help with, and a payment problem, also put the driver's
chat in the support queue (`backend.services.support.escalate`); the message then says
they are in line, and when support opens if it is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import (
    Billing,
    Charger,
    ChargingSession,
    Conversation,
    ConversationMode,
    Driver,
    EscalationReason,
    Payment,
    PaymentStatus,
    SessionStatus,
    Station,
)
from backend.services import support
from backend.services.events import (
    ChargingFinished,
    HoldCapReached,
    IdleFeeSoon,
    PaymentCaptured,
    PaymentProblem,
    SessionCompleted,
    SessionEvent,
    SessionFailed,
    SessionProgress,
    SessionReviewed,
    SessionStarted,
)
from backend.services.invoices import session_day
from backend.services.payments import DEMO_PAYMENT_METHOD
from backend.services.pricing import FREE, TariffSnapshot
from backend.services.support_hours import ALWAYS_OPEN, SupportHours
from bot.conversations import locked, record
from bot.flows.sessions_text import payment_lines, receipt_text, status_text
from bot.flows.support import in_line
from bot.formatting import kronor, kwh
from bot.i18n import CATALOGS, t
from bot.messages import Reply
from bot.outbox import Outbox

log = logging.getLogger(__name__)

# Every SessionFailed reason: does the driver need a person (True: the chat is queued)?
# The charger refused, never started or dropped off: yes. The driver let the payment page
# expire or cancelled it, Stripe was unreachable before anything started (the driver is
# told at once), or an operator or a newer session ended it: no. Unknown reasons: no.
# A `timed_out` session whose payment was never held is a payment page left open: no.
FAILURE_NEEDS_HELP: dict[str, bool] = {
    "rejected": True,
    "charger_offline": True,
    "timed_out": True,
    "no_start_transaction": True,
    "payment_expired": False,
    "payment_canceled": False,  # Stripe: the PaymentIntent was cancelled
    "payment_cancelled": False,  # the demo's test payment page
    "payment_unavailable": False,
    "superseded": False,
    "closed_by_operator": False,
}


class Notifier:
    """An EventBus subscriber; delivery runs in its own task so chargers never wait on chat."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        *,
        live_channels: frozenset[str] = frozenset({"telegram"}),
        live_interval: float = 10.0,
        support_hours: SupportHours = ALWAYS_OPEN,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._outbox = outbox
        self._support_hours = support_hours
        self._clock = clock
        self._live_channels = live_channels
        self._live_interval = live_interval
        self._last_live: dict[int, float] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, event: SessionEvent) -> None:
        if event.driver_id is None:
            return
        if isinstance(event, SessionProgress) and not self._live_due(event):
            return
        if isinstance(event, (SessionCompleted, SessionFailed)):
            self._last_live.pop(event.session_id, None)
        task = asyncio.create_task(self._deliver(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _live_due(self, event: SessionProgress) -> bool:
        if event.channel not in self._live_channels:
            return False
        now = time.monotonic()
        if now - self._last_live.get(event.session_id, -1e9) < self._live_interval:
            return False
        self._last_live[event.session_id] = now
        return True

    async def _deliver(self, event: SessionEvent) -> None:
        try:
            async with self._sessions() as db:
                found = await self._compose(db, event)
                if found is None:
                    return
                conversation, reply = found
                await record(db, conversation, "out", "bot", reply.text)
                await db.commit()
            await self._outbox.deliver(conversation.channel, conversation.address, [reply])
        except Exception:
            log.exception("could not notify about %r", event)

    async def _compose(
        self, db: AsyncSession, event: SessionEvent
    ) -> tuple[Conversation, Reply] | None:
        conversation, from_chat = await self._conversation_of(db, event)
        if conversation is None or not self._outbox.handles(conversation.channel):
            return None
        session = await db.get(ChargingSession, event.session_id)
        if session is None:
            return None
        lang = conversation.language
        charger = await db.get(Charger, session.charger_id)
        station = (
            await db.get(Station, charger.station_id)
            if charger is not None and charger.station_id
            else None
        )
        name = station.name if station else session.charger_id
        if isinstance(event, SessionProgress):
            if conversation.data.get("live_session") != session.id:
                return None
            text = status_text(lang, session, station)
            return conversation, Reply(text, live_key=f"status:{session.id}")
        if isinstance(event, SessionStarted):
            return conversation, Reply(t(lang, "event_started", station=name))
        if isinstance(event, SessionFailed):
            key = f"failed_{event.reason}"
            text = t(lang, key if key in CATALOGS[lang] else "failed_other")
            # Only money that was held is released: a payment page cancelled or left unpaid
            # held nothing (its own text says so).
            held = await db.scalar(
                select(col(Payment.id)).where(
                    col(Payment.session_id) == session.id,
                    col(Payment.status).in_([PaymentStatus.AUTHORIZED, PaymentStatus.RELEASED]),
                    col(Payment.amount_authorized_minor) > 0,
                )
            )
            if held is not None:  # the payments service releases it
                text = f"{text} {t(lang, 'hold_released')}"
            # Queue only a chat's own start: an operator's start failing answers the operator.
            if from_chat and await self._needs_help(db, event):
                conversation = await locked(db, conversation)
                queued = await self._escalate(
                    db, conversation, EscalationReason.START_FAILED, event.reason, session.id
                )
                text = f"{text} {queued}"
            return conversation, Reply(text)
        if isinstance(event, PaymentProblem):
            conversation = await locked(db, conversation)
            queued = await self._escalate(
                db, conversation, EscalationReason.PAYMENT_PROBLEM, event.problem, session.id
            )
            if event.problem == "uncollected" and event.owed_minor > 0:
                # The cost passed the hold: what was taken and what is still owed, in figures.
                problem = t(
                    lang,
                    await self._test_key(db, event.session_id, "payment_uncollected"),
                    taken=kronor(event.taken_minor, lang),
                    owed=kronor(event.owed_minor, lang),
                )
            else:
                problem = t(lang, "payment_problem")
            return conversation, Reply(f"{problem} {queued}")
        if isinstance(event, PaymentCaptured):
            if event.uncollected_minor:
                return None  # the PaymentProblem that follows says what was taken and owed
            text = t(lang, "payment_captured", amount=kronor(event.amount_minor, lang))
            return conversation, Reply(text)
        if isinstance(event, HoldCapReached):
            cap = "hold_cap_passed" if event.cost_minor >= event.hold_minor else "hold_cap_reached"
            text = t(
                lang,
                await self._test_key(db, event.session_id, cap),
                cost=kronor(event.cost_minor, lang),
                hold=kronor(event.hold_minor, lang),
            )
            return conversation, Reply(text)
        if isinstance(event, ChargingFinished):
            return conversation, Reply(t(lang, "event_charging_finished"))
        if isinstance(event, IdleFeeSoon):
            tariff = TariffSnapshot.from_json(session.tariff_snapshot or FREE.to_json())
            price = kronor(tariff.idle_fee_per_minute_minor, lang)
            return conversation, Reply(
                t(lang, "event_idle_soon", minutes=event.minutes, price=price)
            )
        if isinstance(event, SessionReviewed):  # the operator decided on the meter reading
            text = t(
                lang,
                "review_done",
                station=name,
                date=session_day(session).isoformat(),
                amount=kronor(event.cost_minor, lang),
                energy=kwh(event.energy_wh, lang),
            )
            if event.uncollected_minor > 0:
                owed = kronor(event.uncollected_minor, lang)
                text += " " + t(lang, "review_done_owed", owed=owed)
            return conversation, Reply(text)
        if isinstance(event, SessionCompleted):
            paid = await self._paid(db, session, lang)
            text = receipt_text(lang, session, station, paid)
            if session.status == SessionStatus.NEEDS_REVIEW:  # implausible meter figures
                billed = kronor(session.cost_minor or 0, lang)
                energy = kwh(session.energy_wh, lang)
                text += "\n\n" + t(lang, "receipt_under_review", amount=billed, energy=energy)
            return conversation, Reply(text)
        return None

    async def _conversation_of(
        self, db: AsyncSession, event: SessionEvent
    ) -> tuple[Conversation | None, bool]:
        """The chat to tell, and whether the session was started from it.

        The driver's chat on the session's channel; for a session started outside a chat
        (admin API, RFID: no conversation on that channel), their most recent chat.
        """
        latest = (
            select(Conversation)
            .where(col(Conversation.driver_id) == event.driver_id)
            .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        )
        if event.channel is not None:
            own = await db.scalar(latest.where(col(Conversation.channel) == event.channel))
            if own is not None:
                return own, True
        return await db.scalar(latest), False

    async def _needs_help(self, db: AsyncSession, event: SessionFailed) -> bool:
        if not FAILURE_NEEDS_HELP.get(event.reason, False):
            return False
        if event.reason != "timed_out":
            return True
        unpaid = await db.scalar(
            select(col(Payment.id)).where(
                col(Payment.session_id) == event.session_id,
                col(Payment.amount_authorized_minor) == 0,
            )
        )
        return unpaid is None

    async def _paid(self, db: AsyncSession, session: ChargingSession, lang: str) -> str | None:
        """The receipt's line on how the session is paid (card hold, saved card, invoice)."""
        payment = await db.scalar(
            select(Payment)
            .where(col(Payment.session_id) == session.id)
            .order_by(col(Payment.id).desc())
            .limit(1)
        )
        driver = await db.get(Driver, session.driver_id) if session.driver_id else None
        held = (
            payment.amount_authorized_minor
            if payment is not None
            and payment.status in {PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED}
            and payment.method != Billing.CARD_ON_FILE
            else 0
        )
        return payment_lines(
            lang,
            session.cost_minor or 0,
            billing=driver.billing if driver is not None else None,
            held_minor=held,
            captured=payment is not None and payment.status == PaymentStatus.CAPTURED,
            method=payment.method if payment is not None else None,
            saved_card=driver is not None and driver.stripe_payment_method_id is not None,
        )

    async def _test_key(self, db: AsyncSession, session_id: int, key: str) -> str:
        """`key`, or its `_test` variant when the session is paid by the demo's test payment
        (no real money: no card to speak of)."""
        test = await db.scalar(
            select(col(Payment.id)).where(
                col(Payment.session_id) == session_id, col(Payment.method) == DEMO_PAYMENT_METHOD
            )
        )
        return f"{key}_test" if test is not None else key

    async def _escalate(
        self,
        db: AsyncSession,
        conversation: Conversation,
        reason: EscalationReason,
        detail: str,
        session_id: int | None = None,
    ) -> str:
        """Queue the (locked) conversation for support; the sentence that tells the driver."""
        queued = await support.escalate(db, conversation, reason, detail, session_id=session_id)
        lang = conversation.language
        if conversation.mode == ConversationMode.AGENT:
            return t(lang, "agent_holds")
        return in_line(lang, self._support_hours, self._clock(), already=not queued)
