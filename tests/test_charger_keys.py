"""Charger keys: every charger authenticates (security profile 1), keys rotate safely."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from sqlalchemy import update
from sqlmodel import col
from websockets.exceptions import InvalidStatus

from backend.app import create_app
from backend.chargers.typed_ocpp import on
from backend.models import Charger
from backend.services import charger_keys, passwords
from backend.services.passwords import hash_password
from backend.settings import Settings
from tests.helpers.charging import charger_of, driver_with_tag, session_of, simulator
from tests.helpers.factories import CHARGER_KEYS, make_charger
from tests.helpers.server import SECRET_KEY, LiveServer, served
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger

PEPPER = charger_keys.pepper_from("", SECRET_KEY)


async def _refused(live: LiveServer, charger_id: str, password: str | bytes | None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with bare_charger(live.ocpp_url, charger_id, password=password):
            pass
    return refused.value.response.status_code


async def _stored(live: LiveServer, charger_id: str) -> Charger:
    async with live.app.state.sessions() as db:
        charger: Charger | None = await db.get(Charger, charger_id)
        assert charger is not None
        return charger


async def _set(live: LiveServer, charger_id: str, **values: Any) -> None:
    async with live.app.state.sessions() as db:
        await db.execute(update(Charger).where(col(Charger.id) == charger_id).values(**values))
        await db.commit()


async def test_an_impostor_without_the_key_cannot_stop_a_session(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    other = await make_charger(live.http)
    await driver_with_tag(live.http, "RFID-IMPOSTOR-1")
    async with bare_charger(live.ocpp_url, charger["id"]) as real:
        await real.boot()
        started = await real.start_transaction(1, "RFID-IMPOSTOR-1", 1000)
        assert started.id_tag_info["status"] == "Accepted"
        # No key, a wrong key, another charger's key, the right key for another name: all 401
        # before the upgrade, so no frame of theirs is ever read (and the real socket stays).
        for password in (None, "0" * 40, other["key"], b"\x00" * 20):
            assert await _refused(live, charger["id"], password) == 401
        session = await session_of(live.http, started.transaction_id)
        assert session["status"] == "charging"
        assert (await charger_of(live.http, charger["id"]))["online"] is True
        connection = live.app.state.central.registry.get(charger["id"])
        assert connection is not None and connection.charge_point is not None


async def test_a_charger_without_a_key_is_refused_in_production(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    response = await live.http.patch(f"/admin/chargers/{charger['id']}", json={"password": None})
    assert response.json()["has_key"] is False
    assert await _refused(live, charger["id"], None) == 401
    assert await _refused(live, charger["id"], charger["key"]) == 401


async def test_a_lab_may_allow_chargers_without_a_key_but_keyed_ones_still_need_theirs(
    settings: Settings,
) -> None:
    lab = settings.model_copy(update={"ocpp_allow_unsecured": True})
    async with served(create_app(lab)) as live:
        keyless = await make_charger(live.http)
        await live.http.patch(f"/admin/chargers/{keyless['id']}", json={"password": None})
        async with bare_charger(live.ocpp_url, keyless["id"], password=None) as cp:
            assert (await cp.boot()).status == "Accepted"
        keyed = await make_charger(live.http)
        assert await _refused(live, keyed["id"], None) == 401


def test_unsecured_chargers_are_a_development_default_never_a_production_one() -> None:
    def allowed(**values: Any) -> bool:
        return Settings(_env_file=None, **values).ocpp_unsecured_allowed

    assert allowed(environment="development") is True
    assert allowed(environment="production") is False
    assert allowed(environment="production", ocpp_allow_unsecured=True) is True
    assert allowed(environment="development", ocpp_allow_unsecured=False) is False


async def test_the_server_generates_a_key_and_shows_it_only_once(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    assert re.fullmatch(r"[0-9a-f]{40}", charger["key"])  # 20 random bytes
    again = await charger_of(live.http, charger["id"])
    assert again["key"] is None and again["has_key"] is True
    stored = await _stored(live, charger["id"])
    assert stored.password_hash is not None and charger["key"] not in stored.password_hash
    assert stored.password_hash.startswith("hmac-sha256$")


@pytest.mark.parametrize("password", ["short-key", "sixteen chars ok", "x" * 41, "ключ" * 5])
async def test_an_operator_key_that_is_short_or_odd_is_422(live: LiveServer, password: str) -> None:
    from tests.helpers.factories import charger_body, make_station

    station = await make_station(live.http)
    response = await live.http.post(
        "/admin/chargers", json=charger_body(station["id"], password=password)
    )
    assert response.status_code == 422
    assert "key" in response.text


async def test_a_charger_that_sends_its_key_as_octets_is_accepted(live: LiveServer) -> None:
    """The whitepaper writes AuthorizationKey in hex; some chargers send the decoded bytes."""
    charger = await make_charger(live.http)
    octets = bytes.fromhex(charger["key"])
    async with bare_charger(live.ocpp_url, charger["id"], password=octets) as cp:
        assert (await cp.boot()).status == "Accepted"
    upper = charger["key"].upper()
    async with bare_charger(live.ocpp_url, charger["id"], password=upper) as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_a_legacy_argon2_hash_is_replaced_by_the_keyed_hash_on_connect(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http)
    await _set(live, charger["id"], password_hash=hash_password("an-old-password-1234"))
    assert await _refused(live, charger["id"], "an-old-password-12345") == 401
    async with bare_charger(live.ocpp_url, charger["id"], password="an-old-password-1234") as cp:
        assert (await cp.boot()).status == "Accepted"
    stored = await _stored(live, charger["id"])
    assert stored.password_hash == charger_keys.hash_key(
        charger["id"], "an-old-password-1234", PEPPER
    )
    async with bare_charger(live.ocpp_url, charger["id"], password="an-old-password-1234") as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_wrong_keys_against_a_legacy_charger_never_make_staff_logins_busy(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Legacy argon2 charger hashes have a pool of their own; a full one is 503 to chargers."""
    charger = await make_charger(live.http)
    await _set(live, charger["id"], password_hash=hash_password("an-old-password-1234"))
    pool = charger_keys._legacy_verifier
    monkeypatch.setattr(pool, "_in_flight", pool._limit)  # a flood of wrong keys in progress
    assert await _refused(live, charger["id"], "an-old-password-12345") == 503
    passwords.check_room()  # the staff login's pool has all its room
    login = await live.http.post("/auth/token", data={"username": "nobody@x.se", "password": "x"})
    assert login.status_code != 503
    monkeypatch.setattr(pool, "_in_flight", 0)
    async with bare_charger(live.ocpp_url, charger["id"], password="an-old-password-1234") as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_rotation_hands_the_simulator_its_new_key_and_retires_the_old_one(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http)
    old_key = charger["key"]
    async with simulator(live, charger["id"]) as sim:
        first = await _current(live, charger["id"])
        response = await live.http.post(f"/admin/chargers/{charger['id']}/key")
        assert response.status_code == 200, response.text
        new_key = response.json()["key"]
        assert re.fullmatch(r"[0-9a-f]{40}", new_key) and new_key != old_key
        # The simulator took it (ChangeConfiguration AuthorizationKey) and reconnected with it.
        await eventually(
            lambda: _current(live, charger["id"]),
            lambda c: c is not None and c is not first,
        )
        assert sim._config.password == new_key
        await eventually(lambda: charger_of(live.http, charger["id"]), lambda c: c["online"])
        shown = await charger_of(live.http, charger["id"])
        assert shown["key"] is None and shown["key_rotation_pending"] is False
        assert await _refused(live, charger["id"], old_key) == 401


