"""The demo's local test payments: the Stripe flow (hold → start → capture) with no money.

Only with no STRIPE_API_KEY in development (`chargebot demo`). The driver gets a link to a
clearly labelled test page served by the app; approving it "holds" the amount, starts the
charger, and on completion exactly the cost is "captured" (or the hold released on a failed
start), all recorded on the Payment row as a real payment would be.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import ChargingSession, Payment, PaymentStatus, SessionStatus
from backend.services.charging import ChargingService, StartOutcome
from backend.services.errors import ConflictError, NotFoundError
from backend.services.events import (
    EventBus,
    PaymentProblem,
    SessionCompleted,
    SessionEvent,
    SessionFailed,
)
from backend.services.payments import CHECKOUT_LIFETIME, HOLD_MARGIN, UNCOLLECTED

TEST_METHOD = "test_payment"


class TestPayments:
    """A local stand-in for Stripe Checkout with manual capture; never for production."""

    __test__ = False  # not a pytest class

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        charging: ChargingService,
        events: EventBus,
        public_base_url: str,
        hold_amount_minor: int,
    ) -> None:
        self._sessions = sessions
        self._charging = charging
        self._events = events
        self._base = public_base_url
        self.hold_amount_minor = hold_amount_minor

    async def checkout(
        self, charger_id: str, connector_id: int, *, driver_id: int, channel: str
    ) -> tuple[ChargingSession, str]:
        """Hold the connector (a pending session) and give the test page's address."""
        session = await self._charging.reserve(
            charger_id,
            connector_id,
            driver_id=driver_id,
            channel=channel,
            hold_until=utcnow() + CHECKOUT_LIFETIME + HOLD_MARGIN,
        )
        async with self._sessions() as db:
            db.add(
                Payment(
                    session_id=session.id,
                    driver_id=driver_id,
                    method=TEST_METHOD,
                    status=PaymentStatus.PENDING,
                    currency=session.currency,
                )
            )
            await db.commit()
        return session, f"{self._base}/demo/pay/{session.id}"

    async def page(self, session_id: int) -> tuple[ChargingSession, Payment]:
        async with self._sessions() as db:
            session = await db.get(ChargingSession, session_id)
            payment = await self._payment(db, session_id)
            if session is None or payment is None:
                raise NotFoundError(f"no test payment for session {session_id}")
            return session, payment

    async def approve(self, session_id: int) -> StartOutcome:
        """The driver approves the test hold: the charger is started, as Stripe's webhook would."""
        async with self._sessions() as db:
            payment = await self._payment(db, session_id)
            session = await db.get(ChargingSession, session_id)
            if payment is None or session is None:
                raise NotFoundError(f"no test payment for session {session_id}")
            if payment.status != PaymentStatus.PENDING:
                raise ConflictError(f"this test payment is already {payment.status}")
            if session.status != SessionStatus.PENDING:
                raise ConflictError(f"charging session {session_id} is {session.status}")
            # Compare-and-set: of two approvals at once, one holds and starts.
            held = await db.execute(
                update(Payment)
                .where(col(Payment.id) == payment.id, col(Payment.status) == PaymentStatus.PENDING)
                .values(
                    status=PaymentStatus.AUTHORIZED,
                    amount_authorized_minor=self.hold_amount_minor,
                    updated_at=utcnow(),
                )
            )
            await db.commit()
            if not held.rowcount:  # type: ignore[attr-defined]
                raise ConflictError("this test payment is already being approved")
        try:
            return await self._charging.start_pending(session_id)
        except (ConflictError, NotFoundError):
            # The session ended meanwhile: nothing will be captured, the hold goes back.
            async with self._sessions() as db:
                await db.execute(
                    update(Payment)
                    .where(
                        col(Payment.id) == payment.id,
                        col(Payment.status) == PaymentStatus.AUTHORIZED,
                    )
                    .values(status=PaymentStatus.RELEASED, updated_at=utcnow())
                )
                await db.commit()
            raise

    async def cancel(self, session_id: int) -> None:
        """The driver cancels on the test page: nothing held, the connector is free again."""
        async with self._sessions() as db:
            payment = await self._payment(db, session_id)
            if payment is None:
                raise NotFoundError(f"no test payment for session {session_id}")
            if payment.status != PaymentStatus.PENDING:
                raise ConflictError("nothing to cancel")
            payment.status = PaymentStatus.RELEASED
            payment.updated_at = utcnow()
            failed = await self._charging.fail_pending(db, session_id, "payment_cancelled")
            await db.commit()
        if failed is not None:
            await self._events.publish(failed)

    async def __call__(self, event: SessionEvent) -> None:
        """Capture exactly the cost on completion (at most the hold); release on failure."""
        if not isinstance(event, (SessionCompleted, SessionFailed)):
            return
        async with self._sessions() as db:
            payment = await self._payment(db, event.session_id)
            if payment is None:
                return
            if isinstance(event, SessionCompleted) and payment.status == PaymentStatus.AUTHORIZED:
                cost = event.cost_minor or 0
                payment.amount_captured_minor = min(cost, payment.amount_authorized_minor)
                payment.amount_uncollected_minor = max(0, cost - payment.amount_authorized_minor)
                payment.status = PaymentStatus.CAPTURED if cost else PaymentStatus.RELEASED
            elif isinstance(event, SessionFailed) and payment.status in {
                PaymentStatus.PENDING,
                PaymentStatus.AUTHORIZED,
            }:
                payment.status = PaymentStatus.RELEASED
            else:
                return
            payment.updated_at = utcnow()
            taken, uncollected = payment.amount_captured_minor, payment.amount_uncollected_minor
            await db.commit()
        if isinstance(event, SessionCompleted) and uncollected:
            # As with Stripe: the cost above the hold is a payment problem for support.
            await self._events.publish(
                PaymentProblem(
                    event.session_id,
                    event.driver_id,
                    event.channel,
                    UNCOLLECTED,
                    taken_minor=taken,
                    owed_minor=uncollected,
                )
            )

    async def drain(self) -> None:
        """Nothing runs in the background here (the same interface as PaymentService)."""

    async def _payment(self, db: AsyncSession, session_id: int) -> Payment | None:
        return await db.scalar(
            select(Payment).where(
                col(Payment.session_id) == session_id, col(Payment.method) == TEST_METHOD
            )
        )
