"""Random frames from a charger only ever produce CallErrors; the connection survives."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ocpp.v16.enums import Action
from websockets.typing import Subprotocol

from tests.helpers.factories import make_charger
from tests.helpers.server import LiveServer
from tests.ocpp_client import basic_auth

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
actions = st.sampled_from([a.value for a in Action]) | st.text(max_size=12)
well_formed_calls = st.builds(
    lambda uid, action, payload: [2, uid, action, payload],
    st.text(min_size=1, max_size=10),
    actions,
    st.dictionaries(st.text(max_size=12), json_values, max_size=4) | st.none(),
)
frames = (
    well_formed_calls.map(json.dumps)
    | st.lists(json_values, max_size=5).map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=40)
    | st.just("[2")
    | st.just("[" * 5000 + "]" * 5000)
)


async def _replies_until(ws: Any, marker: str) -> list[list[Any]]:
    """Everything the server answered up to the reply to `marker`; its own CALLs are skipped."""
    replies = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message[0] == 2:
            continue  # e.g. TriggerMessage from the server; ignored here
        replies.append(message)
        if message[1] == marker:
            return replies


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=1, max_size=8))
async def test_random_frames_only_ever_produce_call_errors(
    live: LiveServer, batch: list[str]
) -> None:
    if not hasattr(live, "fuzz_socket"):
        charger = await make_charger(live.http)
        live.fuzz_socket = await websockets.connect(  # type: ignore[attr-defined]
            f"{live.ocpp_url}/{charger['id']}",
            subprotocols=[Subprotocol("ocpp1.6")],
            max_size=None,
            additional_headers=basic_auth(charger["id"], charger["key"]),
        )
    ws = live.fuzz_socket  # type: ignore[attr-defined]
    expected_ids = set()
    for frame in batch:
        await ws.send(frame)
        try:
            parsed = json.loads(frame)
        except (ValueError, RecursionError):
            continue
        if (
            isinstance(parsed, list)
            and len(parsed) >= 2
            and parsed[0] == 2
            and isinstance(parsed[1], str)
        ):
            expected_ids.add(parsed[1])
    marker = f"alive-{uuid.uuid4().hex}"
    await ws.send(json.dumps([2, marker, "Heartbeat", {}]))
    replies = await _replies_until(ws, marker)
    assert replies[-1][0] == 3  # the heartbeat after the noise is answered normally
    for reply in replies:
        assert reply[0] in (3, 4), reply
        if reply[0] == 4:
            assert len(reply) == 5 and isinstance(reply[2], str) and reply[2]
    answered = {reply[1] for reply in replies}
    assert expected_ids <= answered | {marker}
