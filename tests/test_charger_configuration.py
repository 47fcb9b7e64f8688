"""Operators read and change a charger's configuration keys (OCPP 1.6 GetConfiguration and
ChangeConfiguration, OCTT TC_019/021), through the admin API, with the simulator answering as
a charger does."""

from __future__ import annotations

from typing import Any

from ocpp.v16 import call_result
from ocpp.v16.enums import Action

from backend.chargers.typed_ocpp import on
from tests.helpers.charging import priced_charger, simulator
from tests.helpers.server import LiveServer
from tests.ocpp_client import BareChargePoint, bare_charger


async def test_the_keys_are_read_kept_and_shown_offline(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/configuration"
    never = await live.http.get(base)
    assert never.json() == {"keys": [], "reported_at": None, "unknown_keys": []}
    async with simulator(live, charger["id"]) as sim:
        fetched = await live.http.post(f"{base}/fetch")
        assert fetched.status_code == 200, fetched.text
        keys = {k["key"]: k for k in fetched.json()["keys"]}
        assert keys["HeartbeatInterval"]["value"] == sim._configuration()["HeartbeatInterval"]
        assert set(keys) == set(sim._configuration())
        some = await live.http.post(
            f"{base}/fetch", json={"keys": ["MeterValueSampleInterval", "NoSuchKey"]}
        )
        assert some.json()["unknown_keys"] == ["NoSuchKey"]
        assert {k["key"] for k in some.json()["keys"]} == set(keys)  # the others are kept
    offline = await live.http.get(base)  # the charger is gone: its last known keys
    assert {k["key"] for k in offline.json()["keys"]} == set(keys)
    assert offline.json()["reported_at"] is not None
    refused = await live.http.post(f"{base}/fetch")
    assert refused.status_code == 409 and refused.json()["reason"] == "offline"


async def test_a_change_reaches_the_charger_and_only_an_accepted_one_is_kept(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/configuration"
    async with simulator(live, charger["id"]) as sim:
        await live.http.post(f"{base}/fetch")
        changed = await live.http.put(f"{base}/HeartbeatInterval", json={"value": "120"})
        assert changed.json() == {"status": "Accepted"}, changed.text
        assert sim._configuration()["HeartbeatInterval"] == "120"
        refused = await live.http.put(f"{base}/HeartbeatInterval", json={"value": "-5"})
        assert refused.json() == {"status": "Rejected"}
        unknown = await live.http.put(f"{base}/NoSuchKey", json={"value": "1"})
        assert unknown.json() == {"status": "NotSupported"}
        shown = {k["key"]: k["value"] for k in (await live.http.get(base)).json()["keys"]}
        assert shown["HeartbeatInterval"] == "120"  # the accepted value, not the refused one
        assert "NoSuchKey" not in shown
        again = await live.http.post(f"{base}/fetch")  # and it is what the charger reports
        assert {k["key"]: k["value"] for k in again.json()["keys"]}["HeartbeatInterval"] == "120"
    offline = await live.http.put(f"{base}/HeartbeatInterval", json={"value": "60"})
    assert offline.status_code == 409


async def test_the_authorization_key_is_neither_changed_here_nor_kept(live: LiveServer) -> None:
    class Leaky(BareChargePoint):
        """A charger that reports its AuthorizationKey, which OCPP says is write-only."""

        @on(Action.get_configuration)
        async def on_get_configuration(self, **_: Any) -> call_result.GetConfiguration:
            return call_result.GetConfiguration(
                configuration_key=[
                    {"key": "AuthorizationKey", "readonly": False, "value": "0011223344556677"},
                    {"key": "NumberOfConnectors", "readonly": True, "value": "2"},
                ]
            )

        @on(Action.change_configuration)
        async def on_change_configuration(self, **kwargs: Any) -> call_result.ChangeConfiguration:
            self.received.append(("ChangeConfiguration", kwargs))
            return call_result.ChangeConfiguration(status="Accepted")

    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/configuration"
    async with bare_charger(live.ocpp_url, charger["id"], charge_point_class=Leaky) as cp:
        await cp.boot()
        fetched = await live.http.post(f"{base}/fetch")
        assert fetched.status_code == 200, fetched.text
        keys = {k["key"]: k for k in fetched.json()["keys"]}
        assert keys["AuthorizationKey"]["value"] is None
        assert keys["NumberOfConnectors"] == {
            "key": "NumberOfConnectors",
            "value": "2",
            "readonly": True,
        }
        assert "0011223344556677" not in (await live.http.get(base)).text
        change = await live.http.put(f"{base}/AuthorizationKey", json={"value": "ab" * 10})
        assert change.status_code == 422, change.text
        assert "ChangeConfiguration" not in [name for name, _ in cp.received]


async def test_bad_input_and_unknown_chargers_are_refused(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/configuration"
    too_long = await live.http.put(f"{base}/{'K' * 51}", json={"value": "1"})
    assert too_long.status_code == 422
    huge = await live.http.put(f"{base}/HeartbeatInterval", json={"value": "9" * 501})
    assert huge.status_code == 422
    extra = await live.http.post(f"{base}/fetch", json={"keys": ["A"], "all": True})
    assert extra.status_code == 422
    for method, path in (
        ("GET", "/admin/chargers/NOPE/configuration"),
        ("POST", "/admin/chargers/NOPE/configuration/fetch"),
        ("PUT", "/admin/chargers/NOPE/configuration/HeartbeatInterval"),
    ):
        body = {"value": "1"} if method == "PUT" else None
        response = await live.http.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)


async def test_a_charger_that_cannot_report_its_keys_is_a_409_and_nothing_is_kept(
    live: LiveServer,
) -> None:
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/configuration"
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:  # no GetConfiguration handler
        await cp.boot()
        fetched = await live.http.post(f"{base}/fetch")
    assert fetched.status_code == 409, fetched.text
    assert fetched.json()["reason"] == "rejected"
    assert "NotImplemented" in fetched.json()["detail"]
    assert (await live.http.get(base)).json()["keys"] == []
