"""/admin/sessions: charging sessions for operators, with their card payment and refunds.

Sessions whose meter figures were implausible wait in `needs_review` (list them with
`?status=needs_review`) until an operator decides with POST /admin/sessions/{id}/review.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from sqlmodel import col, select

from backend.api.deps import PaymentsDep, ReviewerDep, SessionDep
from backend.api.schemas import (
    PaymentPublic,
    RefundRequest,
    SessionAdminPublic,
    SessionReviewIn,
)
from backend.models import ChargingSession, Payment, SessionStatus
from backend.services import meter_review, sessions
from backend.services.ports import PaymentGatewayError

router = APIRouter(prefix="/sessions", tags=["sessions"])


def session_public(row: ChargingSession, payment: Payment | None = None) -> SessionAdminPublic:
    public = SessionAdminPublic(**row.model_dump())
    if payment is not None:
        public.payment = PaymentPublic(**payment.model_dump())
    return public


async def _payment(db: SessionDep, session_id: int) -> Payment | None:
    return await db.scalar(
        select(Payment)
        .where(col(Payment.session_id) == session_id)
        .order_by(col(Payment.id).desc())
    )


@router.get("")
async def list_sessions(
    db: SessionDep,
    charger_id: str | None = None,
    driver_id: int | None = None,
    status: SessionStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SessionAdminPublic]:
    """Newest first; `status=needs_review`: the sessions an operator has to decide on."""
    rows = await sessions.list_sessions(db, charger_id, driver_id, status, limit)
    return [session_public(r) for r in rows]


@router.get("/{session_id}")
async def get_session(session_id: int, db: SessionDep) -> SessionAdminPublic:
    row = await sessions.get_session(db, session_id)
    return session_public(row, await _payment(db, session_id))


@router.post("/{session_id}/refund")
async def refund_session(
    session_id: int, body: RefundRequest, db: SessionDep, payments: PaymentsDep
) -> SessionAdminPublic:
    """Refund the card payment, fully (no amount) or partly; never more than was captured."""
    if payments is None:
        raise HTTPException(status_code=409, detail="card payments are not configured")
    await sessions.get_session(db, session_id)  # 404 for an unknown session
    await db.rollback()  # the refund writes in its own transaction (SQLite has one writer)
    try:
        await payments.refund(session_id, body.amount_minor)
    except PaymentGatewayError as exc:
        raise HTTPException(status_code=502, detail=f"Stripe refused the refund: {exc}") from exc
    row = await sessions.get_session(db, session_id)
    await db.refresh(row)
    return session_public(row, await _payment(db, session_id))


@router.post("/{session_id}/review")
async def review_session(
    session_id: int,
    body: SessionReviewIn,
    request: Request,
    db: SessionDep,
    who: ReviewerDep,
) -> SessionAdminPublic:
    """Decide on a session under meter review: it becomes `completed` at the chosen energy.

    The cost is recomputed with the session's tariff snapshot. A card payment is never
    charged again: a decided cost above what it took is recorded as its
    `amount_uncollected_minor` for staff to follow up. 409 if the session is not awaiting
    review (e.g. decided already), 422 for an energy above what the charger measured.
    """
    try:
        outcome = await meter_review.decide(
            db,
            session_id,
            meter_review.Decision(body.decision),
            energy_wh=body.energy_wh,
            reviewer=who,
        )
    except meter_review.ReviewRejectedError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    await request.app.state.events.publish(outcome.event)  # the driver hears the outcome
    return session_public(outcome.session, outcome.payment)
