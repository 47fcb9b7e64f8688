"""Migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from backend import migrate
from backend.db import create_engine
from tests.helpers.server import create_postgres_database, drop_postgres_database


async def _assert_at_head_matching_models(url: str) -> None:
    engine = create_engine(url)
    try:
        assert await migrate.current_revision(engine) == migrate.head_revision()

        def differences(connection: Any) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))

        def tables(connection: Any) -> set[str]:
            return set(inspect(connection).get_table_names())

        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert set(SQLModel.metadata.tables) <= await connection.run_sync(tables)
    finally:
        await engine.dispose()


async def test_upgrade_builds_an_empty_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'fresh.sqlite3'}"
    await migrate.upgrade(url)
    await _assert_at_head_matching_models(url)
    await migrate.upgrade(url)  # a second run is a no-op


async def test_upgrade_builds_an_empty_postgresql_database(postgres_admin_url: str) -> None:
    url = create_postgres_database(postgres_admin_url)
    try:
        await migrate.upgrade(url)
        await _assert_at_head_matching_models(url)
        await migrate.upgrade(url)
    finally:
        drop_postgres_database(postgres_admin_url, url)
