"""An operator's decision on a session whose meter figures were implausible (`needs_review`).

Until the decision the session is billed for its plausible energy only (the card charged or
captured that much, the invoice shows it). The operator keeps the plausible amount, accepts
what the charger measured, or sets an energy between 0 and the measured figure; the cost is
recomputed from the session's tariff snapshot and the session becomes `completed`.

A decided cost above what a card payment already took is recorded on the payment as
`amount_uncollected_minor` for staff to follow up: no new Stripe charge is made. An invoice
driver's invoice reads the session's cost, so it shows the decided amount. A decided cost
below what was taken is refunded, if at all, with POST /admin/sessions/{id}/refund.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import ChargingSession, Payment, PaymentStatus, SessionStatus
from backend.services.charging import move_session
from backend.services.errors import ConflictError
from backend.services.events import SessionReviewed
from backend.services.pricing import FREE, TariffSnapshot, compute_cost
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

# Payments whose amounts are final: what they took can be compared with the decided cost.
SETTLED_PAYMENTS = {PaymentStatus.CAPTURED, PaymentStatus.REFUNDED, PaymentStatus.FAILED}


class Decision(StrEnum):
    KEEP_PLAUSIBLE = "keep_plausible"
    ACCEPT_MEASURED = "accept_measured"
    SET_ENERGY = "set_energy"


class ReviewRejectedError(ValueError):
    """The decision does not fit the session (e.g. more energy than the charger measured)."""


@dataclass(frozen=True)
class ReviewOutcome:
    session: ChargingSession
    payment: Payment | None
    billed_before_minor: int  # the plausible cost billed until the decision
    uncollected_minor: int  # decided cost the card payment did not take (0: none, or no card)

    @property
    def event(self) -> SessionReviewed:
        """What the caller publishes after the decision (the notifier tells the driver)."""
        session = self.session
        assert session.id is not None
        return SessionReviewed(
            session.id,
            session.driver_id,
            session.channel,
            session.energy_wh,
            session.cost_minor or 0,
            self.uncollected_minor,
        )


async def awaiting_review(db: AsyncSession, limit: int = 200) -> Sequence[ChargingSession]:
    """Sessions under review, the oldest first (the one waiting longest on top)."""
    query = (
        select(ChargingSession)
        .where(col(ChargingSession.status) == SessionStatus.NEEDS_REVIEW)
        .order_by(col(ChargingSession.stopped_at), col(ChargingSession.id))
        .limit(limit)
    )
    return (await db.scalars(query)).all()


def decided_energy(session: ChargingSession, decision: Decision, energy_wh: int | None) -> int:
    """The energy (Wh) a decision bills; ReviewRejectedError if it does not fit the session."""
    measured = max(0, session.measured_energy_wh or 0)
    if decision == Decision.KEEP_PLAUSIBLE:
        return session.energy_wh
    if decision == Decision.ACCEPT_MEASURED:
        return measured
    if energy_wh is None:
        raise ReviewRejectedError("set_energy needs energy_wh")
    ceiling = max(measured, session.energy_wh)
    if not 0 <= energy_wh <= ceiling:
        raise ReviewRejectedError(f"energy_wh must be 0..{ceiling} (what the charger measured)")
    return energy_wh


async def decide(
    db: AsyncSession,
    session_id: int,
    decision: Decision,
    *,
    energy_wh: int | None = None,
    reviewer: str,
) -> ReviewOutcome:
    """Record the decision: energy, cost and `completed`, once (ConflictError the second time).

    Commits. ConflictError too while the session's card payment is still being settled.
    """
    session = await get_or_404(db, ChargingSession, session_id, "charging session")
    if session.status != SessionStatus.NEEDS_REVIEW:
        raise ConflictError(f"session {session_id} is {session.status}, not awaiting review")
    energy = decided_energy(session, decision, energy_wh)
    payment = await db.scalar(
        select(Payment)
        .where(col(Payment.session_id) == session_id)
        .order_by(col(Payment.id).desc())
    )
    if payment is not None and payment.status not in SETTLED_PAYMENTS:
        raise ConflictError(
            f"the card payment of session {session_id} is {payment.status}: try again once "
            "it is settled"
        )
    tariff = TariffSnapshot.from_json(session.tariff_snapshot) if session.tariff_snapshot else FREE
    cost = compute_cost(
        tariff, energy, session.started_at, session.stopped_at, session.charging_finished_at
    )
    billed_before = session.cost_minor or 0
    now = utcnow()
    # Compare-and-set: of two operators deciding at once, one wins and the other gets 409.
    claimed = await move_session(
        db,
        session_id,
        SessionStatus.COMPLETED,
        only_from=[SessionStatus.NEEDS_REVIEW],
        energy_wh=energy,
        cost_minor=cost.total_minor,
        cost_breakdown=cost.to_json(),
        reviewed_at=now,
        reviewed_by=reviewer[:254],
        updated_at=now,
    )
    if not claimed:
        await db.rollback()
        raise ConflictError(f"session {session_id} was decided already")
    uncollected = 0
    if payment is not None:
        taken = payment.amount_captured_minor - payment.amount_refunded_minor
        uncollected = max(0, cost.total_minor - taken)
        await db.execute(
            update(Payment)
            .where(col(Payment.id) == payment.id)
            .values(amount_uncollected_minor=uncollected, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    await db.commit()
    log.info(
        "session %s reviewed by %s: %s, %s Wh, cost %s (billed before %s, uncollected %s)",
        session_id,
        reviewer,
        decision.value,
        energy,
        cost.total_minor,
        billed_before,
        uncollected,
    )
    current = await db.get(ChargingSession, session_id, populate_existing=True)
    assert current is not None
    if payment is not None:
        payment = await db.get(Payment, payment.id, populate_existing=True)
    return ReviewOutcome(current, payment, billed_before, uncollected)


__all__ = [
    "Decision",
    "ReviewOutcome",
    "ReviewRejectedError",
    "awaiting_review",
    "decide",
    "decided_energy",
]
