"""What a flow step gets: the database, the conversation, the driver, services, the strings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.models import Conversation, Driver
from backend.services.charging import ChargingService
from backend.services.charging_queue import ChatReservations
from backend.services.payments import PaymentService
from backend.services.places import Gazetteer, fold
from backend.services.support_hours import SupportHours
from backend.settings import Settings
from bot.faq.matcher import FaqService
from bot.i18n import t
from bot.messages import Choice, Inbound, Link, Reply
from bot.understanding import IntentTable


@dataclass
class BotServices:
    """The backend services the conversation engine uses (no web framework, no OCPP)."""

    charging: ChargingService
    faq: FaqService
    places: Gazetteer
    settings: Settings
    payments: PaymentService | None = None  # None: no Stripe key, no card payments
    demo_payments: PaymentService | None = None  # the demo's test payments (no Stripe key)
    chat_reservations: ChatReservations | None = None  # reserve and queue from the chat
    clock: Callable[[], datetime] = utcnow  # tests set the time (support hours)
    support_hours: SupportHours = field(init=False)
    intents: IntentTable = field(init=False)

    def __post_init__(self) -> None:
        self.intents = IntentTable.load(self.places, known=faq_words(self.faq))
        self.support_hours = SupportHours.parse(
            self.settings.support_hours, self.settings.support_timezone
        )


def faq_words(faq: FaqService) -> set[str]:
    """The words of the FAQ's phrasings: real words, never "corrected" into an intent's."""
    index = faq.index
    return {
        word
        for entry in index.entries
        for phrasings in entry.questions.values()
        for phrasing in phrasings
        for word in fold(phrasing).split()
    }


@dataclass
class Context:
    db: AsyncSession
    inbound: Inbound
    conversation: Conversation
    driver: Driver
    services: BotServices
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def lang(self) -> str:
        return self.conversation.language

    def t(self, key: str, **values: object) -> str:
        return t(self.lang, key, **values)

    def reply(
        self,
        text: str,
        choices: tuple[Choice, ...] | list[Choice] = (),
        links: tuple[Link, ...] | list[Link] = (),
        *,
        request_location: bool = False,
        live_key: str | None = None,
    ) -> Reply:
        return Reply(text, tuple(choices), tuple(links), request_location, live_key)

    def choice(self, key: str, payload: str) -> Choice:
        return Choice(self.t(key), payload)
