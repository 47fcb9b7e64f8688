"""MeterValues group commit (issue #15), on SQLite and PostgreSQL.

Seen from the chargers' side: MeterValues from many chargers at once are written in shared
transactions (fewer sample INSERTs and commits than messages), every answered report is
stored with the right energy, a report the database refuses fails only its own charger, and a
report for no live session writes nothing. Counts of statements, never timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Sequence

import pytest
from ocpp.exceptions import OCPPError
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import ChargingSession, MeterSample
from backend.services.batching import Batcher
from backend.services.metering import ENERGY, POWER, MeterReport, MeterWriter, Sample
from backend.services.plausibility import PlausibilityRules
from tests.helpers.charging import driver_with_tag, priced_charger, session_of
from tests.helpers.refusals import writes_refused
from tests.helpers.server import LiveServer
from tests.helpers.statements import statements_matching
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger

_SAMPLE_INSERT = re.compile(r"^\s*INSERT INTO meter_sample\b", re.I)
POISON_W = 4242.0  # the power value the database refuses in the poison test


def _sample_inserts(engine: AsyncEngine) -> contextlib.AbstractContextManager[list[str]]:
    """Every INSERT into meter_sample the app's engine runs while inside."""
    return statements_matching(engine, _SAMPLE_INSERT)


async def _row(live: LiveServer, session_id: int) -> ChargingSession:
    async with live.app.state.sessions() as db:
        session: ChargingSession | None = await db.get(
            ChargingSession, session_id, populate_existing=True
        )
        assert session is not None
        return session


async def _samples_of(live: LiveServer, session_id: int) -> int:
    async with live.app.state.sessions() as db:
        count = await db.scalar(
            select(func.count())
            .select_from(MeterSample)
            .where(col(MeterSample.session_id) == session_id)
        )
        return int(count or 0)


@contextlib.asynccontextmanager
async def _charging(
    live: LiveServer, count: int
) -> AsyncIterator[list[tuple[BareChargePoint, int]]]:
    """`count` chargers, each connected and in a transaction: (charge point, transaction id)."""
    async with contextlib.AsyncExitStack() as stack:
        started: list[tuple[BareChargePoint, int]] = []
        for n in range(count):
            charger = await priced_charger(live.http)
            await driver_with_tag(live.http, f"GROUP-{n}", name=f"Driver {n}")
            cp = await stack.enter_async_context(bare_charger(live.ocpp_url, charger["id"]))
            start = await cp.start_transaction(1, f"GROUP-{n}", 1000)
            assert start.id_tag_info["status"] == "Accepted"
            started.append((cp, start.transaction_id))
        yield started


async def test_meter_values_from_many_chargers_share_transactions_and_all_are_kept(
    live: LiveServer,
) -> None:
    rounds, chargers = 4, 12
    async with _charging(live, chargers) as started:
        with _sample_inserts(live.app.state.db_engine) as inserts:
            for n in range(1, rounds + 1):
                await asyncio.gather(
                    *(cp.meter(1, tx, 1000 + n * 100, 7400.0) for cp, tx in started)
                )
        messages = rounds * chargers
        # Written together: at most one INSERT per two messages (one per message before).
        assert 1 <= len(inserts) <= messages // 2, (len(inserts), messages)
        for _, tx in started:
            session = await _row(live, tx)
            assert session.energy_wh == rounds * 100
            assert session.power_w == 7400.0
            assert await _samples_of(live, tx) == 2 * rounds  # energy + power per message


