"""Ports to the outside world that services use (implemented in backend/chargers and later)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, Protocol


class CommandStatus(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OFFLINE = "offline"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class CommandResult:
    """What became of a command to a charger; `ocpp_status` is the charger's own word."""

    status: CommandStatus
    ocpp_status: str | None = None
    detail: str | None = None
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.status is CommandStatus.ACCEPTED

    @property
    def word(self) -> str:
        """The charger's answer as recorded: its own status word (an answer without one, like
        GetConfiguration's or UpdateFirmware's, is Accepted); no answer: offline, timed_out."""
        if self.status in (CommandStatus.OFFLINE, CommandStatus.TIMED_OUT):
            return str(self.status)
        return self.ocpp_status or ("Accepted" if self.accepted else str(self.status))


class ChargerCommands(Protocol):
    """Commands to a charge point, wherever its socket is held."""

    async def remote_start(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        charging_profile: dict[str, Any] | None = None,
    ) -> CommandResult: ...

    async def remote_stop(self, charger_id: str, transaction_id: int) -> CommandResult: ...

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult: ...

    async def reset(self, charger_id: str, kind: Literal["Soft", "Hard"]) -> CommandResult: ...

    async def change_availability(
        self, charger_id: str, connector_id: int, available: bool
    ) -> CommandResult: ...

    async def trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult: ...

    async def change_configuration(
        self, charger_id: str, key: str, value: str
    ) -> CommandResult: ...

    async def get_configuration(self, charger_id: str, keys: list[str] | None) -> CommandResult: ...

    async def operate(self, charger_id: str, action: str, fields: dict[str, Any]) -> CommandResult:
        """Any other operation of `OPERATIONS`: the OCPP 1.6 action and its payload's fields
        (snake_case, nested dicts allowed); the answer's fields are in `response`."""
        ...


# The operations `ChargerCommands.operate` sends (OCPP 1.6 action names); others are refused.
OPERATIONS = frozenset(
    {
        "ClearCache",
        "GetLocalListVersion",
        "SendLocalList",
        "ReserveNow",
        "CancelReservation",
        "UpdateFirmware",
        "SetChargingProfile",
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "DataTransfer",
        "InstallCertificate",
        "GetInstalledCertificateIds",
        "DeleteCertificate",
        "CertificateSigned",
        "GetDiagnostics",
        "ExtendedTriggerMessage",
        "GetLog",
        "SignedUpdateFirmware",
    }
)


# -- the card gateway (Stripe; the demo's test payments) -------------------------------------


class PaymentGatewayError(Exception):
    """The card gateway refused or could not do what was asked (never Stripe's own types)."""


class PaymentDeclinedError(PaymentGatewayError):
    """The card was declined (a saved card charged off-session)."""


class PaymentGatewayUnavailableError(PaymentGatewayError):
    """The gateway could not be reached, or failed on its side: asking again may work."""


class PaymentRequestInvalidError(PaymentGatewayError):
    """The gateway refuses the request itself, e.g. it names an id the gateway does not know."""


class WebhookRejectedError(ValueError):
    """A webhook whose signature or timestamp does not verify (HTTP 400)."""


class PageKind(StrEnum):
    """What a hosted payment page is for."""

    HOLD = "hold"  # a hold on the card before the start (pay per session)
    SAVE_CARD = "save_card"  # saves a card for off-session charges
    SUBSCRIPTION = "subscription"  # the member plan


@dataclass(frozen=True)
class HoldPageRequest:
    """A page where the driver lets `amount_minor` be held for charging session `session_id`."""

    session_id: int
    driver_id: int
    currency: str
    amount_minor: int
    expires_at: datetime
    return_url: str


@dataclass(frozen=True)
class HostedPage:
    """A payment page the gateway made: its id there (None: nothing to refer to) and URL."""

    id: str | None
    url: str


@dataclass(frozen=True)
class HoldState:
    """A payment's state at the gateway: `held` when `amount_minor` waits to be captured;
    `status` is the gateway's own word (for the log)."""

    status: str
    held: bool
    amount_minor: int


@dataclass(frozen=True)
class SavedCardCharge:
    """Exactly `amount_minor` charged off-session to a saved card (`captured`, or not)."""

    intent_id: str
    status: str
    captured: bool


@dataclass(frozen=True)
class GatewayEvent:
    """A verified event from the gateway; `event_id` is unique per event (replays dedupe)."""

    event_id: str
    kind: str


@dataclass(frozen=True)
class PageCompleted(GatewayEvent):
    """The driver finished a payment page. Ids the event did not carry usably are None."""

    page: PageKind | None
    page_id: str | None
    session_id: int | None
    driver_id: int | None
    intent_id: str | None  # the payment (PaymentIntent) of a hold page
    setup_id: str | None  # the SetupIntent of a card page
    customer_id: str | None


@dataclass(frozen=True)
class PageExpired(GatewayEvent):
    """A payment page expired (or was closed) unpaid."""

    page: PageKind | None
    page_id: str | None
    session_id: int | None
    intent_id: str | None


@dataclass(frozen=True)
class PaymentCanceled(GatewayEvent):
    """A payment (a hold) was cancelled at the gateway: nothing is held any more."""

    intent_id: str | None


@dataclass(frozen=True)
class PaymentFailed(GatewayEvent):
    """A payment attempt was declined."""

    intent_id: str | None
    session_id: int | None
    amount_minor: int
    message: str | None


