"""The FastAPI application: admin API, health check and (later) OCPP, chat and webhooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend import migrate
from backend.api import admin
from backend.db import create_engine, session_factory, sqlite_file
from backend.services.errors import ConflictError, InvalidFieldError, NotFoundError
from backend.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(ConflictError)
    async def _conflict(_: Request, exc: ConflictError) -> JSONResponse:
        return JSONResponse(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(InvalidFieldError)
    async def _invalid(_: Request, exc: InvalidFieldError) -> JSONResponse:
        error = {"loc": ["body", exc.field], "msg": str(exc), "type": "value_error"}
        return JSONResponse(status_code=422, content={"detail": [error]})


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.check_secrets()
        engine = create_engine(settings.database_url)
        if sqlite_file(settings.database_url) is not None:
            # The embedded default keeps itself current; PostgreSQL uses the Procfile release.
            await migrate.upgrade_engine(engine)
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="chargebot",
        version="0.1.0",
        summary="EV charging assistant: admin API, OCPP 1.6-J central system, chat webhooks.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    _install_error_handlers(app)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(admin.router)
    return app