async def _current(live: LiveServer, charger_id: str) -> Any:
    return live.app.state.central.registry.get(charger_id)


async def test_rotating_the_key_of_an_offline_charger_fails_and_keeps_the_old_key(
    live: LiveServer,
) -> None:
    charger = await make_charger(live.http)
    response = await live.http.post(f"/admin/chargers/{charger['id']}/key")
    assert response.status_code == 409
    assert "offline" in response.json()["detail"] and "old key stays" in response.json()["detail"]
    assert "key" not in response.json() or response.json().get("key") is None
    stored = await _stored(live, charger["id"])
    assert stored.pending_key_hash is None
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        assert (await cp.boot()).status == "Accepted"


class _RefusesNewKeys(BareChargePoint):
    @on(Action.change_configuration)
    async def on_change_configuration(self, key: str, value: str) -> Any:
        self.received.append(("ChangeConfiguration", {"key": key}))
        return call_result.ChangeConfiguration(status="Rejected")


async def test_a_charger_that_rejects_its_new_key_keeps_the_old_one(live: LiveServer) -> None:
    charger = await make_charger(live.http)
    async with bare_charger(live.ocpp_url, charger["id"], charge_point_class=_RefusesNewKeys) as cp:
        await cp.boot()
        response = await live.http.post(f"/admin/chargers/{charger['id']}/key")
        assert cp.received[-1] == ("ChangeConfiguration", {"key": "AuthorizationKey"})
    assert response.status_code == 409
    assert "old key stays" in response.json()["detail"]
    stored = await _stored(live, charger["id"])
    assert stored.pending_key_hash is None
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_a_charger_that_connects_with_its_unconfirmed_key_makes_it_current(
    live: LiveServer,
) -> None:
    """The answer to ChangeConfiguration got lost, but the charger did take the key."""
    charger = await make_charger(live.http)
    new_key = charger_keys.generate_key()
    pending = charger_keys.hash_key(charger["id"], new_key, PEPPER)
    await _set(live, charger["id"], pending_key_hash=pending)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:  # the old key still works
        assert (await cp.boot()).status == "Accepted"
    async with bare_charger(live.ocpp_url, charger["id"], password=new_key) as cp:
        assert (await cp.boot()).status == "Accepted"
    stored = await _stored(live, charger["id"])
    assert (stored.password_hash, stored.pending_key_hash) == (pending, None)
    assert await _refused(live, charger["id"], charger["key"]) == 401


