"""Reservations (OCPP 1.6 Reservation profile: ReserveNow, CancelReservation).

A reservation holds a connector (or, with connector 0, one connector of the charger) for one
id tag until it expires. Its row is written `requested` before ReserveNow goes out (its id is
the reservationId), then moves by RESERVATION_LIFECYCLE: `active` when the charger accepts,
`refused` when it answers Occupied, Faulted, Rejected or Unavailable or cannot be asked;
an active one ends `used` (a StartTransaction names it), `cancelled`, `expired` or
`ended_by_charger` (see `follow_connector_statuses`). While it is active, a start on that
connector by any other id tag is refused here before the charger is asked (reason `reserved`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.lifecycles import RESERVATION_LIFECYCLE, ReservationStatus
from backend.models import Charger, ChargingSession, Connector, Driver, IdTag, Reservation
from backend.services.drivers import normalize_id_tag, tag_status
from backend.services.errors import (
    AccessDeniedError,
    ConflictError,
    ConnectorUnavailableError,
    InvalidFieldError,
    NotFoundError,
)
from backend.services.ports import ChargerCommands, CommandResult, CommandStatus
from backend.services.rows import get_or_404, move_status

MAX_MINUTES = 24 * 60
# A `requested` row whose ReserveNow never got an answer (we crashed mid-call) is refused
# after this long by the sweep.
REQUEST_GRACE = timedelta(minutes=5)
_R = ReservationStatus
# What a reserved connector reports while the charger holds the reservation, and what it
# reports once the charger let it go (OCPP 1.6 §4.9: Reserved -> Available when it expires
# or is cancelled there; Finishing -> Available after a transaction). Faulted and Unavailable
# prove nothing (a faulted connector may return to Reserved), nor do Preparing to Finishing
# (it is being used: the StartTransaction naming it marks it `used`).
CONNECTOR_RESERVED = "Reserved"
CONNECTOR_RELEASED = "Available"


@dataclass(frozen=True)
class ReservationOutcome:
    """A reservation after a command to its charger, and what the charger said."""

    reservation: Reservation
    result: CommandResult


async def move_reservation(
    db: AsyncSession, reservation_id: int, to: ReservationStatus, **values: Any
) -> bool:
    """The one way a reservation's status changes: compare-and-set by the lifecycle table."""
    return await move_status(db, Reservation, reservation_id, RESERVATION_LIFECYCLE, to, **values)


async def holding(
    db: AsyncSession, charger_id: str, connector_id: int | None = None
) -> list[Reservation]:
    """A charger's reservations being requested or active (on `connector_id`, or 0)."""
    query = select(Reservation).where(
        col(Reservation.charger_id) == charger_id,
        col(Reservation.status).in_([_R.REQUESTED, _R.ACTIVE]),
        col(Reservation.expires_at) > utcnow(),
    )
    if connector_id is not None:
        query = query.where(col(Reservation.connector_id) == connector_id)
    return list((await db.scalars(query.order_by(col(Reservation.id)))).all())


async def mark_used(
    db: AsyncSession, charger_id: str, reservation_id: int, session_id: int
) -> bool:
    """A StartTransaction named this reservation (in the caller's transaction): it is used,
    and its fee is added to the session's prices (only the reserving driver's own session)."""
    reservation = await db.scalar(
        select(Reservation).where(
            col(Reservation.id) == reservation_id, col(Reservation.charger_id) == charger_id
        )
    )
    if reservation is None:
        return False
    used = await move_reservation(db, reservation_id, _R.USED, session_id=session_id)
    session = await db.get(ChargingSession, session_id)
    if (
        used
        and reservation.fee_minor
        and session is not None
        and session.driver_id == reservation.driver_id
        and session.tariff_snapshot is not None
    ):
        session.tariff_snapshot = {
            **session.tariff_snapshot,
            "reservation_fee_minor": reservation.fee_minor,
        }
        await db.flush()
    return used


