"""/console: the support and operator web console (server-rendered, live over SSE)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.api.deps import (
    IdPath,
    LoginThrottleDep,
    SessionDep,
    SettingsDep,
    refuse_unstorable_input,
)
from backend.api.support_desk import ActionResult, SupportDesk
from backend.console import charts, live, session
from backend.console.text import EN, LANG_COOKIE, LANGUAGES, language_of, translate
from backend.models import StaffRole, StaffUser
from backend.services import audit, support, usage
from backend.services.errors import (
    CommandFailedError,
    ConflictError,
    InvalidFieldError,
    NotFoundError,
)
from backend.services.login_throttle import client_address
from backend.services.passwords import PasswordCheckBusyError
from backend.services.staff import LoginThrottledError, log_in, login_field_problem
from backend.services.support import StaffForbiddenError
from backend.settings import Settings
from bot.formatting import kronor, kwh

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "chargebot_console_flash"
DEFAULT_RANGE_DAYS = 30
MAX_REPLY = 1600  # characters of an agent's reply, as the support API allows
NOTICES = frozenset(key for key in EN if key.startswith("notice_"))


async def refuse_unstorable_console_input(request: Request) -> None:
    """`refuse_unstorable_input` (422 for NUL in the path, query or any form field, ids out of
    range) on every console route but the login form, which refuses NUL on its own readable
    page (`login_field_problem`) and stores nothing. Installed on the console's routers."""
    if getattr(request.scope.get("route"), "path", None) == "/console/login":
        return
    await refuse_unstorable_input(request)


ConsoleInputGuard = Depends(refuse_unstorable_console_input)
router = APIRouter(prefix="/console", include_in_schema=False)


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A UTC timestamp as Stockholm wall-clock time."""
    return value.astimezone(STOCKHOLM).strftime(fmt) if value is not None else ""


templates = Jinja2Templates(directory=TEMPLATES)
templates.env.filters["local"] = local_time


class LoginRequiredError(Exception):
    """No valid console session: pages redirect to the login, fragments answer 401."""


@dataclass(frozen=True)
class Visitor:
    """The logged-in staff member, their session's CSRF token and their language."""

    staff: StaffUser
    csrf: str
    lang: str

    @property
    def is_operator(self) -> bool:
        return self.staff.role == StaffRole.OPERATOR

    def t(self, key: str, **values: object) -> str:
        return translate(self.lang, key, **values)


async def current_visitor(request: Request, settings: SettingsDep) -> Visitor:
    """The staff member behind the session cookie (a short DB read, no connection kept)."""
    found = session.read_session(request, settings)
    if found is None:
        raise LoginRequiredError
    async with request.app.state.sessions() as db:
        staff = await db.get(StaffUser, found.staff_id)
    if staff is None or not staff.active:
        raise LoginRequiredError
    return Visitor(staff, found.csrf, language_of(request))


async def current_operator(visitor: Annotated[Visitor, Depends(current_visitor)]) -> Visitor:
    if not visitor.is_operator:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=visitor.t("forbidden"))
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]
OperatorDep = Annotated[Visitor, Depends(current_operator)]
CsrfField = Annotated[str, Form()]


def check_csrf(visitor: Visitor, token: str) -> None:
    if not session.tokens_match(visitor.csrf, token):
        raise HTTPException(status_code=403, detail="CSRF token missing or wrong; reload the page")


