"""/admin/audit.csv: the staff audit log (transcript reads, claims, opens, stops, unlocks)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from backend.api.deps import SessionDep
from backend.services import audit
from backend.timezones import STOCKHOLM

router = APIRouter(tags=["audit"])
DEFAULT_DAYS = 30


@router.get("/audit.csv", response_class=Response)
async def audit_csv(
    db: SessionDep,
    start: Annotated[
        date | None, Query(alias="from", description="YYYY-MM-DD, Europe/Stockholm")
    ] = None,
    end: Annotated[
        date | None, Query(alias="to", description="YYYY-MM-DD, inclusive; default today")
    ] = None,
) -> Response:
    """Every audit row of the local-date range, oldest first (default: the last 30 days)."""
    last = end or datetime.now(STOCKHOLM).date()
    first = start or last - timedelta(days=DEFAULT_DAYS - 1)
    try:
        body = await audit.csv_export(db, first, last)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    filename = f"audit-{first.isoformat()}-{last.isoformat()}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
