"""What every console page shares: the visitor, CSRF, templates, rendering and redirects.

The pages themselves are by audience: `login` (log in and out, the language), `support_pages`
(the queue, conversations, live updates), `operator_pages` (network, sessions, usage, the
audit log) and `review` (meter review). Each has its own router under /console.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from backend.api.deps import SettingsDep, refuse_unstorable_input
from backend.console import session
from backend.console.text import EN, language_of, translate
from backend.models import StaffRole, StaffUser
from backend.settings import Settings
from backend.timezones import STOCKHOLM
from bot.formatting import kronor, kwh

TEMPLATES = Path(__file__).parent / "templates"
FLASH_COOKIE = "chargebot_console_flash"
NOTICES = frozenset(key for key in EN if key.startswith("notice_"))


def console_router() -> APIRouter:
    """A router for console pages: under /console, not in the OpenAPI schema."""
    return APIRouter(prefix="/console", include_in_schema=False)


async def refuse_unstorable_console_input(request: Request) -> None:
    """`refuse_unstorable_input` (422 for NUL in the path, query or any form field, ids out of
    range) on every console route but the login form, which refuses NUL on its own readable
    page (`login_field_problem`) and stores nothing. Installed on the console's routers."""
    if getattr(request.scope.get("route"), "path", None) == "/console/login":
        return
    await refuse_unstorable_input(request)


ConsoleInputGuard = Depends(refuse_unstorable_console_input)


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


def safe_next(target: str | None) -> str:
    """Only our own console pages, never another site (`//evil`, `https://...`)."""
    if target and target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/queue"
