"""SQLite writers of one process take turns in arrival order, and every turn is given back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.db import create_engine, session_factory
from tests.helpers.waiting import settle


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE row (id INTEGER PRIMARY KEY, who TEXT)"))
    yield engine
    await engine.dispose()


async def _write(engine: AsyncEngine, who: str, done: list[str]) -> None:
    async with session_factory(engine)() as db:
        await db.execute(text("INSERT INTO row (who) VALUES (:who)"), {"who": who})
        await db.commit()
    done.append(who)


async def test_waiting_writers_are_served_in_the_order_they_came(engine: AsyncEngine) -> None:
    done: list[str] = []
    async with session_factory(engine)() as holder:
        await holder.execute(text("INSERT INTO row (who) VALUES ('holder')"))
        waiting = []
        for n in range(8):  # each arrives while the holder still writes
            waiting.append(asyncio.ensure_future(_write(engine, f"w{n}", done)))
            await settle(0.05)
        await settle(0.3)  # SQLite's own waiters would by now poll every 100 ms, in any order
        assert done == []  # nobody wrote past the holder's open transaction
        await holder.commit()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert done == [f"w{n}" for n in range(8)]
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT who FROM row ORDER BY id"))).scalars().all()
    assert rows == ["holder", *done]


async def _no_turn_kept(engine: AsyncEngine, caplog: pytest.LogCaptureFixture) -> None:
    """The next writer writes at once: nobody kept the turn."""
    caplog.clear()
    await asyncio.wait_for(_write(engine, "next", []), 2)  # a kept turn waits 5 s
    assert "no SQLite write turn" not in caplog.text


async def test_a_turn_is_given_back_however_the_transaction_ends(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backend.sqlite_writers")
    sessions = session_factory(engine)
    async with sessions() as db:  # committed
        await db.execute(text("INSERT INTO row (id, who) VALUES (1, 'first')"))
        await db.commit()
    await _no_turn_kept(engine, caplog)

    async with sessions() as db:  # rolled back
        await db.execute(text("INSERT INTO row (who) VALUES ('undone')"))
        await db.rollback()
    await _no_turn_kept(engine, caplog)

    with pytest.raises(IntegrityError):  # failed, and the session closed without a rollback
        async with sessions() as db:
            await db.execute(text("INSERT INTO row (who) VALUES ('fine')"))
            await db.execute(text("INSERT INTO row (id, who) VALUES (1, 'duplicate')"))
    await _no_turn_kept(engine, caplog)

    async with sessions() as db:  # closed with the write still open
        await db.execute(text("INSERT INTO row (who) VALUES ('abandoned')"))
    await _no_turn_kept(engine, caplog)

    async def cancelled_mid_transaction() -> None:
        async with sessions() as db:
            await db.execute(text("INSERT INTO row (who) VALUES ('cancelled')"))
            await asyncio.sleep(30)

    task = asyncio.ensure_future(cancelled_mid_transaction())
    await settle(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _no_turn_kept(engine, caplog)

    async with engine.begin() as conn:  # Core, committed by its context
        await conn.execute(text("UPDATE row SET who = 'core' WHERE id = 1"))
    await _no_turn_kept(engine, caplog)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT who FROM row ORDER BY id"))).scalars().all()
    assert rows == ["core"] + ["next"] * 6


async def test_reads_never_wait_for_a_writer(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as holder:
        await holder.execute(text("INSERT INTO row (who) VALUES ('holder')"))
        async with engine.connect() as reader:
            seen = await asyncio.wait_for(reader.execute(text("SELECT count(*) FROM row")), 1)
            assert seen.scalar_one() == 0  # the holder has not committed
        await holder.commit()
