"""Messages the bot sends on its own (notifications, support replies), per channel."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from bot.messages import Reply

log = logging.getLogger(__name__)

Sender = Callable[[str, Sequence[Reply]], Awaitable[None]]


class Outbox:
    """Routes outbound replies to the adapter of their channel."""

    def __init__(self) -> None:
        self._senders: dict[str, Sender] = {}

    def register(self, channel: str, sender: Sender) -> None:
        self._senders[channel] = sender

    def handles(self, channel: str) -> bool:
        return channel in self._senders

    async def deliver(self, channel: str, address: str, replies: Sequence[Reply]) -> bool:
        sender = self._senders.get(channel)
        if sender is None:
            log.warning("no sender for channel %s; %d replies dropped", channel, len(replies))
            return False
        await sender(address, replies)
        return True
