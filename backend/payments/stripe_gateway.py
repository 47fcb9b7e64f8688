"""The card gateway on Stripe: Checkout pages, PaymentIntents, Customers, webhooks.

Every Stripe call is here, with the SDK's async methods (nothing blocks the event loop), and
every `stripe.StripeError` becomes one of our own PaymentGatewayError types. Webhooks are
verified with `stripe.WebhookSignature.verify_header` and read into our typed events; the
payment service never sees a Stripe object.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

import stripe

from backend.services.payments import CHECKOUT_LIFETIME
from backend.services.ports import (
    GatewayEvent,
    HoldPageRequest,
    HoldState,
    HostedPage,
    OtherEvent,
    PageCompleted,
    PageExpired,
    PageKind,
    PaymentCanceled,
    PaymentDeclinedError,
    PaymentFailed,
    PaymentGatewayError,
    PaymentGatewayUnavailableError,
    PaymentRequestInvalidError,
    SavedCardCharge,
    SubscriptionChanged,
    UnusableEvent,
    WebhookRejectedError,
)

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams, PaymentIntentCreateParams
    from stripe.params.checkout import SessionCreateParams

log = logging.getLogger(__name__)

# Stripe refuses an `expires_at` less than 30 minutes after creation by its own clock.
CHECKOUT_SLACK = timedelta(minutes=1)
WEBHOOK_TOLERANCE = 300  # seconds; Stripe's default
ACTIVE_SUBSCRIPTION = {"active", "trialing", "past_due"}
MAX_EVENT_ID = 255  # processed_event.event_id
MAX_STRIPE_ID = 255  # payment.stripe_*_id
MAX_CUSTOMER_ID = 64  # driver.stripe_customer_id
MAX_ROW_ID = 2**31 - 1  # an INTEGER primary key; larger ids in metadata are no session of ours
PAGE_KINDS = {
    "payment": PageKind.HOLD,
    "setup": PageKind.SAVE_CARD,
    "subscription": PageKind.SUBSCRIPTION,
}

T = TypeVar("T")


def gateway_error(exc: stripe.StripeError) -> PaymentGatewayError:
    """Our failure for Stripe's (its message kept)."""
    message = str(exc)
    if isinstance(exc, stripe.CardError):
        return PaymentDeclinedError(message)
    if isinstance(exc, stripe.InvalidRequestError):
        return PaymentRequestInvalidError(message)
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)):
        return PaymentGatewayUnavailableError(message)
    return PaymentGatewayError(message)


async def _call(request: Callable[[], Awaitable[T]]) -> T:
    try:
        return await request()
    except stripe.StripeError as exc:
        raise gateway_error(exc) from exc


