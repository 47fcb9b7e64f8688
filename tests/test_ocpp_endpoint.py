"""Who may open an OCPP socket: subprotocol, identity and password are checked up front."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote

import pytest
import websockets
from sqlalchemy import event
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from tests.helpers.charging import charger_of
from tests.helpers.factories import make_charger
from tests.helpers.server import LiveServer

PASSWORD = "s3cret-password-123"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_the_ocpp16_subprotocol_is_negotiated_and_echoed(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    async with websockets.connect(
        f"{live.ocpp_url}/{charger['id']}",
        subprotocols=[Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")],
        additional_headers=basic(charger["id"], charger["key"]),
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"


@pytest.mark.parametrize("offered", [None, ["ocpp2.0.1"]])
async def test_a_client_without_a_supported_subprotocol_is_not_upgraded(
    live: LiveServer, offered: list[str] | None
) -> None:
    """OCTT TC_088: no socket at all, an HTTP 400 that names what is missing."""
    charger = await make_charger(live.http)
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            f"{live.ocpp_url}/{charger['id']}",
            subprotocols=offered,  # type: ignore[arg-type]
            additional_headers=basic(charger["id"], charger["key"]),
        )
    assert refused.value.response.status_code == 400
    assert b"ocpp1.6" in refused.value.response.body
    listed = await charger_of(live.http, charger["id"])
    assert not listed["online"]


async def test_an_unknown_identity_is_refused_with_404(live: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(
            f"{live.ocpp_url}/CP-NOBODY", subprotocols=[Subprotocol("ocpp1.6")]
        )
    assert refused.value.response.status_code == 404


@pytest.mark.parametrize(
    "path", ["CP%00X", "CP-1%0A", "CP%3A1", "CP%20ONE", "X" * 49, "%C3%A5sa", "-CP"]
)
async def test_junk_in_the_ocpp_path_is_refused_with_404_before_any_query(
    live: LiveServer, path: str
) -> None:
    """A NUL byte in the path was a 500 on PostgreSQL: now no query asks for that name."""
    name = unquote(path)
    queries = []
    engine = live.app.state.sessions.kw["bind"].sync_engine

    def count(*args: Any) -> None:
        if name in repr(args[3]):  # the statement's parameters
            queries.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(
                f"{live.ocpp_url}/{path}", subprotocols=[Subprotocol("ocpp1.6")]
            )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert refused.value.response.status_code == 404
    assert queries == []


async def test_a_charger_with_a_password_needs_basic_auth_with_its_identity(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http, password=PASSWORD)
    url = f"{live.ocpp_url}/{charger['id']}"
    for headers in ({}, basic(charger["id"], "wrong-password-1234"), basic("CP-OTHER", PASSWORD)):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(
                url, subprotocols=[Subprotocol("ocpp1.6")], additional_headers=headers
            )
        assert refused.value.response.status_code == 401
    async with websockets.connect(
        url,
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers=basic(charger["id"], PASSWORD),
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"
