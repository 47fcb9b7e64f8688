"""Conversation state per (channel, address) in the database, and who the driver is."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import Billing, Conversation, Driver, Message
from bot.i18n import language_of
from bot.messages import ChannelUser, Inbound


async def conversation_for(db: AsyncSession, inbound: Inbound) -> Conversation:
    """The conversation of this (channel, address), created with the driver on first contact."""
    conversation = await _find(db, inbound.channel, inbound.address)
    if conversation is not None:
        return conversation
    try:
        driver = await driver_for(db, inbound.channel, inbound.user)
        language = driver.language or language_of(inbound.user.language_code)
        conversation = Conversation(
            channel=inbound.channel,
            address=inbound.address,
            driver_id=driver.id,
            language=language,
            data={},
        )
        db.add(conversation)
        await db.commit()
    except IntegrityError:  # the same driver's other message created them meanwhile
        await db.rollback()
        existing = await _find(db, inbound.channel, inbound.address)
        assert existing is not None
        return existing
    return conversation


async def _find(db: AsyncSession, channel: str, address: str) -> Conversation | None:
    return await db.scalar(
        select(Conversation).where(
            col(Conversation.channel) == channel, col(Conversation.address) == address
        )
    )


async def driver_for(db: AsyncSession, channel: str, user: ChannelUser) -> Driver:
    """The Driver behind a channel user: linked if an operator created it, else a new one."""
    driver = None
    if user.telegram_user_id is not None:
        driver = await db.scalar(
            select(Driver).where(col(Driver.telegram_user_id) == user.telegram_user_id)
        )
    elif user.phone is not None:
        driver = await db.scalar(select(Driver).where(col(Driver.phone) == user.phone))
    if driver is not None:
        return driver
    driver = Driver(
        name=(user.name or user.phone or "Driver")[:120],
        telegram_user_id=user.telegram_user_id,
        phone=user.phone,
        language=language_of(user.language_code),
        billing=Billing.PAY_PER_SESSION,
    )
    db.add(driver)
    await db.flush()
    return driver


async def locked(db: AsyncSession, conversation: Conversation) -> Conversation:
    """The conversation row, locked until commit and read fresh after the lock.

    Two writers of one conversation (two messages of a driver in two processes, or a message
    and a notification that queues the chat for support) must not lose each other's update:
    the second waits for the first's commit (`SELECT ... FOR NO KEY UPDATE` on PostgreSQL;
    SQLite has one writer).
    """
    fresh = await db.scalar(
        select(Conversation)
        .where(col(Conversation.id) == conversation.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None
    return fresh


async def record(
    db: AsyncSession, conversation: Conversation, direction: str, author: str, text: str
) -> None:
    """Keep the transcript that support staff read."""
    assert conversation.id is not None
    db.add(
        Message(
            conversation_id=conversation.id,
            direction=direction,
            author=author,
            text=text,
            created_at=utcnow(),
        )
    )
