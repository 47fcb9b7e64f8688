"""Console pages of operators: network status, sessions, usage figures, the staff audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from backend.api.deps import SessionDep
from backend.console import charts
from backend.console.pages import OperatorDep, Visitor, console_router, render
from backend.services import audit, usage
from backend.services.network_status import network_status
from backend.timezones import STOCKHOLM
from bot.formatting import kronor

DEFAULT_RANGE_DAYS = 30

router = console_router()


@router.get("/network", response_class=HTMLResponse)
async def network_page(request: Request, db: SessionDep, visitor: OperatorDep) -> HTMLResponse:
    stations = await network_status(db)
    return render(request, "network.html", visitor, page="network", stations=stations)


@router.get("/fragments/network", response_class=HTMLResponse)
async def network_fragment(request: Request, db: SessionDep, visitor: OperatorDep) -> HTMLResponse:
    stations = await network_status(db)
    return render(request, "_network.html", visitor, stations=stations)


def _default_range(start: date | None, end: date | None) -> tuple[date, date]:
    """The range asked for, by default the DEFAULT_RANGE_DAYS up to today (Stockholm).

    ValueError (a readable one) for a date outside 2000..2999, before any date arithmetic
    could overflow on it (0001-01-05 minus 29 days used to end in a 500).
    """
    for given in (start, end):
        if given is not None and not usage.FIRST_DAY <= given <= usage.LAST_DAY:
            raise ValueError(f"dates run from {usage.FIRST_DAY} to {usage.LAST_DAY}")
    end = end or datetime.now(STOCKHOLM).date()
    return start or max(usage.FIRST_DAY, end - timedelta(days=DEFAULT_RANGE_DAYS - 1)), end


def _range_or_422(start: date | None, end: date | None) -> tuple[date, date]:
    """`_default_range`, refused with 422 (pages and downloads without a place for the error)."""
    try:
        return _default_range(start, end)
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc


@router.get("/sessions", response_class=HTMLResponse)
async def sessions_page(
    request: Request,
    db: SessionDep,
    visitor: OperatorDep,
    start: date | None = None,
    end: date | None = None,
) -> HTMLResponse:
    first, last = _range_or_422(start, end)
    active = await usage.active_sessions(db)
    return render(
        request, "sessions.html", visitor, page="sessions", active=active, start=first, end=last
    )


@router.get("/fragments/sessions", response_class=HTMLResponse)
async def sessions_fragment(request: Request, db: SessionDep, visitor: OperatorDep) -> HTMLResponse:
    active = await usage.active_sessions(db)
    return render(request, "_sessions.html", visitor, active=active)


async def _csv_download(export: Awaitable[str], name: str, first: date, last: date) -> Response:
    """A CSV export of a date range as a download; 422 for a bad range."""
    try:
        body = await export
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    filename = quote(f"{name}-{first.isoformat()}-{last.isoformat()}.csv")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/sessions.csv")
async def sessions_csv(
    db: SessionDep, visitor: OperatorDep, start: date | None = None, end: date | None = None
) -> Response:
    """Every session that started in the range (Stockholm dates), for a spreadsheet."""
    first, last = _range_or_422(start, end)
    return await _csv_download(usage.sessions_csv(db, first, last), "sessions", first, last)


@router.get("/usage", response_class=HTMLResponse)
async def usage_page(
    request: Request,
    db: SessionDep,
    visitor: OperatorDep,
    start: date | None = None,
    end: date | None = None,
) -> HTMLResponse:
    async def load(first: date, last: date) -> dict[str, Any]:
        report = await usage.usage_report(db, first, last)
        return {"report": report, "charts": usage_charts(report, visitor)}

    return await _range_page(request, visitor, "usage", start, end, load, report=None)


def usage_charts(report: usage.UsageReport, visitor: Visitor) -> dict[str, Markup]:
    """The usage report as SVG charts (server-rendered; no script, no external asset)."""
    lang = visitor.lang
    day_labels = [day.day.strftime("%d/%m") for day in report.days]
    stations = report.stations
    svg = {
        "sessions_day": charts.bar_chart(
            [d.sessions for d in report.days],
            day_labels,
            title=visitor.t("chart_sessions_day"),
            value_format=lambda v: f"{v:.0f}",
        ),
        "kwh_day": charts.bar_chart(
            [d.energy_wh / 1000 for d in report.days],
            day_labels,
            title=visitor.t("chart_kwh_day"),
            unit="kWh",
            value_format=lambda v: f"{v:.1f}",
        ),
        "revenue_day": charts.bar_chart(
            [d.revenue_minor / 100 for d in report.days],
            day_labels,
            title=visitor.t("chart_revenue_day"),
            unit="kr",
            value_format=lambda v: kronor(round(v * 100), lang),
        ),
        "utilisation": charts.bar_chart(
            [share * 100 for share in report.utilisation_by_hour],
            [f"{hour:02d}" for hour in range(24)],
            title=visitor.t("chart_utilisation"),
            unit="%",
            value_format=lambda v: f"{v:.1f}",
        ),
        "kwh_station": charts.horizontal_bar_chart(
            [s.energy_wh / 1000 for s in stations],
            [s.name for s in stations],
            title=visitor.t("chart_kwh_station"),
            unit="kWh",
            value_format=lambda v: f"{v:.1f}",
            empty_text=visitor.t("no_data"),
        ),
        "sessions_station": charts.horizontal_bar_chart(
            [s.sessions for s in stations],
            [s.name for s in stations],
            title=visitor.t("chart_sessions_station"),
            value_format=lambda v: f"{v:.0f}",
            empty_text=visitor.t("no_data"),
        ),
    }
    # The chart module escapes every text it puts into the SVG.
    return {name: Markup(value) for name, value in svg.items()}


# -- the staff audit log (operators) ----------------------------------------------------------

AUDIT_PAGE_ROWS = 500


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    db: SessionDep,
    visitor: OperatorDep,
    start: date | None = None,
    end: date | None = None,
) -> HTMLResponse:
    """Who read, claimed, opened, stopped or unlocked what: the newest rows of the range."""

    async def load(first: date, last: date) -> dict[str, Any]:
        return {"entries": await audit.entries(db, first, last, limit=AUDIT_PAGE_ROWS)}

    return await _range_page(
        request, visitor, "audit", start, end, load, entries=[], limit=AUDIT_PAGE_ROWS
    )


async def _range_page(
    request: Request,
    visitor: Visitor,
    page: str,
    start: date | None,
    end: date | None,
    load: Callable[[date, date], Awaitable[dict[str, Any]]],
    **always: Any,
) -> HTMLResponse:
    """A page over a date range (`{page}.html`): what `load` finds for it, or 422 naming why
    the range cannot be shown (with `always` alone standing in for the data)."""
    try:
        first, last = _default_range(start, end)
        found = await load(first, last)
    except ValueError as exc:
        context: dict[str, Any] = {"error": str(exc), "start": start or "", "end": end or ""}
        return render(
            request, f"{page}.html", visitor, page=page, status_code=422, **always, **context
        )
    context = {**always, **found, "error": None, "start": first, "end": last}
    return render(request, f"{page}.html", visitor, page=page, **context)


@router.get("/audit.csv")
async def audit_csv(
    db: SessionDep, visitor: OperatorDep, start: date | None = None, end: date | None = None
) -> Response:
    """The audit log of the range as CSV, as `GET /admin/audit.csv` gives it."""
    first, last = _range_or_422(start, end)
    return await _csv_download(audit.csv_export(db, first, last), "audit", first, last)