class StripeGateway:
    """The PaymentGateway port on the Stripe SDK (`http_client` replaces its HTTP client,
    e.g. with a test double; `api_base` its address)."""

    real_money = True
    instant = False
    page_lifetime = CHECKOUT_LIFETIME + CHECKOUT_SLACK

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str = "",
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        base: dict[str, str] = {}
        if api_base:
            base["api"] = api_base.rstrip("/")
        self._client = stripe.StripeClient(
            api_key,
            http_client=http_client,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
        )
        self._webhook_secret = webhook_secret

    # -- pages --------------------------------------------------------------------------------

    async def hold_page(self, request: HoldPageRequest) -> HostedPage:
        """A Checkout Session (payment mode, `capture_method=manual`)."""
        metadata = {
            "charging_session_id": str(request.session_id),
            "driver_id": str(request.driver_id),
        }
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_minor,
                        "product_data": {"name": f"Laddning / Charging #{request.session_id}"},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {"capture_method": "manual", "metadata": metadata},
            "client_reference_id": str(request.session_id),
            "metadata": metadata,
            "expires_at": int(request.expires_at.timestamp()),
            "success_url": request.return_url,
            "cancel_url": request.return_url,
        }
        created = await _call(
            lambda: self._client.v1.checkout.sessions.create_async(
                cast("SessionCreateParams", params),
                {"idempotency_key": f"checkout-{request.session_id}"},
            )
        )
        assert created.url is not None
        return HostedPage(created.id, created.url)

    async def card_page(self, driver_id: int, customer_id: str, return_url: str) -> str:
        """A Checkout Session in setup mode."""
        metadata = {"driver_id": str(driver_id), "purpose": "card_on_file"}
        params = {
            "mode": "setup",
            "customer": customer_id,
            "currency": "sek",
            "client_reference_id": f"driver-{driver_id}",
            "metadata": metadata,
            "setup_intent_data": {"metadata": metadata},
            "success_url": return_url,
            "cancel_url": return_url,
        }
        return await self._page(params)

    async def subscription_page(
        self, driver_id: int, customer_id: str, price_id: str, return_url: str
    ) -> str:
        """A Checkout Session in subscription mode."""
        metadata = {"driver_id": str(driver_id), "purpose": "member_plan"}
        params = {
            "mode": "subscription",
            "customer": customer_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "client_reference_id": f"driver-{driver_id}",
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": return_url,
            "cancel_url": return_url,
        }
        return await self._page(params)

    async def _page(self, params: dict[str, Any]) -> str:
        created = await _call(
            lambda: self._client.v1.checkout.sessions.create_async(
                cast("SessionCreateParams", params)
            )
        )
        assert created.url is not None
        return created.url

    async def expire_page(self, page_id: str) -> None:
        await _call(lambda: self._client.v1.checkout.sessions.expire_async(page_id))

    # -- customers, intents, subscriptions ----------------------------------------------------

    async def create_customer(self, driver_id: int, name: str, phone: str | None) -> str:
        details: dict[str, Any] = {"name": name, "metadata": {"driver_id": str(driver_id)}}
        if phone:
            details["phone"] = phone
        customer = await _call(
            lambda: self._client.v1.customers.create_async(
                cast("CustomerCreateParams", details),
                {"idempotency_key": f"customer-{driver_id}"},
            )
        )
        return customer.id

    async def hold_state(self, intent_id: str) -> HoldState:
        intent = await _call(lambda: self._client.v1.payment_intents.retrieve_async(intent_id))
        return HoldState(
            intent.status,
            intent.status == "requires_capture",
            intent.amount_capturable or intent.amount,
        )

    async def saved_card(self, setup_id: str) -> str | None:
        intent = await _call(lambda: self._client.v1.setup_intents.retrieve_async(setup_id))
        method = intent.payment_method
        method_id = method if isinstance(method, str) or method is None else method.id
        return method_id if intent.status == "succeeded" and method_id else None

    async def subscription_active(self, subscription_id: str) -> bool:
        current = await _call(lambda: self._client.v1.subscriptions.retrieve_async(subscription_id))
        return current.status in ACTIVE_SUBSCRIPTION

    async def capture(self, intent_id: str, amount_minor: int, *, key: str) -> None:
        await _call(
            lambda: self._client.v1.payment_intents.capture_async(
                intent_id, {"amount_to_capture": amount_minor}, {"idempotency_key": key}
            )
        )

    async def cancel(self, intent_id: str, *, key: str) -> None:
        await _call(
            lambda: self._client.v1.payment_intents.cancel_async(
                intent_id, None, {"idempotency_key": key}
            )
        )

    async def charge_saved_card(
        self,
        session_id: int,
        customer_id: str,
        card_id: str,
        amount_minor: int,
        currency: str,
        *,
        key: str,
    ) -> SavedCardCharge:
        params = {
            "amount": amount_minor,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": card_id,
            "off_session": True,
            "confirm": True,
            "metadata": {"charging_session_id": str(session_id)},
        }
        intent = await _call(
            lambda: self._client.v1.payment_intents.create_async(
                cast("PaymentIntentCreateParams", params), {"idempotency_key": key}
            )
        )
        return SavedCardCharge(intent.id, intent.status, intent.status == "succeeded")

    async def refund(self, intent_id: str, amount_minor: int, *, key: str) -> None:
        await _call(
            lambda: self._client.v1.refunds.create_async(
                {"payment_intent": intent_id, "amount": amount_minor}, {"idempotency_key": key}
            )
        )

    # -- webhooks -----------------------------------------------------------------------------

    def parse_event(self, payload: bytes, signature: str | None) -> GatewayEvent | None:
        """Verify a Stripe webhook and read it into our event.

        A bad signature or timestamp: WebhookRejectedError. A signed payload that is no usable
        event (not JSON, not an object, no usable `id`) is logged and None. Values of the wrong
        type or out of range (ids with a NUL, over-long, a session id beyond an INTEGER) are
        read as missing.
        """
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._webhook_secret, WEBHOOK_TOLERANCE
            )
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookRejectedError(str(exc)) from exc
        try:
            event = json.loads(payload)
        except ValueError:
            log.warning("signed Stripe webhook is not JSON: ignored")
            return None
        event_id = _clean_text(event.get("id"), MAX_EVENT_ID) if isinstance(event, dict) else None
        if event_id is None:
            # Not the payload itself: it may carry a customer's details.
            log.warning(
                "signed Stripe webhook without a usable event id ignored (%s, %s bytes)",
                type(event).__name__,
                len(payload),
            )
            return None
        kind = event.get("type")
        read = _READERS.get(kind) if isinstance(kind, str) else None
        if read is None:
            return OtherEvent(event_id, kind if isinstance(kind, str) else "")
        assert isinstance(kind, str)
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            return UnusableEvent(event_id, kind)
        return read(event_id, kind, obj)


