"""SQLite writers of one process take turns, first come first served.

SQLite lets one connection write at a time. The others poll for the lock (`busy_timeout`),
sleeping up to 100 ms between tries, so under a burst of writes (an operator's script
registering chargers twenty at a time, a connect storm) one writer can lose every poll for
longer than the timeout and fail with "database is locked" while later ones get through,
and the lock sits free while the pollers sleep. Here a write statement first takes a FIFO
lock per database file (and event loop), held until its connection's transaction ends: the
waiting writers are served in order, each as soon as the last one commits. Reads never wait.
Another process on the same file still meets SQLite's own lock and its `busy_timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util.concurrency import await_

log = logging.getLogger(__name__)

# The statements pysqlite opens a write transaction for (and SQLite takes its lock at).
_WRITE: Final = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_HELD: Final = "chargebot_sqlite_write_turn"  # in the pooled connection's `info`

_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _turn(database: str) -> asyncio.Lock:
    """The write turn of `database` in the running event loop."""
    by_file = _turns.setdefault(asyncio.get_running_loop(), {})
    return by_file.setdefault(database, asyncio.Lock())


async def _wait_turn(turn: asyncio.Lock, seconds: float) -> None:
    async with asyncio.timeout(seconds):  # cancellation-safe: a lock given up is passed on
        await turn.acquire()


def take_turns(engine: AsyncEngine, database: str, wait_seconds: float) -> None:
    """Make `engine`'s write transactions on the SQLite file `database` take turns.

    A writer that waits longer than `wait_seconds` goes on without its turn and meets
    SQLite's own lock, as without turns: a task that waits for its own turn (two sessions of
    one task both writing) fails as it always did ("database is locked") instead of hanging,
    and a turn never given back (a bug) slows writers down instead of stopping them."""
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _before_write(
        conn: Connection,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        info = conn.connection.info
        if info.get(_HELD) is not None or not _WRITE.match(statement):
            return
        turn = _turn(database)
        try:
            await_(_wait_turn(turn, wait_seconds))
        except TimeoutError:
            log.warning("no SQLite write turn after %s s; writing without one", wait_seconds)
            return
        info[_HELD] = turn

    def _end(conn: Connection) -> None:
        if not conn.invalidated:
            _release(conn.connection.info)

    event.listen(sync_engine, "commit", _end)
    event.listen(sync_engine, "rollback", _end)
    # A connection returned, closed or dropped mid-transaction gives its turn up too.
    pool = sync_engine.pool

    @event.listens_for(pool, "reset")
    def _reset(_dbapi_connection: Any, record: Any, _reset_state: Any) -> None:
        _release(record.info)

    @event.listens_for(pool, "close")
    def _close(_dbapi_connection: Any, record: Any) -> None:
        _release(record.info)

    @event.listens_for(pool, "invalidate")
    def _invalidate(_dbapi_connection: Any, record: Any, _exception: Any) -> None:
        _release(record.info)

    @event.listens_for(pool, "soft_invalidate")
    def _soft_invalidate(_dbapi_connection: Any, record: Any, _exception: Any) -> None:
        _release(record.info)


def _release(info: dict[Any, Any]) -> None:
    turn = info.pop(_HELD, None)
    if turn is not None and turn.locked():
        turn.release()
