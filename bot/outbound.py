"""The bot's side of the outbound-messages port: worded by bot.i18n, sent via the outbox."""

from __future__ import annotations

from collections.abc import Sequence

from backend.services.ports import OutboundLink, OutboundMessage
from bot.i18n import t
from bot.messages import Link, Reply
from bot.outbox import Outbox


def as_reply(message: OutboundMessage) -> Reply:
    """The channel-neutral message as the reply the channel adapters render."""
    return Reply(message.text, links=tuple(Link(link.label, link.url) for link in message.links))


class OutboxMessages:
    """`backend.services.ports.OutboundMessages` over the outbox the channels register with."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def handles(self, channel: str) -> bool:
        return self.outbox.handles(channel)

    def agent_released(self, language: str) -> OutboundMessage:
        return OutboundMessage(t(language, "agent_released"))

    def card_link(self, language: str, url: str) -> OutboundMessage:
        button = OutboundLink(t(language, "card_button"), url)
        return OutboundMessage(t(language, "card_link"), links=(button,))

    def queue_turn(self, language: str, station: str, code: str, minutes: int) -> OutboundMessage:
        return OutboundMessage(
            t(language, "queue_turn", station=station, code=code, minutes=minutes)
        )

    def queue_lapsed(self, language: str, station: str) -> OutboundMessage:
        return OutboundMessage(t(language, "queue_lapsed", station=station))

    async def send(self, channel: str, address: str, messages: Sequence[OutboundMessage]) -> bool:
        return await self.outbox.deliver(channel, address, [as_reply(m) for m in messages])
