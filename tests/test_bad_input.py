"""Input no column can hold is a 4xx with a readable `detail`, never a 500, on SQLite and
PostgreSQL: non-finite numbers in admin JSON, ids beyond the INTEGER range in any admin or
support path, months without a report, and NUL characters (PostgreSQL refuses them in text);
in the console too: dates outside 2000..2999 and NUL in any path, query or form field.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from backend.models import Conversation, Message
from backend.settings import Settings
from bot.adapters.sms import MAX_INBOUND_CHARS, TRUNCATED_MARK, capped
from tests.helpers.console import console_login, queued_driver
from tests.helpers.sms import ANNA, inbound, sms_settings, twilio_app
from tests.helpers.support import PASSWORD, add_staff
from tests.helpers.twilio_double import RecordingTwilioClient

STATION = {
    "name": "Ladda Centrum",
    "address": "Storgatan 1",
    "city": "Uppsala",
    "latitude": 59.86,
    "longitude": 17.64,
}
OUT_OF_RANGE_IDS = [2**63, 2**64 + 5, 2**31, 0, -1, 10**30]


def readable(response: httpx.Response) -> str:
    """The `detail` as one text: a string, or the messages of a validation error list."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        text = detail
    else:
        text = " ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    assert text.strip(), response.text
    return text


def raw_json(document: str) -> dict[str, Any]:
    return {"content": document, "headers": {"Content-Type": "application/json"}}


# --- non-finite numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        ("POST", "/admin/stations", {**STATION, "latitude": "@"}),
        ("PATCH", "/admin/stations/1", {"longitude": "@"}),
        (
            "POST",
            "/admin/chargers",
            {
                "id": "CP-1",
                "station_id": 1,
                "connectors": [{"connector_id": 1, "connector_type": "type2", "max_power_kw": "@"}],
            },
        ),
    ],
)
async def test_non_finite_numbers_in_admin_json_are_refused(
    admin: httpx.AsyncClient, method: str, path: str, template: dict[str, Any], number: str
) -> None:
    assert (await admin.post("/admin/stations", json=STATION)).status_code == 201
    document = json.dumps(template).replace('"@"', number)
    response = await admin.request(method, path, **raw_json(document))
    assert response.status_code == 422, response.text
    assert "finite" in readable(response)


# --- ids beyond the INTEGER range ----------------------------------------------------------------


