"""The demo's chats in a terminal: the engine on a third channel, `console`, or as a phone.

`ConsoleChat` is channel `console`; `SmsConsole` (`chargebot demo --sms <number>`) is that
phone on channel sms, through the SMS grammar and pages.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TextIO

from bot.adapters.sms import SmsConversations
from bot.adapters.sms.grammar import is_reserved
from bot.adapters.sms.text import segments
from bot.messages import ChannelUser, Choice, Inbound, Reply

LOCATION = re.compile(r"^@\s*(-?\d+(?:\.\d+)?)\s*[, ]\s*(-?\d+(?:\.\d+)?)\s*$")
HINT = "(/help, a number for a choice, @59.36,17.97 to share a location, Ctrl-D to quit)"
CHANNEL = "console"


def render(replies: Sequence[Reply]) -> tuple[str, list[Choice]]:
    """Text for the terminal and the choices its numbers refer to."""
    blocks, choices = [], []
    for reply in replies:
        lines = [reply.text]
        for choice in reply.choices:
            choices.append(choice)
            lines.append(f"  {len(choices)}) {choice.label}")
        for link in reply.links:
            lines.append(f"  {link.label}: {link.url}")
        if reply.request_location:
            lines.append("  [share a location: @latitude,longitude]")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks), choices


def parse(line: str, user: ChannelUser) -> Inbound:
    """A typed line: a location, a /command, or text (numbers too: the engine knows the menu)."""
    text = line.strip()
    match = LOCATION.match(text)
    if match:
        position = (float(match.group(1)), float(match.group(2)))
        return Inbound("console", "console", location=position, user=user)
    if text.startswith("/"):
        command, _, args = text[1:].partition(" ")
        return Inbound("console", "console", command=command.lower(), args=args, user=user)
    return Inbound("console", "console", text=text, user=user)


class ConsoleChat:
    """Reads lines, prints the bot's answers; notifications are printed as they arrive."""

    def __init__(
        self,
        handle: Callable[[Inbound], Awaitable[list[Reply]]],
        user: ChannelUser,
        out: TextIO = sys.stdout,
        prompt: str = "du> ",
    ) -> None:
        self._handle = handle
        self._user = user
        self._out = out
        self._prompt = prompt

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    async def send(self, address: str, replies: Sequence[Reply]) -> None:
        """The console's outbox sender (notifications)."""
        text, _ = render(replies)
        self._print(_indent(text))

    async def run(self, lines: TextIO = sys.stdin) -> None:
        if lines.isatty():
            self._print(HINT)
        async for line in _typed_lines(lines, self._out, self._prompt):
            replies = await self._handle(parse(line, self._user))
            text, _ = render(replies)
            if text:
                self._print(_indent(text))


class SmsConsole:
    """`chargebot demo --sms <number>`: the terminal as that phone, through the SMS grammar."""

    def __init__(
        self, conversations: SmsConversations, phone: str, out: TextIO = sys.stdout
    ) -> None:
        self._conversations = conversations
        self._phone = phone
        self._out = out

    def _print(self, text: str) -> None:
        self._out.write(_indent(text) + "\n")
        self._out.flush()

    async def deliver(self, address: str, replies: Sequence[Reply]) -> None:
        """The outbox sender for channel sms: notifications rendered as the SMS would be."""
        text = await self._conversations.outbound(address, replies)
        if text:
            self._print(f"[sms, {segments(text)} segment(s)]\n{text}")

    async def run(self, lines: TextIO = sys.stdin) -> None:
        if lines.isatty():
            self._print("(SMS commands: MENY, LADDA <kod>, AVSLUTA, 1/2 for choices, Ctrl-D)")
        async for line in _typed_lines(lines, self._out, "sms> "):
            message_id = f"console-{secrets.token_hex(8)}"
            text = await self._conversations.handle(self._phone, line, message_id)
            if is_reserved(line):
                self._print("[a Twilio keyword: Twilio answers it, chargebot stays silent]")
            elif not text and await self._conversations.opted_out(self._phone):
                self._print("[opted out: Twilio delivers nothing to this phone until START]")
            if text:
                self._print(f"[{segments(text)} segment(s)]\n{text}")


async def _typed_lines(lines: TextIO, out: TextIO, prompt: str) -> AsyncIterator[str]:
    """The non-blank lines read: prompted at a terminal, echoed after the prompt when piped
    (so a piped session reads like a chat)."""
    interactive = lines.isatty()
    read_line = await _line_reader(lines)
    while True:
        if interactive:
            out.write(prompt)
            out.flush()
        line = await read_line()
        if not line:
            return
        if not line.strip():
            continue
        if not interactive:
            out.write(f"{prompt}{line.rstrip()}\n")
            out.flush()
        yield line


async def _line_reader(lines: TextIO) -> Callable[[], Awaitable[str]]:
    """A cancellable line reader: terminals and pipes through the event loop, files directly."""
    loop = asyncio.get_running_loop()
    try:
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), lines)
    except (ValueError, OSError):  # a regular file: reading it never blocks for long

        async def from_file() -> str:
            return await asyncio.to_thread(lines.readline)

        return from_file

    async def from_pipe() -> str:
        return (await reader.readline()).decode("utf-8", errors="replace")

    return from_pipe


def _indent(text: str) -> str:
    return "\n".join(f"bot> {line}" if line else "bot>" for line in text.splitlines())
