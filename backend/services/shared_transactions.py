"""Units of database work that arrive together, written in one transaction (group commit).

StartTransaction and StopTransaction each read and write a few rows under rules that stay
in `ChargingService`. Two hundred chargers starting at once would cost two hundred commits
(an fsync each on SQLite) and as many turns for SQLite's single write lock. Here each
message's work is a *unit*: `async def unit(db) -> result`, which writes through `db` and
never commits. Units that arrive while a transaction is being written go together in the
next one: run in order on one session, each seeing the writes before it, then one commit.
Every caller gets its result only after that commit, so nothing is acknowledged unwritten.

A unit that raises (a connector the charger does not have, a row the database refuses)
rolls back the whole transaction; the units are then run again one transaction each, so the
error reaches only its own caller. Units therefore only touch the database: running one
again after a rollback must be safe. Events are published by the callers, after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.services.batching import Batcher, lost_a_race

R = TypeVar("R")
Unit = Callable[[AsyncSession], Awaitable[R]]

# Units per transaction: enough to share commits, few enough that SQLite's write lock (held
# from a batch's first write to its commit, ~13 ms of work per unit) keeps MeterValues and
# status batches waiting a quarter of a second at most.
MAX_UNITS = 20


def _one_unit_may_have_caused(error: Exception) -> bool:
    """Anything but the database itself being locked or gone: worth running unit by unit.

    A batch that kept losing deadlocks too: one unit at a time holds fewer row locks.
    """
    return lost_a_race(error) or not isinstance(error, (OperationalError, InterfaceError))


class SharedTransactions:
    """`await run(unit)`: the unit's result, after the commit of the transaction holding it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], name: str) -> None:
        self._sessions = sessions
        self._batcher: Batcher[Unit[Any], Any] = Batcher(
            self._write,
            name=name,
            max_batch=MAX_UNITS,
            split_on_error=_one_unit_may_have_caused,
        )

    @property
    def waiting(self) -> int:
        """Units submitted and not yet committed."""
        return len(self._batcher)

    async def run(self, unit: Unit[R]) -> R:
        result: R = await self._batcher.submit(unit)
        return result

    async def drain(self) -> None:
        await self._batcher.drain()

    async def _write(self, units: Sequence[Unit[Any]]) -> list[Any]:
        results = []
        async with self._sessions() as db:
            for unit in units:
                results.append(await unit(db))
                await db.flush()
                # Each unit reads the database afresh: rows an earlier unit changed with a
                # bulk UPDATE are not served stale from the session's identity map.
                db.expunge_all()
            await db.commit()
        return results