def int_path_operations(app: FastAPI, prefix: str) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its integer path parameters) of every route under `prefix`."""
    found = []
    for path, item in app.openapi()["paths"].items():
        if not path.startswith(prefix):
            continue
        for method, operation in item.items():
            names = [
                p["name"]
                for p in operation.get("parameters", [])
                if p["in"] == "path" and p["schema"].get("type") == "integer"
            ]
            if names:
                found.append((method.upper(), path, names))
    return found


def concrete(template: str, bad: str, value: int) -> str:
    def fill(match: re.Match[str]) -> str:
        return str(value) if match.group(1) == bad else "1"

    return re.sub(r"\{([^}]+)\}", fill, template)


async def assert_refused_ids(
    client: httpx.AsyncClient, operations: list[tuple[str, str, list[str]]]
) -> None:
    assert operations
    for method, template, names in operations:
        for name in names:
            for value in OUT_OF_RANGE_IDS:
                path = concrete(template, name, value)
                response = await client.request(method, path, json={})
                assert response.status_code in {404, 422}, (method, path, response.text)
                text = readable(response)
                if response.status_code == 422:
                    assert name in text, (method, path, text)


async def test_every_admin_route_refuses_ids_beyond_the_integer_range(
    app: FastAPI, admin: httpx.AsyncClient
) -> None:
    operations = int_path_operations(app, "/admin")
    assert len(operations) >= 15
    await assert_refused_ids(admin, operations)


async def test_every_support_route_refuses_ids_beyond_the_integer_range(
    app: FastAPI, admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    login = await anonymous.post(
        "/auth/token", data={"username": "lena@example.se", "password": PASSWORD}
    )
    anonymous.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    await assert_refused_ids(anonymous, int_path_operations(app, "/support"))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/admin/chargers?station_id={2**63}", None),
        ("GET", f"/admin/sessions?driver_id={2**64}", None),
        ("GET", f"/admin/stations/1/access/check?driver_id={2**63}", None),
        ("POST", "/admin/chargers/CP-1/remote-stop", {"transaction_id": 2**63}),
        ("PUT", "/admin/stations/1/access", {"access": "public", "group_ids": [2**63]}),
    ],
)
async def test_ids_beyond_the_integer_range_in_queries_and_bodies_are_refused(
    admin: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert (await admin.post("/admin/stations", json=STATION)).status_code == 201
    response = await admin.request(method, path, json=body)
    assert response.status_code == 422, response.text
    readable(response)


# --- months ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "month", ["9999-12", "0000-01", "1999-12", "3000-01", "2026-13", "2026-00", "²⁰²⁶-01", "2026-1"]
)
async def test_a_month_without_a_report_is_refused(admin: httpx.AsyncClient, month: str) -> None:
    response = await admin.get("/admin/reports/invoices.csv", params={"month": month})
    assert response.status_code == 422, response.text
    assert "month must be" in readable(response)


async def test_the_last_month_of_the_range_has_a_report(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/admin/reports/invoices.csv", params={"month": "2999-12"})
    assert response.status_code == 200


# --- NUL characters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password"),
    [("lena\x00@example.se", PASSWORD), ("lena@example.se", "correct\x00horse")],
)
async def test_nul_in_the_api_login_is_refused(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, username: str, password: str
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    response = await anonymous.post(
        "/auth/token", data={"username": username, "password": password}
    )
    assert response.status_code == 422, response.text
    assert "NUL" in readable(response)


async def test_nul_in_the_console_login_is_refused(admin: httpx.AsyncClient, app: FastAPI) -> None:
    await add_staff(admin, "lena@example.se", "support")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as browser:
        form = await browser.get("/console/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert csrf
        response = await browser.post(
            "/console/login",
            data={"email": "lena\x00@example.se", "password": PASSWORD, "csrf_token": csrf[1]},
        )
        assert response.status_code == 422
        assert 'role="alert"' in response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/admin/stations", {**STATION, "name": "Ladda\x00Centrum"}),
        ("PATCH", "/admin/stations/1", {"city": "Upp\x00sala"}),
        ("POST", "/admin/drivers", {"name": "Anna\x00"}),
        (
            "POST",
            "/admin/staff",
            {"email": "x\x00@example.se", "name": "X", "role": "support", "password": PASSWORD},
        ),
        ("POST", "/admin/groups", {"name": "\x00"}),
        ("GET", "/admin/chargers/CP%00-1", None),
        ("PATCH", "/admin/drivers/1/id-tags/AB%00C", {"status": "Blocked"}),
        ("GET", "/admin/sessions?charger_id=CP%00", None),
    ],
)
async def test_nul_in_admin_input_is_refused(
    admin: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    assert (await admin.post("/admin/stations", json=STATION)).status_code == 201
    assert (await admin.post("/admin/drivers", json={"name": "Anna"})).status_code == 201
    response = await admin.request(method, path, json=body)
    assert response.status_code == 422, response.text
    assert "NUL" in readable(response)


async def test_nul_in_a_support_reply_is_refused(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    login = await anonymous.post(
        "/auth/token", data={"username": "lena@example.se", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    response = await anonymous.post(
        "/support/conversations/1/messages", json={"text": "hej\x00"}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert "NUL" in readable(response)


# --- the console -------------------------------------------------------------------------------


@pytest.fixture
async def console(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A staff member's browser (cookies; https, as the production settings want)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


CONSOLE_RANGE_PAGES = ["sessions", "sessions.csv", "usage", "audit", "audit.csv"]


@pytest.mark.parametrize("page", CONSOLE_RANGE_PAGES)
@pytest.mark.parametrize(
    "dates",
    [
        {"end": "0001-01-05"},  # the default start, 29 days before, used to overflow: a 500
        {"start": "0001-01-01", "end": "2026-01-01"},
        {"start": "1999-12-31"},
        {"end": "3000-01-01"},
        {"start": "9999-12-30", "end": "9999-12-31"},
    ],
)
async def test_console_dates_outside_the_supported_years_are_refused(
    admin: httpx.AsyncClient, console: httpx.AsyncClient, page: str, dates: dict[str, str]
) -> None:
    await add_staff(admin, "op@example.se", "operator")
    await console_login(console, "op@example.se")
    response = await console.get(f"/console/{page}", params=dates)
    assert response.status_code == 422, response.text
    assert "2000-01-01" in response.text  # says which dates there are
    if page in {"usage", "audit"}:  # the page itself, the error above its form
        assert "<form" in response.text and 'class="error"' in response.text


@pytest.mark.parametrize("page", CONSOLE_RANGE_PAGES)
async def test_console_ranges_at_the_edges_of_the_supported_years_are_answered(
    admin: httpx.AsyncClient, console: httpx.AsyncClient, page: str
) -> None:
    await add_staff(admin, "op@example.se", "operator")
    await console_login(console, "op@example.se")
    for dates in [{"end": "2000-01-03"}, {"start": "2999-12-30", "end": "2999-12-31"}]:
        response = await console.get(f"/console/{page}", params=dates)
        assert response.status_code == 200, (dates, response.text)


@pytest.mark.parametrize(
    ("action", "fields"),
    [
        ("actions/reply", {"text": "hej\x00där"}),
        ("actions/faq", {"entry_id": "x\x00"}),
        ("actions/reply", {"text": "hej", "no\x00se": "1"}),  # a field's name
        ("release", {"note\x00": ""}),
    ],
)
async def test_nul_in_a_console_form_is_refused(
    app: FastAPI,
    admin: httpx.AsyncClient,
    console: httpx.AsyncClient,
    action: str,
    fields: dict[str, str],
) -> None:
    """PostgreSQL refuses NUL in text: the agent's reply used to end in a 500 there."""
    conversation_id = await queued_driver(app)
    await add_staff(admin, "lena@example.se", "support")
    csrf = await console_login(console, "lena@example.se")
    claimed = await console.post(
        f"/console/conversations/{conversation_id}/claim", data={"csrf_token": csrf}
    )
    assert claimed.status_code == 303
    response = await console.post(
        f"/console/conversations/{conversation_id}/{action}",
        data={"csrf_token": csrf, **fields},
    )
    assert response.status_code == 422, response.text
    assert "NUL" in readable(response)
    async with app.state.sessions() as db:
        texts = list(await db.scalars(select(Message.text)))
    assert not any("\x00" in text for text in texts)
    # The same form without the NUL still works.
    reply = await console.post(
        f"/console/conversations/{conversation_id}/actions/reply",
        data={"csrf_token": csrf, "text": "hej där"},
    )
    assert reply.status_code == 303


