"""StartTransaction and StopTransaction group commit (issue #15), on SQLite and PostgreSQL.

Seen from the chargers' side: many chargers starting (and stopping) at once share
transactions (fewer commits than messages), each gets its own transactionId and its session
priced; a start naming a connector its charger lacks fails only its own charger; a batch
PostgreSQL aborts to break a deadlock is written again. Counts of commits, never timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import psycopg
import pytest
from ocpp.exceptions import OCPPError
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.services.batching import Batcher
from tests.helpers.charging import driver_with_tag, priced_charger, session_of
from tests.helpers.factories import make_charger
from tests.helpers.server import LiveServer
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger

_WRITES_A_SESSION = re.compile(r"^\s*(INSERT INTO|UPDATE) charging_session\b", re.I)
CHARGERS = 16


@contextlib.contextmanager
def commits_writing_sessions(
    engine: AsyncEngine, rollbacks: list[int] | None = None
) -> Iterator[list[int]]:
    """One entry per commit of a transaction that wrote charging_session rows (how many
    statements it ran on that table), while inside; `rollbacks` gets those rolled back."""
    commits: list[int] = []

    def record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if _WRITES_A_SESSION.match(statement):
            conn.info["session_writes"] = conn.info.get("session_writes", 0) + 1

    def committed(conn: Any) -> None:
        writes = conn.info.pop("session_writes", 0)
        if writes:
            commits.append(writes)

    def rolled_back(conn: Any) -> None:
        writes = conn.info.pop("session_writes", 0)
        if writes and rollbacks is not None:
            rollbacks.append(writes)

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", record)
    event.listen(sync, "commit", committed)
    event.listen(sync, "rollback", rolled_back)
    try:
        yield commits
    finally:
        event.remove(sync, "before_cursor_execute", record)
        event.remove(sync, "commit", committed)
        event.remove(sync, "rollback", rolled_back)


@contextlib.asynccontextmanager
async def _connected(live: LiveServer, count: int) -> AsyncIterator[list[BareChargePoint]]:
    """`count` chargers at one priced station, booted; charger n's driver has tag GC-n."""
    first = await priced_charger(live.http)
    ids = [first["id"]]
    for _ in range(count - 1):
        ids.append((await make_charger(live.http, first["station_id"]))["id"])
    for n in range(count):
        await driver_with_tag(live.http, f"GC-{n}", name=f"Driver {n}", billing="invoice")
    async with contextlib.AsyncExitStack() as stack:
        chargers = [
            await stack.enter_async_context(bare_charger(live.ocpp_url, charger_id))
            for charger_id in ids
        ]
        for charger in chargers:
            await charger.boot()
        yield chargers


async def test_starts_and_stops_arriving_together_share_commits(live: LiveServer) -> None:
    engine = live.app.state.db_engine
    async with _connected(live, CHARGERS) as chargers:
        with commits_writing_sessions(engine) as start_commits:
            starts = await asyncio.gather(
                *(cp.start_transaction(1, f"GC-{n}", 10_000) for n, cp in enumerate(chargers))
            )
        assert all(s.id_tag_info["status"] == "Accepted" for s in starts), starts
        transactions = [int(s.transaction_id) for s in starts]
        assert len(set(transactions)) == CHARGERS  # each its own transactionId
        # Written together: at most one commit per two starts (one per start before).
        assert 1 <= len(start_commits) <= CHARGERS // 2, start_commits

        with commits_writing_sessions(engine) as stop_commits:
            await asyncio.gather(
                *(
                    cp.stop_transaction(tx, 10_000 + 1_000 * (n + 1))
                    for n, (cp, tx) in enumerate(zip(chargers, transactions, strict=True))
                )
            )
        assert 1 <= len(stop_commits) <= CHARGERS // 2, stop_commits
        for n, tx in enumerate(transactions):
            session = await session_of(live.http, tx)  # transactionId is the session's id
            assert session["status"] == "completed", session
            assert session["energy_wh"] == 1_000 * (n + 1)
            assert session["cost_minor"] > 0


