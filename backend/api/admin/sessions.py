"""/admin/sessions: charging sessions for operators, with their card payment and refunds."""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, HTTPException, Query, Request
from sqlmodel import col, select

from backend.api.deps import SessionDep
from backend.api.schemas import PaymentPublic, RefundRequest, SessionPublic
from backend.models import ChargingSession, Payment, SessionStatus
from backend.services import sessions
from backend.services.payments import PaymentService

router = APIRouter(prefix="/sessions", tags=["sessions"])


def session_public(row: ChargingSession, payment: Payment | None = None) -> SessionPublic:
    public = SessionPublic(**row.model_dump())
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
) -> list[SessionPublic]:
    rows = await sessions.list_sessions(db, charger_id, driver_id, status, limit)
    return [session_public(r) for r in rows]


@router.get("/{session_id}")
async def get_session(session_id: int, db: SessionDep) -> SessionPublic:
    row = await sessions.get_session(db, session_id)
    return session_public(row, await _payment(db, session_id))


@router.post("/{session_id}/refund")
async def refund_session(
    session_id: int, body: RefundRequest, request: Request, db: SessionDep
) -> SessionPublic:
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
