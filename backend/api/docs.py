"""The API's documentation pages, Swagger UI at /docs and ReDoc at /redoc, served offline.

FastAPI's own pages load their scripts, stylesheet, favicon and fonts from CDNs, so without
internet they stay blank. These are the same pages with every asset served by the app itself,
from the files the `fastapi-offline` package ships.

The pages are module-level functions that read the app from the request: FastAPI caches
what it learns about each endpoint function process-wide, so a function closing over one
app would keep that app (and its database engine) alive after it stopped.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/static"  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


async def swagger_ui_html(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root_path = _root_path(request)
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
    if oauth2_redirect_url:
        oauth2_redirect_url = root_path + oauth2_redirect_url
    return get_swagger_ui_html(
        openapi_url=root_path + str(app.openapi_url),
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{root_path}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root_path}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root_path}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=oauth2_redirect_url,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


async def redoc_html(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root_path = _root_path(request)
    return get_redoc_html(
        openapi_url=root_path + str(app.openapi_url),
        title=f"{app.title} - ReDoc",
        redoc_js_url=f"{root_path}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root_path}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )


def install(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and /redoc; build the app with both URLs None."""
    if app.openapi_url is None:
        return  # no schema, no documentation pages (as FastAPI does)
    app.mount(
        ASSETS_URL,
        StaticFiles(packages=[("fastapi_offline", "static")]),
        name="docs_static",
    )
    app.add_api_route(DOCS_URL, swagger_ui_html, methods=["GET"], include_in_schema=False)
    if app.swagger_ui_oauth2_redirect_url:
        app.add_api_route(
            app.swagger_ui_oauth2_redirect_url,
            swagger_ui_redirect,
            methods=["GET"],
            include_in_schema=False,
        )
    app.add_api_route(REDOC_URL, redoc_html, methods=["GET"], include_in_schema=False)