async def test_a_start_on_a_connector_the_charger_lacks_fails_only_its_own(
    live: LiveServer,
) -> None:
    async with _connected(live, CHARGERS) as chargers:
        bad = CHARGERS // 2

        async def start(n: int, cp: BareChargePoint) -> Any:
            return await cp.start_transaction(9 if n == bad else 1, f"GC-{n}", 0)

        undone: list[int] = []
        with commits_writing_sessions(live.app.state.db_engine, undone):
            results = await asyncio.gather(
                *(start(n, cp) for n, cp in enumerate(chargers)), return_exceptions=True
            )
        # It shared a transaction with starts already written in it: that was rolled back
        # and its starts written again, one by one (each answered once, below).
        assert undone, "the refused start never shared a transaction"
        refused = results[bad]
        assert isinstance(refused, OCPPError), refused
        assert "connector" in str(refused.description)
        others = [r for n, r in enumerate(results) if n != bad]
        assert all(not isinstance(r, BaseException) for r in others), others
        for result in others:
            assert not isinstance(result, BaseException)
            assert result.id_tag_info["status"] == "Accepted"
            session = await session_of(live.http, int(result.transaction_id))
            assert session["status"] == "charging"


async def test_a_start_sent_twice_in_one_burst_opens_one_session(live: LiveServer) -> None:
    """A retried StartTransaction (same frame) in the same burst gets the same transactionId."""
    async with _connected(live, 1) as (cp,):
        stamp = "2026-12-01T10:00:00Z"
        first, again = await asyncio.gather(
            cp.start_transaction(1, "GC-0", 500, timestamp=stamp),
            cp.start_transaction(1, "GC-0", 500, timestamp=stamp),
        )
        assert first.transaction_id == again.transaction_id
        sessions = await eventually(
            lambda: _sessions(live), lambda found: len(found) == 1, within=5
        )
        assert sessions[0]["id"] == first.transaction_id


async def _sessions(live: LiveServer) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await live.http.get("/admin/sessions")).json()
    return found


# --- a batch PostgreSQL aborted to break a deadlock -----------------------------------------


def _database_error(error: psycopg.Error) -> OperationalError | IntegrityError:
    kind = IntegrityError if isinstance(error, psycopg.errors.IntegrityError) else OperationalError
    return kind("UPDATE charging_session ...", {}, error)


@pytest.mark.parametrize(
    ("error", "flushes"),
    [
        (psycopg.errors.DeadlockDetected("deadlock detected"), 2),
        (psycopg.errors.SerializationFailure("could not serialize access"), 2),
        (psycopg.errors.UniqueViolation("duplicate key"), 1),
        (psycopg.errors.AdminShutdown("terminating connection"), 1),
    ],
)
async def test_only_a_deadlocks_victim_is_written_again(error: psycopg.Error, flushes: int) -> None:
    attempts: list[list[int]] = []

    async def flush(items: Sequence[int]) -> list[int]:
        attempts.append(list(items))
        if len(attempts) == 1:
            raise _database_error(error)
        return [item * 2 for item in items]

    batcher: Batcher[int, int] = Batcher(flush)
    (result,) = await asyncio.gather(batcher.submit(21), return_exceptions=True)
    assert len(attempts) == flushes
    if flushes == 2:
        assert result == 42
    else:
        assert isinstance(result, OperationalError | IntegrityError)


async def test_a_batch_that_keeps_losing_fails_after_a_few_tries() -> None:
    attempts = 0

    async def flush(items: Sequence[int]) -> list[int]:
        nonlocal attempts
        attempts += 1
        raise _database_error(psycopg.errors.DeadlockDetected("deadlock detected"))

    batcher: Batcher[int, int] = Batcher(flush)
    with pytest.raises(OperationalError):
        await batcher.submit(1)
    assert attempts == 3
