"""The web console of support agents and operators, served by the app at /console."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.console import charger_page, login, operator_pages, review, support_pages
from backend.console.pages import ConsoleInputGuard, LoginRequiredError

STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


class ConsoleHeaders:
    """Strict security headers on every /console response (no inline script or style)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/console"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def install(app: FastAPI) -> None:
    """Mount the console's pages, static files and login redirect on the app."""

    @app.exception_handler(LoginRequiredError)
    async def _login_required(request: Request, _: LoginRequiredError) -> Response:
        path = request.url.path
        if path.startswith(("/console/fragments/", "/console/events")) or request.method != "GET":
            return PlainTextResponse("log in again", status_code=401)
        return RedirectResponse(f"/console/login?next={quote(path)}", status_code=303)

    app.mount("/console/static", StaticFiles(directory=STATIC), name="console_static")
    # Every console route refuses input no column can hold (NUL, ids out of range): 422.
    for pages in (login, support_pages, operator_pages, charger_page):
        app.include_router(pages.router, dependencies=[ConsoleInputGuard])
    # meter review: sessions whose figures were implausible
    app.include_router(review.router, dependencies=[ConsoleInputGuard])
    app.add_middleware(ConsoleHeaders)