@dataclass(frozen=True)
class SubscriptionChanged(GatewayEvent):
    """A subscription was created, changed or ended: ask the gateway for its current state."""

    subscription_id: str | None
    customer_id: str | None


@dataclass(frozen=True)
class UnusableEvent(GatewayEvent):
    """A verified event of a kind we handle whose payload has no object to read."""


@dataclass(frozen=True)
class OtherEvent(GatewayEvent):
    """A verified event of a kind we do not handle (recorded, so a replay changes nothing)."""


class PaymentGateway(Protocol):
    """The card gateway: hosted payment pages, holds captured or cancelled, saved cards,
    refunds and the gateway's events. Failures are PaymentGatewayError (or a subclass).

    Implemented by backend/payments/stripe_gateway.py (Stripe) and
    backend/payments/demo_gateway.py (the demo's test payments: no money, no network).
    """

    @property
    def real_money(self) -> bool:
        """False for the demo's test payments: no card to speak of, no saved cards."""
        ...

    @property
    def instant(self) -> bool:
        """True when nothing leaves the process: the service settles inline, and a page's
        outcome is told to it directly (no webhooks), so a page nobody answered is released
        at once instead of waiting for the gateway's event."""
        ...

    @property
    def page_lifetime(self) -> timedelta:
        """How long a hold page is offered (`expires_at` = now + this)."""
        ...

    async def hold_page(self, request: HoldPageRequest) -> HostedPage: ...

    async def card_page(self, driver_id: int, customer_id: str, return_url: str) -> str:
        """The URL of a page that saves the driver's card."""
        ...

    async def subscription_page(
        self, driver_id: int, customer_id: str, price_id: str, return_url: str
    ) -> str:
        """The URL of a page that subscribes the driver to `price_id`."""
        ...

    async def expire_page(self, page_id: str) -> None: ...

    async def create_customer(self, driver_id: int, name: str, phone: str | None) -> str:
        """A customer at the gateway for the driver (created once per driver); its id."""
        ...

    async def hold_state(self, intent_id: str) -> HoldState: ...

    async def saved_card(self, setup_id: str) -> str | None:
        """The card a finished card page saved (its id at the gateway), or None."""
        ...

    async def subscription_active(self, subscription_id: str) -> bool: ...

    async def capture(self, intent_id: str, amount_minor: int, *, key: str) -> None:
        """Capture `amount_minor` of a hold; `key` makes a retry harmless."""
        ...

    async def cancel(self, intent_id: str, *, key: str) -> None:
        """Cancel a hold: the amount goes back to the card."""
        ...

    async def charge_saved_card(
        self,
        session_id: int,
        customer_id: str,
        card_id: str,
        amount_minor: int,
        currency: str,
        *,
        key: str,
    ) -> SavedCardCharge: ...

    async def refund(self, intent_id: str, amount_minor: int, *, key: str) -> None: ...

    def parse_event(self, payload: bytes, signature: str | None) -> GatewayEvent | None:
        """Verify a webhook and read its event: WebhookRejectedError for a bad signature or
        timestamp; None (logged) for a signed payload that is no usable event."""
        ...


@dataclass(frozen=True)
class OutboundLink:
    """A button that opens a web page (a card-saving page, a receipt)."""

    label: str
    url: str


@dataclass(frozen=True)
class OutboundMessage:
    """One message to a driver, channel-neutral: the bot renders it for Telegram or SMS."""

    text: str
    links: tuple[OutboundLink, ...] = ()


class OutboundMessages(Protocol):
    """Messages to a driver on their own channel, worded in their language (the bot's i18n).

    Implemented in bot/outbound.py over the bot's outbox, so that neither backend/api nor
    backend/services imports bot/.
    """

    def handles(self, channel: str) -> bool:
        """Whether messages on `channel` ("telegram", "sms", ...) can be sent at all."""
        ...

    def agent_released(self, language: str) -> OutboundMessage:
        """The driver is told the bot answers again (support handed the chat back)."""
        ...

    def card_link(self, language: str, url: str) -> OutboundMessage:
        """The link to the page where the driver saves a card, as a button."""
        ...

    def queue_turn(self, language: str, station: str, code: str, minutes: int) -> OutboundMessage:
        """A connector freed up and is held for the driver first in the station's queue."""
        ...

    def queue_lapsed(self, language: str, station: str) -> OutboundMessage:
        """The driver let their turn pass: the connector goes to the next in line."""
        ...

    async def send(self, channel: str, address: str, messages: Sequence[OutboundMessage]) -> bool:
        """Deliver on `channel` to `address`; False when no sender handles the channel."""
        ...


class FaqTopic(Protocol):
    """One FAQ entry as support picks it: its id, question and answer per language."""

    @property
    def id(self) -> str: ...

    def question(self, lang: str) -> str: ...

    def answer(self, lang: str) -> str: ...


class FaqCatalogue(Protocol):
    """The FAQ the bot answers from (implemented in bot/faq/catalogue.py)."""

    @property
    def path(self) -> str:
        """The FAQ file it is read from."""
        ...

    def entries(self) -> Sequence[FaqTopic]:
        """Every entry, in file order."""
        ...

    def entry(self, entry_id: str) -> FaqTopic | None:
        """The entry with this id, or None."""
        ...

    def reload(self) -> int:
        """Re-read the file (blocking) and return how many entries it has; on a bad file
        ValueError or OSError, and the entries in use stay."""
        ...
