"""Console pages anyone may reach: the login form, logging out, the language of the pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from backend.api.deps import LoginThrottleDep, SessionDep, SettingsDep
from backend.console import session
from backend.console.pages import (
    CsrfField,
    VisitorDep,
    check_csrf,
    console_router,
    redirect,
    render,
    safe_next,
)
from backend.console.text import LANG_COOKIE, LANGUAGES
from backend.services.login_throttle import client_address
from backend.services.passwords import PasswordCheckBusyError
from backend.services.staff import LoginThrottledError, log_in, login_field_problem

router = console_router()


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
        next=safe_next(next_url),
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
    response = redirect(safe_next(next))
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
    response = redirect(safe_next(next))
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
