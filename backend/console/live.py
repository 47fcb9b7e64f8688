"""Server-sent events for the console: "this topic changed", so the page fetches its fragment.

Each stream polls one cheap fingerprint query per interval. The queue, transcripts and
chargers live in the database, so this works the same with one process or several behind
a proxy (a driver's message may be handled by any of them) without a message broker.
A stream ends after `MAX_STREAM_SECONDS`; the browser's EventSource reconnects by itself,
and the first event of every stream makes the page catch up on anything it missed.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.models import (
    Charger,
    ChargingSession,
    Connector,
    Conversation,
    ConversationMode,
    Message,
)

MAX_STREAM_SECONDS = 55.0
KEEPALIVE_SECONDS = 15.0
QUEUED = (ConversationMode.WAITING, ConversationMode.AGENT)
CONVERSATION_TOPIC = re.compile(r"conversation:([0-9]{1,9})")


async def queue_fingerprint(db: AsyncSession) -> tuple[Any, ...]:
    """Changes when a conversation joins or leaves the queue, is claimed, or gets a message."""
    queued = select(col(Conversation.id)).where(col(Conversation.mode).in_(QUEUED))
    row = (
        await db.execute(
            select(func.count(col(Conversation.id)), func.sum(col(Conversation.version))).where(
                col(Conversation.mode).in_(QUEUED)
            )
        )
    ).one()
    last_message = await db.scalar(
        select(func.max(col(Message.id))).where(col(Message.conversation_id).in_(queued))
    )
    return (*tuple(row), last_message)


async def conversation_fingerprint(db: AsyncSession, conversation_id: int) -> tuple[Any, ...]:
    """Changes with the conversation's mode or holder and with every new transcript line."""
    row = (
        await db.execute(
            select(
                col(Conversation.version), col(Conversation.mode), col(Conversation.assigned_to)
            ).where(col(Conversation.id) == conversation_id)
        )
    ).one_or_none()
    last_message = await db.scalar(
        select(func.max(col(Message.id))).where(col(Message.conversation_id) == conversation_id)
    )
    return (tuple(row) if row is not None else None, last_message)


async def network_fingerprint(db: AsyncSession) -> tuple[Any, ...]:
    """Changes when any charger goes on- or offline or changes status, any connector's status
    changes, or a session changes. Reads one small row per charger and connector (a hash of
    them is kept): a few thousand rows per poll for a large network."""
    chargers = (
        await db.execute(
            select(col(Charger.id), col(Charger.online), col(Charger.status)).order_by(
                col(Charger.id)
            )
        )
    ).all()
    connectors = (
        await db.execute(
            select(col(Connector.id), col(Connector.status)).order_by(col(Connector.id))
        )
    ).all()
    sessions = await db.scalar(select(func.max(col(ChargingSession.updated_at))))
    return (hash(tuple(map(tuple, chargers))), hash(tuple(map(tuple, connectors))), sessions)


Fingerprint = Callable[[AsyncSession], Awaitable[tuple[Any, ...]]]


def fingerprint_for(topic: str) -> Fingerprint | None:
    """`queue`, `network` or `conversation:<id>`; None for anything else."""
    if topic == "queue":
        return queue_fingerprint
    if topic == "network":
        return network_fingerprint
    found = CONVERSATION_TOPIC.fullmatch(topic)
    if found:
        conversation_id = int(found.group(1))

        async def of_conversation(db: AsyncSession) -> tuple[Any, ...]:
            return await conversation_fingerprint(db, conversation_id)

        return of_conversation
    return None


async def change_stream(
    sessions: async_sessionmaker[AsyncSession],
    fingerprint: Fingerprint,
    interval: float,
    *,
    max_seconds: float = MAX_STREAM_SECONDS,
) -> AsyncGenerator[str, None]:
    """SSE text: a `change` event now and whenever the fingerprint differs, comments between."""
    yield "retry: 1000\n\n"
    started = last_sent = time.monotonic()
    previous: tuple[Any, ...] | None = None
    version = 0
    while time.monotonic() - started < max_seconds:
        async with sessions() as db:
            current = await fingerprint(db)
        if current != previous:
            previous = current
            version += 1
            last_sent = time.monotonic()
            yield f"event: change\ndata: {version}\n\n"
        elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
        await asyncio.sleep(interval)
