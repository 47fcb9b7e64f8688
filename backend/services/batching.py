"""Many small writes of one kind as one statement: what arrives during a flush goes next.

A connect storm (thousands of chargers after a deploy) would otherwise cost one transaction
per charger per step. A `Batcher` runs one flush at a time: the first item is flushed at
once (no added latency when the server is quiet), items submitted meanwhile wait and go
together in the next flush. Each caller is answered after the flush holding its item has
committed, so nothing is acknowledged before it is written. One flush in flight also means
one database connection at most per batcher, whatever the storm. With `split_on_error` (a
predicate), a batch that failed for a reason one item can cause is written again item by
item, so the item the database refuses fails only its own caller; a failure of the database
itself (locked, gone) fails the whole batch at once instead of once per item. A batch the
database aborted to break a deadlock (PostgreSQL) is flushed again, up to RACE_ATTEMPTS times.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 500  # items per flush: bounded statements (PostgreSQL/SQLite bind limits)
RACE_ATTEMPTS = 3  # flushes of one batch the database may abort as a deadlock's victim
# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back
# whole, and the same work run again is expected to succeed.
_LOST_A_RACE = frozenset({"40P01", "40001"})


class Batcher(Generic[T, R]):
    """`await submit(item)` returns `flush(batch)[i]` for the item, after that flush."""

    def __init__(
        self,
        flush: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_batch: int = MAX_BATCH,
        name: str = "batch",
        split_on_error: Callable[[Exception], bool] | None = None,
    ) -> None:
        self._flush = flush
        self._split_on_error = split_on_error
        self._max_batch = max_batch
        self._name = name
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = 0
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        """Items submitted and not answered yet."""
        return len(self._queue) + self._in_flight

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                self._in_flight = len(batch)
                try:
                    results = await self._flush_again_if_lost([item for item, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as error:
                    log.warning("%s of %d failed: %r", self._name, len(batch), error)
                    if self._split_on_error and len(batch) > 1 and self._split_on_error(error):
                        await self._one_by_one(batch)
                    else:
                        _fail_all(batch, error)
                else:
                    if len(results) != len(batch):  # a bug in the flush: nobody waits forever
                        _fail_all(batch, RuntimeError(f"{self._name}: results do not match"))
                    for (_, future), result in zip(batch, results, strict=False):
                        if not future.done():
                            future.set_result(result)
                finally:
                    self._in_flight = 0
        finally:
            self._task = None
            for _, future in self._queue:  # cancelled mid-flush: nobody waits forever
                future.cancel()
            self._queue.clear()

    async def _one_by_one(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        """A failed batch again, item by item: one bad item fails only its own caller."""
        for item, future in batch:
            try:
                results = await self._flush_again_if_lost([item])
                if len(results) != 1:
                    raise RuntimeError(f"{self._name}: results do not match")
                (result,) = results
            except asyncio.CancelledError:
                for _, waiting in batch:
                    waiting.cancel()
                raise
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)

    async def _flush_again_if_lost(self, items: list[T]) -> Sequence[R]:
        """The flush; again (a few times) when the database chose it as a deadlock's victim."""
        for attempt in range(1, RACE_ATTEMPTS + 1):
            try:
                return await self._flush(items)
            except DBAPIError as error:
                if attempt == RACE_ATTEMPTS or not lost_a_race(error):
                    raise
                log.info(
                    "%s of %d lost a race in the database; written again", self._name, len(items)
                )
        raise AssertionError("unreachable")

    async def drain(self) -> None:
        """Wait until everything submitted so far is flushed."""
        while self._task is not None:
            await asyncio.shield(self._task)


def _fail_all(batch: Sequence[tuple[object, asyncio.Future[R]]], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)


def caused_by_an_item(error: Exception) -> bool:
    """A database error one row can cause (a constraint, a value, a trigger's refusal), as
    opposed to the database being locked, unreachable or out of connections."""
    return isinstance(error, DBAPIError) and not isinstance(
        error, (OperationalError, InterfaceError)
    )


def lost_a_race(error: Exception) -> bool:
    """The database aborted the transaction to break a deadlock or a serialization conflict."""
    orig = getattr(error, "orig", None)
    return isinstance(error, DBAPIError) and getattr(orig, "sqlstate", None) in _LOST_A_RACE
