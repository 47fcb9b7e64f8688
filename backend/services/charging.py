"""Charging sessions: one state machine for every channel, the admin API and the chargers.

pending → starting → charging → stopping → completed, or failed with a reason (the table is
`SESSION_LIFECYCLE` in backend/lifecycles.py). Every status change is `move_session`: a
compare-and-set UPDATE (`WHERE status IN (...)`, the "from" statuses the table allows), so a
charger's message and a driver's request racing on one session cannot overwrite each other, on
SQLite or PostgreSQL, and a move the table lacks raises IllegalTransition before any write.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.lifecycles import (
    AWAITING_START_STATUSES,
    SESSION_LIFECYCLE,
)
from backend.models import (
    ACTIVE_SESSION_STATUSES,
    Charger,
    ChargingSession,
    Connector,
    Driver,
    IdTag,
    MeterSample,
    OrphanTransaction,
    SessionStatus,
    Station,
    Tariff,
)
from backend.services import access, plausibility, reservations
from backend.services.drivers import VIRTUAL_TAG_PREFIX, mask_tag, normalize_id_tag, tag_status
from backend.services.errors import (
    AccessDeniedError,
    ConflictError,
    ConnectorUnavailableError,
    NotFoundError,
    RefusedError,
)
from backend.services.events import (
    ChargingFinished,
    EventBus,
    IdleFeeSoon,
    SessionCompleted,
    SessionFailed,
    SessionNeedsReview,
    SessionProgress,
    SessionStarted,
)
from backend.services.metering import ENERGY, MeterReport, MeterWriter, Sample
from backend.services.plausibility import PlausibilityRules
from backend.services.ports import ChargerCommands, CommandResult, CommandStatus
from backend.services.pricing import (
    FREE,
    CostBreakdown,
    TariffSnapshot,
    capped,
    compute_cost,
    for_plan,
)
from backend.services.rows import get_or_404
from backend.services.shared_transactions import SharedTransactions

log = logging.getLogger(__name__)

SOC = "SoC"
OCCUPIED_STATUSES = {"Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"}
FAILURE_BY_OUTCOME = {
    CommandStatus.REJECTED: "rejected",
    CommandStatus.OFFLINE: "charger_offline",
    CommandStatus.TIMED_OUT: "timed_out",
}
# Beyond the start timeout, how long a RemoteStart still in flight keeps its session (more
# than any OCPP call timeout: the call's own outcome, not the timers, should fail it).
REMOTE_START_IN_FLIGHT = timedelta(seconds=60)
# Chat drivers' tokens: VIRTUAL_TAG_PREFIX ("CB-") + 16 random hex digits, unguessable.
# Accepted only for the transaction their own RemoteStart asked for; admin-made (RFID) tags
# never use the prefix (backend/services/drivers.py refuses them).


@dataclass(frozen=True)
class StartOutcome:
    session: ChargingSession
    result: CommandResult


@dataclass(frozen=True)
class StopOutcome:
    session: ChargingSession
    result: CommandResult


def virtual_id_tag(driver_id: int | None = None) -> str:
    """A new random virtual tag (20 characters, an OCPP IdToken); nothing of the driver in it.

    `driver_id` is accepted for old callers and ignored: "CB" + the driver id was guessable.
    """
    return VIRTUAL_TAG_PREFIX + secrets.token_hex(8).upper()


def _snapshot(tariff: Tariff | None) -> TariffSnapshot:
    if tariff is None:
        return FREE
    return TariffSnapshot(
        currency=tariff.currency,
        price_per_kwh_minor=tariff.price_per_kwh_minor,
        price_per_minute_minor=tariff.price_per_minute_minor,
        session_fee_minor=tariff.session_fee_minor,
        idle_fee_per_minute_minor=tariff.idle_fee_per_minute_minor,
        idle_grace_minutes=tariff.idle_grace_minutes,
        vat_rate_percent=tariff.vat_rate_percent,
    )


def session_cost(session: ChargingSession, until: datetime | None = None) -> CostBreakdown:
    """The cost of a session so far; once priced, exactly the stored figures of the receipt."""
    if session.cost_breakdown and session.stopped_at is not None:
        return CostBreakdown(**session.cost_breakdown)
    tariff = TariffSnapshot.from_json(session.tariff_snapshot) if session.tariff_snapshot else FREE
    end = session.stopped_at or until or utcnow()
    return compute_cost(
        tariff, session.energy_wh, session.started_at, end, session.charging_finished_at
    )


class ChargingService:
    """Starts, follows and ends charging sessions; publishes domain events."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        commands: ChargerCommands,
        events: EventBus,
        start_timeout: float = 120.0,
        idle_warning_minutes: int = 5,
        member_discount_percent: int = 0,
        plausibility: PlausibilityRules | None = None,
    ) -> None:
        self._sessions = sessions
        self._commands = commands
        self._events = events
        self._start_timeout = timedelta(seconds=start_timeout)
        self._idle_warning = timedelta(minutes=idle_warning_minutes)
        self._member_discount = member_discount_percent
        self._plausibility = plausibility or PlausibilityRules()
        self._meters = MeterWriter(sessions, self._plausibility)
        self._transactions = SharedTransactions(sessions, "Start/StopTransaction batch")
        self._background: set[asyncio.Task[Any]] = set()

    # -- starting ---------------------------------------------------------------------------

    async def start_remote(
        self,
        charger_id: str,
        connector_id: int,
        *,
        id_tag: str | None = None,
        driver_id: int | None = None,
        channel: str = "admin",
        charging_profile: dict[str, Any] | None = None,
    ) -> StartOutcome:
        """Check the rules, create the session, send RemoteStartTransaction, record the outcome.

        The session is created `starting` (nothing to wait for: no payment), in the same
        transaction as the checks. `charging_profile`: a TxProfile the charger applies to this
        transaction (its limit)."""
        async with self._sessions() as db:
            session = await self._create_session(
                db,
                charger_id,
                connector_id,
                id_tag,
                driver_id,
                channel,
                status=SessionStatus.STARTING,
                hold_until=utcnow() + self._start_timeout + REMOTE_START_IN_FLIGHT,
            )
        return await self._send_start(session, charging_profile)

    async def reserve(
        self,
        charger_id: str,
        connector_id: int,
        *,
        id_tag: str | None = None,
        driver_id: int | None = None,
        channel: str = "admin",
        hold_until: datetime | None = None,
    ) -> ChargingSession:
        """Check the rules and create a `pending` session; nothing is sent to the charger.

        `hold_until` keeps the connector for the driver that long (e.g. while they pay)
        before the timers fail the session; by default the start timeout.
        """
        async with self._sessions() as db:
            return await self._create_session(
                db, charger_id, connector_id, id_tag, driver_id, channel, hold_until
            )

    async def hold_pending(self, session_id: int, until: datetime) -> bool:
        """Move a pending session's deadline (e.g. to when its payment page expires)."""
        async with self._sessions() as db:
            changed = await update_session_while(
                db, session_id, SessionStatus.PENDING, start_deadline_at=until
            )
            await db.commit()
        return changed

    async def fail_pending(
        self, db: AsyncSession, session_id: int, reason: str
    ) -> SessionFailed | None:
        """Fail a session that never reached the charger, in the caller's transaction.

        Returns the SessionFailed event for the caller to publish after its commit, or None
        if the session was no longer pending.
        """
        if not await _fail(db, session_id, [SessionStatus.PENDING], reason):
            return None
        session = await db.get(ChargingSession, session_id, populate_existing=True)
        assert session is not None
        return SessionFailed(session_id, session.driver_id, session.channel, reason)

    async def start_pending(
        self, session_id: int, charging_profile: dict[str, Any] | None = None
    ) -> StartOutcome:
        """Send RemoteStartTransaction for an existing pending session and record the outcome."""
        async with self._sessions() as db:
            session = await get_or_404(db, ChargingSession, session_id, "charging session")
            # `starting` from before the RemoteStart goes out: a charger may answer it and send
            # Authorize/StartTransaction at once, and only a `starting` session lets a virtual
            # tag in (a `pending` one may still await its payment). The call ends by its own
            # timeout; this deadline only frees the connector if we crash mid-call.
            claimed = await move_session(
                db,
                session_id,
                SessionStatus.STARTING,
                only_from=[SessionStatus.PENDING],
                start_deadline_at=utcnow() + self._start_timeout + REMOTE_START_IN_FLIGHT,
            )
            await db.commit()
            if not claimed:
                raise ConflictError(f"session {session_id} is {session.status}, not pending")
        return await self._send_start(session, charging_profile)

    async def _send_start(
        self, session: ChargingSession, charging_profile: dict[str, Any] | None
    ) -> StartOutcome:
        """Send RemoteStartTransaction for a `starting` session and record the outcome."""
        assert session.id is not None and session.id_tag is not None
        charger_id, connector_id = session.charger_id, session.connector_id
        result = await self._commands.remote_start(
            charger_id, connector_id, session.id_tag, charging_profile
        )
        failed_reason = None
        if result.accepted:
            # The start timeout counts from the charger's yes. That deadline is written with
            # the next shared transaction, not on the answer's path: until it commits, the
            # longer in-flight deadline stands, which can free the connector later, never
            # sooner.
            self._in_background(
                self._transactions.run(
                    functools.partial(
                        _start_timeout_from,
                        session_id=session.id,
                        deadline=utcnow() + self._start_timeout,
                    )
                )
            )
        async with self._sessions() as db:
            if not result.accepted:
                failed_reason = FAILURE_BY_OUTCOME[result.status]
                failed_reason = await _fail(db, session.id, AWAITING_START_STATUSES, failed_reason)
                await db.commit()
            current = await db.get(ChargingSession, session.id, populate_existing=True)
            assert current is not None
        if failed_reason:
            await self._events.publish(
                SessionFailed(current.id or 0, current.driver_id, current.channel, failed_reason)
            )
        return StartOutcome(current, result)

    async def preflight(
        self,
        charger_id: str,
        connector_id: int,
        *,
        id_tag: str | None = None,
        driver_id: int | None = None,
    ) -> RefusedError | None:
        """Why a start would be refused now (the checks of a real start), or None.

        Writes nothing: SQLite has one writer, and the caller may hold it.
        """
        async with self._sessions() as db:
            try:
                await self._checked_start(
                    db, charger_id, connector_id, id_tag, driver_id, write=False
                )
            except RefusedError as refused:
                return refused
            finally:
                await db.rollback()
        return None

    async def _checked_start(
        self,
        db: AsyncSession,
        charger_id: str,
        connector_id: int,
        id_tag: str | None,
        driver_id: int | None,
        *,
        write: bool = True,
    ) -> tuple[Charger, Driver | None, str, Tariff | None]:
        """Every rule a start must pass: driver, tag, placement, access, the connector's state.

        The charger, the connector, its station and the station's tariff come in one query;
        the access rules then find the station in the session without asking again."""
        found = (
            await db.execute(
                select(Charger, Connector, Station, Tariff)
                .outerjoin(
                    Connector,
                    and_(
                        col(Connector.charger_id) == col(Charger.id),
                        col(Connector.connector_id) == connector_id,
                    ),
                )
                .outerjoin(Station, col(Station.id) == col(Charger.station_id))
                .outerjoin(Tariff, col(Tariff.station_id) == col(Charger.station_id))
                .where(col(Charger.id) == charger_id)
            )
        ).first()
        if found is None:
            raise NotFoundError(f"charger {charger_id!r} not found")
        charger, connector, _station, tariff = found
        if connector is None:
            raise NotFoundError(f"charger {charger_id!r} has no connector {connector_id}")
        driver, id_tag = await self._who(db, id_tag, driver_id, write=write)
        if charger.station_id is None:
            raise ConnectorUnavailableError(
                "unplaced", f"charger {charger_id!r} is not placed at a station yet"
            )
        driver_key = driver.id if driver is not None else None
        decision = await access.check_access(db, charger.station_id, driver_key, utcnow())
        if not decision.allowed:
            raise AccessDeniedError(decision.reason or "denied", decision.message or "denied")
        await self._check_connector(db, charger, connector, id_tag, driver_key)
        return charger, driver, id_tag, tariff

    async def _create_session(
        self,
        db: AsyncSession,
        charger_id: str,
        connector_id: int,
        id_tag: str | None,
        driver_id: int | None,
        channel: str,
        hold_until: datetime | None = None,
        status: SessionStatus = SessionStatus.PENDING,
    ) -> ChargingSession:
        _, driver, id_tag, tariff = await self._checked_start(
            db, charger_id, connector_id, id_tag, driver_id
        )
        plan = driver.plan if driver is not None else None
        snapshot = for_plan(_snapshot(tariff), plan, self._member_discount)
        session = ChargingSession(
            driver_id=driver.id if driver else None,
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=id_tag,
            status=status,
            channel=channel,
            currency=snapshot.currency,
            tariff_snapshot=snapshot.to_json(),
            # A start that never gets an answer (a crash mid-call) must not block the connector.
            start_deadline_at=hold_until or utcnow() + self._start_timeout,
        )
        SESSION_LIFECYCLE.check_initial(session.status)
        db.add(session)
        try:
            await db.commit()
        except IntegrityError as exc:
            await db.rollback()
            raise ConnectorUnavailableError(
                "busy", f"connector {connector_id} of {charger_id!r} already has an active session"
            ) from exc
        return session

    async def _who(
        self, db: AsyncSession, id_tag: str | None, driver_id: int | None, *, write: bool = True
    ) -> tuple[Driver | None, str]:
        """The driver behind a start and the id tag to send to the charger."""
        driver = None if driver_id is None else await get_or_404(db, Driver, driver_id, "driver")
        if id_tag is not None:
            id_tag = normalize_id_tag(id_tag)
            tag = await db.scalar(select(IdTag).where(col(IdTag.id_tag) == id_tag))
            if tag is not None:
                status = tag_status(tag, utcnow())
                if status != "Accepted":
                    raise AccessDeniedError(
                        f"id_tag_{status.lower()}", f"id tag {id_tag} is {status.lower()}"
                    )
                if driver is None:
                    driver = await db.get(Driver, tag.driver_id)
        elif driver is not None:
            assert driver.id is not None
            id_tag = (
                await self._ensure_virtual_tag(db, driver) if write else virtual_id_tag(driver.id)
            )
        else:
            raise ValueError("a start needs a driver or an id tag")
        if driver is not None and driver.blocked:
            raise AccessDeniedError("blocked", f"driver {driver.id} is blocked")
        return driver, id_tag

    async def virtual_tag(self, driver_id: int) -> str:
        """The driver's virtual tag (made now if they have none): what the chat's starts and
        reservations give chargers."""
        async with self._sessions() as db:
            driver = await get_or_404(db, Driver, driver_id, "driver")
            tag = await self._ensure_virtual_tag(db, driver)
            await db.commit()
        return tag

    async def _ensure_virtual_tag(self, db: AsyncSession, driver: Driver) -> str:
        """The driver's random virtual tag, made on their first chat start."""
        assert driver.id is not None
        existing = await db.scalar(
            select(col(IdTag.id_tag))
            .where(col(IdTag.driver_id) == driver.id, col(IdTag.virtual).is_(True))
            .order_by(col(IdTag.id))
        )
        if existing is not None:
            return existing
        value = virtual_id_tag()
        db.add(IdTag(id_tag=value, driver_id=driver.id, virtual=True))
        await db.flush()
        return value

    async def _check_connector(
        self,
        db: AsyncSession,
        charger: Charger,
        connector: Connector,
        id_tag: str,
        driver_id: int | None = None,
    ) -> None:
        where = f"connector {connector.connector_id} of {charger.id!r}"
        if not charger.online:
            raise ConnectorUnavailableError("offline", f"charger {charger.id!r} is offline")
        active = await db.scalar(
            select(col(ChargingSession.id)).where(
                col(ChargingSession.charger_id) == charger.id,
                col(ChargingSession.connector_id) == connector.connector_id,
                col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES),
            )
        )
        if active is not None:
            raise ConnectorUnavailableError("busy", f"{where} already has an active session")
        if connector.status == "Faulted":
            raise ConnectorUnavailableError("faulted", f"{where} reports a fault")
        if connector.status == "Unavailable":
            raise ConnectorUnavailableError("unavailable", f"{where} is out of service")
        held = await reservations.holding(db, charger.id, connector.connector_id)
        theirs = [r for r in held if r.id_tag == id_tag or (driver_id and r.driver_id == driver_id)]
        if len(theirs) < len(held):
            raise ConnectorUnavailableError("reserved", f"{where} is reserved for someone else")
        if connector.status == "Reserved" and theirs:
            return  # reserved for this very driver
        if connector.status in OCCUPIED_STATUSES:
            raise ConnectorUnavailableError("occupied", f"{where} is in use")

    # -- stopping ---------------------------------------------------------------------------

    async def request_stop(
        self,
        *,
        session_id: int | None = None,
        charger_id: str | None = None,
        transaction_id: int | None = None,
        driver_id: int | None = None,
        by_operator: bool = False,
    ) -> StopOutcome:
        """RemoteStopTransaction for a session; drivers may only stop their own."""
        async with self._sessions() as db:
            session = await self._find_session(db, session_id, charger_id, transaction_id)
            if not by_operator and (driver_id is None or session.driver_id != driver_id):
                raise AccessDeniedError("not_yours", "you can only stop your own session")
            if session.status == SessionStatus.STOPPING:
                pass  # a repeated stop asks the charger again
            elif session.status != SessionStatus.CHARGING:
                raise ConflictError(f"session {session.id} is {session.status}, not charging")
            assert session.id is not None and session.transaction_id is not None
            await move_session(
                db, session.id, SessionStatus.STOPPING, only_from=[SessionStatus.CHARGING]
            )
            await db.commit()
        result = await self._commands.remote_stop(session.charger_id, session.transaction_id)
        async with self._sessions() as db:
            if not result.accepted:
                await move_session(
                    db, session.id, SessionStatus.CHARGING, only_from=[SessionStatus.STOPPING]
                )
                await db.commit()
            current = await db.get(ChargingSession, session.id, populate_existing=True)
            assert current is not None
        return StopOutcome(current, result)

    async def stop_transaction(
        self, charger_id: str, transaction_id: int
    ) -> tuple[ChargingSession | None, CommandResult]:
        """An operator's RemoteStopTransaction by transactionId: our session stopped as
        `request_stop` does, or, for a transaction we hold no session of (one we never issued,
        or lost), sent anyway so the charger decides (OCPP 1.6 §5.12); then no session."""
        try:
            outcome = await self.request_stop(
                charger_id=charger_id, transaction_id=transaction_id, by_operator=True
            )
        except NotFoundError:
            async with self._sessions() as db:
                await get_or_404(db, Charger, charger_id, "charger")
            log.info(
                "%s: RemoteStopTransaction for unknown transaction %s", charger_id, transaction_id
            )
            return None, await self._commands.remote_stop(charger_id, transaction_id)
        return outcome.session, outcome.result

    async def _find_session(
        self,
        db: AsyncSession,
        session_id: int | None,
        charger_id: str | None,
        transaction_id: int | None,
    ) -> ChargingSession:
        if session_id is not None:
            session = await db.get(ChargingSession, session_id)
            what = f"charging session {session_id}"
        else:
            session = await db.scalar(
                select(ChargingSession).where(
                    col(ChargingSession.charger_id) == charger_id,
                    col(ChargingSession.transaction_id) == transaction_id,
                )
            )
            what = f"transaction {transaction_id} on {charger_id!r}"
        if session is None:
            raise NotFoundError(f"{what} not found")
        return session

    # -- what chargers report ---------------------------------------------------------------

    async def authorize(
        self, charger_id: str, id_tag: str, connector_id: int | None = None
    ) -> tuple[str, datetime | None]:
        """OCPP Authorize: Accepted, Blocked, Expired or Invalid (unknown, or not allowed here)."""
        async with self._sessions() as db:
            return await self._authorize(db, charger_id, normalize_id_tag(id_tag), connector_id)

    async def _authorize(
        self, db: AsyncSession, charger_id: str, id_tag: str, connector_id: int | None = None
    ) -> tuple[str, datetime | None]:
        tag = await db.scalar(select(IdTag).where(col(IdTag.id_tag) == id_tag))
        if tag is None:
            return "Invalid", None
        if _is_virtual(id_tag, tag) and (
            await self._awaited_start(db, charger_id, connector_id, id_tag) is None
        ):
            # A chat token is no card: only the start its own RemoteStart asked for may use it.
            return "Invalid", None
        driver = await db.get(Driver, tag.driver_id)
        if driver is None or driver.blocked:
            return "Blocked", None
        status = tag_status(tag, utcnow())
        if status != "Accepted":
            return status, tag.expires_at
        charger = await db.get(Charger, charger_id)
        if charger is None or charger.station_id is None:
            return "Invalid", None
        decision = await access.check_access(db, charger.station_id, driver.id, utcnow())
        return ("Accepted" if decision.allowed else "Invalid"), tag.expires_at

    async def _awaited_start(
        self, db: AsyncSession, charger_id: str, connector_id: int | None, id_tag: str
    ) -> ChargingSession | None:
        """The session whose RemoteStart asked this charger (and connector) to use `id_tag`,
        while its start deadline has not passed.

        Only `starting`: start_pending moves a session there just before the RemoteStart goes
        out. A `pending` one has sent nothing yet (e.g. it waits for its payment's hold).
        Authorize names no connector: then any such start on this charger will do.
        """
        query = select(ChargingSession).where(
            col(ChargingSession.charger_id) == charger_id,
            col(ChargingSession.id_tag) == id_tag,
            col(ChargingSession.status) == SessionStatus.STARTING,
            col(ChargingSession.start_deadline_at) > utcnow(),
        )
        if connector_id is not None:
            query = query.where(col(ChargingSession.connector_id) == connector_id)
        return (await db.scalars(query.order_by(col(ChargingSession.id).desc()))).first()

    async def on_start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        at: datetime,
        reservation_id: int | None = None,
    ) -> tuple[int, str]:
        """StartTransaction → (transactionId from our database, idTagInfo status).

        Written in a shared transaction with the other Start/StopTransactions arriving now.
        Raises NotFoundError, writing nothing, for a connector the charger does not have.
        """
        id_tag = normalize_id_tag(id_tag)
        transaction_id, status, started = await self._transactions.run(
            functools.partial(
                self._start_transaction,
                charger_id=charger_id,
                connector_id=connector_id,
                id_tag=id_tag,
                meter_start=meter_start,
                at=at,
                reservation_id=reservation_id,
            )
        )
        if started is not None:
            await self._events.publish(started)
        return transaction_id, status

    async def _start_transaction(
        self,
        db: AsyncSession,
        *,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        at: datetime,
        reservation_id: int | None = None,
    ) -> tuple[int, str, SessionStarted | None]:
        """One StartTransaction's unit of work (no commit): transactionId, status and, for a
        session that began now, its SessionStarted to publish after the commit. An accepted
        start naming a reservation of this charger uses it up."""
        transaction_id, status, started = await self._open_transaction(
            db,
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=meter_start,
            at=at,
        )
        if reservation_id is not None and status == "Accepted":
            await reservations.mark_used(db, charger_id, reservation_id, transaction_id)
        return transaction_id, status, started

    async def _open_transaction(
        self,
        db: AsyncSession,
        *,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        at: datetime,
    ) -> tuple[int, str, SessionStarted | None]:
        connector = await db.scalar(
            select(col(Connector.id)).where(
                col(Connector.charger_id) == charger_id,
                col(Connector.connector_id) == connector_id,
            )
        )
        if connector is None:
            raise NotFoundError(f"charger {charger_id!r} has no connector {connector_id}")
        retry = await db.scalar(
            select(ChargingSession).where(
                col(ChargingSession.charger_id) == charger_id,
                col(ChargingSession.connector_id) == connector_id,
                col(ChargingSession.id_tag) == id_tag,
                col(ChargingSession.meter_start_wh) == meter_start,
                col(ChargingSession.started_at) == at,
                col(ChargingSession.transaction_id).is_not(None),
            )
        )
        if retry is not None:
            assert retry.transaction_id is not None
            status = "Accepted" if retry.status != SessionStatus.FAILED else "Invalid"
            return retry.transaction_id, status, None
        tag = await db.scalar(select(IdTag).where(col(IdTag.id_tag) == id_tag))
        if _is_virtual(id_tag, tag):
            # A chat token starts only its own session, and only before its deadline.
            waiting = await self._awaited_start(db, charger_id, connector_id, id_tag)
        else:
            waiting = (
                await db.scalars(
                    select(ChargingSession)
                    .where(
                        col(ChargingSession.charger_id) == charger_id,
                        col(ChargingSession.connector_id) == connector_id,
                        # Only the start we asked for: another driver's card is not ours.
                        col(ChargingSession.id_tag) == id_tag,
                        col(ChargingSession.status).in_(AWAITING_START_STATUSES),
                    )
                    .order_by(col(ChargingSession.id).desc())
                )
            ).first()
        if waiting is not None and waiting.id is not None:
            attached = await move_session(
                db,
                waiting.id,
                SessionStatus.CHARGING,
                only_from=AWAITING_START_STATUSES,
                transaction_id=waiting.id,
                started_at=at,
                meter_start_wh=meter_start,
                start_deadline_at=None,
            )
            if attached:
                event = SessionStarted(waiting.id, waiting.driver_id, waiting.channel)
                return waiting.id, "Accepted", event
        started, status = await self._local_start(
            db, charger_id, connector_id, id_tag, meter_start, at
        )
        assert started.id is not None
        if status != "Accepted":
            return started.id, status, None
        event = SessionStarted(started.id, started.driver_id, started.channel)
        return started.id, "Accepted", event

    async def _local_start(
        self,
        db: AsyncSession,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        at: datetime,
    ) -> tuple[ChargingSession, str]:
        """A start we did not ask for (RFID at the charger): authorize, then open a session.

        A refused tag gets a failed session (the charger needs a transactionId to stop with;
        nobody is billed) and leaves the connector's live session alone.
        """
        status, _ = await self._authorize(db, charger_id, id_tag, connector_id)
        accepted = status == "Accepted"
        if accepted:
            await self._supersede(db, charger_id, connector_id, at)
        tag = await db.scalar(select(IdTag).where(col(IdTag.id_tag) == id_tag))
        charger = await db.get(Charger, charger_id)
        tariff = None
        if charger is not None and charger.station_id is not None:
            tariff = await db.scalar(
                select(Tariff).where(col(Tariff.station_id) == charger.station_id)
            )
        tag_driver = await db.get(Driver, tag.driver_id) if tag is not None else None
        plan = tag_driver.plan if tag_driver is not None else None
        snapshot = for_plan(_snapshot(tariff), plan, self._member_discount)
        channel = "rfid"
        virtual = _is_virtual(id_tag, tag)
        if virtual and not accepted:
            # A cloned card or a forged frame, worth an operator's look; the tag stays masked.
            log.warning(
                "%s: virtual tag %s outside its own start (connector %s): Invalid",
                charger_id,
                mask_tag(id_tag),
                connector_id,
            )
        if tag is not None and virtual and accepted:
            # Our own virtual tag: a chat start whose answer got lost; stay on that chat.
            latest = await db.scalar(
                select(col(ChargingSession.channel))
                .where(col(ChargingSession.driver_id) == tag.driver_id)
                .order_by(col(ChargingSession.id).desc())
            )
            channel = latest or channel
        session = ChargingSession(
            driver_id=tag.driver_id if tag else None,
            charger_id=charger_id,
            connector_id=connector_id,
            id_tag=id_tag,
            status=SessionStatus.CHARGING if accepted else SessionStatus.FAILED,
            failure_reason=None
            if accepted
            else ("virtual tag outside its own start" if virtual else f"id tag {status.lower()}"),
            channel=channel,
            meter_start_wh=meter_start,
            started_at=at,
            currency=snapshot.currency,
            tariff_snapshot=snapshot.to_json(),
        )
        SESSION_LIFECYCLE.check_initial(session.status)
        db.add(session)
        await db.flush()
        session.transaction_id = session.id
        return session, status

    async def _supersede(
        self, db: AsyncSession, charger_id: str, connector_id: int, at: datetime
    ) -> None:
        """A new transaction on a connector ends one the charger never stopped (e.g. a reboot)."""
        stale = (
            await db.scalars(
                select(ChargingSession).where(
                    col(ChargingSession.charger_id) == charger_id,
                    col(ChargingSession.connector_id) == connector_id,
                    col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES),
                )
            )
        ).all()
        for session in stale:
            if session.transaction_id is None:
                await _fail(db, session.id or 0, ACTIVE_SESSION_STATUSES, "superseded")
                continue
            meter_stop = await self._highest_register(db, session)
            last_seen = await self._last_activity(db, session)
            status = await self._complete(
                db, session, meter_stop, last_seen, "Superseded", None, accepted_only=True
            )
            if status == SessionStatus.NEEDS_REVIEW:
                log.warning(
                    "superseded session %s on %s needs review (%s): %s Wh claimed, %s Wh billed",
                    session.id,
                    charger_id,
                    session.review_reason,
                    session.measured_energy_wh,
                    session.energy_wh,
                )
        await db.flush()

    async def on_meter_values(
        self,
        charger_id: str,
        connector_id: int,
        transaction_id: int | None,
        samples: list[Sample],
    ) -> None:
        """Store energy and power samples and keep the live session current (group commit)."""
        outcome = await self._meters.write(
            MeterReport(charger_id, connector_id, transaction_id, samples)
        )
        if outcome is None:
            return
        await self._events.publish(
            SessionProgress(
                outcome.session_id,
                outcome.driver_id,
                outcome.channel,
                outcome.energy_wh,
                outcome.power_w,
            )
        )
        if outcome.finished:
            await self._events.publish(
                ChargingFinished(outcome.session_id, outcome.driver_id, outcome.channel)
            )

    @property
    def meter_reports_waiting(self) -> int:
        """MeterValues submitted and not yet written."""
        return self._meters.waiting

    def _in_background(self, write: Coroutine[Any, Any, Any]) -> None:
        """Run a write nobody waits for; `drain` finishes it, a failure is logged."""
        task = asyncio.create_task(write)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a background write failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Finish the MeterValues and Start/StopTransactions being written (shutdown)."""
        try:
            await asyncio.gather(*self._background, return_exceptions=True)
            await self._meters.drain()
        finally:
            await self._transactions.drain()

    async def on_stop_transaction(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop: int,
        at: datetime,
        reason: str | None,
        transaction_data: list[Any] | None,
    ) -> None:
        """Close the session and price it; unknown transactions are kept as orphans.

        Written in a shared transaction with the other Start/StopTransactions arriving now.
        """
        completed = await self._transactions.run(
            functools.partial(
                self._stop_transaction,
                charger_id=charger_id,
                transaction_id=transaction_id,
                meter_stop=meter_stop,
                at=at,
                reason=reason,
                transaction_data=transaction_data,
            )
        )
        if completed is not None:
            await self._publish_completed(completed)

    async def _stop_transaction(
        self,
        db: AsyncSession,
        *,
        charger_id: str,
        transaction_id: int,
        meter_stop: int,
        at: datetime,
        reason: str | None,
        transaction_data: list[Any] | None,
    ) -> ChargingSession | None:
        """One StopTransaction's unit of work (no commit): the session it completed, if any."""
        session = await db.scalar(
            select(ChargingSession).where(
                col(ChargingSession.charger_id) == charger_id,
                col(ChargingSession.transaction_id) == transaction_id,
            )
        )
        if session is None or transaction_id < 0:
            db.add(
                OrphanTransaction(
                    charger_id=charger_id,
                    transaction_id=transaction_id,
                    # The payload keeps what was sent; the column only what it can hold.
                    meter_stop_wh=meter_stop if plausibility.in_range(meter_stop) else None,
                    stopped_at=at,
                    payload={
                        "reason": reason,
                        "meter_stop": meter_stop,
                        "transaction_data": transaction_data,
                    },
                )
            )
            log.warning(
                "StopTransaction for unknown transaction %s on %s", transaction_id, charger_id
            )
            return None
        if session.stopped_at is not None:
            return None  # a retried StopTransaction: already recorded
        if not await self._complete(db, session, meter_stop, at, reason, transaction_data):
            return None
        await db.flush()
        return await db.get(ChargingSession, session.id, populate_existing=True)

    async def _publish_completed(self, session: ChargingSession) -> None:
        """SessionCompleted with the billed (plausible) cost; for one under review, the alert."""
        assert session.id is not None
        await self._events.publish(
            SessionCompleted(
                session.id,
                session.driver_id,
                session.channel,
                session.cost_minor,
                session.energy_wh,
            )
        )
        if session.status == SessionStatus.NEEDS_REVIEW:
            measured = session.measured_energy_wh or 0
            log.warning(
                "session %s on %s needs review (%s): the meter claims %s Wh, %s Wh billed",
                session.id,
                session.charger_id,
                session.review_reason,
                measured,
                session.energy_wh,
            )
            await self._events.publish(
                SessionNeedsReview(
                    session.id,
                    session.driver_id,
                    session.channel,
                    measured,
                    session.energy_wh,
                    session.review_reason or "",
                )
            )

    async def _complete(
        self,
        db: AsyncSession,
        session: ChargingSession,
        meter_stop: int,
        at: datetime,
        reason: str | None,
        transaction_data: list[Any] | None,
        *,
        accepted_only: bool = False,
    ) -> str | None:
        """Final figures on a session; its new status, or None (it had failed, or ended already).

        `completed`, or `needs_review` when the meter figures are implausible: then energy_wh
        (and the cost) is the plausible amount and measured_energy_wh what the charger claimed.
        The times billed are the charger's clamped to our clock (stored in started_at,
        stopped_at, charging_finished_at); a material clamp is `clock_out_of_range`. A cost
        above the cap is billed up to it (`cost_above_cap`). `accepted_only` (a session its
        charger never stopped): no more energy than the readings judged plausible on arrival.
        """
        assert session.id is not None
        rules = self._plausibility
        now = utcnow()
        verdict = None
        session.meter_stop_wh = plausibility.clamp_register(meter_stop)
        if session.meter_start_wh is not None:  # 0 is a real start (many meters count per session)
            bound = (
                session.energy_wh if accepted_only else await self._energy_bound(db, session, at)
            )
            verdict = plausibility.judge(
                meter_stop,
                session.meter_start_wh,
                bound,
                previous_wh=session.energy_wh,
                slack_wh=rules.slack_wh,
            )
            session.energy_wh = verdict.plausible_wh
        times = plausibility.billing_times(
            session.started_at, session.created_at, at, session.charging_finished_at, now, rules
        )
        # A sample dated out of range while charging (see on_meter_values) counts too.
        off_clock = times.out_of_range or session.review_reason == plausibility.CLOCK_OUT_OF_RANGE
        if times.out_of_range:
            log.warning(
                "session %s on %s: charger clock out of range (start %s, stop %s, idle from %s); "
                "billed %s to %s",
                session.id,
                session.charger_id,
                session.started_at and session.started_at.isoformat(),
                at.isoformat(),
                session.charging_finished_at and session.charging_finished_at.isoformat(),
                times.started_at.isoformat(),
                times.stopped_at.isoformat(),
            )
        session.started_at = times.started_at
        session.stopped_at = times.stopped_at
        session.charging_finished_at = times.charging_finished_at
        session.stop_reason = (reason or "")[:30] or None
        session.transaction_data = transaction_data
        session.power_w = 0.0
        session.updated_at = now
        if session.status == SessionStatus.FAILED:
            return None
        review: str | None = None
        measured = session.energy_wh
        if verdict is not None and not verdict.plausible:
            review, measured = verdict.reason, verdict.measured_wh
        elif off_clock:
            review = plausibility.CLOCK_OUT_OF_RANGE
        cost = session_cost(session)
        if cost.total_minor > rules.max_cost_minor:
            cost = capped(cost, rules.max_cost_minor)
            review = review or plausibility.COST_ABOVE_CAP
        status = SessionStatus.NEEDS_REVIEW if review else SessionStatus.COMPLETED
        session.review_reason = review
        session.measured_energy_wh = measured if review else None
        session.cost_minor = cost.total_minor
        session.cost_breakdown = cost.to_json()
        await db.flush()
        changed = await move_session(db, session.id, status, only_from=ACTIVE_SESSION_STATUSES)
        return status if changed else None

    async def _energy_bound(
        self, db: AsyncSession, session: ChargingSession, read_at: datetime
    ) -> int:
        """The most energy (Wh) the session's connector can have delivered by `read_at`."""
        max_power_kw = await db.scalar(
            select(col(Connector.max_power_kw)).where(
                col(Connector.charger_id) == session.charger_id,
                col(Connector.connector_id) == session.connector_id,
            )
        )
        seconds = plausibility.elapsed_seconds(
            session.started_at, read_at, session.created_at, utcnow()
        )
        return plausibility.max_energy_wh(
            max_power_kw or plausibility.FALLBACK_MAX_POWER_KW, seconds, self._plausibility
        )

    async def _highest_register(self, db: AsyncSession, session: ChargingSession) -> int:
        """The register a charger that never stopped last claimed: its highest energy sample,
        at least its start plus the energy counted. force_close and supersede bill no more than
        the energy counted (judged plausible when each reading came); a claim above it is the
        measured figure of a review."""
        counted = (session.meter_start_wh or 0) + session.energy_wh
        highest = await db.scalar(
            select(func.max(col(MeterSample.value))).where(
                col(MeterSample.session_id) == session.id,
                col(MeterSample.measurand) == ENERGY,
                col(MeterSample.phase).is_(None),
            )
        )
        if highest is None:
            return counted
        return max(counted, plausibility.clamp_register(highest))

    async def _last_activity(self, db: AsyncSession, session: ChargingSession) -> datetime:
        """When the session last showed life: its newest meter sample, else its start.

        Never later than our last write to the session (when that sample reached us at the
        latest): a sample dated in the future cannot stretch a session nobody stopped.
        """
        newest = await db.scalar(
            select(func.max(col(MeterSample.sampled_at))).where(
                col(MeterSample.session_id) == session.id
            )
        )
        if newest is None:
            return session.started_at or session.created_at
        return min(newest, max(session.updated_at, session.created_at))

    async def force_close(self, session_id: int) -> ChargingSession:
        """An operator closes a session its charger never stopped, billed up to its last sign."""
        completed = None
        async with self._sessions() as db:
            session = await get_or_404(db, ChargingSession, session_id, "charging session")
            if session.status not in ACTIVE_SESSION_STATUSES:
                raise ConflictError(f"session {session_id} is {session.status} already")
            if session.transaction_id is None:
                await _fail(db, session_id, ACTIVE_SESSION_STATUSES, "closed_by_operator")
            else:
                meter_stop = await self._highest_register(db, session)
                last_seen = await self._last_activity(db, session)
                if await self._complete(
                    db, session, meter_stop, last_seen, "ClosedByOperator", None, accepted_only=True
                ):
                    completed = session
            await db.commit()
            current = await db.get(ChargingSession, session_id, populate_existing=True)
            assert current is not None
        if completed is not None:
            await self._publish_completed(current)
        return current

    # -- timers -----------------------------------------------------------------------------

    async def run_timers(self, now: datetime | None = None) -> None:
        """Fail starts whose StartTransaction never came; warn before idle fees begin."""
        now = now or utcnow()
        failed: list[tuple[ChargingSession, str]] = []
        warned: list[tuple[ChargingSession, int]] = []
        async with self._sessions() as db:
            expired = (
                await db.scalars(
                    select(ChargingSession).where(
                        col(ChargingSession.status).in_(AWAITING_START_STATUSES),
                        col(ChargingSession.start_deadline_at) < now,
                    )
                )
            ).all()
            for session in expired:
                why = (
                    "no_start_transaction"
                    if session.status == SessionStatus.STARTING
                    else "timed_out"
                )
                reason = await _fail(db, session.id or 0, [session.status], why)
                if reason:
                    failed.append((session, reason))
            idle = (
                await db.scalars(
                    select(ChargingSession).where(
                        col(ChargingSession.status) == SessionStatus.CHARGING,
                        col(ChargingSession.charging_finished_at).is_not(None),
                        col(ChargingSession.idle_warning_sent_at).is_(None),
                    )
                )
            ).all()
            for session in idle:
                tariff = TariffSnapshot.from_json(session.tariff_snapshot or FREE.to_json())
                if tariff.idle_fee_per_minute_minor <= 0 or session.charging_finished_at is None:
                    continue
                fee_starts = session.charging_finished_at + timedelta(
                    minutes=tariff.idle_grace_minutes
                )
                if now >= fee_starts - self._idle_warning:
                    claimed = await db.execute(
                        update(ChargingSession)
                        .where(
                            col(ChargingSession.id) == session.id,
                            col(ChargingSession.idle_warning_sent_at).is_(None),
                        )
                        .values(idle_warning_sent_at=now)
                    )
                    if claimed.rowcount:  # type: ignore[attr-defined]
                        minutes = max(0, -(-int((fee_starts - now).total_seconds()) // 60))
                        warned.append((session, minutes))
            await db.commit()
        for session, reason in failed:
            await self._events.publish(
                SessionFailed(session.id or 0, session.driver_id, session.channel, reason)
            )
        for session, minutes in warned:
            await self._events.publish(
                IdleFeeSoon(session.id or 0, session.driver_id, session.channel, minutes)
            )


async def move_session(
    db: AsyncSession,
    session_id: int,
    to: SessionStatus,
    only_from: Iterable[SessionStatus] | None = None,
    **values: Any,
) -> bool:
    """The one way a session's status changes, in the caller's transaction: compare-and-set.

    The row changes (to `to`, with `values`) only if its status is still one of the "from"
    statuses SESSION_LIFECYCLE allows for `to`, narrowed to `only_from` when given; False if
    it is not (someone else moved it first). A move the table lacks raises IllegalTransition
    before anything is written.
    """
    from_statuses = SESSION_LIFECYCLE.sources(to, only_from)
    return await _update_if(db, session_id, from_statuses, status=to, **values)


async def _start_timeout_from(db: AsyncSession, session_id: int, deadline: datetime) -> bool:
    """A shared-transaction unit: a `starting` session's deadline, once its charger said yes."""
    return await update_session_while(
        db, session_id, SessionStatus.STARTING, start_deadline_at=deadline
    )


async def update_session_while(
    db: AsyncSession, session_id: int, status: SessionStatus, **values: Any
) -> bool:
    """Change fields of a session, never its status, only while it is still `status`.

    (E.g. a pending session's deadline.) False if the session has moved on meanwhile.
    """
    return await _update_if(db, session_id, [status], **values)


async def _update_if(
    db: AsyncSession, session_id: int, from_statuses: Iterable[str], **values: Any
) -> bool:
    values.setdefault("updated_at", utcnow())
    result = await db.execute(
        update(ChargingSession)
        .where(
            col(ChargingSession.id) == session_id,
            col(ChargingSession.status).in_(sorted(from_statuses)),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def _fail(
    db: AsyncSession, session_id: int, only_from: Iterable[SessionStatus], reason: str
) -> str | None:
    """`failed` with `reason` (a move_session); the reason, or None if it had moved on."""
    changed = await move_session(
        db,
        session_id,
        SessionStatus.FAILED,
        only_from,
        failure_reason=reason,
        start_deadline_at=None,
    )
    return reason if changed else None


def _is_virtual(id_tag: str, tag: IdTag | None) -> bool:
    """A chat driver's token (by its flag, or its prefix, which no card may have)."""
    return id_tag.startswith(VIRTUAL_TAG_PREFIX) or (tag is not None and tag.virtual)


__all__ = [
    "ENERGY",
    "VIRTUAL_TAG_PREFIX",
    "ChargingService",
    "RefusedError",
    "Sample",
    "StartOutcome",
    "StopOutcome",
    "move_session",
    "session_cost",
    "update_session_while",
    "virtual_id_tag",
]
