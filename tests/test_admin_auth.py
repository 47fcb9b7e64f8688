"""Every /admin route demands the admin bearer token."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers.server import ADMIN_TOKEN


def admin_operations(app: FastAPI) -> list[tuple[str, str]]:
    operations = []
    for path, item in app.openapi()["paths"].items():
        if path.startswith("/admin"):
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            operations += [(method.upper(), concrete) for method in item]
    return operations


async def test_the_admin_api_has_routes_to_protect(app: FastAPI) -> None:
    assert len(admin_operations(app)) >= 20


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}"])
async def test_every_admin_route_refuses_a_missing_or_wrong_token(
    app: FastAPI, anonymous: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for method, path in admin_operations(app):
        response = await anonymous.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (method, path, response.status_code)
        assert response.headers["www-authenticate"] == "Bearer"


async def test_a_token_that_only_starts_like_the_real_one_is_refused(
    anonymous: httpx.AsyncClient,
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}
    assert (await anonymous.get("/admin/stations", headers=headers)).status_code == 401


async def test_the_right_token_is_let_in(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/admin/stations")
    assert response.status_code == 200
    assert response.json() == []


async def test_health_and_docs_need_no_token(anonymous: httpx.AsyncClient) -> None:
    health = await anonymous.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert (await anonymous.get("/docs")).status_code == 200
    spec = (await anonymous.get("/openapi.json")).json()
    assert "/admin/chargers" in spec["paths"]


async def test_a_stranger_learns_nothing_from_bad_input_but_401(
    app: FastAPI, anonymous: httpx.AsyncClient
) -> None:
    """The token is checked before the input guard (NUL, NaN, ids beyond INTEGER) speaks."""
    for method, path in admin_operations(app):
        huge = re.sub(r"/1(?=/|$)", f"/{2**63}", path)
        response = await anonymous.request(
            method,
            huge,
            content='{"name": "x\\u0000", "latitude": NaN}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 401, (method, huge, response.text)