def _page_completed(event_id: str, kind: str, obj: dict[str, Any]) -> GatewayEvent:
    metadata = obj.get("metadata")
    return PageCompleted(
        event_id,
        kind,
        page=_page_kind(obj),
        page_id=_raw_id(obj),
        session_id=_session_id(obj),
        driver_id=_row_id(metadata.get("driver_id") if isinstance(metadata, dict) else None),
        intent_id=_text(obj, "payment_intent"),
        setup_id=_text(obj, "setup_intent"),
        customer_id=_text(obj, "customer", MAX_CUSTOMER_ID),
    )


def _page_expired(event_id: str, kind: str, obj: dict[str, Any]) -> GatewayEvent:
    return PageExpired(
        event_id,
        kind,
        page=_page_kind(obj),
        page_id=_raw_id(obj),
        session_id=_session_id(obj),
        intent_id=_text(obj, "payment_intent"),
    )


def _intent_canceled(event_id: str, kind: str, obj: dict[str, Any]) -> GatewayEvent:
    return PaymentCanceled(event_id, kind, intent_id=_text(obj, "id"))


def _intent_failed(event_id: str, kind: str, obj: dict[str, Any]) -> GatewayEvent:
    error = obj.get("last_payment_error")
    message = error.get("message") if isinstance(error, dict) else None
    return PaymentFailed(
        event_id,
        kind,
        intent_id=_text(obj, "id"),
        session_id=_session_id(obj),
        amount_minor=_row_id(obj.get("amount")) or 0,
        message=message if isinstance(message, str) else None,
    )


def _subscription(event_id: str, kind: str, obj: dict[str, Any]) -> GatewayEvent:
    return SubscriptionChanged(
        event_id,
        kind,
        subscription_id=_text(obj, "id"),
        customer_id=_text(obj, "customer", MAX_CUSTOMER_ID),
    )


_READERS: dict[str, Callable[[str, str, dict[str, Any]], GatewayEvent]] = {
    "checkout.session.completed": _page_completed,
    "checkout.session.expired": _page_expired,
    "payment_intent.canceled": _intent_canceled,
    "payment_intent.payment_failed": _intent_failed,
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
}


def _page_kind(obj: dict[str, Any]) -> PageKind | None:
    mode = obj.get("mode")
    return PAGE_KINDS.get(mode) if isinstance(mode, str) else None


def _raw_id(obj: dict[str, Any]) -> str | None:
    """A Checkout Session's id as sent (compared with the one we stored, never looked up)."""
    value = obj.get("id")
    return value if isinstance(value, str) else None


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


__all__ = ["StripeGateway", "gateway_error"]
