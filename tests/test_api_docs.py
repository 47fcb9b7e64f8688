"""/docs and /redoc work without internet: every asset they reference comes from the app."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

# Any absolute or protocol-relative URL ("https://cdn...", "//fonts..."), wherever it stands.
ABSOLUTE_URL = re.compile(r"(?:[a-z][a-z0-9+.-]*:)?//[^\s'\"<>)]+", re.IGNORECASE)


class Assets(HTMLParser):
    """The scripts, stylesheets and icons a page loads, and the OpenAPI URL it reads."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (kind, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "script" and attr.get("src"):
            self.found.append(("script", str(attr["src"])))
        elif tag == "link" and attr.get("href"):
            rel = (attr.get("rel") or "").lower()
            kind = "stylesheet" if "stylesheet" in rel else "icon" if "icon" in rel else rel
            self.found.append((kind, str(attr["href"])))
        elif tag == "redoc" and attr.get("spec-url"):
            self.found.append(("openapi", str(attr["spec-url"])))


def assets_of(page: str) -> list[tuple[str, str]]:
    parser = Assets()
    parser.feed(page)
    found = parser.found
    # Swagger UI is started by an inline script: SwaggerUIBundle({url: '/openapi.json', ...}).
    found += [("openapi", url) for url in re.findall(r"\burl:\s*'([^']*)'", page)]
    return found


EXPECTED_TYPE = {
    "script": "javascript",
    "stylesheet": "text/css",
    "icon": "image/",
    "openapi": "application/json",
}


@pytest.mark.parametrize(
    ("page_url", "kinds"),
    [
        ("/docs", {"script", "stylesheet", "icon", "openapi"}),
        ("/redoc", {"script", "icon", "openapi"}),
    ],
)
async def test_the_docs_pages_load_every_asset_from_the_app(
    anonymous: httpx.AsyncClient, page_url: str, kinds: set[str]
) -> None:
    page = await anonymous.get(page_url)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assets = assets_of(page.text)
    assert {kind for kind, _ in assets} == kinds, assets
    for kind, url in assets:
        assert url.startswith("/") and not url.startswith("//"), (kind, url)
        response = await anonymous.get(url)
        assert response.status_code == 200, (kind, url)
        assert response.content, (kind, url)
        assert EXPECTED_TYPE[kind] in response.headers["content-type"], (kind, url)


@pytest.mark.parametrize("page_url", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_no_docs_page_points_off_host(anonymous: httpx.AsyncClient, page_url: str) -> None:
    page = await anonymous.get(page_url)
    assert page.status_code == 200
    elsewhere = [
        url for url in ABSOLUTE_URL.findall(page.text) if urlsplit(url).hostname != "testserver"
    ]
    assert elsewhere == []
