"""Reservations (OCPP 1.6 ReserveNow, CancelReservation): hold a connector for an id tag."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from backend.api.admin.operations import answered
from backend.api.deps import IdPath, ReservationsDep, ReviewerDep, SessionDep
from backend.api.schemas import IdTagValue
from backend.db import utcnow
from backend.lifecycles import ReservationStatus
from backend.models import Reservation
from backend.services import reservations
from backend.services.reservations import MAX_MINUTES
from backend.services.rows import get_or_404

router = APIRouter(tags=["reservations"])


class ReserveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    connector_id: Annotated[int, Field(ge=0, le=99)]  # 0: any connector of the charger
    id_tag: IdTagValue
    minutes: Annotated[int, Field(ge=1, le=MAX_MINUTES)] = 15
    # Or OCPP's own expiryDate: when the hold ends (instead of `minutes`).
    expires_at: AwareDatetime | None = None


class ReservationPublic(BaseModel):
    id: int  # the reservationId the charger knows
    charger_id: str
    connector_id: int
    id_tag: str
    driver_id: int | None
    status: str  # requested | active | used | cancelled | expired | ended_by_charger | refused
    outcome: str | None  # the charger's last answer about it, or why it ended
    expires_at: datetime
    session_id: int | None
    requested_by: str | None
    created_at: datetime
    ended_at: datetime | None


class ReservationCommandOut(BaseModel):
    status: str  # the charger's answer: Accepted | Occupied | Faulted | Rejected | Unavailable
    reservation: ReservationPublic


def _public(reservation: Reservation) -> ReservationPublic:
    assert reservation.id is not None
    return ReservationPublic.model_validate(reservation, from_attributes=True)


@router.post("/chargers/{charger_id}/reservations")
async def reserve(
    charger_id: str, body: ReserveIn, service: ReservationsDep, who: ReviewerDep
) -> ReservationCommandOut:
    """ReserveNow; a charger's refusal is its answer (the reservation is kept as refused)."""
    until = body.expires_at or utcnow() + timedelta(minutes=body.minutes)
    outcome = await service.reserve(
        charger_id, body.connector_id, body.id_tag, until, requested_by=who
    )
    status = answered(outcome.result, charger_id)  # 409 offline, 504 no answer
    return ReservationCommandOut(status=status, reservation=_public(outcome.reservation))


@router.post("/reservations/{reservation_id}/cancel")
async def cancel(reservation_id: IdPath, service: ReservationsDep) -> ReservationCommandOut:
    """CancelReservation: Accepted, or Rejected when the charger holds no such reservation
    (either way it has ended); 409 when the charger cannot be asked (it still expires)."""
    outcome = await service.cancel(reservation_id)
    status = answered(outcome.result, outcome.reservation.charger_id)
    return ReservationCommandOut(status=status, reservation=_public(outcome.reservation))


@router.get("/reservations")
async def list_reservations(
    db: SessionDep,
    charger_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[ReservationStatus] | None, Query()] = None,
) -> list[ReservationPublic]:
    """The newest 200, optionally of one charger and in some statuses."""
    found = await reservations.list_reservations(db, charger_id, status)
    return [_public(r) for r in found]


@router.get("/reservations/{reservation_id}")
async def get_reservation(reservation_id: IdPath, db: SessionDep) -> ReservationPublic:
    return _public(await get_or_404(db, Reservation, reservation_id, "reservation"))
