"""/admin/reports: the monthly invoice report as CSV."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from backend.api.deps import SessionDep
from backend.services.invoices import Month, invoice_report

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/invoices.csv", response_class=Response)
async def invoices_csv(
    db: SessionDep, month: str = Query(description="YYYY-MM, Europe/Stockholm, 2000-01 to 2999-12")
) -> Response:
    """422 with a readable `detail` for anything but a month of the years 2000-2999."""
    try:
        parsed = Month.parse(month)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    body = await invoice_report(db, parsed)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="invoices-{parsed}.csv"'},
    )
