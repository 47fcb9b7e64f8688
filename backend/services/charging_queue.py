"""Drivers' reservations from the chat, and the queue at a busy station.

Reserve: a driver holds a free connector for the minutes its station's tariff allows
(`reservation_minutes`, 0: not offered), for its `reservation_fee_minor`, added to the charge
that uses it; ReserveNow goes to the charger with the driver's virtual tag, so only their own
start may use the connector. One reservation per card (so per chat driver) at a time.

Queue: at a station with no free connector, a driver joins its queue. Every sweep, for each
station with people waiting, a free connector (Available, online, nobody's session, nobody's
reservation) is offered to the first in line: reserved for them for QUEUE_CLAIM_MINUTES and
told on their channel. An offer they let pass lapses and the connector goes to the next in
line; one they take (their session starts on the reservation) is claimed. The offers are
reservations, so a charger that refuses one (it is in use after all) is simply tried again
at the next sweep.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.lifecycles import (
    ACTIVE_SESSION_STATUSES,
    QUEUE_LIFECYCLE,
    QUEUED_STATUSES,
    QueueStatus,
    ReservationStatus,
)
from backend.models import (
    Charger,
    ChargingSession,
    Connector,
    Conversation,
    QueueEntry,
    Reservation,
    Station,
    Tariff,
)
from backend.services import network, reservations
from backend.services.charging import ChargingService
from backend.services.errors import ConnectorUnavailableError, RefusedError
from backend.services.outbound import Recipient, deliver, record_outbound, transcript_line
from backend.services.ports import OutboundMessage, OutboundMessages
from backend.services.reservations import ReservationService
from backend.services.rows import move_status

log = logging.getLogger(__name__)
_Q = QueueStatus


@dataclass(frozen=True)
class Reserved:
    """A driver's reservation from the chat: its row and the charger's answer."""

    reservation: Reservation
    status: str  # the charger's word (Accepted, Occupied, ...), or offline / timed_out
    station: Station | None
    code: str


@dataclass(frozen=True)
class Place:
    """A driver's place in a queue."""

    entry: QueueEntry
    position: int  # 1: first in line
    station: Station


async def move_entry(db: AsyncSession, entry_id: int, to: QueueStatus, **values: object) -> bool:
    """The one way a queue entry's status changes: compare-and-set by QUEUE_LIFECYCLE."""
    return await move_status(db, QueueEntry, entry_id, QUEUE_LIFECYCLE, to, **values)


