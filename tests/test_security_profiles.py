"""OCPP 1.6 security: profile 2 (TLS, chargers with HTTP Basic keys) served by the app itself,
and certificate management (InstallCertificate, GetInstalledCertificateIds,
DeleteCertificate, SignCertificate/CertificateSigned; OCTT TC_073-086 without client TLS)."""

from __future__ import annotations

import argparse
import asyncio
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from ocpp.v16 import call
from websockets.asyncio.client import connect

from backend.app import create_app
from backend.chargers.certificate_hash import hash_data
from backend.cli import serve_options
from backend.settings import Settings
from tests.helpers.charging import priced_charger, simulator
from tests.helpers.pki import make_pki
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually


async def test_profile_2_chargers_connect_over_tls_with_their_keys(
    live_settings: Settings, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path)
    tls = (str(pki.server_cert), str(pki.server_key), str(pki.ca_cert))
    async with served(create_app(live_settings), tls=tls) as live:
        assert live.ocpp_url.startswith("wss://")
        charger = await priced_charger(live.http)  # the admin API over https too
        async with simulator(live, charger["id"], ca_file=str(pki.ca_cert)) as sim:
            assert sim.boot_status == "Accepted"
        # A charger that does not trust our certificate never gets as far as its password.
        untrusting = ssl.create_default_context()
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect(f"{live.ocpp_url}/{charger['id']}", ssl=untrusting, open_timeout=5)
        # Plain ws:// to a TLS port is no OCPP connection either.
        with pytest.raises(Exception):  # noqa: B017 - whatever the handshake breaks with
            await connect(f"ws://127.0.0.1:{live.port}/ocpp/{charger['id']}", open_timeout=5)


def test_chargebot_serve_offers_tls_when_configured(settings: Settings) -> None:
    args = argparse.Namespace(
        host="0.0.0.0", port=8443, forwarded_allow_ips="127.0.0.1", log_level="info"
    )
    plain = serve_options(args, settings)
    assert "ssl_certfile" not in plain
    secured = serve_options(
        args, settings.model_copy(update={"tls_certfile": "/c.pem", "tls_keyfile": "/k.pem"})
    )
    assert (secured["ssl_certfile"], secured["ssl_keyfile"]) == ("/c.pem", "/k.pem")
    with pytest.raises(ValueError, match="TLS_CERTFILE and TLS_KEYFILE go together"):
        Settings(_env_file=None, tls_certfile="/c.pem")


async def test_root_certificates_are_installed_listed_and_deleted(
    live: LiveServer, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path, ca_name="Operator root")
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/certificates"
    kind = "CentralSystemRootCertificate"
    async with simulator(live, charger["id"]) as sim:
        none = await live.http.get(base, params={"certificate_type": kind})
        assert none.json() == {"status": "NotFound", "certificate_hash_data": []}
        body = {"certificate_type": kind, "certificate": pki.ca_pem()}
        assert (await live.http.post(base, json=body)).json() == {"status": "Accepted"}
        listed = (await live.http.get(base, params={"certificate_type": kind})).json()
        expected = hash_data(x509.load_pem_x509_certificate(pki.ca_pem().encode()))
        assert listed == {"status": "Accepted", "certificate_hash_data": [expected]}
        assert len(sim.certificates.installed[kind]) == 1
        deleted = await live.http.post(f"{base}/delete", json=expected)
        assert deleted.json() == {"status": "Accepted"}
        again = await live.http.post(f"{base}/delete", json=expected)
        assert again.json() == {"status": "NotFound"}
        garbage = await live.http.post(base, json={**body, "certificate": "not a certificate"})
        assert garbage.status_code == 422  # never sent


async def test_a_charger_s_csr_is_signed_by_our_ca(live_settings: Settings, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    settings = live_settings.model_copy(
        update={"ocpp_ca_certfile": str(pki.ca_cert), "ocpp_ca_keyfile": str(pki.ca_key)}
    )
    async with served(create_app(settings)) as live:
        charger = await priced_charger(live.http)
        async with simulator(live, charger["id"]) as sim:
            assert await sim.request_certificate() == "Accepted"
            await eventually(lambda: asyncio.sleep(0, sim.certificates.client_certificate), bool)
            issued = sim.certificates.client_certificate
            assert issued is not None
            common = issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            assert common == charger["id"]
            ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
            issued.verify_directly_issued_by(ca)
            jobs = (await live.http.get(f"/admin/chargers/{charger['id']}/jobs")).json()
            assert [(j["kind"], j["status"]) for j in jobs] == [("certificate", "Accepted")]

            # A CSR for somebody else's name is not signed.
            forged = sim.certificates.csr("SOMEONE-ELSE")
            answer = await sim._call(call.SignCertificate(csr=forged))
            assert answer.status == "Accepted"  # checked after the answer, as OCPP says
            await eventually(
                lambda: live.http.get(f"/admin/chargers/{charger['id']}/jobs"),
                lambda r: r.json()[0]["status"] == "csr_refused",
            )
            triggered = await live.http.post(
                f"/admin/chargers/{charger['id']}/extended-trigger",
                json={"message": "SignChargePointCertificate"},
            )
            assert triggered.json() == {"status": "Accepted"}


async def test_without_a_ca_csrs_are_rejected(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    async with simulator(live, charger["id"]) as sim:
        assert await sim.request_certificate() == "Rejected"
