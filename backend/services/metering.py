"""MeterValues on live sessions, written in shared transactions (group commit).

A charger sends MeterValues every minute or so; ten thousand chargers, a hundred and more a
second. One transaction per message makes the database's commit (an fsync on SQLite) the
limit, and the ORM's unit of work the CPU bill. Here the reports arriving while a batch is
written go together in the next one (`services/batching.Batcher`): one SELECT of the live
sessions they name, one executemany INSERT of their samples, one executemany UPDATE of the
sessions, one commit. Each charger is answered only after the commit holding its report,
so a kill -9 loses nothing acknowledged.

The rules for a reading (plausibility, clock range, when the car stopped drawing power) are
`apply_report`, a pure function over a session's live figures; the writer only moves rows.
Every MeterValues of a process goes through one writer, one batch at a time, and a charger's
socket (so its reports) belongs to one process even when scaled out, so no other reading
changes a session between the batch's SELECT and its UPDATE. A StopTransaction or an
operator's close may: the UPDATE is guarded by the live statuses, and the batch then keeps
no samples and tells no progress for a session that was closed meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.db import utcnow
from backend.lifecycles import LIVE_SESSION_STATUSES
from backend.models import ChargingSession, Connector, MeterSample
from backend.services import plausibility
from backend.services.batching import Batcher, caused_by_an_item
from backend.services.plausibility import PlausibilityRules

log = logging.getLogger(__name__)

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
# Below this the car is taken to have stopped drawing power (idle time may begin).
FINISHED_BELOW_W = 100.0

_SESSIONS = cast(Table, ChargingSession.__table__)  # type: ignore[attr-defined]
_CONNECTORS = cast(Table, Connector.__table__)  # type: ignore[attr-defined]
_SAMPLES = cast(Table, MeterSample.__table__)  # type: ignore[attr-defined]
_LIVE = [str(status) for status in LIVE_SESSION_STATUSES]
# No IN (...) in the executemany UPDATEs: an expanding parameter cannot be used there.
_IS_LIVE: ColumnElement[bool] = or_(*(_SESSIONS.c.status == status for status in _LIVE))

_INSERT_SAMPLES = insert(_SAMPLES)
# Every column a reading can change; written whole per session (the batch read them).
_UPDATE_SESSION = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("m_id"), _IS_LIVE)
    .values(
        energy_wh=bindparam("m_energy"),
        power_w=bindparam("m_power"),
        charging_finished_at=bindparam("m_finished"),
        review_reason=bindparam("m_review"),
        updated_at=bindparam("m_at"),
    )
)
# Only for a car drawing power again: its idle warning may be sent again later.
_RESET_IDLE_WARNING = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("m_id"), _IS_LIVE)
    .values(idle_warning_sent_at=None)
)


@dataclass(frozen=True)
class Sample:
    """One sampled value of MeterValues, in base units (Wh, W, %)."""

    measurand: str
    value: float
    unit: str | None
    phase: str | None
    at: datetime


@dataclass(frozen=True)
class MeterReport:
    """One MeterValues message: which session it names, and its samples."""

    charger_id: str
    connector_id: int
    transaction_id: int | None
    samples: Sequence[Sample]


@dataclass
class LiveFigures:
    """What a reading changes on a live session (read at the start of a batch)."""

    session_id: int
    charger_id: str
    connector_id: int
    transaction_id: int | None
    driver_id: int | None
    channel: str | None
    meter_start_wh: int | None
    energy_wh: int
    power_w: float | None
    review_reason: str | None
    charging_finished_at: datetime | None
    started_at: datetime | None
    created_at: datetime
    max_power_kw: float | None
    idle_warning_reset: bool = field(default=False)


@dataclass(frozen=True)
class MeterOutcome:
    """A report written to a live session: the figures to publish."""

    session_id: int
    driver_id: int | None
    channel: str | None
    energy_wh: int
    power_w: float | None
    finished: bool  # the car stopped drawing power with this report


def total_power(samples: Sequence[Sample]) -> tuple[float, datetime] | None:
    """The newest total active power: the phase-less value, else the sum over phases."""
    power = [s for s in samples if s.measurand == POWER]
    if not power:
        return None
    latest_at = max(s.at for s in power)
    at_latest = [s for s in power if s.at == latest_at]
    total = [s for s in at_latest if s.phase is None]
    if total:
        return total[0].value, latest_at
    return sum(s.value for s in at_latest if not (s.phase or "").endswith("-N")), latest_at


def apply_report(
    live: LiveFigures, samples: Sequence[Sample], now: datetime, rules: PlausibilityRules
) -> bool:
    """Apply one report's samples to `live`; True when the car stopped drawing power now.

    Energy is never raised beyond what the connector can have delivered (the samples are
    kept as reported); a sample dated out of range marks the session for review when it ends.
    """
    energy = [s for s in samples if s.measurand == ENERGY and s.phase is None]
    if energy and live.meter_start_wh is not None:
        latest = max(energy, key=lambda s: s.at)
        seconds = plausibility.elapsed_seconds(live.started_at, latest.at, live.created_at, now)
        bound = plausibility.max_energy_wh(
            live.max_power_kw or plausibility.FALLBACK_MAX_POWER_KW, seconds, rules
        )
        verdict = plausibility.judge(
            latest.value,
            live.meter_start_wh,
            bound,
            previous_wh=live.energy_wh,
            slack_wh=rules.slack_wh,
        )
        if not verdict.plausible:
            log.warning(
                "implausible MeterValues on %s, session %s (%s): %s Wh claimed, %s Wh kept",
                live.charger_id,
                live.session_id,
                verdict.reason,
                verdict.measured_wh,
                max(live.energy_wh, verdict.plausible_wh),
            )
        live.energy_wh = max(live.energy_wh, verdict.plausible_wh)
    # Idle fees count from a sample's time: clamped to our clock (see plausibility).
    start = plausibility.billable_start(live.started_at, live.created_at, now)
    if live.review_reason is None and any(
        plausibility.off_clock(s.at, plausibility.clamp_time(s.at, start, now, rules), now, rules)
        for s in samples
    ):
        live.review_reason = plausibility.CLOCK_OUT_OF_RANGE  # reviewed when it ends
        log.warning(
            "MeterValues on %s, session %s, dated out of range: %s",
            live.charger_id,
            live.session_id,
            ", ".join(sorted({s.at.isoformat() for s in samples})[:3]),
        )
    power = total_power(samples)
    if power is None:
        return False
    power_w, at = power
    live.power_w = power_w
    if power_w < FINISHED_BELOW_W and live.energy_wh > 0:
        if live.charging_finished_at is None:
            live.charging_finished_at = plausibility.clamp_time(at, start, now, rules)
            return True
    elif power_w >= FINISHED_BELOW_W and live.charging_finished_at is not None:
        live.charging_finished_at = None  # the car draws power again
        live.idle_warning_reset = True
    return False


class MeterWriter:
    """Writes MeterValues reports in shared transactions; see the module docstring."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], rules: PlausibilityRules
    ) -> None:
        self._sessions = sessions
        self._rules = rules
        self._batcher: Batcher[MeterReport, MeterOutcome | None] = Batcher(
            self._flush, name="MeterValues batch", split_on_error=caused_by_an_item
        )

    @property
    def waiting(self) -> int:
        """Reports submitted and not yet written."""
        return len(self._batcher)

    async def write(self, report: MeterReport) -> MeterOutcome | None:
        """Store the report; None when it names no live session (nothing is written)."""
        return await self._batcher.submit(report)

    async def drain(self) -> None:
        await self._batcher.drain()

    async def _flush(self, reports: Sequence[MeterReport]) -> list[MeterOutcome | None]:
        now = utcnow()
        async with self._sessions() as db:
            live = _LiveIndex(
                await self._live_figures(db, {report.charger_id for report in reports})
            )
            samples: list[dict[str, Any]] = []
            outcomes: list[MeterOutcome | None] = []
            touched: dict[int, LiveFigures] = {}
            for report in reports:
                figures = live.match(report)
                if figures is None:
                    outcomes.append(None)
                    continue
                samples.extend(
                    {
                        "session_id": figures.session_id,
                        "measurand": s.measurand,
                        "value": s.value,
                        "unit": s.unit,
                        "phase": s.phase,
                        "sampled_at": s.at,
                    }
                    for s in report.samples
                )
                finished = apply_report(figures, report.samples, now, self._rules)
                touched[figures.session_id] = figures
                outcomes.append(
                    MeterOutcome(
                        figures.session_id,
                        figures.driver_id,
                        figures.channel,
                        figures.energy_wh,
                        figures.power_w,
                        finished,
                    )
                )
            if touched:
                await db.execute(
                    _UPDATE_SESSION,
                    [
                        {
                            "m_id": f.session_id,
                            "m_energy": f.energy_wh,
                            "m_power": f.power_w,
                            "m_finished": f.charging_finished_at,
                            "m_review": f.review_reason,
                            "m_at": now,
                        }
                        for f in sorted(touched.values(), key=lambda f: f.session_id)
                    ],
                )
                resumed = [{"m_id": f.session_id} for f in touched.values() if f.idle_warning_reset]
                if resumed:
                    await db.execute(_RESET_IDLE_WARNING, resumed)
                # A session closed between our SELECT and UPDATE (a StopTransaction, an
                # operator's close) kept its priced figures; its late samples are not kept and
                # no progress is told for it. The rows we updated stay locked until commit.
                still = set(
                    await db.scalars(
                        select(_SESSIONS.c.id).where(
                            _SESSIONS.c.id.in_(list(touched)), _SESSIONS.c.status.in_(_LIVE)
                        )
                    )
                )
                if len(still) < len(touched):
                    samples = [row for row in samples if row["session_id"] in still]
                    outcomes = [o if o is None or o.session_id in still else None for o in outcomes]
            if samples:
                await db.execute(_INSERT_SAMPLES, samples)
            await db.commit()
        return outcomes

    async def _live_figures(self, db: AsyncSession, charger_ids: set[str]) -> list[LiveFigures]:
        s, c = _SESSIONS.c, _CONNECTORS.c
        rows = await db.execute(
            select(
                s.id.label("session_id"),
                s.charger_id,
                s.connector_id,
                s.transaction_id,
                s.driver_id,
                s.channel,
                s.meter_start_wh,
                s.energy_wh,
                s.power_w,
                s.review_reason,
                s.charging_finished_at,
                s.started_at,
                s.created_at,
                c.max_power_kw,
            )
            .select_from(
                _SESSIONS.outerjoin(
                    _CONNECTORS,
                    and_(c.charger_id == s.charger_id, c.connector_id == s.connector_id),
                )
            )
            .where(s.charger_id.in_(charger_ids), s.status.in_(_LIVE))
            .order_by(s.id)
        )
        return [LiveFigures(**row._mapping) for row in rows]


class _LiveIndex:
    """The batch's live sessions by (charger, transaction id) and (charger, connector)."""

    def __init__(self, live: list[LiveFigures]) -> None:
        self._by_transaction: dict[tuple[str, int | None], LiveFigures] = {}
        self._by_connector: dict[tuple[str, int], LiveFigures] = {}
        for figures in live:  # oldest first: the one a single-row query would have found
            key = (figures.charger_id, figures.transaction_id)
            self._by_transaction.setdefault(key, figures)
            self._by_connector.setdefault((figures.charger_id, figures.connector_id), figures)

    def match(self, report: MeterReport) -> LiveFigures | None:
        """The session a report names: by transaction id when it gives one, else connector."""
        if report.transaction_id is not None:
            return self._by_transaction.get((report.charger_id, report.transaction_id))
        return self._by_connector.get((report.charger_id, report.connector_id))
