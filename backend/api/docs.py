"""The API's documentation pages, Swagger UI at /docs and ReDoc at /redoc, served offline.

FastAPI's own pages load their scripts, stylesheet, favicon and fonts from CDNs, so without
internet they stay blank. These are the same pages with every asset served by the app itself,
from the files the `fastapi-offline` package ships.
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


def install(app: FastAPI) -> None:
    """Serve /docs, its OAuth2 redirect page and /redoc; build the app with both URLs None."""
    openapi_url = app.openapi_url
    if openapi_url is None:
        return  # no schema, no documentation pages (as FastAPI does)
    app.mount(
        ASSETS_URL,
        StaticFiles(packages=[("fastapi_offline", "static")]),
        name="docs_static",
    )

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui_html(request: Request) -> HTMLResponse:
        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url
        if oauth2_redirect_url:
            oauth2_redirect_url = root_path + oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root_path + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root_path}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root_path}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root_path}{ASSETS_URL}/favicon.png",
            oauth2_redirect_url=oauth2_redirect_url,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    if app.swagger_ui_oauth2_redirect_url:

        @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc_html(request: Request) -> HTMLResponse:
        root_path = str(request.scope.get("root_path", "")).rstrip("/")
        return get_redoc_html(
            openapi_url=root_path + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root_path}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root_path}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
