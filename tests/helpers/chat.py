"""Driving the conversation engine as a channel would, and catching what it sends later."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from bot.messages import ChannelUser, Inbound, Reply
from tests.helpers.factories import make_driver
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually

_ids = itertools.count(1)

PHONE = "+46701234567"


@dataclass
class ChatDriver:
    """One person chatting on the `console` channel, with their inbox of notifications."""

    app: FastAPI
    user: ChannelUser
    address: str
    channel: str = "console"
    inbox: list[Reply] = field(default_factory=list)

    async def say(self, text: str) -> list[Reply]:
        return await self._send(text=text)

    async def command(self, command: str, args: str = "") -> list[Reply]:
        return await self._send(command=command, args=args)

    async def press(self, payload: str) -> list[Reply]:
        return await self._send(choice=payload)

    async def share_location(self, latitude: float, longitude: float) -> list[Reply]:
        return await self._send(location=(latitude, longitude))

    async def _send(self, **fields: Any) -> list[Reply]:
        inbound = Inbound(
            self.channel, self.address, user=self.user, message_id=f"m{next(_ids)}", **fields
        )
        replies: list[Reply] = await self.app.state.chat_engine.handle(inbound)
        return replies

    async def notifications(self) -> list[Reply]:
        await self.app.state.notifier.drain()
        return self.inbox


def text_of(replies: Sequence[Reply]) -> str:
    return "\n".join(reply.text for reply in replies)


def payloads(replies: Sequence[Reply]) -> list[str]:
    return [choice.payload for reply in replies for choice in reply.choices]


def chat_driver(
    app: FastAPI, *, phone: str, language_code: str = "sv", name: str = "Anna"
) -> ChatDriver:
    """A console chat for the driver with this phone; notifications land in `.inbox`."""
    driver = ChatDriver(
        app, ChannelUser(phone=phone, name=name, language_code=language_code), phone
    )
    senders: dict[str, ChatDriver] = app.state.__dict__.setdefault("_test_chats", {})
    senders[phone] = driver

    async def deliver(address: str, replies: Sequence[Reply]) -> None:
        target = senders.get(address)
        if target is not None:
            target.inbox.extend(replies)

    app.state.outbox.register("console", deliver)
    return driver


async def wait_for_text(driver: ChatDriver, fragment: str, within: float = 15) -> str:
    """The first notification in the driver's inbox containing `fragment` (waits for it)."""

    async def matching() -> list[str]:
        await driver.app.state.notifier.drain()
        return [reply.text for reply in driver.inbox if fragment in reply.text]

    try:
        found = await eventually(matching, bool, within)
    except AssertionError:
        raise AssertionError(
            f"no notification containing {fragment!r}: {[r.text for r in driver.inbox]}"
        ) from None
    return found[0]


async def invoice_driver(
    live: LiveServer, phone: str = PHONE, language: str = "sv"
) -> dict[str, Any]:
    """A driver billed by invoice (a confirmed start goes straight to the charger)."""
    return await make_driver(
        live.http, name="Anna", phone=phone, billing="invoice", language=language
    )
