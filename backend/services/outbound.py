"""Messages to drivers through the outbound-messages port: delivery, the bot's lines in the
transcript, and the card-saving link (one function for the admin API and the support desk)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from backend.db import utcnow
from backend.models import Message
from backend.services.ports import OutboundMessage, OutboundMessages


@dataclass(frozen=True)
class Recipient:
    """Where a driver is reached: a channel ("telegram", "sms") and their address on it."""

    channel: str
    address: str


class CardSetupLinks(Protocol):
    """Who makes a driver's card-saving page (the payment service)."""

    async def card_setup_link(self, driver_id: int, *, channel: str | None = None) -> str: ...


@dataclass(frozen=True)
class CardLink:
    """The link made, the message worded for it, and whether it reached the driver (None:
    it was not sent, only asked for)."""

    url: str
    message: OutboundMessage
    delivered: bool | None = None


def transcript_line(message: OutboundMessage) -> str:
    """The message as the transcript keeps it: its text, then each link as "label: url"."""
    return "\n".join([message.text, *(f"{link.label}: {link.url}" for link in message.links)])


def record_outbound(db: AsyncSession, conversation_id: int, text: str) -> None:
    """What the bot told the driver, in the transcript support reads (the caller commits)."""
    db.add(
        Message(
            conversation_id=conversation_id,
            direction="out",
            author="bot",
            text=text,
            created_at=utcnow(),
        )
    )


async def deliver(
    outbound: OutboundMessages,
    to: Recipient,
    messages: Sequence[OutboundMessage],
    *,
    on_failure: Callable[[Exception], None] | None = None,
) -> bool:
    """Send `messages`; False when the channel has no sender. A failure to send is raised,
    or, with `on_failure`, handed to it inside the `except` (to log) and reported as False."""
    if on_failure is None:
        return await outbound.send(to.channel, to.address, messages)
    try:
        return await outbound.send(to.channel, to.address, messages)
    except Exception as exc:
        on_failure(exc)
        return False


async def send_card_link(
    payments: CardSetupLinks,
    outbound: OutboundMessages,
    driver_id: int,
    language: str,
    to: Recipient | None = None,
    *,
    record: Callable[[str], Awaitable[object]] | None = None,
    on_failure: Callable[[Exception], None] | None = None,
) -> CardLink:
    """A link for the driver to save a card, worded in `language` and sent to `to`.

    The payment service's failure to make the link propagates (nothing is recorded or sent
    then). `record` keeps the message's transcript line before it goes out; `on_failure` as
    for `deliver`. Without `to` the link is only made and worded.
    """
    url = await payments.card_setup_link(driver_id, channel=to.channel if to else None)
    message = outbound.card_link(language, url)
    if record is not None:
        await record(transcript_line(message))
    if to is None:
        return CardLink(url, message)
    delivered = await deliver(outbound, to, [message], on_failure=on_failure)
    return CardLink(url, message, delivered)