async def test_reports_of_one_session_in_one_batch_apply_in_order(live: LiveServer) -> None:
    async with _charging(live, 1) as started:
        ((_, tx),) = started
        async with live.app.state.sessions() as db:  # an idle warning was sent earlier
            await db.execute(
                update(ChargingSession)
                .where(col(ChargingSession.id) == tx)
                .values(idle_warning_sent_at=utcnow())
            )
            await db.commit()
        writer = MeterWriter(live.app.state.sessions, PlausibilityRules(1000.0, 1_000_000))
        charger = (await _row(live, tx)).charger_id

        def report(wh: float, w: float) -> MeterReport:
            at = utcnow()
            samples = [Sample(ENERGY, wh, "Wh", None, at), Sample(POWER, w, "W", None, at)]
            return MeterReport(charger, 1, tx, samples)

        finished, resumed, later = report(1500, 50.0), report(1600, 7400.0), report(1700, 7400.0)
        with _sample_inserts(live.app.state.db_engine) as inserts:
            outcomes = await asyncio.gather(
                writer.write(finished), writer.write(resumed), writer.write(later)
            )
        assert len(inserts) == 1  # the three went in one batch
        assert [o.finished if o else None for o in outcomes] == [True, False, False]
        assert [o.energy_wh if o else None for o in outcomes] == [500, 600, 700]
        session = await _row(live, tx)
        assert (session.energy_wh, session.power_w) == (700, 7400.0)
        assert session.charging_finished_at is None  # it stopped, then drew power again
        assert session.idle_warning_sent_at is None  # so a new warning may come later
        assert await _samples_of(live, tx) == 6


async def test_a_car_that_stops_and_resumes_drawing_power_over_the_socket(
    live: LiveServer,
) -> None:
    async with _charging(live, 3) as started:
        (first, tx), others = started[0], started[1:]
        # Other chargers' reports in the same batches: each session keeps its own figures.
        await asyncio.gather(
            *(cp.meter(1, other_tx, 1500, 7400.0) for cp, other_tx in others),
            first.meter(1, tx, 1200, 7400.0),
        )
        await first.meter(1, tx, 1900, 50.0)  # the car stops drawing power
        session = await _row(live, tx)
        assert session.energy_wh == 900
        assert session.power_w == 50.0
        assert session.charging_finished_at is not None  # idle time may begin
        await first.meter(1, tx, 2500, 7400.0)  # and draws power again
        session = await _row(live, tx)
        assert (session.energy_wh, session.charging_finished_at) == (1500, None)


async def _value(value: int) -> int:
    return value


@contextlib.asynccontextmanager
async def _row_held(live: LiveServer, session_id: int) -> AsyncIterator[None]:
    """A write on the session's row left open: SQLite's writer lock, PostgreSQL's row lock."""
    async with live.app.state.sessions() as db:
        await db.execute(
            update(ChargingSession)
            .where(col(ChargingSession.id) == session_id)
            .values(updated_at=ChargingSession.updated_at)
        )
        try:
            yield
        finally:
            await db.rollback()


async def _outcome(cp: BareChargePoint, tx: int, wh: int, w: float) -> str:
    try:
        await cp.meter(1, tx, wh, w)
    except OCPPError as error:
        return type(error).__name__
    return "answered"


async def test_a_report_the_database_refuses_fails_only_its_own_charger(
    live: LiveServer, database_url: str
) -> None:
    charging = live.app.state.charging

    def waiting() -> Awaitable[int]:
        return _value(charging.meter_reports_waiting)

    async with _charging(live, 9) as started:
        (poisoned, poisoned_tx), (first, first_tx), healthy = started[0], started[1], started[2:]
        poison = f"NEW.value = {POISON_W}"
        async with writes_refused(database_url, "meter_sample", "INSERT", when=poison):
            with _sample_inserts(live.app.state.db_engine) as inserts:
                # The first batch waits on a write held open, so the rest queue up together.
                async with _row_held(live, first_tx):
                    first_report = asyncio.create_task(_outcome(first, first_tx, 1300, 7400.0))
                    await eventually(waiting, lambda n: n == 1)
                    reports = asyncio.gather(
                        *(_outcome(cp, tx, 1300, 7400.0) for cp, tx in healthy[:3]),
                        _outcome(poisoned, poisoned_tx, 5000, POISON_W),
                        *(_outcome(cp, tx, 1300, 7400.0) for cp, tx in healthy[3:]),
                    )
                    await eventually(waiting, lambda n: n == 9)
                assert await first_report == "answered"
                answers = await reports
        # The first batch, the refused batch of eight, then its eight reports one by one.
        assert len(inserts) == 1 + 1 + 8, inserts
        outcomes = [answers[3], *answers[:3], *answers[4:]]
        assert outcomes[0] == "InternalError"  # not acknowledged: the charger sends it again
        assert outcomes[1:] == ["answered"] * len(healthy)
        assert (await session_of(live.http, poisoned_tx))["energy_wh"] == 0
        assert await _samples_of(live, poisoned_tx) == 0
        for _, tx in healthy:
            assert (await session_of(live.http, tx))["energy_wh"] == 300
            assert await _samples_of(live, tx) == 2
        # The refused report, sent again once the database takes it, is kept.
        assert await _outcome(poisoned, poisoned_tx, 5000, 7000.0) == "answered"
        assert (await session_of(live.http, poisoned_tx))["energy_wh"] == 4000


