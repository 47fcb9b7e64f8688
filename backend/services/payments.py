"""Card payments: a hold before the start, exactly the cost captured after.

The card gateway is a port (`PaymentGateway` in backend/services/ports.py) with two adapters:
Stripe (backend/payments/stripe_gateway.py) and the demo's test payments
(backend/payments/demo_gateway.py, a labelled page served by the app, no money). This module
holds what both share: the Payment rows, when a charge starts, and the capture, release and
refund arithmetic. It never sees a Stripe object: failures are PaymentGatewayError, webhooks
arrive verified and read as our own typed events.

Pay per session: the driver confirms the price, gets a payment page for a hold of
`hold_amount_minor` (manual capture); the charging session waits `pending`. Only a completed
page whose payment is held starts the charger. While it charges,
`backend.services.hold_guard` stops it before its cost passes the hold. On completion exactly
the cost is captured (at most the hold; a rest, when the stop landed late, is flagged); a
failed start, a timed-out payment or an expired page cancels the payment so the hold is
released.

Money we cannot take as planned (a declined saved card, a refused capture, a cost above the
hold) is published as a `PaymentProblem`: the notifier puts the driver's chat in the support
queue and tells them.

Every gateway call that moves money carries a business idempotency key (`capture-<session>`,
`cancel-<session>`, `refund-<session>-<n>`). Webhook events are processed once: the event id
is stored in `processed_event` in the same transaction as its effect on our rows. A signed
event we cannot use (malformed, or naming ids that are not ours) is logged and acknowledged,
never a 500. Every payment status change goes through `PAYMENT_LIFECYCLE` (a compare-and-set
from the statuses the table allows).

The page's return link is the channel's: back to the Telegram bot from Telegram, a plain
"you may close this page" page otherwise (an SMS driver has no Telegram to go back to).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.lifecycles import PAYMENT_LIFECYCLE
from backend.models import (
    Billing,
    ChargingSession,
    Driver,
    Payment,
    PaymentStatus,
    ProcessedEvent,
    SessionStatus,
)
from backend.services.charging import ChargingService, StartOutcome
from backend.services.errors import ConflictError, NotFoundError
from backend.services.events import (
    EventBus,
    PaymentCaptured,
    PaymentProblem,
    SessionCompleted,
    SessionEvent,
    SessionFailed,
)
from backend.services.ports import (
    GatewayEvent,
    HoldPageRequest,
    OtherEvent,
    PageCompleted,
    PageExpired,
    PageKind,
    PaymentCanceled,
    PaymentFailed,
    PaymentGateway,
    PaymentGatewayError,
    PaymentRequestInvalidError,
    SubscriptionChanged,
    UnusableEvent,
    WebhookRejectedError,
)
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

# How long the driver has to pay on the payment page (the gateway may add its own slack).
CHECKOUT_LIFETIME = timedelta(minutes=30)
# The connector stays held for the driver this long after the payment page expires, so the
# gateway's "page expired" event (not the start timer) normally ends the session.
HOLD_MARGIN = timedelta(minutes=5)
# processed_event.source of the gateway's webhook events (named when Stripe was the only one).
EVENT_SOURCE = "stripe"
# Payment.method of a hold on the demo's test page (no real money).
DEMO_PAYMENT_METHOD = "test_payment"
# The page a payment page returns to when the driver's channel has no app to go back to.
PAYMENT_DONE_PATH = "/payments/done"
PAYG_PLAN = "payg"
MEMBER_PLAN = "member"
# PaymentProblem.problem
CHARGE_REFUSED = "charge_refused"
CAPTURE_REFUSED = "capture_refused"
UNCOLLECTED = "uncollected"
# A payment that may still hold money: released when its session ends without a charge.
OPEN_PAYMENT = frozenset({PaymentStatus.PENDING, PaymentStatus.AUTHORIZED})


class PaymentUnavailableError(RuntimeError):
    """The gateway could not be reached or refused to create the payment page."""


class WebhookRetryError(RuntimeError):
    """The gateway could not be asked while handling a webhook (HTTP 503: it sends it again)."""


class PaymentService:
    """Creates payment pages, handles the gateway's events, captures and releases holds.

    Also an EventBus subscriber: SessionCompleted captures, SessionFailed releases. The
    gateway's calls run in their own tasks so a charger's message never waits on them; with
    an `instant` gateway (the demo's, nothing leaves the process) they run inline, so the
    receipt that follows already sees the payment settled.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        charging: ChargingService,
        events: EventBus,
        gateway: PaymentGateway,
        *,
        hold_amount_minor: int,
        public_base_url: str,
        telegram_bot_username: str,
        member_price_id: str = "",
    ) -> None:
        self._sessions = sessions
        self._charging = charging
        self._events = events
        self._gateway = gateway
        self.hold_amount_minor = hold_amount_minor
        self._public_base_url = public_base_url.rstrip("/")
        self._telegram_bot = telegram_bot_username
        self._member_price_id = member_price_id
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def real_money(self) -> bool:
        """False for the demo's test payments."""
        return self._gateway.real_money

    def return_url(self, channel: str | None) -> str:
        """Where a payment page sends the driver back: the Telegram bot from Telegram, else a
        page saying they may close it (SMS, a link passed on by hand)."""
        if channel == "telegram":
            return f"https://t.me/{self._telegram_bot}"
        return f"{self._public_base_url}{PAYMENT_DONE_PATH}"

    # -- the payment page ---------------------------------------------------------------------

    async def checkout(
        self, charger_id: str, connector_id: int, *, driver_id: int, channel: str
    ) -> tuple[ChargingSession, str]:
        """Hold the connector (a pending session) and create the payment page for it.

        Returns the session and the payment page's URL. Raises the charging service's
        RefusedError if the start is not allowed, PaymentUnavailableError if the gateway
        fails (the pending session is then failed quietly: the caller tells the driver).
        """
        expires_at = utcnow() + self._gateway.page_lifetime
        session = await self._charging.reserve(
            charger_id,
            connector_id,
            driver_id=driver_id,
            channel=channel,
            hold_until=expires_at + HOLD_MARGIN,
        )
        assert session.id is not None
        async with self._sessions() as db:
            PAYMENT_LIFECYCLE.check_initial(PaymentStatus.PENDING)
            payment = Payment(
                session_id=session.id,
                driver_id=driver_id,
                method=Billing.PAY_PER_SESSION if self.real_money else DEMO_PAYMENT_METHOD,
                status=PaymentStatus.PENDING,
                currency=session.currency,
            )
            db.add(payment)
            await db.commit()
            payment_id = payment.id
        request = HoldPageRequest(
            session_id=session.id,
            driver_id=driver_id,
            currency=session.currency,
            amount_minor=self.hold_amount_minor,
            expires_at=expires_at,
            return_url=self.return_url(channel),
        )
        try:
            page = await self._gateway.hold_page(request)
        except PaymentGatewayError as exc:
            log.error("the gateway refused the checkout for session %s: %s", session.id, exc)
            async with self._sessions() as db:
                await self._set_payment(db, payment_id, PaymentStatus.FAILED)
                await self._charging.fail_pending(db, session.id, "payment_unavailable")
                await db.commit()
            raise PaymentUnavailableError(str(exc)) from exc
        if page.id is not None:
            async with self._sessions() as db:
                await self._set_payment(db, payment_id, stripe_checkout_session_id=page.id)
                await db.commit()
        return session, page.url

    # -- a page we serve ourselves (the demo's test page) -------------------------------------

    async def own_page(self, session_id: int) -> tuple[ChargingSession, Payment]:
        """The session and payment a test page shows."""
        async with self._sessions() as db:
            session = await db.get(ChargingSession, session_id)
            payment = await self._page_payment(db, session_id)
            if session is None:
                raise NotFoundError(f"no test payment for session {session_id}")
            return session, payment

    async def approve_own_page(self, session_id: int) -> StartOutcome:
        """The driver approves the hold on our own page: the charger is started at once, as
        the gateway's "page completed" event would. ConflictError when it is too late."""
        async with self._sessions() as db:
            payment = await self._page_payment(db, session_id)
            session = await db.get(ChargingSession, session_id)
            if session is None:
                raise NotFoundError(f"no test payment for session {session_id}")
            if payment.status != PaymentStatus.PENDING:
                raise ConflictError(f"this test payment is already {payment.status}")
            if session.status != SessionStatus.PENDING:
                raise ConflictError(f"charging session {session_id} is {session.status}")
            # Compare-and-set: of two approvals at once, one holds and starts.
            held = await self._set_payment(
                db,
                payment.id,
                PaymentStatus.AUTHORIZED,
                only_from={PaymentStatus.PENDING},
                amount_authorized_minor=self.hold_amount_minor,
            )
            await db.commit()
            if not held:
                raise ConflictError("this test payment is already being approved")
        try:
            return await self._charging.start_pending(session_id)
        except (ConflictError, NotFoundError):
            # The session ended meanwhile: nothing will be captured, the hold goes back.
            await self._release(session_id)
            raise

    async def cancel_own_page(self, session_id: int) -> None:
        """The driver cancels on our own page: nothing held, the connector is free again."""
        async with self._sessions() as db:
            payment = await self._page_payment(db, session_id)
            released = await self._set_payment(
                db, payment.id, PaymentStatus.RELEASED, only_from={PaymentStatus.PENDING}
            )
            if not released:
                raise ConflictError("nothing to cancel")
            failed = await self._charging.fail_pending(db, session_id, "payment_cancelled")
            await db.commit()
        if failed is not None:
            await self._events.publish(failed)

    async def _page_payment(self, db: AsyncSession, session_id: int) -> Payment:
        """The payment of a page we serve (NotFoundError for any other, and with a gateway
        that serves its own pages)."""
        payment = await self._payment_of(db, session_id) if self._gateway.instant else None
        if payment is None or payment.method != DEMO_PAYMENT_METHOD:
            raise NotFoundError(f"no test payment for session {session_id}")
        return payment

    # -- card on file ------------------------------------------------------------------------

    async def card_setup_link(self, driver_id: int, *, channel: str | None = None) -> str:
        """A page (setup mode) that saves the driver's card for later charges; it returns to
        `channel`'s place (None: the plain "you may close this page" page).

        Creates the driver's customer at the gateway first if they have none. On completion
        the webhook stores the card and moves a pay-per-session driver to card_on_file.
        """
        customer_id = await self._ensure_customer(driver_id)
        return await self._gateway.card_page(driver_id, customer_id, self.return_url(channel))

    async def member_link(self, driver_id: int, *, channel: str | None = None) -> str:
        """A page (subscription mode) for the member plan's monthly price.

        The plan is recorded on the driver by the gateway's subscription events.
        """
        if not self._member_price_id:
            raise ConflictError("STRIPE_MEMBER_PRICE_ID is not set")
        customer_id = await self._ensure_customer(driver_id)
        return await self._gateway.subscription_page(
            driver_id, customer_id, self._member_price_id, self.return_url(channel)
        )

    async def _ensure_customer(self, driver_id: int) -> str:
        """The driver's customer id at the gateway, created once (idempotency key
        `customer-<id>`)."""
        async with self._sessions() as db:
            driver = await get_or_404(db, Driver, driver_id, "driver")
            customer_id = driver.stripe_customer_id
            name, phone = driver.name, driver.phone
        if customer_id is not None:
            return customer_id
        created = await self._gateway.create_customer(driver_id, name, phone)
        async with self._sessions() as db:
            await db.execute(
                update(Driver)
                .where(col(Driver.id) == driver_id, col(Driver.stripe_customer_id).is_(None))
                .values(stripe_customer_id=created)
            )
            await db.commit()
            stored = await db.get(Driver, driver_id, populate_existing=True)
            assert stored is not None and stored.stripe_customer_id is not None
            return stored.stripe_customer_id

    async def _on_setup_completed(self, event: PageCompleted) -> None:
        if event.driver_id is None or event.setup_id is None:
            await self._record_only(event.event_id)
            return
        card_id = await self._gateway.saved_card(event.setup_id)
        async with self._sessions() as db:
            driver = await db.get(Driver, event.driver_id)
            if driver is not None and card_id:
                driver.stripe_payment_method_id = card_id
                if event.customer_id is not None:
                    driver.stripe_customer_id = event.customer_id
                if driver.billing == Billing.PAY_PER_SESSION:
                    driver.billing = Billing.CARD_ON_FILE
            await self._commit_once(db, event.event_id)

    async def _charge_saved_card(self, event: SessionCompleted) -> None:
        """A card_on_file session: charge exactly the cost off-session, once."""
        session_id = event.session_id
        cost = max(0, event.cost_minor or 0)
        async with self._sessions() as db:
            session = await db.get(ChargingSession, session_id)
            driver = await db.get(Driver, event.driver_id) if event.driver_id else None
            if (
                not self.real_money
                or session is None
                or driver is None
                or driver.billing != Billing.CARD_ON_FILE
                or driver.stripe_customer_id is None
                or driver.stripe_payment_method_id is None
                or cost == 0
            ):
                return
            PAYMENT_LIFECYCLE.check_initial(PaymentStatus.PENDING)
            payment = Payment(
                session_id=session_id,
                driver_id=driver.id,
                method=Billing.CARD_ON_FILE,
                status=PaymentStatus.PENDING,
                currency=session.currency,
            )
            db.add(payment)
            await db.commit()
            customer, card = driver.stripe_customer_id, driver.stripe_payment_method_id
            currency = session.currency
        try:
            charge = await self._gateway.charge_saved_card(
                session_id, customer, card, cost, currency, key=f"charge-{session_id}"
            )
        except PaymentGatewayError as exc:
            log.warning("off-session charge of session %s failed: %s (flagged)", session_id, exc)
            async with self._sessions() as db:
                # From pending only: the "payment failed" webhook may be first.
                flagged = await self._set_payment(
                    db,
                    payment.id,
                    PaymentStatus.FAILED,
                    only_from={PaymentStatus.PENDING},
                    amount_uncollected_minor=cost,
                )
                await db.commit()
            if flagged:
                await self._problem(event, CHARGE_REFUSED)
            return
        captured = charge.captured
        async with self._sessions() as db:
            flagged = await self._set_payment(
                db,
                payment.id,
                PaymentStatus.CAPTURED if captured else PaymentStatus.FAILED,
                only_from={PaymentStatus.PENDING},
                stripe_payment_intent_id=charge.intent_id,
                amount_authorized_minor=cost,
                amount_captured_minor=cost if captured else 0,
                amount_uncollected_minor=0 if captured else cost,
            )
            await db.commit()
        if captured:
            await self._events.publish(
                PaymentCaptured(session_id, event.driver_id, event.channel, cost, 0)
            )
        else:
            log.warning(
                "off-session charge of session %s is %s (flagged)", session_id, charge.status
            )
            if flagged:
                await self._problem(event, CHARGE_REFUSED)

    async def _problem(
        self, event: SessionEvent, problem: str, *, taken_minor: int = 0, owed_minor: int = 0
    ) -> None:
        await self._events.publish(
            PaymentProblem(
                event.session_id, event.driver_id, event.channel, problem, taken_minor, owed_minor
            )
        )

    # -- the webhook --------------------------------------------------------------------------

    async def handle_webhook(self, payload: bytes, signature: str | None) -> None:
        """Verify and process one gateway event; a replayed event changes nothing.

        Only a bad signature or timestamp is refused (WebhookRejectedError: 400). A signed
        event we cannot use (not an object, no `id`, no object, values of the wrong type, ids
        the gateway does not know) is logged and acknowledged: the gateway would only resend
        it. The gateway unreachable while handling it: WebhookRetryError (503, it retries).
        """
        event = self._gateway.parse_event(payload, signature)
        if event is None:
            return
        async with self._sessions() as db:
            if await self._seen(db, event.event_id):
                return
        if isinstance(event, OtherEvent):
            await self._record_only(event.event_id)
            return
        if isinstance(event, UnusableEvent):
            log.warning(
                "gateway event %s (%s) without data.object: ignored", event.event_id, event.kind
            )
            await self._record_only(event.event_id)
            return
        try:
            await self._handle(event)
        except PaymentRequestInvalidError as exc:
            # An id the gateway does not know (a PaymentIntent, Subscription, ...): never retried.
            log.warning(
                "gateway event %s (%s) names what the gateway refuses: %s",
                event.event_id,
                event.kind,
                exc,
            )
            await self._record_only(event.event_id)
        except PaymentGatewayError as exc:
            raise WebhookRetryError(str(exc)) from exc
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            log.exception("gateway event %s (%s) is malformed: ignored", event.event_id, event.kind)
            await self._record_only(event.event_id)

    async def _handle(self, event: GatewayEvent) -> None:
        if isinstance(event, PageCompleted):
            await self._on_page_completed(event)
        elif isinstance(event, PageExpired):
            await self._on_page_expired(event)
        elif isinstance(event, PaymentCanceled):
            await self._on_payment_canceled(event)
        elif isinstance(event, PaymentFailed):
            await self._on_payment_failed(event)
        elif isinstance(event, SubscriptionChanged):
            await self._on_subscription(event)
        else:
            await self._record_only(event.event_id)

    async def _seen(self, db: AsyncSession, event_id: str) -> bool:
        found = await db.scalar(
            select(col(ProcessedEvent.id)).where(
                col(ProcessedEvent.source) == EVENT_SOURCE, col(ProcessedEvent.event_id) == event_id
            )
        )
        return found is not None

    async def _commit_once(self, db: AsyncSession, event_id: str) -> bool:
        """Store the event id with the effects staged in `db`; False (rolled back) on a replay."""
        db.add(ProcessedEvent(source=EVENT_SOURCE, event_id=event_id))
        try:
            await db.commit()
        except IntegrityError:
            await db.rollback()
            return False
        return True

    async def _record_only(self, event_id: str) -> None:
        async with self._sessions() as db:
            await self._commit_once(db, event_id)

    async def _on_page_completed(self, event: PageCompleted) -> None:
        if event.page is PageKind.SAVE_CARD:
            await self._on_setup_completed(event)
            return
        if event.page is not PageKind.HOLD or event.session_id is None:
            log.info("checkout %s (%s page) not handled", event.page_id, event.page)
            await self._record_only(event.event_id)
            return
        session_id = event.session_id
        intent_id = event.intent_id
        if intent_id is None:
            log.warning("checkout %s completed without a PaymentIntent", event.page_id)
            await self._record_only(event.event_id)
            return
        # The page's own payment status stays "unpaid" until capture: ask the payment.
        hold = await self._gateway.hold_state(intent_id)
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
            if payment is None or payment.stripe_checkout_session_id != event.page_id:
                log.warning(
                    "checkout %.80r is not the payment page of charging session %s: ignored",
                    event.page_id,
                    session_id,
                )
                await self._commit_once(db, event.event_id)
                return
            if hold.held:
                changed = await self._set_payment(
                    db,
                    payment.id,
                    PaymentStatus.AUTHORIZED,
                    only_from={PaymentStatus.PENDING},
                    stripe_payment_intent_id=intent_id,
                    amount_authorized_minor=hold.amount_minor,
                )
            else:
                log.warning(
                    "PaymentIntent %s of session %s is %s, not requires_capture: not starting",
                    intent_id,
                    session_id,
                    hold.status,
                )
                changed = await self._set_payment(
                    db,
                    payment.id,
                    only_from={PaymentStatus.PENDING},
                    stripe_payment_intent_id=intent_id,
                )
            session = await db.get(ChargingSession, session_id)
            if not await self._commit_once(db, event.event_id):
                return
        if not (hold.held and changed):
            return
        if session is None or session.status != SessionStatus.PENDING:
            # The session ended (timed out, cancelled) before the money was held: release it.
            self._spawn(self._release(session_id))
        else:
            self._spawn(self._start_after_hold(session_id))

    async def _start_after_hold(self, session_id: int) -> None:
        try:
            await self._charging.start_pending(session_id)
        except (ConflictError, NotFoundError):
            await self._release(session_id)
        # A refused start publishes SessionFailed, which releases the hold.

    async def _on_page_expired(self, event: PageExpired) -> None:
        session_id = event.session_id
        if event.page is not PageKind.HOLD or session_id is None:
            await self._record_only(event.event_id)
            return
        intent_id = event.intent_id
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
            if payment is None or payment.stripe_checkout_session_id != event.page_id:
                log.warning(
                    "expired checkout %.80r is not the payment page of session %s: ignored",
                    event.page_id,
                    session_id,
                )
                await self._commit_once(db, event.event_id)
                return
            if intent_id is not None:
                # Cancelled (released) below; until then it is still pending.
                await self._set_payment(db, payment.id, stripe_payment_intent_id=intent_id)
            else:
                await self._set_payment(
                    db, payment.id, PaymentStatus.FAILED, only_from={PaymentStatus.PENDING}
                )
            failed = await self._charging.fail_pending(db, session_id, "payment_expired")
            if not await self._commit_once(db, event.event_id):
                return
        if failed is not None:
            await self._events.publish(failed)  # tells the driver; releases any hold
        elif intent_id is not None:
            self._spawn(self._release(session_id))

    async def _on_payment_canceled(self, event: PaymentCanceled) -> None:
        intent_id = event.intent_id
        async with self._sessions() as db:
            payment = (
                await db.scalar(
                    select(Payment).where(col(Payment.stripe_payment_intent_id) == intent_id)
                )
                if intent_id is not None
                else None
            )
            if payment is None:
                log.info("canceled PaymentIntent %.80r is none of ours: ignored", intent_id)
            failed = None
            if payment is not None and payment.session_id is not None:
                await self._set_payment(
                    db, payment.id, PaymentStatus.RELEASED, only_from=OPEN_PAYMENT
                )
                failed = await self._charging.fail_pending(
                    db, payment.session_id, "payment_canceled"
                )
            if not await self._commit_once(db, event.event_id):
                return
        if failed is not None:
            await self._events.publish(failed)

    async def _on_payment_failed(self, event: PaymentFailed) -> None:
        """A declined card: a problem for a saved card's off-session charge only.

        On the payment page the driver may try another card, and the page's expiry ends
        the session, so a decline there is not a problem yet.
        """
        log.info("PaymentIntent %.80r failed: %.200r", event.intent_id, event.message)
        session_id = event.session_id
        problem = None
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id) if session_id is not None else None
            session = await db.get(ChargingSession, session_id) if session_id is not None else None
            if (
                payment is not None
                and session is not None
                and payment.method == Billing.CARD_ON_FILE
                and await self._set_payment(
                    db,
                    payment.id,
                    PaymentStatus.FAILED,
                    only_from={PaymentStatus.PENDING},
                    stripe_payment_intent_id=event.intent_id,
                    amount_uncollected_minor=event.amount_minor,
                )
            ):
                problem = PaymentProblem(
                    session.id or 0, session.driver_id, session.channel, CHARGE_REFUSED
                )
            if not await self._commit_once(db, event.event_id):
                return
        if problem is not None:
            await self._events.publish(problem)

    async def _on_subscription(self, event: SubscriptionChanged) -> None:
        """Record the plan on the driver: "member" while their subscription is active.

        Subscription events may arrive out of order, so the subscription's current status is
        asked from the gateway rather than taken from the event.
        """
        subscription_id, customer = event.subscription_id, event.customer_id
        if subscription_id is None or customer is None:
            log.info("subscription event %s without usable ids: ignored", event.event_id)
            await self._record_only(event.event_id)
            return
        active = await self._gateway.subscription_active(subscription_id)
        plan = MEMBER_PLAN if active else PAYG_PLAN
        async with self._sessions() as db:
            await db.execute(
                update(Driver).where(col(Driver.stripe_customer_id) == customer).values(plan=plan)
            )
            await self._commit_once(db, event.event_id)

    # -- after the charge ---------------------------------------------------------------------

    async def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, SessionCompleted):
            work = self._settle(event)
        elif isinstance(event, SessionFailed):
            work = self._release(event.session_id)
        else:
            return
        if self._gateway.instant:
            await self._guarded(work)  # nothing leaves the process: settled before the receipt
        else:
            self._spawn(work)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(self._guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception:
            log.exception("payment work failed")

    async def drain(self) -> None:
        """Wait for gateway calls in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _settle(self, event: SessionCompleted) -> None:
        """Capture exactly the cost (at most the hold); nothing to pay cancels the hold."""
        session_id = event.session_id
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
        if payment is None:
            await self._charge_saved_card(event)
            return
        if payment.status != PaymentStatus.AUTHORIZED:
            return
        intent_id = payment.stripe_payment_intent_id
        assert intent_id is not None or self._gateway.instant
        cost = max(0, event.cost_minor or 0)
        if cost == 0:
            await self._release(session_id)
            return
        amount = min(cost, payment.amount_authorized_minor)
        uncollected = cost - amount
        if intent_id is not None:
            try:
                await self._gateway.capture(intent_id, amount, key=f"capture-{session_id}")
            except PaymentGatewayError as exc:
                # The payment stays `authorized` (a retry may still capture); support follows.
                log.error("capture of session %s refused: %s", session_id, exc)
                await self._problem(event, CAPTURE_REFUSED)
                return
        async with self._sessions() as db:
            changed = await self._set_payment(
                db,
                payment.id,
                PaymentStatus.CAPTURED,
                only_from={PaymentStatus.AUTHORIZED},
                amount_captured_minor=amount,
                amount_uncollected_minor=uncollected,
            )
            await db.commit()
        if not changed:
            return
        if uncollected:
            log.warning(
                "session %s cost %s above the hold of %s: %s %s NOT collected (flagged)",
                session_id,
                cost,
                payment.amount_authorized_minor,
                uncollected,
                payment.currency,
            )
        if self.real_money:  # the demo's test payment took no money to thank anyone for
            await self._events.publish(
                PaymentCaptured(session_id, event.driver_id, event.channel, amount, uncollected)
            )
        if uncollected:
            await self._problem(event, UNCOLLECTED, taken_minor=amount, owed_minor=uncollected)

    async def _release(self, session_id: int) -> None:
        """Cancel the session's payment (the hold goes back) or close its payment page."""
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
        if payment is None or payment.status not in OPEN_PAYMENT:
            return
        if payment.stripe_payment_intent_id is not None:
            await self._gateway.cancel(payment.stripe_payment_intent_id, key=f"cancel-{session_id}")
        elif payment.stripe_checkout_session_id is not None:
            # Nobody may pay for a session that is over; the gateway then says it expired.
            try:
                await self._gateway.expire_page(payment.stripe_checkout_session_id)
            except PaymentGatewayError as exc:
                log.info("could not expire checkout of session %s: %s", session_id, exc)
            return
        elif not self._gateway.instant:
            return  # the page is still being made: its expiry event ends it
        async with self._sessions() as db:
            await self._set_payment(db, payment.id, PaymentStatus.RELEASED, only_from=OPEN_PAYMENT)
            await db.commit()

    # -- refunds ------------------------------------------------------------------------------

    async def refund(self, session_id: int, amount_minor: int | None = None) -> Payment:
        """Refund all that is left of the capture, or `amount_minor` of it; never more.

        The gateway's failure (PaymentGatewayError) is raised after the claim is given back.
        """
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
            if payment is None:
                raise NotFoundError(f"charging session {session_id} has no card payment")
            if not PAYMENT_LIFECYCLE.allows(payment.status, PaymentStatus.REFUNDED):
                raise ConflictError(f"the payment of session {session_id} is {payment.status}")
            left = payment.amount_captured_minor - payment.amount_refunded_minor
            amount = left if amount_minor is None else amount_minor
            if amount <= 0 or amount > left:
                raise ConflictError(f"can refund 1..{left} {payment.currency}, not {amount}")
            before = payment.amount_refunded_minor
            number = payment.refund_count + 1
            # Claim the amount first (compare-and-set), so two refunds cannot both pass.
            claimed = await db.execute(
                update(Payment)
                .where(
                    col(Payment.id) == payment.id,
                    col(Payment.amount_refunded_minor) == before,
                    col(Payment.refund_count) == payment.refund_count,
                )
                .values(
                    amount_refunded_minor=before + amount, refund_count=number, updated_at=utcnow()
                )
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                raise ConflictError("another refund of this payment is in progress; try again")
            await db.commit()
        try:
            await self._gateway.refund(
                payment.stripe_payment_intent_id or "", amount, key=f"refund-{session_id}-{number}"
            )
        except PaymentGatewayError:
            async with self._sessions() as db:  # nothing was refunded: give the claim back
                await db.execute(
                    update(Payment)
                    .where(col(Payment.id) == payment.id, col(Payment.refund_count) == number)
                    .values(amount_refunded_minor=before, refund_count=number - 1)
                )
                await db.commit()
            raise
        async with self._sessions() as db:
            await self._set_payment(db, payment.id, PaymentStatus.REFUNDED)
            await db.commit()
            current = await db.get(Payment, payment.id, populate_existing=True)
            assert current is not None
            return current

    # -- helpers ------------------------------------------------------------------------------

    async def _payment_of(self, db: AsyncSession, session_id: int) -> Payment | None:
        return await db.scalar(
            select(Payment)
            .where(col(Payment.session_id) == session_id)
            .order_by(col(Payment.id).desc())
        )

    async def _set_payment(
        self,
        db: AsyncSession,
        payment_id: int | None,
        status: PaymentStatus | None = None,
        *,
        only_from: Iterable[PaymentStatus] | None = None,
        **values: Any,
    ) -> bool:
        """Update one payment row; True if it changed.

        With `status`, a compare-and-set from the statuses PAYMENT_LIFECYCLE allows to move to
        it (narrowed by `only_from`; a move the table lacks raises IllegalTransition). Without,
        other columns only, from `only_from` when given.
        """
        values.setdefault("updated_at", utcnow())
        query = update(Payment).where(col(Payment.id) == payment_id)
        if status is not None:
            sources = PAYMENT_LIFECYCLE.sources(status, only_from)
            query = query.where(col(Payment.status).in_(sources))
            values["status"] = status
        elif only_from is not None:
            query = query.where(col(Payment.status).in_(sorted(only_from)))
        result = await db.execute(query.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]


__all__ = [
    "CHECKOUT_LIFETIME",
    "DEMO_PAYMENT_METHOD",
    "PAYMENT_DONE_PATH",
    "PaymentService",
    "PaymentUnavailableError",
    "WebhookRejectedError",
    "WebhookRetryError",
]
