"""/admin/sessions: charging sessions for operators, with their card payment and refunds.

Sessions whose meter figures were implausible wait in `needs_review` (list them with
`?status=needs_review`) until an operator decides with POST /admin/sessions/{id}/review.
"""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from sqlmodel import col, select

from backend.api.deps import BearerDep, SessionDep, SettingsDep
from backend.api.schemas import (
    PaymentPublic,
    RefundRequest,
    SessionAdminPublic,
    SessionReviewIn,
)
from backend.models import ChargingSession, Payment, SessionStatus, StaffUser
from backend.services import meter_review, sessions
from backend.services.payments import PaymentService
from backend.services.staff import staff_id_of

# reviewed_by of a decision made with the admin token (the staff audit names it so too).
ADMIN_TOKEN_ACTOR = "admin-token"

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
    session_id: int, body: RefundRequest, request: Request, db: SessionDep
) -> SessionAdminPublic:
    """Refund the card payment, fully (no amount) or partly; never more than was captured."""
    payments: PaymentService | None = getattr(request.app.state, "payments", None)
    if payments is None:
        raise HTTPException(status_code=409, detail="card payments are not configured")
    await sessions.get_session(db, session_id)  # 404 for an unknown session
    await db.rollback()  # the refund writes in its own transaction (SQLite has one writer)
    try:
        await payments.refund(session_id, body.amount_minor)
    except stripe.StripeError as exc:
        raise HTTPException(status_code=502, detail=f"Stripe refused the refund: {exc}") from exc
    row = await sessions.get_session(db, session_id)
    await db.refresh(row)
    return session_public(row, await _payment(db, session_id))


async def reviewer(settings: SettingsDep, db: SessionDep, credentials: BearerDep) -> str:
    """Who decides: the operator's email, else the admin token (the router let them in)."""
    if credentials is not None:
        staff_id = staff_id_of(settings.secret_key, credentials.credentials)
        staff = await db.get(StaffUser, staff_id) if staff_id is not None else None
        if staff is not None:
            return staff.email
    return ADMIN_TOKEN_ACTOR


@router.post("/{session_id}/review")
async def review_session(
    session_id: int,
    body: SessionReviewIn,
    request: Request,
    db: SessionDep,
    who: Annotated[str, Depends(reviewer)],
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