def render(
    request: Request,
    name: str,
    visitor: Visitor | None,
    *,
    status_code: int = 200,
    lang: str | None = None,
    **context: Any,
) -> HTMLResponse:
    language = visitor.lang if visitor else (lang or language_of(request))
    # A fragment (a live refresh, maybe in another tab) never takes the page's notice.
    flash = None if name.startswith("_") else _read_flash(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "v": visitor,
            "lang": language,
            "t": lambda key, **values: translate(language, key, **values),
            "flash": flash,
            "kronor": lambda minor: kronor(minor or 0, language),
            "kwh": lambda wh: kwh(wh or 0, language),
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/console")
    return response


def _read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        flash = json.loads(raw)
    except ValueError:
        return None
    known = isinstance(flash, dict) and str(flash.get("notice", "")) in NOTICES
    return {"notice": flash["notice"], "detail": str(flash.get("detail", ""))} if known else None


def redirect(
    url: str,
    notice: str | None = None,
    detail: str | None = None,
    *,
    settings: Settings | None = None,
) -> RedirectResponse:
    """Post/redirect/get; the notice travels in a short-lived cookie, not in the URL."""
    response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
    if notice is not None:
        value = json.dumps({"notice": notice, "detail": (detail or "")[:300]})
        response.set_cookie(
            FLASH_COOKIE,
            value,
            max_age=60,
            path="/console",
            secure=settings is None or session.secure_cookies(settings),
            httponly=True,
            samesite="strict",
        )
    return response


def _safe_next(target: str | None) -> str:
    """Only our own console pages, never another site (`//evil`, `https://...`)."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/queue"


# -- login ------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def home(visitor: VisitorDep) -> RedirectResponse:
    return redirect("/console/queue")


def _login_page(
    request: Request,
    settings: SettingsDep,
    next_url: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    retry_after: int = 0,
) -> HTMLResponse:
    token = session.login_csrf_of(request, settings)
    page = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        next=_safe_next(next_url),
        csrf=token,
        error=error,
        retry_after=retry_after,
    )
    session.keep_login_csrf(page, settings, token)
    if retry_after:
        page.headers["Retry-After"] = str(retry_after)
    return page


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, settings: SettingsDep, next: str = "") -> HTMLResponse:
    return _login_page(request, settings, next)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    throttle: LoginThrottleDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: CsrfField = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    expected = session.login_csrf_cookie(request, settings)
    if not session.tokens_match(expected, csrf_token):
        return _login_page(request, settings, next, status_code=403, error="login_expired")
    if login_field_problem(email, password):
        return _login_page(request, settings, next, status_code=422, error="login_failed")
    address = client_address(request.client.host if request.client else None)
    try:
        staff = await log_in(db, throttle, email, password, address)
    except LoginThrottledError as exc:
        return _login_page(
            request,
            settings,
            next,
            status_code=429,
            error="login_throttled",
            retry_after=exc.retry_after,
        )
    except PasswordCheckBusyError:
        return _login_page(
            request, settings, next, status_code=503, error="login_busy", retry_after=1
        )
    if staff is None:
        return _login_page(request, settings, next, status_code=401, error="login_failed")
    response = redirect(_safe_next(next))
    session.start_session(response, settings, staff)
    return response


@router.post("/logout")
async def logout(
    visitor: VisitorDep, settings: SettingsDep, csrf_token: CsrfField = ""
) -> Response:
    check_csrf(visitor, csrf_token)
    response = redirect("/console/login")
    session.end_session(response, settings)
    return response


@router.get("/language/{lang}")
async def set_language(lang: str, settings: SettingsDep, next: str = "") -> Response:
    if lang not in LANGUAGES:
        raise HTTPException(status_code=404, detail="no such language")
    response = redirect(_safe_next(next))
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 86400,
        path="/console",
        secure=session.secure_cookies(settings),
        httponly=True,
        samesite="lax",
    )
    return response


# -- the support queue and conversations ------------------------------------------------------


async def _staff_names(db: SessionDep) -> dict[int, str]:
    rows = await db.execute(select(col(StaffUser.id), col(StaffUser.name)))
    return {int(staff_id): name for staff_id, name in rows.all() if staff_id is not None}


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, db: SessionDep, visitor: VisitorDep) -> HTMLResponse:
    items = await support.queue(db, visitor.staff)
    return render(
        request, "queue.html", visitor, page="queue", items=items, names=await _staff_names(db)
    )


@router.get("/fragments/queue", response_class=HTMLResponse)
async def queue_fragment(request: Request, db: SessionDep, visitor: VisitorDep) -> HTMLResponse:
    items = await support.queue(db, visitor.staff)
    return render(request, "_queue.html", visitor, items=items, names=await _staff_names(db))


async def _conversation_context(
    db: SessionDep, conversation_id: int, visitor: Visitor, *, refresh: bool = False
) -> dict[str, Any]:
    """The transcript if the visitor may read it, the read audited (a live refresh of a page
    read a moment ago adds no row)."""
    dedupe = support.READ_DEDUPE if refresh else None
    try:
        conversation = await support.read_transcript(
            db, conversation_id, visitor.staff, dedupe=dedupe
        )
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return {"c": conversation, "names": await _staff_names(db)}


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    conversation_id: IdPath, request: Request, db: SessionDep, visitor: VisitorDep
) -> HTMLResponse:
    try:
        context = await _conversation_context(db, conversation_id, visitor)
    except StaffForbiddenError as exc:
        # Not theirs to read: say why, and offer the recorded way in.
        return render(
            request,
            "conversation_forbidden.html",
            visitor,
            status_code=status.HTTP_403_FORBIDDEN,
            page="queue",
            conversation_id=conversation_id,
            detail=str(exc),
            min_reason=support.MIN_OPEN_REASON,
        )
    faq_entries = SupportDesk.of(request.app).faq.index.entries
    return render(
        request, "conversation.html", visitor, page="queue", faq_entries=faq_entries, **context
    )


@router.get("/fragments/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_fragment(
    conversation_id: IdPath, request: Request, db: SessionDep, visitor: VisitorDep
) -> Response:
    try:
        context = await _conversation_context(db, conversation_id, visitor, refresh=True)
    except StaffForbiddenError as exc:  # e.g. a colleague claimed it: the page reloads
        return PlainTextResponse(str(exc), status_code=status.HTTP_403_FORBIDDEN)
    return render(request, "_conversation.html", visitor, **context)


@router.post("/conversations/{conversation_id}/open")
async def open_conversation(
    conversation_id: IdPath,
    db: SessionDep,
    visitor: VisitorDep,
    settings: SettingsDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    """Open a conversation outside the queue read-only, the reason in the audit log."""
    check_csrf(visitor, csrf_token)
    back = _back_to(conversation_id)
    try:
        await support.open_transcript(db, conversation_id, visitor.staff, reason[:300])
    except InvalidFieldError as exc:
        return redirect(back, "notice_reason_short", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect(back, "notice_opened", settings=settings)


def _back_to(conversation_id: int) -> str:
    return f"/console/conversations/{conversation_id}"


async def _act(
    conversation_id: int,
    action: Callable[[], Awaitable[ActionResult]],
    notice_for: Callable[[ActionResult], str],
    settings: Settings,
) -> RedirectResponse:
    """Run an action; its outcome or refusal comes back as the page's notice."""
    back = _back_to(conversation_id)
    try:
        result = await action()
    except StaffForbiddenError as exc:
        return redirect(back, "notice_forbidden", str(exc), settings=settings)
    except ConflictError as exc:
        return redirect(back, "notice_conflict", str(exc), settings=settings)
    except CommandFailedError as exc:
        return redirect(back, "notice_command_failed", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect(back, notice_for(result), result.detail, settings=settings)


def _sent(result: ActionResult) -> str:
    return "notice_sent" if result.delivered else "notice_not_delivered"


def _commanded(success: str) -> Callable[[ActionResult], str]:
    def notice(result: ActionResult) -> str:
        return success if result.outcome in {"stopping", "accepted"} else "notice_command_failed"

    return notice


HoldStep = Callable[[AsyncSession, int, StaffUser], Awaitable[None]]
# Claim and close (hand back is `release`): the service call, where the agent goes next,
# what they are told.
HOLD_STEPS: dict[str, tuple[HoldStep, str | None, str]] = {
    "claim": (support.claim, None, "notice_claimed"),
    "close": (support.close, "/console/queue", "notice_closed"),
}


@router.post("/conversations/{conversation_id}/release")
async def release(
    conversation_id: IdPath,
    request: Request,
    visitor: VisitorDep,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
    seen_unanswered: Annotated[int, Form(ge=0, le=10_000)] = 0,
) -> Response:
    """Back to the bot, which tells the driver; unanswered messages must have been shown."""
    check_csrf(visitor, csrf_token)
    desk = SupportDesk.of(request.app)
    try:
        await desk.release(conversation_id, visitor.staff, seen_unanswered)
    except StaffForbiddenError as exc:
        return redirect(_back_to(conversation_id), "notice_forbidden", str(exc), settings=settings)
    except ConflictError as exc:
        return redirect(_back_to(conversation_id), "notice_conflict", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect("/console/queue", "notice_released", settings=settings)


@router.post("/conversations/{conversation_id}/{step}")
async def hold_step(
    conversation_id: IdPath,
    step: Literal["claim", "close"],
    db: SessionDep,
    visitor: VisitorDep,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(visitor, csrf_token)
    change, destination, notice = HOLD_STEPS[step]
    try:
        await change(db, conversation_id, visitor.staff)
    except StaffForbiddenError as exc:
        return redirect(_back_to(conversation_id), "notice_forbidden", str(exc), settings=settings)
    except ConflictError as exc:
        return redirect(_back_to(conversation_id), "notice_conflict", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect(destination or _back_to(conversation_id), notice, settings=settings)


DeskAction = Callable[[SupportDesk, int, StaffUser, str], Awaitable[ActionResult]]
# What an agent holding the conversation does from its page: the desk call (given the
# reply's text or the FAQ entry) and the notice its result gives.
ACTIONS: dict[str, tuple[DeskAction, Callable[[ActionResult], str]]] = {
    "reply": (lambda desk, cid, staff, text: desk.reply(cid, staff, text), _sent),
    "faq": (lambda desk, cid, staff, entry: desk.send_faq(cid, staff, entry), _sent),
    "stop": (
        lambda desk, cid, staff, _: desk.stop_charging(cid, staff),
        _commanded("notice_stopping"),
    ),
    "unlock": (
        lambda desk, cid, staff, _: desk.unlock(cid, staff),
        _commanded("notice_unlocked"),
    ),
    "card-link": (lambda desk, cid, staff, _: desk.send_card_link(cid, staff), _sent),
}


@router.post("/conversations/{conversation_id}/actions/{action}")
async def act(
    conversation_id: IdPath,
    action: Literal["reply", "faq", "stop", "unlock", "card-link"],
    request: Request,
    visitor: VisitorDep,
    settings: SettingsDep,
    # A browser sends a textarea's newlines as CRLF: room for them, checked after folding.
    text: Annotated[str, Form(max_length=2 * MAX_REPLY)] = "",
    entry_id: Annotated[str, Form(max_length=64)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(visitor, csrf_token)
    text = text.replace("\r\n", "\n").strip()
    if action == "reply" and not text:
        return redirect(_back_to(conversation_id))
    if len(text) > MAX_REPLY:
        return redirect(_back_to(conversation_id), "notice_too_long", settings=settings)
    call, notice_for = ACTIONS[action]
    argument = text if action == "reply" else entry_id
    desk = SupportDesk.of(request.app)
    return await _act(
        conversation_id,
        lambda: call(desk, conversation_id, visitor.staff, argument),
        notice_for,
        settings,
    )


# -- live updates -----------------------------------------------------------------------------


@router.get("/events")
async def events(
    request: Request, visitor: VisitorDep, settings: SettingsDep, topic: str = Query(max_length=40)
) -> StreamingResponse:
    """`change` events for `queue`, `conversation:<id>` or (operators) `network`."""
    fingerprint = live.fingerprint_for(topic)
    if fingerprint is None:
        raise HTTPException(status_code=404, detail="unknown topic")
    if topic == "network" and not visitor.is_operator:
        raise HTTPException(status_code=403, detail=visitor.t("forbidden"))
    watched = live.CONVERSATION_TOPIC.fullmatch(topic)
    if watched is not None:  # even when a conversation changes is not for everyone
        async with request.app.state.sessions() as db:
            try:
                await support.readable(db, int(watched.group(1)), visitor.staff)
            except StaffForbiddenError as exc:
                raise HTTPException(status_code=403, detail=str(exc)) from exc
            except NotFoundError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from exc
    stream = live.change_stream(
        request.app.state.sessions, fingerprint, settings.console_poll_seconds
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- operator pages ---------------------------------------------------------------------------


@router.get("/network", response_class=HTMLResponse)
async def network_page(request: Request, db: SessionDep, visitor: OperatorDep) -> HTMLResponse:
    stations = await usage.network_status(db)
    return render(request, "network.html", visitor, page="network", stations=stations)


@router.get("/fragments/network", response_class=HTMLResponse)
async def network_fragment(request: Request, db: SessionDep, visitor: OperatorDep) -> HTMLResponse:
    stations = await usage.network_status(db)
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
    try:
        first, last = _default_range(start, end)
        report = await usage.usage_report(db, first, last)
    except ValueError as exc:
        return render(
            request,
            "usage.html",
            visitor,
            page="usage",
            status_code=422,
            report=None,
            error=str(exc),
            start=start or "",
            end=end or "",
        )
    return render(
        request,
        "usage.html",
        visitor,
        page="usage",
        report=report,
        charts=usage_charts(report, visitor),
        start=first,
        end=last,
    )


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
    try:
        first, last = _default_range(start, end)
        entries = await audit.entries(db, first, last, limit=AUDIT_PAGE_ROWS)
    except ValueError as exc:
        return render(
            request,
            "audit.html",
            visitor,
            status_code=422,
            page="audit",
            entries=[],
            error=str(exc),
            start=start or "",
            end=end or "",
            limit=AUDIT_PAGE_ROWS,
        )
    return render(
        request,
        "audit.html",
        visitor,
        page="audit",
        entries=entries,
        error=None,
        start=first,
        end=last,
        limit=AUDIT_PAGE_ROWS,
    )


@router.get("/audit.csv")
async def audit_csv(
    db: SessionDep, visitor: OperatorDep, start: date | None = None, end: date | None = None
) -> Response:
    """The audit log of the range as CSV, as `GET /admin/audit.csv` gives it."""
    first, last = _range_or_422(start, end)
    return await _csv_download(audit.csv_export(db, first, last), "audit", first, last)
