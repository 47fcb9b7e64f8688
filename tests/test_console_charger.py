"""The console's charger page: an operator sees a charger and sends it commands, each recorded
in the audit log with the operator's name and the charger's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlmodel import col, select

from backend.models import StaffAudit
from tests.helpers.charging import priced_charger, simulator
from tests.helpers.console import console_login
from tests.helpers.server import LiveServer
from tests.helpers.support import add_staff


@pytest.fixture
async def browser(live: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    """A staff member's browser on the running app (https: the cookies are Secure)."""
    transport = httpx.ASGITransport(app=live.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def test_an_operator_commands_a_charger_and_the_audit_log_says_who(
    live: LiveServer, browser: httpx.AsyncClient
) -> None:
    await add_staff(live.http, "olle@example.se", "operator", "Olle")
    csrf = await console_login(browser, "olle@example.se")
    charger = await priced_charger(live.http)
    page_url = f"/console/chargers/{charger['id']}"
    async with simulator(live, charger["id"]) as sim:
        network = await browser.get("/console/network")
        assert f'href="{page_url}"' in network.text
        page = await browser.get(page_url)
        assert page.status_code == 200
        assert charger["connectors"][0]["code"] in page.text
        assert 'action="/console/chargers/' in page.text

        actions = f"{page_url}/actions"
        changed = await browser.post(
            f"{actions}/configuration",
            data={"csrf_token": csrf, "key": "HeartbeatInterval", "value": "120"},
        )
        assert changed.status_code == 303 and changed.headers["location"] == page_url
        assert sim._configuration()["HeartbeatInterval"] == "120"
        shown = await browser.get(page_url)  # the notice, and the key as now stored
        assert "Skickat configuration: Accepted." in shown.text  # Swedish by default
        assert "HeartbeatInterval" in shown.text and "120" in shown.text
        triggered = await browser.post(
            f"{actions}/trigger", data={"csrf_token": csrf, "message": "Heartbeat"}
        )
        assert triggered.status_code == 303
        forged = await browser.post(f"{actions}/clear_cache", data={"csrf_token": "wrong"})
        assert forged.status_code == 403
        sent = await browser.post(f"{actions}/reset", data={"csrf_token": csrf, "kind": "Soft"})
        assert sent.status_code == 303
    async with live.app.state.sessions() as db:
        rows = (await db.scalars(select(StaffAudit).order_by(col(StaffAudit.id)))).all()
    charger_rows = [(r.actor, r.action, r.reason) for r in rows if r.action.startswith("charger")]
    assert [(actor, action) for actor, action, _ in charger_rows] == [
        ("olle@example.se", "charger_configuration"),
        ("olle@example.se", "charger_trigger"),
        ("olle@example.se", "charger_reset"),
    ]
    assert all(reason and reason.endswith("-> Accepted") for _, _, reason in charger_rows)
    offline = await browser.post(f"{page_url}/actions/diagnostics", data={"csrf_token": csrf})
    assert offline.status_code == 303  # sent nowhere: the charger is gone, and it says so
    async with live.app.state.sessions() as db:
        last = (await db.scalars(select(StaffAudit).order_by(col(StaffAudit.id).desc()))).first()
    assert last is not None and last.reason is not None and last.reason.endswith("-> offline")


async def test_support_agents_cannot_command_chargers(
    live: LiveServer, browser: httpx.AsyncClient
) -> None:
    await add_staff(live.http, "sara@example.se", "support", "Sara")
    csrf = await console_login(browser, "sara@example.se")
    charger = await priced_charger(live.http)
    page = await browser.get(f"/console/chargers/{charger['id']}")
    assert page.status_code == 403
    sent = await browser.post(
        f"/console/chargers/{charger['id']}/actions/reset", data={"csrf_token": csrf}
    )
    assert sent.status_code == 403
