"""Who may open an OCPP socket: subprotocol, identity and password are checked up front."""

from __future__ import annotations

import asyncio
import base64

import pytest
import websockets
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from tests.conftest import LiveServer
from tests.factories import make_charger

PASSWORD = "s3cret-password-123"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def test_the_ocpp16_subprotocol_is_negotiated_and_echoed(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    async with websockets.connect(
        f"{live.ocpp_url}/{charger['id']}", subprotocols=["ocpp2.0.1", "ocpp1.6"]
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"


@pytest.mark.parametrize("offered", [None, ["ocpp2.0.1"]])
async def test_a_client_without_a_supported_subprotocol_is_closed_after_the_handshake(
    live: LiveServer, offered: list[str] | None
) -> None:
    charger = await make_charger(live.http)
    async with websockets.connect(
        f"{live.ocpp_url}/{charger['id']}",
        subprotocols=offered,  # type: ignore[arg-type]
    ) as ws:
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosedError) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1002


async def test_an_unknown_identity_is_refused_with_404(live: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(f"{live.ocpp_url}/CP-NOBODY", subprotocols=["ocpp1.6"])
    assert refused.value.response.status_code == 404


async def test_a_charger_with_a_password_needs_basic_auth_with_its_identity(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http, password=PASSWORD)
    url = f"{live.ocpp_url}/{charger['id']}"
    for headers in ({}, basic(charger["id"], "wrong-password-1234"), basic("CP-OTHER", PASSWORD)):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url, subprotocols=["ocpp1.6"], additional_headers=headers)
        assert refused.value.response.status_code == 401
    async with websockets.connect(
        url, subprotocols=["ocpp1.6"], additional_headers=basic(charger["id"], PASSWORD)
    ) as ws:
        assert ws.subprotocol == "ocpp1.6"