async def follow_connector_statuses(
    db: AsyncSession, reports: Sequence[tuple[str, int, str]], now: datetime
) -> int:
    """A batch of connector StatusNotifications (charger, connector > 0, status; in arrival
    order), in the caller's transaction right after the connectors' statuses were written:
    a reservation whose connector reports Reserved is marked seen, and an active one whose
    connector, seen Reserved since, now reports Available has been let go by the charger: it
    ends `ended_by_charger` (one whose time is up is left to the sweep: `expired`). The
    Available a connector may report just after ReserveNow, before Reserved, ends nothing.
    Connector-0 reservations are left to expiry and cancelling: the charger reports the
    connector it picked, which we do not know. How many reservations ended.

    At most two statements per batch, each only when the batch has such reports, both on
    (charger_id, status) rows of requested or active reservations.
    """
    reserved = sorted({(c, n) for c, n, status in reports if status == CONNECTOR_RESERVED})
    released = sorted({c for c, _, status in reports if status == CONNECTOR_RELEASED})
    if reserved:
        await db.execute(
            update(Reservation)
            .where(
                col(Reservation.status).in_([_R.REQUESTED, _R.ACTIVE]),
                col(Reservation.reserved_seen_at).is_(None),
                tuple_(col(Reservation.charger_id), col(Reservation.connector_id)).in_(reserved),
            )
            .values(reserved_seen_at=now)
        )
    if not released:
        return 0
    # Joined on the connector's status as written now, its last report in this batch: Reserved
    # then Available ends it, Available then Reserved does not.
    connector_released = exists().where(
        col(Connector.charger_id) == col(Reservation.charger_id),
        col(Connector.connector_id) == col(Reservation.connector_id),
        col(Connector.status) == CONNECTOR_RELEASED,
    )
    ended = await db.execute(
        update(Reservation)
        .where(
            col(Reservation.charger_id).in_(released),
            col(Reservation.status).in_(RESERVATION_LIFECYCLE.sources(_R.ENDED_BY_CHARGER)),
            col(Reservation.reserved_seen_at).is_not(None),
            col(Reservation.connector_id) != 0,
            col(Reservation.expires_at) > now,
            connector_released,
        )
        .values(status=_R.ENDED_BY_CHARGER, ended_at=now, outcome=CONNECTOR_RELEASED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(ended, "rowcount", 0))


async def active_for_driver(db: AsyncSession, driver_id: int) -> Reservation | None:
    """The driver's reservation being requested or held now, if any."""
    return (
        await db.scalars(
            select(Reservation)
            .where(
                col(Reservation.driver_id) == driver_id,
                col(Reservation.status).in_([_R.REQUESTED, _R.ACTIVE]),
                col(Reservation.expires_at) > utcnow(),
            )
            .order_by(col(Reservation.id).desc())
        )
    ).first()


async def list_reservations(
    db: AsyncSession, charger_id: str | None = None, statuses: Iterable[str] | None = None
) -> list[Reservation]:
    query = select(Reservation).order_by(col(Reservation.id).desc()).limit(200)
    if charger_id is not None:
        query = query.where(col(Reservation.charger_id) == charger_id)
    if statuses:
        query = query.where(col(Reservation.status).in_(list(statuses)))
    return list((await db.scalars(query)).all())


class ReservationService:
    """Reserve and cancel through the charger; expiry by the sweep."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], commands: ChargerCommands
    ) -> None:
        self._sessions = sessions
        self._commands = commands

    async def reserve(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        expires_at: datetime,
        *,
        requested_by: str | None = None,
        fee_minor: int = 0,
    ) -> ReservationOutcome:
        """ReserveNow for `id_tag` until `expires_at`; refused reservations are kept (and said)."""
        now = utcnow()
        if not now < expires_at <= now + timedelta(minutes=MAX_MINUTES):
            raise InvalidFieldError(
                "expires_at", f"a reservation ends in the future, within {MAX_MINUTES} minutes"
            )
        id_tag = normalize_id_tag(id_tag)
        async with self._sessions() as db:
            await get_or_404(db, Charger, charger_id, "charger")
            if connector_id != 0:
                connector = await db.scalar(
                    select(col(Connector.id)).where(
                        col(Connector.charger_id) == charger_id,
                        col(Connector.connector_id) == connector_id,
                    )
                )
                if connector is None:
                    raise NotFoundError(f"charger {charger_id!r} has no connector {connector_id}")
            driver_id = await _card_holder(db, id_tag)
            own = await db.scalar(
                select(col(Reservation.id)).where(
                    col(Reservation.id_tag) == id_tag,
                    col(Reservation.status).in_([_R.REQUESTED, _R.ACTIVE]),
                    col(Reservation.expires_at) > utcnow(),
                )
            )
            if own is not None:  # one at a time: no card holds several connectors
                raise ConnectorUnavailableError(
                    "has_reservation", f"id tag {id_tag} holds reservation {own} already"
                )
            taken = await holding(db, charger_id, connector_id)
            if taken:
                raise ConnectorUnavailableError(
                    "reserved", f"connector {connector_id} of {charger_id!r} is reserved already"
                )
            reservation = Reservation(
                charger_id=charger_id,
                connector_id=connector_id,
                id_tag=id_tag,
                driver_id=driver_id,
                expires_at=expires_at.astimezone(UTC).replace(microsecond=0),
                requested_by=requested_by,
                fee_minor=fee_minor,
            )
            RESERVATION_LIFECYCLE.check_initial(reservation.status)
            db.add(reservation)
            await db.commit()
        assert reservation.id is not None
        result = await self._commands.operate(
            charger_id,
            "ReserveNow",
            {
                "connector_id": connector_id,
                "expiry_date": reservation.expires_at.isoformat().replace("+00:00", "Z"),
                "id_tag": id_tag,
                "reservation_id": reservation.id,
            },
        )
        to = _R.ACTIVE if result.ocpp_status == "Accepted" else _R.REFUSED
        outcome = result.word[:32]
        async with self._sessions() as db:
            await move_reservation(db, reservation.id, to, outcome=outcome)
            await db.commit()
            current = await db.get(Reservation, reservation.id, populate_existing=True)
        assert current is not None
        return ReservationOutcome(current, result)

    async def cancel(self, reservation_id: int) -> ReservationOutcome:
        """CancelReservation; the charger no longer holding it (Rejected) ends it as well."""
        async with self._sessions() as db:
            reservation = await get_or_404(db, Reservation, reservation_id, "reservation")
            if reservation.status != _R.ACTIVE:
                raise ConflictError(f"reservation {reservation_id} is {reservation.status}")
            # Our own CancelReservation frees the connector: the Available it brings must not
            # end it as the charger's doing before the answer below is written. Only a Reserved
            # report (the charger holding it still) arms that rule again.
            await db.execute(
                update(Reservation)
                .where(col(Reservation.id) == reservation_id)
                .values(reserved_seen_at=None)
                .execution_options(synchronize_session=False)
            )
            await db.commit()
        result = await self._commands.operate(
            reservation.charger_id, "CancelReservation", {"reservation_id": reservation_id}
        )
        if result.status not in (CommandStatus.OFFLINE, CommandStatus.TIMED_OUT):
            async with self._sessions() as db:
                await move_reservation(db, reservation_id, _R.CANCELLED, outcome=result.word[:32])
                await db.commit()
        async with self._sessions() as db:
            current = await db.get(Reservation, reservation_id)
        assert current is not None
        return ReservationOutcome(current, result)

    async def sweep(self) -> int:
        """End reservations whose time is up (and requests never answered); how many."""
        now = utcnow()
        async with self._sessions() as db:
            expired = await db.execute(
                update(Reservation)
                .where(
                    col(Reservation.status).in_(RESERVATION_LIFECYCLE.sources(_R.EXPIRED)),
                    col(Reservation.expires_at) <= now,
                )
                .values(status=_R.EXPIRED, ended_at=now, outcome="expired")
            )
            lost = await db.execute(
                update(Reservation)
                .where(
                    col(Reservation.status).in_(RESERVATION_LIFECYCLE.sources(_R.REFUSED)),
                    or_(
                        col(Reservation.created_at) <= now - REQUEST_GRACE,
                        col(Reservation.expires_at) <= now,
                    ),
                )
                .values(status=_R.REFUSED, ended_at=now, outcome="no_answer")
            )
            await db.commit()
        return int(getattr(expired, "rowcount", 0)) + int(getattr(lost, "rowcount", 0))


async def _card_holder(db: AsyncSession, id_tag: str) -> int:
    """The driver of a card a reservation may be made for (a known, usable card)."""
    tag = await db.scalar(select(IdTag).where(col(IdTag.id_tag) == id_tag))
    if tag is None:
        raise NotFoundError(f"no id tag {id_tag}")
    status = tag_status(tag, utcnow())
    if status != "Accepted":
        raise AccessDeniedError(f"id_tag_{status.lower()}", f"id tag {id_tag} is {status.lower()}")
    driver = await db.get(Driver, tag.driver_id)
    if driver is None or driver.blocked:
        raise AccessDeniedError("blocked", f"driver {tag.driver_id} is blocked")
    return tag.driver_id
