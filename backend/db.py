"""Async engine, sessions and the database URL rules (the app picks the async driver itself)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.types import DateTime, TypeDecorator

from backend import sqlite_writers

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "psycopg"}
_BACKEND_ALIASES = {"postgres": "postgresql"}
SQLITE_BUSY_SECONDS = 5.0  # how long a SQLite writer waits for the lock before it fails


class UnsupportedDatabaseError(ValueError):
    """DATABASE_URL names a database we do not support."""


def async_url(database_url: str) -> URL:
    """Turn a usual SQLAlchemy URL (`sqlite:///x`, `postgresql://u@h/db`) into its async form."""
    url = make_url(database_url)
    backend = _BACKEND_ALIASES.get(url.get_backend_name(), url.get_backend_name())
    if backend not in _ASYNC_DRIVERS:
        raise UnsupportedDatabaseError(
            f"DATABASE_URL uses {backend!r}; supported are sqlite and postgresql"
        )
    return url.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")


def sqlite_file(database_url: str) -> Path | None:
    """The file of a file-backed SQLite URL, else None (PostgreSQL or in-memory SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on every backend (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_SECONDS * 1000)}")
    cursor.close()


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for DATABASE_URL; creates the folder of a SQLite file."""
    url = async_url(database_url)
    path = sqlite_file(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    if path is not None:
        sqlite_writers.take_turns(engine, str(path.resolve()), SQLITE_BUSY_SECONDS)
    return engine


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(
    factory: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One session per request; rolled back on error so nothing is half-written."""
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
