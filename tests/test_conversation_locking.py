"""Two messages of one driver handled at once (two processes, one PostgreSQL): no lost update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from fastapi import FastAPI
from sqlmodel import col, func, select

from backend import migrate
from backend.app import create_app
from backend.models import Conversation, Message
from backend.settings import Settings
from bot.messages import ChannelUser, Inbound
from tests.helpers.server import ADMIN_TOKEN, create_postgres_database, drop_postgres_database

CONCURRENT = 6


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    url = create_postgres_database(postgres_admin_url)
    asyncio.run(migrate.upgrade(url))
    yield url
    drop_postgres_database(postgres_admin_url, url)


@pytest.fixture
async def pg_app(postgres_url: str) -> AsyncIterator[FastAPI]:
    settings = Settings(
        _env_file=None,
        environment="production",
        database_url=postgres_url,
        admin_token=ADMIN_TOKEN,
        secret_key="test-secret-key-0123456789abcdef",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_concurrent_messages_of_one_conversation_lose_no_update(pg_app: FastAPI) -> None:
    user = ChannelUser(phone="+46701234567", name="Anna", language_code="sv")
    engine = pg_app.state.chat_engine

    def message(n: int) -> Inbound:
        return Inbound("console", "anna", text="hej", user=user, message_id=f"m{n}")

    await engine.handle(message(0))  # the conversation exists from here on
    replies = await asyncio.gather(*(engine.handle(message(n)) for n in range(1, CONCURRENT + 1)))
    assert all(replies)
    async with pg_app.state.sessions() as db:
        conversation = await db.scalar(select(Conversation))
        assert conversation is not None
        messages = await db.scalar(
            select(func.count())
            .select_from(Message)
            .where(col(Message.conversation_id) == conversation.id)
        )
    # Every handle bumped the version it read last: with a lost update it would be lower.
    assert conversation.version == 1 + CONCURRENT
    assert messages == 2 * (1 + CONCURRENT)