async def test_a_new_key_without_the_handshake_replaces_the_old_one_at_once(
    live: LiveServer,
) -> None:
    """For a charger configured by hand (or one that lost its key): no ChangeConfiguration."""
    charger = await make_charger(live.http)
    response = await live.http.post(
        f"/admin/chargers/{charger['id']}/key", json={"handshake": False}
    )
    assert response.status_code == 200
    new_key = response.json()["key"]
    CHARGER_KEYS[charger["id"]] = new_key
    assert await _refused(live, charger["id"], charger["key"]) == 401
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        assert (await cp.boot()).status == "Accepted"


def test_a_keyed_hash_needs_the_pepper_and_the_charger_id() -> None:
    key = charger_keys.generate_key()
    stored = charger_keys.hash_key("CP-1", key, PEPPER)
    assert charger_keys.verify_hmac("CP-1", stored, key.encode(), PEPPER)
    assert not charger_keys.verify_hmac("CP-2", stored, key.encode(), PEPPER)
    assert not charger_keys.verify_hmac("CP-1", stored, key.encode(), b"another pepper")
    assert not charger_keys.verify_hmac("CP-1", stored, key[:-1].encode(), PEPPER)
    assert not charger_keys.needs_upgrade(stored)
    assert charger_keys.needs_upgrade(hash_password(key))
    assert charger_keys.pepper_from("", SECRET_KEY) != SECRET_KEY.encode()
    assert charger_keys.pepper_from("explicit", SECRET_KEY) == b"explicit"


async def test_a_rotated_key_never_reaches_the_log_even_with_frame_logging(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    # As with OCPP_FRAME_LOG=1: every frame is logged. The frame logger's own level, because
    # `chargebot` commands run by earlier tests (cli.main) leave "ocpp" at WARNING.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="ocpp.frames")
    charger = await make_charger(live.http)
    async with simulator(live, charger["id"]):
        response = await live.http.post(f"/admin/chargers/{charger['id']}/key")
        assert response.status_code == 200
        new_key = response.json()["key"]
    server_side = [
        r.getMessage()
        for r in caplog.records
        if not r.name.startswith("backend.chargers.simulator")  # the charger's own log
    ]
    assert any("AuthorizationKey" in m for m in server_side)  # the frame was logged ...
    assert not any(new_key in m for m in server_side)  # ... without the key
