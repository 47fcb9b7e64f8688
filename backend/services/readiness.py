"""Readiness: can this process do its job right now (the database takes a write, Redis answers)?

`/healthz` is liveness (the process serves HTTP); `/readyz` asks the dependencies, so a load
balancer stops sending traffic to a process whose database refuses writes. Reports name the
failing dependency and the error class only: no DSN, no message text that could carry one.

`check` answers from a per-process cache for `CACHE_TTL` (1 s), and probes arriving while a
check runs wait for that one: a flood of probes costs one write of the probe row a second,
not one each (they would all contend for that single row).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import utcnow
from backend.models import ReadinessProbe

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 2.0  # seconds per dependency: a hung database must not hang the probe
CACHE_TTL = 1.0  # seconds a report is answered again without checking
OK = "ok"
NOT_CONFIGURED = "not configured"
_PROBE_ROW = 1
_ABANDONED: set[asyncio.Task[None]] = set()  # timed-out checks still unwinding


class Pingable(Protocol):
    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Readiness:
    database: str
    redis: str

    @property
    def ready(self) -> bool:
        return self.database == OK and self.redis in (OK, NOT_CONFIGURED)

    def body(self) -> dict[str, str]:
        status = "ready" if self.ready else "unavailable"
        return {"status": status, "database": self.database, "redis": self.redis}


async def check_database(
    sessions: async_sessionmaker[AsyncSession], within: float = CHECK_TIMEOUT
) -> str:
    """Rewrite the probe row in a committed transaction; "ok" or the error's class name."""
    return await _bounded("database", _write_probe(sessions), within)


async def _write_probe(sessions: async_sessionmaker[AsyncSession]) -> None:
    table = ReadinessProbe.__table__  # type: ignore[attr-defined]
    async with sessions() as db:
        dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
        now = utcnow()
        upsert = dialect.insert(table).values(id=_PROBE_ROW, checked_at=now)
        await db.execute(
            upsert.on_conflict_do_update(index_elements=["id"], set_={"checked_at": now})
        )
        await db.commit()


async def check_redis(network: Pingable | None, within: float = CHECK_TIMEOUT) -> str:
    """PING the scale-out Redis; "not configured" without one."""
    if network is None:
        return NOT_CONFIGURED
    return await _bounded("redis", network.ping(), within)


async def _bounded(name: str, work: Coroutine[Any, Any, None], within: float) -> str:
    """Run one check; "ok", or the class of its error ("TimeoutError" after `within` seconds).

    The probe answers on time even if cancelling the check hangs too (a dead socket's
    rollback, say): the check is left to finish in the background.
    """
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        _ABANDONED.add(task)
        task.add_done_callback(_forget)
        log.warning("readiness: %s did not answer within %g s", name, within)
        return TimeoutError.__name__
    error = task.exception()
    if error is not None:  # any failure means "not ready"; the class says which kind
        log.warning("readiness: %s check failed: %s", name, type(error).__name__)
        return type(error).__name__
    return OK


def _forget(task: asyncio.Task[None]) -> None:
    _ABANDONED.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: its late failure was already reported as a timeout


async def check_now(
    sessions: async_sessionmaker[AsyncSession],
    network: Pingable | None,
    within: float = CHECK_TIMEOUT,
) -> Readiness:
    """Both checks at once, so a hung database and a hung Redis cost one timeout, not two."""
    database, redis = await asyncio.gather(
        check_database(sessions, within), check_redis(network, within)
    )
    return Readiness(database=database, redis=redis)


class CachedReadiness:
    """The last report of one database's checks, answered again for `ttl` seconds.

    `ttl` and `clock` (monotonic seconds) are attributes: a test sets `ttl = 0` to see every
    change at once. A report is reused whether ready or not (a failing database is not asked
    more often either); probes arriving while a check runs share it.
    """

    def __init__(self, ttl: float = CACHE_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._report: Readiness | None = None
        self._checked_at = 0.0
        self._running: asyncio.Future[Readiness] | None = None

    async def get(
        self,
        sessions: async_sessionmaker[AsyncSession],
        network: Pingable | None,
        within: float = CHECK_TIMEOUT,
    ) -> Readiness:
        if self._report is not None and self.clock() - self._checked_at < self.ttl:
            return self._report
        if self._running is None:
            self._running = asyncio.ensure_future(self._refresh(sessions, network, within))
        # Shielded: one impatient probe going away does not cancel the check the others await.
        return await asyncio.shield(self._running)

    async def _refresh(
        self,
        sessions: async_sessionmaker[AsyncSession],
        network: Pingable | None,
        within: float,
    ) -> Readiness:
        try:
            report = await check_now(sessions, network, within)
            self._report, self._checked_at = report, self.clock()
            return report
        finally:
            self._running = None


_CACHES: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], CachedReadiness] = (
    weakref.WeakKeyDictionary()
)


def cache_of(sessions: async_sessionmaker[AsyncSession]) -> CachedReadiness:
    """The report cache of this database (one per app: its session factory)."""
    cache = _CACHES.get(sessions)
    if cache is None:
        cache = _CACHES[sessions] = CachedReadiness()
    return cache


async def check(
    sessions: async_sessionmaker[AsyncSession],
    network: Pingable | None,
    within: float = CHECK_TIMEOUT,
) -> Readiness:
    """`check_now`, at most once per `CACHE_TTL` per process and database (`cache_of`)."""
    return await cache_of(sessions).get(sessions, network, within)