async def test_a_report_for_no_live_session_writes_nothing(live: LiveServer) -> None:
    async with _charging(live, 1) as started:
        ((cp, tx),) = started
        await cp.stop_transaction(tx, 2000)
        await cp.meter(1, tx, 9000, 7400.0)  # late: the session is priced
        await cp.meter(1, tx + 1000, 9000, 7400.0)  # a transaction we never issued
        assert await _samples_of(live, tx) == 0
        assert (await session_of(live.http, tx))["energy_wh"] == 1000


# --- the batcher itself -------------------------------------------------------------------


async def test_items_arriving_during_a_flush_go_together_in_the_next() -> None:
    flushed: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        flushed.append(list(items))
        if len(flushed) == 1:
            await release.wait()
        return [item * 10 for item in items]

    batcher: Batcher[int, int] = Batcher(flush)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert len(batcher) == 4  # one in flight, three waiting
    release.set()
    assert await first == 10
    assert [await task for task in rest] == [20, 30, 40]
    assert flushed == [[1], [2, 3, 4]]


async def test_a_failed_batch_is_retried_item_by_item_when_asked() -> None:
    attempts: list[list[str]] = []
    release = asyncio.Event()

    async def flush(items: Sequence[str]) -> list[str]:
        attempts.append(list(items))
        if items == ["gate"]:
            await release.wait()
        if "bad" in items:
            raise ValueError("refused")
        return [item.upper() for item in items]

    def item_error(error: Exception) -> bool:
        return isinstance(error, ValueError)

    def database_down(error: Exception) -> bool:
        return False

    for split, expected_good in ((item_error, ["A", "C"]), (database_down, None), (None, None)):
        attempts.clear()
        batcher: Batcher[str, str] = Batcher(flush, split_on_error=split)
        release.clear()
        gate = asyncio.create_task(batcher.submit("gate"))  # in flight while the rest queue
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(batcher.submit(item)) for item in ("a", "bad", "c")]
        await asyncio.sleep(0)
        release.set()
        assert await gate == "GATE"
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[1], ValueError)
        if expected_good is None:  # without splitting, the whole batch fails
            assert all(isinstance(r, ValueError) for r in results)
            assert attempts == [["gate"], ["a", "bad", "c"]]
        else:
            assert [results[0], results[2]] == expected_good
            assert attempts == [["gate"], ["a", "bad", "c"], ["a"], ["bad"], ["c"]]


@pytest.mark.parametrize("split", [True, False])
async def test_a_cancelled_flush_leaves_no_caller_waiting(split: bool) -> None:
    def always(error: Exception) -> bool:
        return True

    started = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int]:
        started.set()
        await asyncio.sleep(3600)
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush, split_on_error=always if split else None)
    waiting = [asyncio.create_task(batcher.submit(n)) for n in range(3)]
    await started.wait()
    assert batcher._task is not None
    batcher._task.cancel()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert len(batcher) == 0
