"""/console/review: operators decide on sessions whose meter figures were implausible."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlmodel import col, select

from backend.api.deps import IdPath, SessionDep, SettingsDep
from backend.console.pages import CsrfField, OperatorDep, check_csrf, redirect, render
from backend.models import Charger, Connector, Driver, Payment, Station
from backend.services import meter_review
from backend.services.errors import ConflictError, NotFoundError
from backend.services.plausibility import MAX_REGISTER_WH
from backend.services.pricing import FREE, TariffSnapshot, compute_cost

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = "/console/review"


@dataclass(frozen=True)
class ReviewRow:
    """One session under review as the page shows it: both energies and what each costs."""

    id: int
    station_name: str
    connector: str
    driver_name: str | None
    channel: str | None
    started_at: datetime | None
    stopped_at: datetime | None
    reason: str
    measured_wh: int
    plausible_wh: int
    plausible_cost_minor: int
    measured_cost_minor: int
    ceiling_wh: int  # the most set_energy accepts
    payment_method: str | None
    payment_status: str | None


async def review_rows(db: SessionDep) -> list[ReviewRow]:
    rows = []
    for session in await meter_review.awaiting_review(db):
        assert session.id is not None
        charger = await db.get(Charger, session.charger_id)
        station = (
            await db.get(Station, charger.station_id)
            if charger is not None and charger.station_id is not None
            else None
        )
        code = await db.scalar(
            select(col(Connector.code)).where(
                col(Connector.charger_id) == session.charger_id,
                col(Connector.connector_id) == session.connector_id,
            )
        )
        driver = await db.get(Driver, session.driver_id) if session.driver_id else None
        payment = await db.scalar(
            select(Payment)
            .where(col(Payment.session_id) == session.id)
            .order_by(col(Payment.id).desc())
        )
        measured = max(0, session.measured_energy_wh or 0)
        tariff = (
            TariffSnapshot.from_json(session.tariff_snapshot) if session.tariff_snapshot else FREE
        )
        measured_cost = compute_cost(
            tariff, measured, session.started_at, session.stopped_at, session.charging_finished_at
        )
        rows.append(
            ReviewRow(
                id=session.id,
                station_name=station.name if station else session.charger_id,
                connector=code or f"{session.charger_id}/{session.connector_id}",
                driver_name=driver.name if driver else None,
                channel=session.channel,
                started_at=session.started_at,
                stopped_at=session.stopped_at,
                reason=session.review_reason or "",
                measured_wh=measured,
                plausible_wh=session.energy_wh,
                plausible_cost_minor=session.cost_minor or 0,
                measured_cost_minor=measured_cost.total_minor,
                ceiling_wh=max(measured, session.energy_wh),
                payment_method=payment.method if payment else None,
                payment_status=payment.status if payment else None,
            )
        )
    return rows


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, db: SessionDep, visitor: OperatorDep) -> HTMLResponse:
    rows = await review_rows(db)
    return render(request, "review.html", visitor, page="review", rows=rows)


@router.post("/sessions/{session_id}/review")
async def review_decide(
    session_id: IdPath,
    request: Request,
    db: SessionDep,
    visitor: OperatorDep,
    settings: SettingsDep,
    decision: Annotated[Literal["keep_plausible", "accept_measured", "set_energy"], Form()],
    energy_wh: Annotated[int | None, Form(ge=0, le=MAX_REGISTER_WH)] = None,
    csrf_token: CsrfField = "",
) -> RedirectResponse:
    """The operator's decision (as POST /admin/sessions/{id}/review); back to the list."""
    check_csrf(visitor, csrf_token)
    try:
        outcome = await meter_review.decide(
            db,
            session_id,
            meter_review.Decision(decision),
            energy_wh=energy_wh if decision == "set_energy" else None,
            reviewer=visitor.staff.email,
        )
    except (ConflictError, meter_review.ReviewRejectedError) as exc:
        return redirect(PAGE, "notice_review_rejected", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    await request.app.state.events.publish(outcome.event)  # the driver hears the outcome
    return redirect(PAGE, "notice_reviewed", str(session_id), settings=settings)