class ChatReservations:
    """Reserve, cancel and queue for drivers in the chat; `tick` runs the queues."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        charging: ChargingService,
        reservations_service: ReservationService,
        outbound: OutboundMessages,
        claim_minutes: float,
    ) -> None:
        self._sessions = sessions
        self._charging = charging
        self._reservations = reservations_service
        self._outbound = outbound
        self._claim = timedelta(minutes=claim_minutes)

    @property
    def claim_minutes(self) -> int:
        """How long a queue's offer is held for the driver."""
        return max(1, round(self._claim.total_seconds() / 60))

    async def station_of(self, code: str) -> int | None:
        """The station of a connector code (NotFoundError for an unknown code)."""
        async with self._sessions() as db:
            connector = await network.get_connector_by_code(db, code)
            charger = await db.get(Charger, connector.charger_id)
        return charger.station_id if charger is not None else None

    async def free_code(self, station_id: int) -> tuple[str, str] | None:
        """(station name, code) of a connector free at the station now, if any: no need to
        queue then."""
        async with self._sessions() as db:
            free = await self._free_connectors(db, station_id)
            station = await db.get(Station, station_id)
        if not free or station is None:
            return None
        return station.name, free[0].code

    # -- reserve -------------------------------------------------------------------------------

    async def terms(self, code: str) -> tuple[int, int] | None:
        """(minutes, fee) a driver may reserve this connector for; None: not offered there."""
        async with self._sessions() as db:
            connector = await network.get_connector_by_code(db, code)
            charger = await db.get(Charger, connector.charger_id)
            if charger is None or charger.station_id is None:
                return None
            tariff = await db.scalar(
                select(Tariff).where(col(Tariff.station_id) == charger.station_id)
            )
        if tariff is None or tariff.reservation_minutes <= 0:
            return None
        return tariff.reservation_minutes, tariff.reservation_fee_minor

    async def reserve(self, driver_id: int, code: str, *, minutes: int | None = None) -> Reserved:
        """Hold the connector of `code` for the driver; RefusedError says why not."""
        terms = await self.terms(code)
        if terms is None:
            raise ConnectorUnavailableError("reservations_off", "no reservations here")
        allowed, fee = terms
        async with self._sessions() as db:
            connector = await network.get_connector_by_code(db, code)
            charger = await db.get(Charger, connector.charger_id)
            assert charger is not None and charger.station_id is not None
            station = await db.get(Station, charger.station_id)
        refused = await self._charging.preflight(
            charger.id, connector.connector_id, driver_id=driver_id
        )
        if refused is not None:
            raise refused
        tag = await self._charging.virtual_tag(driver_id)
        outcome = await self._reservations.reserve(
            charger.id,
            connector.connector_id,
            tag,
            utcnow() + timedelta(minutes=minutes or allowed),
            requested_by=f"driver:{driver_id}",
            fee_minor=fee,
        )
        result = outcome.result
        word = result.word
        return Reserved(outcome.reservation, word, station, connector.code)

    async def held_by(self, driver_id: int) -> tuple[Reservation, str, Station | None] | None:
        """The driver's reservation being held, its connector code and station."""
        async with self._sessions() as db:
            held = await reservations.active_for_driver(db, driver_id)
            if held is None or held.status != ReservationStatus.ACTIVE:
                return None
            code = await db.scalar(
                select(col(Connector.code)).where(
                    col(Connector.charger_id) == held.charger_id,
                    col(Connector.connector_id) == held.connector_id,
                )
            )
            charger = await db.get(Charger, held.charger_id)
            station = (
                await db.get(Station, charger.station_id)
                if charger is not None and charger.station_id
                else None
            )
        return held, code or "", station

    async def cancel(self, driver_id: int) -> str | None:
        """Cancel the driver's reservation; the charger's word, or None if they hold none."""
        found = await self.held_by(driver_id)
        if found is None:
            return None
        reservation, _, _ = found
        assert reservation.id is not None
        outcome = await self._reservations.cancel(reservation.id)
        return outcome.result.word

    # -- queue ---------------------------------------------------------------------------------

    async def join(self, driver_id: int, station_id: int, channel: str) -> Place:
        """Join the station's queue (or stay where one already is in it)."""
        async with self._sessions() as db:
            station = await db.get(Station, station_id)
            assert station is not None
            current = await self._entry_of(db, driver_id)
            if current is not None and current.station_id != station_id:
                assert current.id is not None
                await move_entry(db, current.id, _Q.LEFT)  # one queue at a time
                current = None
            if current is None:
                current = QueueEntry(station_id=station_id, driver_id=driver_id, channel=channel)
                QUEUE_LIFECYCLE.check_initial(current.status)
                db.add(current)
                await db.commit()
            return Place(current, await self._position(db, current), station)

    async def place_of(self, driver_id: int) -> Place | None:
        async with self._sessions() as db:
            entry = await self._entry_of(db, driver_id)
            if entry is None:
                return None
            station = await db.get(Station, entry.station_id)
            assert station is not None
            return Place(entry, await self._position(db, entry), station)

    async def leave(self, driver_id: int) -> bool:
        """Leave the queue; an offer they hold is given up (its reservation cancelled)."""
        async with self._sessions() as db:
            entry = await self._entry_of(db, driver_id)
            if entry is None or entry.id is None:
                return False
            left = await move_entry(db, entry.id, _Q.LEFT)
            await db.commit()
        if left and entry.reservation_id is not None:
            await self._release(entry.reservation_id)
        return left

    async def _entry_of(self, db: AsyncSession, driver_id: int) -> QueueEntry | None:
        """The driver's place in a queue; an offer they already charge on is claimed now."""
        entry = (
            await db.scalars(
                select(QueueEntry)
                .where(
                    col(QueueEntry.driver_id) == driver_id,
                    col(QueueEntry.status).in_(QUEUED_STATUSES),
                )
                .order_by(col(QueueEntry.id).desc())
            )
        ).first()
        if entry is None or entry.id is None or entry.reservation_id is None:
            return entry
        reservation = await db.get(Reservation, entry.reservation_id)
        if reservation is not None and reservation.status == ReservationStatus.USED:
            await move_entry(db, entry.id, _Q.CLAIMED)
            await db.commit()
            return None
        return entry

    async def _position(self, db: AsyncSession, entry: QueueEntry) -> int:
        if entry.status == _Q.OFFERED:
            return 0
        ahead = (
            await db.scalars(
                select(col(QueueEntry.id)).where(
                    col(QueueEntry.station_id) == entry.station_id,
                    col(QueueEntry.status) == _Q.WAITING,
                    col(QueueEntry.id) < (entry.id or 0),
                )
            )
        ).all()
        return len(ahead) + 1

    async def _release(self, reservation_id: int) -> None:
        try:
            await self._reservations.cancel(reservation_id)
        except Exception:  # not active any more, or the charger is away: it expires anyway
            log.info("queue: reservation %s not cancelled", reservation_id)

    # -- the sweep -----------------------------------------------------------------------------

    async def tick(self) -> None:
        """Settle offers (claimed, lapsed), then offer free connectors to the first in line."""
        now = utcnow()
        async with self._sessions() as db:
            offered = (
                await db.scalars(select(QueueEntry).where(col(QueueEntry.status) == _Q.OFFERED))
            ).all()
            lapsed: list[QueueEntry] = []
            for entry in offered:
                assert entry.id is not None
                reservation = (
                    await db.get(Reservation, entry.reservation_id)
                    if entry.reservation_id is not None
                    else None
                )
                if reservation is not None and reservation.status == ReservationStatus.USED:
                    await move_entry(db, entry.id, _Q.CLAIMED)
                    continue
                ended = reservation is not None and reservation.status in (
                    ReservationStatus.CANCELLED,
                    ReservationStatus.EXPIRED,
                    ReservationStatus.ENDED_BY_CHARGER,
                )
                past = entry.offer_expires_at is None or entry.offer_expires_at <= now
                if (ended or past) and await move_entry(db, entry.id, _Q.LAPSED):
                    lapsed.append(entry)
            await db.commit()
            waiting_stations = (
                await db.scalars(
                    select(col(QueueEntry.station_id))
                    .where(col(QueueEntry.status) == _Q.WAITING)
                    .distinct()
                )
            ).all()
        for entry in lapsed:
            if entry.reservation_id is not None:
                await self._release(entry.reservation_id)
            await self._tell(entry, "lapsed")
        for station_id in waiting_stations:
            await self._offer_free(station_id)

    async def _free_connectors(self, db: AsyncSession, station_id: int) -> list[Connector]:
        busy_sessions = select(ChargingSession.charger_id, ChargingSession.connector_id).where(
            col(ChargingSession.status).in_(ACTIVE_SESSION_STATUSES)
        )
        held = select(Reservation.charger_id, Reservation.connector_id).where(
            col(Reservation.status).in_([ReservationStatus.REQUESTED, ReservationStatus.ACTIVE]),
            col(Reservation.expires_at) > utcnow(),
        )
        rows = (
            await db.scalars(
                select(Connector)
                .join(Charger, col(Charger.id) == col(Connector.charger_id))
                .where(
                    col(Charger.station_id) == station_id,
                    col(Charger.online).is_(True),
                    col(Connector.status) == "Available",
                )
                .order_by(col(Connector.charger_id), col(Connector.connector_id))
            )
        ).all()
        taken = {(c, n) for c, n in (await db.execute(busy_sessions)).all()}
        taken |= {(c, n) for c, n in (await db.execute(held)).all()}
        return [c for c in rows if (c.charger_id, c.connector_id) not in taken]

    async def _offer_free(self, station_id: int) -> None:
        async with self._sessions() as db:
            free = await self._free_connectors(db, station_id)
            waiting = (
                await db.scalars(
                    select(QueueEntry)
                    .where(
                        col(QueueEntry.station_id) == station_id,
                        col(QueueEntry.status) == _Q.WAITING,
                    )
                    .order_by(col(QueueEntry.id))
                )
            ).all()
        pending = list(waiting)
        for connector in free:
            while pending:
                entry = pending.pop(0)
                outcome = await self._offer(connector, entry)
                if outcome == "offered":
                    break
                if outcome == "connector":  # this connector cannot be held: try the next one
                    pending.insert(0, entry)
                    break
                # "driver": this one cannot take it now (e.g. a reservation of their own)

    async def _offer(self, connector: Connector, entry: QueueEntry) -> str:
        """Offer `connector` to `entry`: "offered", or what stood in the way ("driver": they
        cannot hold it now, "connector": the charger would not hold it)."""
        assert entry.id is not None
        try:
            tag = await self._charging.virtual_tag(entry.driver_id)
            until = utcnow() + self._claim
            outcome = await self._reservations.reserve(
                connector.charger_id,
                connector.connector_id,
                tag,
                until,
                requested_by=f"queue:{entry.id}",
            )
        except RefusedError as refused:  # e.g. the driver holds a reservation of their own
            log.info("queue %s: no offer now (%s)", entry.id, refused.reason)
            return "driver"
        reservation = outcome.reservation
        if reservation.status != ReservationStatus.ACTIVE:
            return "connector"  # tried again at the next sweep
        async with self._sessions() as db:
            moved = await move_entry(
                db,
                entry.id,
                _Q.OFFERED,
                reservation_id=reservation.id,
                connector_code=connector.code,
                offered_at=utcnow(),
                offer_expires_at=reservation.expires_at,
            )
            await db.commit()
        if not moved:  # they left meanwhile
            assert reservation.id is not None
            await self._release(reservation.id)
            return "driver"
        entry.connector_code = connector.code
        entry.offer_expires_at = reservation.expires_at
        await self._tell(entry, "turn")
        return "offered"

    async def _tell(self, entry: QueueEntry, what: str) -> None:
        """The driver's turn (or its passing), on the channel they queued from."""
        async with self._sessions() as db:
            conversation = (
                await db.scalars(
                    select(Conversation)
                    .where(
                        col(Conversation.driver_id) == entry.driver_id,
                        col(Conversation.channel) == entry.channel,
                    )
                    .order_by(col(Conversation.updated_at).desc())
                )
            ).first()
            station = await db.get(Station, entry.station_id)
            if conversation is None or conversation.id is None or station is None:
                return
            if not self._outbound.handles(conversation.channel):
                return
            message: OutboundMessage
            if what == "turn":
                message = self._outbound.queue_turn(
                    conversation.language,
                    station.name,
                    entry.connector_code or "",
                    self.claim_minutes,
                )
            else:
                message = self._outbound.queue_lapsed(conversation.language, station.name)
            record_outbound(db, conversation.id, transcript_line(message))
            await db.commit()
            to = Recipient(conversation.channel, conversation.address)
        await deliver(
            self._outbound,
            to,
            [message],
            on_failure=lambda exc: log.warning("queue notice not sent: %r", exc),
        )


def minutes_left(until: datetime) -> int:
    """Whole minutes until `until` (at least 1 while it lies ahead)."""
    seconds = (until - utcnow()).total_seconds()
    return max(1, int(seconds // 60) + (1 if seconds % 60 else 0)) if seconds > 0 else 0