async def test_console_ids_beyond_the_integer_range_are_refused(
    admin: httpx.AsyncClient, console: httpx.AsyncClient
) -> None:
    await add_staff(admin, "lena@example.se", "support")
    await console_login(console, "lena@example.se")
    for value in OUT_OF_RANGE_IDS:
        response = await console.get(f"/console/conversations/{value}")
        assert response.status_code in {404, 422}, (value, response.text)


# --- SMS bodies --------------------------------------------------------------------------------


async def test_a_megabyte_sms_is_cut_to_the_longest_real_sms_before_it_is_stored(
    settings: Settings,
) -> None:
    async with twilio_app(sms_settings(settings), RecordingTwilioClient()) as twilio:
        body = "hej " * 250_000  # 1 MB: no phone sends this, a forged-but-signed post could
        response = await twilio.post("/sms/twilio", inbound(ANNA, body))
        assert response.status_code == 200
        async with twilio.live.app.state.sessions() as db:
            texts = list(
                await db.scalars(
                    select(Message.text)
                    .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
                    .where(col(Conversation.address) == ANNA, col(Message.direction) == "in")
                )
            )
    assert texts == [capped(body).strip()]
    assert texts[0].endswith(TRUNCATED_MARK)
    assert all(len(text) <= MAX_INBOUND_CHARS + len(TRUNCATED_MARK) for text in texts)


def test_a_long_but_real_sms_is_kept_whole() -> None:
    body = "x" * MAX_INBOUND_CHARS
    assert capped(body) == body
    assert capped(body + "y") == body + TRUNCATED_MARK
