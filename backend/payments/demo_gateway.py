"""The demo's test payments: the card-gateway port with no money and no network.

Only with no STRIPE_API_KEY in development (`chargebot demo`). The hold page is a clearly
labelled test page served by the app itself (backend/api/demo_payments.py); the payment
service records, starts, captures and releases exactly as with Stripe, and this gateway only
answers: nothing is held, captured or refunded anywhere.
"""

from __future__ import annotations

from backend.services.payments import CHECKOUT_LIFETIME
from backend.services.ports import (
    GatewayEvent,
    HoldPageRequest,
    HoldState,
    HostedPage,
    PaymentGatewayError,
    SavedCardCharge,
    WebhookRejectedError,
)


def demo_page_path(session_id: int) -> str:
    """Where the test page of a charging session is served (backend/api/demo_payments.py)."""
    return f"/demo/pay/{session_id}"


class DemoGateway:
    """The PaymentGateway port for the demo: a local test page, never for production."""

    real_money = False
    instant = True
    page_lifetime = CHECKOUT_LIFETIME

    def __init__(self, public_base_url: str) -> None:
        self._base = public_base_url

    async def hold_page(self, request: HoldPageRequest) -> HostedPage:
        return HostedPage(None, f"{self._base}{demo_page_path(request.session_id)}")

    async def card_page(self, driver_id: int, customer_id: str, return_url: str) -> str:
        raise PaymentGatewayError("the demo's test payments save no cards")

    async def subscription_page(
        self, driver_id: int, customer_id: str, price_id: str, return_url: str
    ) -> str:
        raise PaymentGatewayError("the demo's test payments have no subscriptions")

    async def expire_page(self, page_id: str) -> None:
        """The test page has no expiry of its own."""

    async def create_customer(self, driver_id: int, name: str, phone: str | None) -> str:
        raise PaymentGatewayError("the demo's test payments have no customers")

    async def hold_state(self, intent_id: str) -> HoldState:
        raise PaymentGatewayError("the demo's test payments are held on the page itself")

    async def saved_card(self, setup_id: str) -> str | None:
        return None

    async def subscription_active(self, subscription_id: str) -> bool:
        return False

    async def capture(self, intent_id: str, amount_minor: int, *, key: str) -> None:
        """Nothing to take: the payment row records what a capture would."""

    async def cancel(self, intent_id: str, *, key: str) -> None:
        """Nothing held."""

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
        raise PaymentGatewayError("the demo's test payments save no cards")

    async def refund(self, intent_id: str, amount_minor: int, *, key: str) -> None:
        """Nothing was taken."""

    def parse_event(self, payload: bytes, signature: str | None) -> GatewayEvent | None:
        raise WebhookRejectedError("the demo's test payments send no webhooks")


__all__ = ["DemoGateway", "demo_page_path"]
