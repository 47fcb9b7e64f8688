"""Card payments with Stripe: a hold before the start, exactly the cost captured after.

Pay per session: the driver confirms the price, gets a Stripe Checkout link for a hold of
`STRIPE_HOLD_AMOUNT_MINOR` (`capture_method=manual`); the charging session waits `pending`.
Only `checkout.session.completed` with the PaymentIntent in `requires_capture` starts the
charger. While it charges, `backend.services.hold_guard` stops it before its cost passes
the hold. On completion exactly the cost is captured (at most the hold; a rest, when the stop
landed late, is flagged); a failed start, a timed-out payment or an expired checkout cancels
the PaymentIntent so the hold is released.

Money we cannot take as planned (a declined saved card, a refused capture, a cost above the
hold) is published as a `PaymentProblem`: the notifier puts the driver's chat in the support
queue and tells them.

Every Stripe call that moves money carries a business idempotency key (`capture-<session>`,
`cancel-<session>`, `refund-<session>-<n>`). Webhook events are verified with
`stripe.WebhookSignature.verify_header` and processed once: the event id is stored in
`processed_event` in the same transaction as its effect on our rows. A signed event we cannot
use (malformed, or naming ids that are not ours) is logged and acknowledged, never a 500.
Stripe calls use the SDK's async methods, so nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import stripe
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import (
    Billing,
    ChargingSession,
    Driver,
    Payment,
    PaymentStatus,
    ProcessedEvent,
)
from backend.services.charging import ChargingService
from backend.services.errors import ConflictError, NotFoundError
from backend.services.events import (
    EventBus,
    PaymentCaptured,
    PaymentProblem,
    SessionCompleted,
    SessionEvent,
    SessionFailed,
)
from backend.settings import Settings

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams, PaymentIntentCreateParams
    from stripe.params.checkout import SessionCreateParams

log = logging.getLogger(__name__)

CHECKOUT_LIFETIME = timedelta(minutes=30)
# Stripe refuses an `expires_at` less than 30 minutes after creation by its own clock.
CHECKOUT_SLACK = timedelta(minutes=1)
# The connector stays held for the driver this long after the payment page expires, so the
# `checkout.session.expired` webhook (not the start timer) normally ends the session.
HOLD_MARGIN = timedelta(minutes=5)
WEBHOOK_TOLERANCE = 300  # seconds; Stripe's default
EVENT_SOURCE = "stripe"
PAYG_PLAN = "payg"
MEMBER_PLAN = "member"
ACTIVE_SUBSCRIPTION = {"active", "trialing", "past_due"}
# PaymentProblem.problem
CHARGE_REFUSED = "charge_refused"
CAPTURE_REFUSED = "capture_refused"
UNCOLLECTED = "uncollected"
MAX_EVENT_ID = 255  # processed_event.event_id
MAX_STRIPE_ID = 255  # payment.stripe_*_id
MAX_CUSTOMER_ID = 64  # driver.stripe_customer_id
MAX_ROW_ID = 2**31 - 1  # an INTEGER primary key; larger ids in metadata are no session of ours


class PaymentUnavailableError(RuntimeError):
    """Stripe could not be reached or refused to create the payment page."""


class WebhookRejectedError(ValueError):
    """A webhook whose signature or timestamp does not verify (HTTP 400)."""


class WebhookRetryError(RuntimeError):
    """Stripe could not be asked while handling a webhook (HTTP 503: Stripe sends it again)."""


class PaymentService:
    """Creates Checkout Sessions, handles Stripe's webhooks, captures and releases holds.

    Also an EventBus subscriber: SessionCompleted captures, SessionFailed releases; the Stripe
    calls run in their own tasks so a charger's message never waits on Stripe.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        charging: ChargingService,
        events: EventBus,
        settings: Settings,
        *,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        self._sessions = sessions
        self._charging = charging
        self._events = events
        self._settings = settings
        base: dict[str, str] = {}
        if settings.stripe_api_base:
            base["api"] = settings.stripe_api_base.rstrip("/")
        self._client = stripe.StripeClient(
            settings.stripe_api_key,
            http_client=http_client,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._handlers: dict[str, Callable[[str, dict[str, Any]], Awaitable[None]]] = {
            "checkout.session.completed": self._on_checkout_completed,
            "checkout.session.expired": self._on_checkout_expired,
            "payment_intent.canceled": self._on_intent_canceled,
            "payment_intent.payment_failed": self._on_intent_failed,
            "customer.subscription.created": self._on_subscription,
            "customer.subscription.updated": self._on_subscription,
            "customer.subscription.deleted": self._on_subscription,
        }

    @property
    def hold_amount_minor(self) -> int:
        return self._settings.stripe_hold_amount_minor

    # -- the payment page ---------------------------------------------------------------------

    async def checkout(
        self, charger_id: str, connector_id: int, *, driver_id: int, channel: str
    ) -> tuple[ChargingSession, str]:
        """Hold the connector (a pending session) and create the Checkout Session for it.

        Returns the session and the payment page's URL. Raises the charging service's
        RefusedError if the start is not allowed, PaymentUnavailableError if Stripe fails
        (the pending session is then failed quietly: the caller tells the driver).
        """
        expires_at = utcnow() + CHECKOUT_LIFETIME + CHECKOUT_SLACK
        session = await self._charging.reserve(
            charger_id,
            connector_id,
            driver_id=driver_id,
            channel=channel,
            hold_until=expires_at + HOLD_MARGIN,
        )
        assert session.id is not None
        async with self._sessions() as db:
            payment = Payment(
                session_id=session.id,
                driver_id=driver_id,
                method=Billing.PAY_PER_SESSION,
                status=PaymentStatus.PENDING,
                currency=session.currency,
            )
            db.add(payment)
            await db.commit()
            payment_id = payment.id
        try:
            created = await self._client.v1.checkout.sessions.create_async(
                self._checkout_params(session, driver_id, expires_at),
                {"idempotency_key": f"checkout-{session.id}"},
            )
        except stripe.StripeError as exc:
            log.error("Stripe refused the checkout for session %s: %s", session.id, exc)
            async with self._sessions() as db:
                await self._set_payment(db, payment_id, status=PaymentStatus.FAILED)
                await self._charging.fail_pending(db, session.id, "payment_unavailable")
                await db.commit()
            raise PaymentUnavailableError(str(exc)) from exc
        async with self._sessions() as db:
            await self._set_payment(db, payment_id, stripe_checkout_session_id=created.id)
            await db.commit()
        assert created.url is not None
        return session, created.url

    def _checkout_params(
        self, session: ChargingSession, driver_id: int, expires_at: datetime
    ) -> SessionCreateParams:
        metadata = {"charging_session_id": str(session.id), "driver_id": str(driver_id)}
        back = self._back_url
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": session.currency.lower(),
                        "unit_amount": self.hold_amount_minor,
                        "product_data": {"name": f"Laddning / Charging #{session.id}"},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {"capture_method": "manual", "metadata": metadata},
            "client_reference_id": str(session.id),
            "metadata": metadata,
            "expires_at": int(expires_at.timestamp()),
            "success_url": back,
            "cancel_url": back,
        }
        return cast("SessionCreateParams", params)

    # -- card on file ------------------------------------------------------------------------

    async def card_setup_link(self, driver_id: int) -> str:
        """A Checkout page (setup mode) that saves the driver's card for later charges.

        Creates the driver's Stripe Customer first if they have none. On completion the
        webhook stores the card and moves a pay-per-session driver to card_on_file.
        """
        customer_id = await self._ensure_customer(driver_id)
        metadata = {"driver_id": str(driver_id), "purpose": "card_on_file"}
        params = {
            "mode": "setup",
            "customer": customer_id,
            "currency": "sek",
            "client_reference_id": f"driver-{driver_id}",
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
            "success_url": self._back_url,
            "cancel_url": self._back_url,
        }
        created = await self._client.v1.checkout.sessions.create_async(
            cast("SessionCreateParams", params)
        )
        assert created.url is not None
        return created.url

    async def member_link(self, driver_id: int) -> str:
        """A Checkout page (subscription mode) for the member plan's monthly price.

        The plan is recorded on the driver by the `customer.subscription.*` webhooks.
        """
        if not self._settings.stripe_member_price_id:
            raise ConflictError("STRIPE_MEMBER_PRICE_ID is not set")
        customer_id = await self._ensure_customer(driver_id)
        metadata = {"driver_id": str(driver_id), "purpose": "member_plan"}
        params = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": self._settings.stripe_member_price_id, "quantity": 1}],
            "client_reference_id": f"driver-{driver_id}",
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": self._back_url,
            "cancel_url": self._back_url,
        }
        created = await self._client.v1.checkout.sessions.create_async(
            cast("SessionCreateParams", params)
        )
        assert created.url is not None
        return created.url

    @property
    def _back_url(self) -> str:
        return f"https://t.me/{self._settings.telegram_bot_username}"

    async def _ensure_customer(self, driver_id: int) -> str:
        """The driver's Stripe Customer id, created once (idempotency key `customer-<id>`)."""
        async with self._sessions() as db:
            driver = await db.get(Driver, driver_id)
            if driver is None:
                raise NotFoundError(f"driver {driver_id} not found")
            customer_id = driver.stripe_customer_id
            name, phone = driver.name, driver.phone
        if customer_id is not None:
            return customer_id
        details: dict[str, Any] = {"name": name, "metadata": {"driver_id": str(driver_id)}}
        if phone:
            details["phone"] = phone
        customer = await self._client.v1.customers.create_async(
            cast("CustomerCreateParams", details),
            {"idempotency_key": f"customer-{driver_id}"},
        )
        async with self._sessions() as db:
            await db.execute(
                update(Driver)
                .where(col(Driver.id) == driver_id, col(Driver.stripe_customer_id).is_(None))
                .values(stripe_customer_id=customer.id)
            )
            await db.commit()
            driver = await db.get(Driver, driver_id, populate_existing=True)
            assert driver is not None and driver.stripe_customer_id is not None
            return driver.stripe_customer_id

    async def _on_setup_completed(self, event_id: str, obj: dict[str, Any]) -> None:
        metadata = obj.get("metadata")
        driver_id = _row_id(metadata.get("driver_id") if isinstance(metadata, dict) else None)
        setup_id = _text(obj, "setup_intent")
        if driver_id is None or setup_id is None:
            await self._record_only(event_id)
            return
        intent = await self._client.v1.setup_intents.retrieve_async(setup_id)
        method = intent.payment_method
        method_id = method if isinstance(method, str) or method is None else method.id
        async with self._sessions() as db:
            driver = await db.get(Driver, driver_id)
            if driver is not None and intent.status == "succeeded" and method_id:
                driver.stripe_payment_method_id = method_id
                if _text(obj, "customer", MAX_CUSTOMER_ID) is not None:
                    driver.stripe_customer_id = _text(obj, "customer", MAX_CUSTOMER_ID)
                if driver.billing == Billing.PAY_PER_SESSION:
                    driver.billing = Billing.CARD_ON_FILE
            await self._commit_once(db, event_id)

    async def _charge_saved_card(self, event: SessionCompleted) -> None:
        """A card_on_file session: charge exactly the cost off-session, once."""
        session_id = event.session_id
        cost = max(0, event.cost_minor or 0)
        async with self._sessions() as db:
            session = await db.get(ChargingSession, session_id)
            driver = await db.get(Driver, event.driver_id) if event.driver_id else None
            if (
                session is None
                or driver is None
                or driver.billing != Billing.CARD_ON_FILE
                or driver.stripe_customer_id is None
                or driver.stripe_payment_method_id is None
                or cost == 0
            ):
                return
            payment = Payment(
                session_id=session_id,
                driver_id=driver.id,
                method=Billing.CARD_ON_FILE,
                status=PaymentStatus.PENDING,
                currency=session.currency,
            )
            db.add(payment)
            await db.commit()
            customer, method = driver.stripe_customer_id, driver.stripe_payment_method_id
            currency = session.currency.lower()
        params = {
            "amount": cost,
            "currency": currency,
            "customer": customer,
            "payment_method": method,
            "off_session": True,
            "confirm": True,
            "metadata": {"charging_session_id": str(session_id)},
        }
        try:
            intent = await self._client.v1.payment_intents.create_async(
                cast("PaymentIntentCreateParams", params),
                {"idempotency_key": f"charge-{session_id}"},
            )
        except stripe.StripeError as exc:
            log.warning("off-session charge of session %s failed: %s (flagged)", session_id, exc)
            async with self._sessions() as db:
                # From pending only: the `payment_intent.payment_failed` webhook may be first.
                flagged = await self._set_payment(
                    db,
                    payment.id,
                    {PaymentStatus.PENDING},
                    status=PaymentStatus.FAILED,
                    amount_uncollected_minor=cost,
                )
                await db.commit()
            if flagged:
                await self._problem(event, CHARGE_REFUSED)
            return
        captured = intent.status == "succeeded"
        async with self._sessions() as db:
            flagged = await self._set_payment(
                db,
                payment.id,
                {PaymentStatus.PENDING},
                status=PaymentStatus.CAPTURED if captured else PaymentStatus.FAILED,
                stripe_payment_intent_id=intent.id,
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
                "off-session charge of session %s is %s (flagged)", session_id, intent.status
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
        """Verify and process one Stripe event; a replayed event changes nothing.

        Only a bad signature or timestamp is refused (WebhookRejectedError: 400). A signed
        event we cannot use (not an object, no `id`, no `data.object`, values of the wrong
        type, ids Stripe does not know) is logged and acknowledged: Stripe would only resend
        it. Stripe unreachable while handling it: WebhookRetryError (503, Stripe retries).
        """
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._settings.stripe_webhook_secret, WEBHOOK_TOLERANCE
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookRejectedError(str(exc)) from exc
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("signed Stripe webhook is not JSON: ignored")
            return
        event_id = _clean_text(event.get("id"), MAX_EVENT_ID) if isinstance(event, dict) else None
        if event_id is None:
            # Not the payload itself: it may carry a customer's details.
            log.warning(
                "signed Stripe webhook without a usable event id ignored (%s, %s bytes)",
                type(event).__name__,
                len(payload),
            )
            return
        kind = event.get("type")
        async with self._sessions() as db:
            if await self._seen(db, event_id):
                return
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            await self._record_only(event_id)
            return
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            log.warning("Stripe event %s (%s) without data.object: ignored", event_id, kind)
            await self._record_only(event_id)
            return
        try:
            await handler(event_id, obj)
        except stripe.InvalidRequestError as exc:
            # An id Stripe does not know (a PaymentIntent, Subscription, ...): never retried.
            log.warning("Stripe event %s (%s) names what Stripe refuses: %s", event_id, kind, exc)
            await self._record_only(event_id)
        except stripe.StripeError as exc:
            raise WebhookRetryError(str(exc)) from exc
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            log.exception("Stripe event %s (%s) is malformed: ignored", event_id, kind)
            await self._record_only(event_id)

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

    async def _on_checkout_completed(self, event_id: str, obj: dict[str, Any]) -> None:
        if obj.get("mode") == "setup":
            await self._on_setup_completed(event_id, obj)
            return
        if obj.get("mode") != "payment" or _session_id(obj) is None:
            log.info("Stripe checkout %s (mode %s) not handled", obj.get("id"), obj.get("mode"))
            await self._record_only(event_id)
            return
        session_id = _session_id(obj)
        assert session_id is not None
        intent_id = _text(obj, "payment_intent")
        if intent_id is None:
            log.warning("checkout %s completed without a PaymentIntent", obj.get("id"))
            await self._record_only(event_id)
            return
        # The Checkout Session's payment_status stays "unpaid" until capture: ask the intent.
        intent = await self._client.v1.payment_intents.retrieve_async(intent_id)
        held = intent.status == "requires_capture"
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
            if payment is None or payment.stripe_checkout_session_id != obj.get("id"):
                log.warning(
                    "checkout %.80r is not the payment page of charging session %s: ignored",
                    obj.get("id"),
                    session_id,
                )
                await self._commit_once(db, event_id)
                return
            values: dict[str, Any] = {"stripe_payment_intent_id": intent_id}
            if held:
                values.update(
                    status=PaymentStatus.AUTHORIZED,
                    amount_authorized_minor=intent.amount_capturable or intent.amount,
                )
            else:
                log.warning(
                    "PaymentIntent %s of session %s is %s, not requires_capture: not starting",
                    intent_id,
                    session_id,
                    intent.status,
                )
            changed = await self._set_payment(db, payment.id, {PaymentStatus.PENDING}, **values)
            session = await db.get(ChargingSession, session_id)
            if not await self._commit_once(db, event_id):
                return
        if not (held and changed):
            return
        if session is None or session.status != "pending":
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

    async def _on_checkout_expired(self, event_id: str, obj: dict[str, Any]) -> None:
        session_id = _session_id(obj)
        if obj.get("mode") != "payment" or session_id is None:
            await self._record_only(event_id)
            return
        intent_id = _text(obj, "payment_intent")
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
            if payment is None or payment.stripe_checkout_session_id != obj.get("id"):
                log.warning(
                    "expired checkout %.80r is not the payment page of session %s: ignored",
                    obj.get("id"),
                    session_id,
                )
                await self._commit_once(db, event_id)
                return
            if intent_id is not None:
                # Cancelled (released) below; until then it is still pending.
                await self._set_payment(db, payment.id, stripe_payment_intent_id=intent_id)
            else:
                await self._set_payment(
                    db, payment.id, {PaymentStatus.PENDING}, status=PaymentStatus.FAILED
                )
            failed = await self._charging.fail_pending(db, session_id, "payment_expired")
            if not await self._commit_once(db, event_id):
                return
        if failed is not None:
            await self._events.publish(failed)  # tells the driver; releases any hold
        elif intent_id is not None:
            self._spawn(self._release(session_id))

    async def _on_intent_canceled(self, event_id: str, obj: dict[str, Any]) -> None:
        intent_id = _text(obj, "id")
        async with self._sessions() as db:
            payment = (
                await db.scalar(
                    select(Payment).where(col(Payment.stripe_payment_intent_id) == intent_id)
                )
                if intent_id is not None
                else None
            )
            if payment is None:
                log.info("canceled PaymentIntent %.80r is none of ours: ignored", obj.get("id"))
            failed = None
            if payment is not None and payment.session_id is not None:
                await self._set_payment(
                    db,
                    payment.id,
                    {PaymentStatus.PENDING, PaymentStatus.AUTHORIZED},
                    status=PaymentStatus.RELEASED,
                )
                failed = await self._charging.fail_pending(
                    db, payment.session_id, "payment_canceled"
                )
            if not await self._commit_once(db, event_id):
                return
        if failed is not None:
            await self._events.publish(failed)

    async def _on_intent_failed(self, event_id: str, obj: dict[str, Any]) -> None:
        """A declined card: a problem for a saved card's off-session charge only.

        On the Checkout page the driver may try another card, and the page's expiry ends
        the session, so a decline there is not a problem yet.
        """
        error = obj.get("last_payment_error")
        message = error.get("message") if isinstance(error, dict) else None
        log.info("PaymentIntent %.80r failed: %.200r", obj.get("id"), message)
        session_id = _session_id(obj)
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
                    {PaymentStatus.PENDING},
                    status=PaymentStatus.FAILED,
                    stripe_payment_intent_id=_text(obj, "id"),
                    amount_uncollected_minor=_row_id(obj.get("amount")) or 0,
                )
            ):
                problem = PaymentProblem(
                    session.id or 0, session.driver_id, session.channel, CHARGE_REFUSED
                )
            if not await self._commit_once(db, event_id):
                return
        if problem is not None:
            await self._events.publish(problem)

    async def _on_subscription(self, event_id: str, obj: dict[str, Any]) -> None:
        """Record the plan on the driver: "member" while their subscription is active.

        Subscription events may arrive out of order, so the subscription's current status is
        asked from Stripe rather than taken from the event.
        """
        subscription_id, customer = _text(obj, "id"), _text(obj, "customer", MAX_CUSTOMER_ID)
        if subscription_id is None or customer is None:
            log.info("subscription event %s without usable ids: ignored", event_id)
            await self._record_only(event_id)
            return
        current = await self._client.v1.subscriptions.retrieve_async(subscription_id)
        plan = MEMBER_PLAN if current.status in ACTIVE_SUBSCRIPTION else PAYG_PLAN
        async with self._sessions() as db:
            await db.execute(
                update(Driver).where(col(Driver.stripe_customer_id) == customer).values(plan=plan)
            )
            await self._commit_once(db, event_id)

    # -- after the charge ---------------------------------------------------------------------

    async def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, SessionCompleted):
            self._spawn(self._settle(event))
        elif isinstance(event, SessionFailed):
            self._spawn(self._release(event.session_id))

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
        """Wait for Stripe calls in flight (tests, shutdown)."""
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
        assert payment.stripe_payment_intent_id is not None
        cost = max(0, event.cost_minor or 0)
        if cost == 0:
            await self._release(session_id)
            return
        amount = min(cost, payment.amount_authorized_minor)
        uncollected = cost - amount
        try:
            await self._client.v1.payment_intents.capture_async(
                payment.stripe_payment_intent_id,
                {"amount_to_capture": amount},
                {"idempotency_key": f"capture-{session_id}"},
            )
        except stripe.StripeError as exc:
            # The payment stays `authorized` (a retry may still capture); support follows up.
            log.error("capture of session %s refused: %s", session_id, exc)
            await self._problem(event, CAPTURE_REFUSED)
            return
        async with self._sessions() as db:
            changed = await self._set_payment(
                db,
                payment.id,
                {PaymentStatus.AUTHORIZED},
                status=PaymentStatus.CAPTURED,
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
        await self._events.publish(
            PaymentCaptured(session_id, event.driver_id, event.channel, amount, uncollected)
        )
        if uncollected:
            await self._problem(event, UNCOLLECTED, taken_minor=amount, owed_minor=uncollected)

    async def _release(self, session_id: int) -> None:
        """Cancel the session's PaymentIntent (the hold goes back) or close its payment page."""
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
        if payment is None or payment.status not in {
            PaymentStatus.PENDING,
            PaymentStatus.AUTHORIZED,
        }:
            return
        if payment.stripe_payment_intent_id is None:
            if payment.stripe_checkout_session_id is not None:
                # Nobody may pay for a session that is over; Stripe then sends `expired`.
                try:
                    await self._client.v1.checkout.sessions.expire_async(
                        payment.stripe_checkout_session_id
                    )
                except stripe.StripeError as exc:
                    log.info("could not expire checkout of session %s: %s", session_id, exc)
            return
        await self._client.v1.payment_intents.cancel_async(
            payment.stripe_payment_intent_id,
            None,
            {"idempotency_key": f"cancel-{session_id}"},
        )
        async with self._sessions() as db:
            await self._set_payment(
                db,
                payment.id,
                {PaymentStatus.PENDING, PaymentStatus.AUTHORIZED},
                status=PaymentStatus.RELEASED,
            )
            await db.commit()

    # -- refunds ------------------------------------------------------------------------------

    async def refund(self, session_id: int, amount_minor: int | None = None) -> Payment:
        """Refund all that is left of the capture, or `amount_minor` of it; never more."""
        async with self._sessions() as db:
            payment = await self._payment_of(db, session_id)
            if payment is None:
                raise NotFoundError(f"charging session {session_id} has no card payment")
            if payment.status not in {PaymentStatus.CAPTURED, PaymentStatus.REFUNDED}:
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
            await self._client.v1.refunds.create_async(
                {"payment_intent": payment.stripe_payment_intent_id or "", "amount": amount},
                {"idempotency_key": f"refund-{session_id}-{number}"},
            )
        except stripe.StripeError:
            async with self._sessions() as db:  # nothing was refunded: give the claim back
                await db.execute(
                    update(Payment)
                    .where(col(Payment.id) == payment.id, col(Payment.refund_count) == number)
                    .values(amount_refunded_minor=before, refund_count=number - 1)
                )
                await db.commit()
            raise
        async with self._sessions() as db:
            await self._set_payment(db, payment.id, status=PaymentStatus.REFUNDED)
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
        from_statuses: set[str] | None = None,
        **values: Any,
    ) -> bool:
        values.setdefault("updated_at", utcnow())
        query = update(Payment).where(col(Payment.id) == payment_id)
        if from_statuses is not None:
            query = query.where(col(Payment.status).in_(sorted(from_statuses)))
        result = await db.execute(query.values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _session_id(obj: dict[str, Any]) -> int | None:
    """The charging session an object names (client_reference_id or metadata), if it can be."""
    metadata = obj.get("metadata")
    raw = obj.get("client_reference_id") or (
        metadata.get("charging_session_id") if isinstance(metadata, dict) else None
    )
    return _row_id(raw)


def _row_id(raw: object) -> int | None:
    """A positive integer that fits a database INTEGER, from an int or a decimal string."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        return None
    try:
        value = int(raw)
    except ValueError:
        return None
    return value if 0 < value <= MAX_ROW_ID else None


def _clean_text(value: object, limit: int = MAX_STRIPE_ID) -> str | None:
    """A non-empty printable string of at most `limit` characters (what a Stripe id is), or
    None: a NUL (PostgreSQL refuses it in text, even in a lookup), another control character,
    an over-long string or another type counts as missing."""
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    return None


def _text(obj: dict[str, Any], key: str, limit: int = MAX_STRIPE_ID) -> str | None:
    """An id (or other short text) of a Stripe object; None when missing or unusable."""
    return _clean_text(obj.get(key), limit)


__all__ = [
    "PaymentService",
    "PaymentUnavailableError",
    "WebhookRejectedError",
    "WebhookRetryError",
]
