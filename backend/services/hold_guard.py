"""The hold cap: a charge paid with a card hold is stopped before its cost passes the hold.

A pay-per-session charge (Stripe Checkout's manual-capture hold, or the demo's test page)
can never capture more than was held, so what it costs above the hold is money we cannot
take. The guard follows the running cost of every charge with an authorized hold: after
each MeterValues (`SessionProgress`) and on the periodic timer tick (per-minute and idle
fees grow without meter values). When the cost so far plus a margin reaches the hold, it
tells the driver why (`HoldCapReached`) and asks the charger to stop
(RemoteStopTransaction).

The margin is what may have accrued unseen and may still accrue before the stop lands: energy
at the connector's maximum power (or the measured power, if higher) from the newest energy
reading to `HOLD_CAP_WINDOW` (2 minutes: the stop's round trip and more) from now, so a
charger that reports MeterValues rarely is not trusted to have drawn nothing since, and the
same window of per-minute and idle fees.
The driver is told once: the claim is a row in `processed_event`, so with several processes
only one tells. A stop the charger refused, or accepted but never carried out (the session
stays STOPPING), is asked again, at most every `RETRY_AFTER` by the guard's clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, func, select

from backend.db import utcnow
from backend.lifecycles import LIVE_SESSION_STATUSES
from backend.models import (
    ChargingSession,
    Connector,
    MeterSample,
    Payment,
    PaymentStatus,
    ProcessedEvent,
    SessionStatus,
)
from backend.services import plausibility
from backend.services.batching import Batcher
from backend.services.charging import ENERGY, ChargingService, session_cost
from backend.services.errors import ConflictError, NotFoundError
from backend.services.events import (
    EventBus,
    HoldCapReached,
    SessionCompleted,
    SessionEvent,
    SessionFailed,
    SessionProgress,
)
from backend.services.pricing import FREE, TariffSnapshot, compute_cost

log = logging.getLogger(__name__)

HOLD_CAP_WINDOW = timedelta(minutes=2)
RETRY_AFTER = 30.0  # seconds between stop requests while the charge goes on
CLAIM_SOURCE = "hold_cap"  # processed_event.source: "the driver was told" for a session
# A connector without a known rating is taken to be a fast DC charger.
DEFAULT_MAX_POWER_W = 150_000.0


@dataclass(frozen=True)
class Hold:
    """The amount held for a session and the most power its connector can deliver."""

    amount_minor: int
    max_power_w: float


def projected_cost(
    session: ChargingSession,
    hold: Hold,
    now: datetime,
    window: timedelta = HOLD_CAP_WINDOW,
    energy_at: datetime | None = None,
) -> tuple[int, int]:
    """(cost so far, cost so far plus what may accrue within `window`), in minor units.

    `session.energy_wh` is what was measured at `energy_at` (None: the session's last update),
    never later than `now`: the energy drawn since is unknown, so it is projected at full power
    from then to `now + window`.
    """
    so_far = session_cost(session, now).total_minor
    tariff = TariffSnapshot.from_json(session.tariff_snapshot) if session.tariff_snapshot else FREE
    power_w = max(hold.max_power_w, session.power_w or 0.0)
    measured_at = min(energy_at if energy_at is not None else session.updated_at, now)
    unseen = now + window - measured_at
    extra_wh = math.ceil(power_w * unseen.total_seconds() / 3600)
    ahead = compute_cost(
        tariff,
        session.energy_wh + extra_wh,
        session.started_at,
        now + window,
        session.charging_finished_at,
    ).total_minor
    return so_far, max(so_far, ahead)


class HoldGuard:
    """An EventBus subscriber (local_only) and a timer: stops charges about to pass their hold.

    The work runs in its own tasks: a MeterValues handler never waits on a RemoteStop to the
    same charger (that would deadlock the OCPP library's call queue).
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        charging: ChargingService,
        events: EventBus,
        *,
        window: timedelta = HOLD_CAP_WINDOW,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._charging = charging
        self._events = events
        self._window = window
        self.clock = clock  # tests may move it on: per-minute fees grow with it
        self._holds: dict[int, Hold | None] = {}  # per live session; None: no hold to guard
        # Sessions that reported before we knew whether they have a hold. The next tick's one
        # query (every session with a hold) tells: thousands of sessions without one (an
        # account, a tag) cost no query of their own, also right after a restart.
        self._unsorted: set[int] = set()
        # The holds of sessions the tick found, looked up together (amount, connector power).
        self._lookups: Batcher[int, Hold | None] = Batcher(self._read_holds, name="hold lookup")
        self._busy: set[int] = set()
        self._asked_at: dict[int, datetime] = {}  # by the guard's clock
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, event: SessionEvent) -> None:
        if isinstance(event, SessionProgress):
            self._spawn(event.session_id)
        elif isinstance(event, (SessionCompleted, SessionFailed)):
            self._holds.pop(event.session_id, None)
            self._unsorted.discard(event.session_id)
            self._asked_at.pop(event.session_id, None)

    async def tick(self) -> None:
        """Check every charging (or stopping) session with an authorized hold.

        Time-based fees and unreported energy grow without MeterValues, and a stop the
        charger accepted may never land.
        """
        reported, self._unsorted = self._unsorted, set()
        async with self._sessions() as db:
            ids = (
                await db.scalars(
                    select(col(ChargingSession.id))
                    .join(Payment, col(Payment.session_id) == col(ChargingSession.id))
                    .where(
                        col(ChargingSession.status).in_(LIVE_SESSION_STATUSES),
                        col(Payment.status) == PaymentStatus.AUTHORIZED,
                        col(Payment.amount_authorized_minor) > 0,
                    )
                )
            ).all()
        held = {session_id for session_id in ids if session_id is not None}
        for session_id in reported - held:
            self._holds.setdefault(session_id, None)
        for session_id in held:
            self._spawn(session_id, sorted_by_tick=True)

    async def drain(self) -> None:
        """Wait for checks and stops in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, session_id: int, *, sorted_by_tick: bool = False) -> None:
        if session_id not in self._holds and not sorted_by_tick:
            self._unsorted.add(session_id)  # the next tick tells (within `sweep_interval`)
            return
        if session_id in self._busy or self._holds.get(session_id, 0) is None:
            return  # a check is running, or the session has no hold to guard
        self._busy.add(session_id)
        task = asyncio.create_task(self._check(session_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check(self, session_id: int) -> None:
        try:
            await self._check_once(session_id)
        except Exception:
            log.exception("hold cap check of session %s failed", session_id)
        finally:
            self._busy.discard(session_id)

    async def _check_once(self, session_id: int) -> None:
        if session_id not in self._holds:
            self._holds[session_id] = await self._lookups.submit(session_id)
        hold = self._holds[session_id]
        if hold is None:  # most sessions: an account, a tag
            return
        async with self._sessions() as db:
            session = await db.get(ChargingSession, session_id)
            # Charging or stopping: a STOPPING one may never stop.
            if session is None or session.status not in LIVE_SESSION_STATUSES:
                return
            now = self.clock()
            energy_at = await self._energy_at(db, session, now)
        cost, ahead = projected_cost(session, hold, now, self._window, energy_at)
        if ahead < hold.amount_minor:
            return
        asked = self._asked_at.get(session_id)
        # A clock set back asks again rather than waiting for it to catch up.
        if asked is not None and timedelta(0) <= now - asked < timedelta(seconds=RETRY_AFTER):
            return
        self._asked_at[session_id] = now
        log.info(
            "session %s (%s) costs %s (%s within %s) of a %s hold: stopping it",
            session_id,
            session.status,
            cost,
            ahead,
            self._window,
            hold.amount_minor,
        )
        # Told before the stop: its receipt follows the StopTransaction the stop brings.
        if await self._claim(session_id):
            await self._events.publish(
                HoldCapReached(
                    session_id, session.driver_id, session.channel, hold.amount_minor, cost
                )
            )
        try:
            outcome = await self._charging.request_stop(session_id=session_id, by_operator=True)
        except (ConflictError, NotFoundError) as exc:
            log.info("hold cap stop of session %s not needed: %s", session_id, exc)
            return
        if not outcome.result.accepted:
            log.warning(
                "charger refused the hold cap stop of session %s (%s); asking again in %s s",
                session_id,
                outcome.result.status,
                RETRY_AFTER,
            )
        elif session.status == SessionStatus.STOPPING:
            log.warning(
                "session %s still runs after an accepted stop; asked again (every %s s)",
                session_id,
                RETRY_AFTER,
            )

    async def _energy_at(
        self, db: AsyncSession, session: ChargingSession, now: datetime
    ) -> datetime:
        """When `session.energy_wh` was measured: its newest energy reading, else its start.

        Never later than our last write to the session (when that reading reached us at the
        latest) nor than `now`; a reading dated before the start counts from the start.
        """
        start = plausibility.billable_start(session.started_at, session.created_at, now)
        newest = await db.scalar(
            select(func.max(col(MeterSample.sampled_at))).where(
                col(MeterSample.session_id) == session.id,
                col(MeterSample.measurand) == ENERGY,
                col(MeterSample.phase).is_(None),
            )
        )
        return min(max(newest or start, start), session.updated_at, now)

    async def _read_holds(self, session_ids: Sequence[int]) -> list[Hold | None]:
        """Each session's authorized card hold (its newest payment), if any: one query."""
        newest = (
            select(
                col(Payment.session_id),
                func.max(col(Payment.id)).label("payment_id"),
            )
            .where(col(Payment.session_id).in_(session_ids))
            .group_by(col(Payment.session_id))
            .subquery()
        )
        async with self._sessions() as db:
            rows = await db.execute(
                select(
                    col(Payment.session_id),
                    col(Payment.status),
                    col(Payment.amount_authorized_minor),
                    col(Connector.max_power_kw),
                )
                .join(newest, newest.c.payment_id == col(Payment.id))
                .join(ChargingSession, col(ChargingSession.id) == col(Payment.session_id))
                .outerjoin(
                    Connector,
                    and_(
                        col(Connector.charger_id) == col(ChargingSession.charger_id),
                        col(Connector.connector_id) == col(ChargingSession.connector_id),
                    ),
                )
            )
            found: dict[int, Hold] = {}
            for session_id, status, amount, max_kw in rows:
                if session_id is not None and status == PaymentStatus.AUTHORIZED and amount > 0:
                    power_w = max_kw * 1000 if max_kw else DEFAULT_MAX_POWER_W
                    found[session_id] = Hold(amount, power_w)
        return [found.get(session_id) for session_id in session_ids]

    async def _claim(self, session_id: int) -> bool:
        """True once per session, across processes: the right to tell the driver."""
        async with self._sessions() as db:
            db.add(ProcessedEvent(source=CLAIM_SOURCE, event_id=str(session_id)))
            try:
                await db.commit()
            except IntegrityError:
                await db.rollback()
                return False
        return True


__all__ = ["HOLD_CAP_WINDOW", "Hold", "HoldGuard", "projected_cost"]
