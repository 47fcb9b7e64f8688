"""The database itself refuses writes (a trigger) for a block, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator

import psycopg
from sqlalchemy.engine import make_url

REFUSAL = "database refuses this write (test)"


def _libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def _sqlite_path(database_url: str) -> str | None:
    url = make_url(database_url)
    return (url.database or "") if url.get_backend_name() == "sqlite" else None


def _name(table: str, event: str) -> str:
    return f"refuse_{event.lower()}_{table}"


def _create(database_url: str, table: str, events: tuple[str, ...], when: str | None) -> None:
    path = _sqlite_path(database_url)
    if path is not None:
        condition = f"WHEN {when} " if when else ""
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            for event in events:
                conn.execute(
                    f"CREATE TRIGGER {_name(table, event)} BEFORE {event} ON {table} "
                    f"{condition}BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
                )
            conn.commit()
        return
    test = when or "TRUE"
    with psycopg.connect(_libpq(database_url), autocommit=True) as conn:
        conn.execute(
            f"CREATE OR REPLACE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN IF {test} THEN RAISE EXCEPTION '{REFUSAL}'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            f"CREATE TRIGGER refuse_{table} BEFORE {' OR '.join(events)} ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION refuse_{table}()"
        )


def _drop(database_url: str, table: str, events: tuple[str, ...]) -> None:
    path = _sqlite_path(database_url)
    if path is not None:
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
            for event in events:
                conn.execute(f"DROP TRIGGER IF EXISTS {_name(table, event)}")
            conn.commit()
        return
    with psycopg.connect(_libpq(database_url), autocommit=True) as conn:
        conn.execute(f"DROP TRIGGER IF EXISTS refuse_{table} ON {table}")


@contextlib.asynccontextmanager
async def writes_refused(
    database_url: str, table: str, *events: str, when: str | None = None
) -> AsyncIterator[None]:
    """The database refuses these writes to `table` (only rows matching `when`, a trigger
    condition on NEW, if given) until the block ends."""
    # In a thread: SQLite's schema lock may wait for the app's writer, and the app's writer
    # needs this event loop to finish; a blocking call here would deadlock until the timeout.
    await asyncio.to_thread(_create, database_url, table, events, when)
    try:
        yield
    finally:
        await asyncio.to_thread(_drop, database_url, table, events)
