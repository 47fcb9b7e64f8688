"""OCPP 1.6 security: profile 2 (TLS, chargers with HTTP Basic keys) served by the app itself,
and certificate management (InstallCertificate, GetInstalledCertificateIds,
DeleteCertificate, SignCertificate/CertificateSigned; OCTT TC_073-086 without client TLS)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.typing import Subprotocol

from backend.app import create_app
from backend.chargers.certificate_hash import hash_data
from backend.chargers.simulator.certificates import Certificates
from backend.chargers.typed_ocpp import on
from backend.cli import serve_options
from backend.settings import Settings
from tests.helpers.charging import priced_charger, simulator
from tests.helpers.factories import charger_key
from tests.helpers.pki import make_pki
from tests.helpers.server import LiveServer, served
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger


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
            # Nor one naming two (it would be ours and somebody else's certificate).
            two_names = x509.CertificateSigningRequestBuilder().subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, charger["id"]),
                        x509.NameAttribute(NameOID.COMMON_NAME, "SOMEONE-ELSE"),
                    ]
                )
            )
            assert sim.certificates.key is not None
            pem = two_names.sign(sim.certificates.key, hashes.SHA256()).public_bytes(
                serialization.Encoding.PEM
            )
            await sim._call(call.SignCertificate(csr=pem.decode()))
            await eventually(
                lambda: live.http.get(f"/admin/chargers/{charger['id']}/jobs"),
                lambda r: [j["status"] for j in r.json()][:2] == ["csr_refused", "csr_refused"],
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


async def _value(value: Certificates) -> Certificates:
    return value


def _has_certificate(certificates: Certificates) -> bool:
    return certificates.client_certificate is not None


async def _connect_status(url: str, context: ssl.SSLContext, password: str | None = None) -> int:
    """The HTTP status a WebSocket handshake to `url` gets (101: upgraded)."""
    headers = {}
    if password is not None:
        identity = url.rsplit("/", 1)[1]
        headers["Authorization"] = (
            "Basic " + base64.b64encode(f"{identity}:{password}".encode()).decode()
        )
    try:
        async with connect(
            url, ssl=context, additional_headers=headers, subprotocols=[Subprotocol("ocpp1.6")]
        ):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_profile_3_a_charger_is_admitted_by_its_client_certificate_alone(
    live_settings: Settings, tmp_path: Path
) -> None:
    pki = make_pki(tmp_path / "ours")
    settings = live_settings.model_copy(
        update={
            "ocpp_ca_certfile": str(pki.ca_cert),
            "ocpp_ca_keyfile": str(pki.ca_key),
            "tls_client_cafile": str(pki.ca_cert),
        }
    )
    tls = (str(pki.server_cert), str(pki.server_key), str(pki.ca_cert))
    async with served(create_app(settings), tls=tls) as live:
        charger, other = await priced_charger(live.http), await priced_charger(live.http)
        url = f"{live.ocpp_url}/{charger['id']}"
        async with (
            simulator(live, charger["id"], ca_file=str(pki.ca_cert)) as sim,
            simulator(live, other["id"], ca_file=str(pki.ca_cert)) as neighbour,
        ):
            # Profile 2 first (key over TLS): no client certificate is asked of anyone.
            assert sim.boot_status == neighbour.boot_status == "Accepted"
            for cp in (sim, neighbour):
                assert await cp.request_certificate() == "Accepted"
                await eventually(functools.partial(_value, cp.certificates), _has_certificate)
            # The operator raises it to profile 3: it reconnects with its certificate and no
            # password, and from then on it needs the certificate.
            base = f"/admin/chargers/{charger['id']}"
            profile = f"{base}/configuration/SecurityProfile"
            raised = await live.http.put(profile, json={"value": "3"})
            assert raised.json() == {"status": "Accepted"}
            assert (await live.http.get(base)).json()["security_profile"] == 3
            assert sim._headers() == {}  # no password on the wire: only a certificate admits it
            await eventually(lambda: live.http.get(base), lambda r: r.json()["online"])
            fetched = await live.http.post(f"{base}/configuration/fetch")  # the socket serves
            keys = {k["key"]: k["value"] for k in fetched.json()["keys"]}
            assert keys["SecurityProfile"] == "3"

            trusting = ssl.create_default_context(cafile=str(pki.ca_cert))
            # Its password alone no longer admits it (no downgrade to profile 2).
            assert await _connect_status(url, trusting, charger_key(charger["id"])) == 401
            # A genuine certificate of another charger does not speak for this one.
            borrowed = ssl.create_default_context(cafile=str(pki.ca_cert))
            neighbour.certificates.load_into(borrowed)
            assert await _connect_status(url, borrowed, charger_key(charger["id"])) == 401
            neighbours = neighbour.certificates
        # The neighbour, still on profile 0, raises itself to 3 by connecting with its
        # certificate (and no password); its key alone no longer admits it then.
        other_url = f"{live.ocpp_url}/{other['id']}"
        other_base = f"/admin/chargers/{other['id']}"
        assert (await live.http.get(other_base)).json()["security_profile"] == 0
        own = ssl.create_default_context(cafile=str(pki.ca_cert))
        neighbours.load_into(own)
        assert await _connect_status(other_url, own) == 101
        assert (await live.http.get(other_base)).json()["security_profile"] == 3
        assert await _connect_status(other_url, trusting, charger_key(other["id"])) == 401
        # A certificate from a CA we do not trust never completes the handshake.
        stranger = make_pki(tmp_path / "stranger")
        untrusted = ssl.create_default_context(cafile=str(pki.ca_cert))
        untrusted.load_cert_chain(stranger.server_cert, stranger.server_key)
        with pytest.raises((ssl.SSLError, ConnectionError, InvalidMessage)):
            await _connect_status(url, untrusted)
        # The operator lets a replaced charger back in with its key.
        reset = await live.http.patch(
            f"/admin/chargers/{charger['id']}", json={"security_profile": 2}
        )
        assert reset.json()["security_profile"] == 2
        assert await _connect_status(url, trusting, charger_key(charger["id"])) == 101


def test_client_certificates_need_tls(settings: Settings) -> None:
    args = argparse.Namespace(
        host="0.0.0.0", port=8443, forwarded_allow_ips="127.0.0.1", log_level="info"
    )
    profile_3 = settings.model_copy(
        update={
            "tls_certfile": "/c.pem",
            "tls_keyfile": "/k.pem",
            "tls_client_cafile": "/ca.pem",
        }
    )
    options = serve_options(args, profile_3)
    assert options["ssl_ca_certs"] == "/ca.pem"
    assert options["ssl_cert_reqs"] == ssl.CERT_OPTIONAL  # browsers and webhooks need none
    with pytest.raises(ValueError, match="TLS_CLIENT_CAFILE needs TLS_CERTFILE"):
        Settings(_env_file=None, tls_client_cafile="/ca.pem")


async def test_after_an_upgrade_the_old_profile_is_refused(live: LiveServer) -> None:
    """OCTT TC_083: after an accepted SecurityProfile 2, a Basic-auth connect over plain ws://
    is refused (401) even with the right key; its upgraded connection is accepted."""

    class Upgradable(BareChargePoint):
        """A charger that takes any SecurityProfile it is sent (TC_083's charge point)."""

        @on(Action.change_configuration)
        async def on_change_configuration(self, **_: Any) -> call_result.ChangeConfiguration:
            return call_result.ChangeConfiguration(status="Accepted")

    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}"
    async with bare_charger(live.ocpp_url, charger["id"], charge_point_class=Upgradable) as cp:
        assert (await cp.boot()).status == "Accepted"
        raised = await live.http.put(f"{base}/configuration/SecurityProfile", json={"value": "2"})
        assert raised.json() == {"status": "Accepted"}
    assert (await live.http.get(base)).json()["security_profile"] == 2
    with pytest.raises(InvalidStatus) as refused:
        async with bare_charger(live.ocpp_url, charger["id"]):
            pass
    assert refused.value.response.status_code == 401
    # Profile 3 would lock it out where no client certificate can be presented.
    locked_out = await live.http.put(f"{base}/configuration/SecurityProfile", json={"value": "3"})
    assert locked_out.status_code == 422 and "TLS_CLIENT_CAFILE" in locked_out.text
    # An operator may lower it again (a charger reset to its factory settings).
    lowered = await live.http.patch(base, json={"security_profile": 1})
    assert lowered.json()["security_profile"] == 1
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        assert (await cp.boot()).status == "Accepted"


async def test_certificate_ids_are_shown_and_deleted_as_the_charger_reports_them(
    live: LiveServer,
) -> None:
    """OCTT TC_075/076: chargers name their certificates as they like (a serial number need
    not be hex); the operator sees them and deletes one by what was shown."""
    reported = {
        "hash_algorithm": "SHA256",
        "issuer_name_hash": "issuer-name-hash",
        "issuer_key_hash": "issuer-key-hash",
        "serial_number": "SN_MANUFACTURER",
    }
    deleted: list[dict[str, Any]] = []

    class Vendor(BareChargePoint):
        @on(Action.get_installed_certificate_ids)
        async def on_ids(self, **_: Any) -> call_result.GetInstalledCertificateIds:
            return call_result.GetInstalledCertificateIds(
                status="Accepted", certificate_hash_data=[reported]
            )

        @on(Action.delete_certificate)
        async def on_delete(
            self, certificate_hash_data: dict[str, Any], **_: Any
        ) -> call_result.DeleteCertificate:
            deleted.append(certificate_hash_data)
            return call_result.DeleteCertificate(status="Accepted")

    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}/certificates"
    async with bare_charger(live.ocpp_url, charger["id"], charge_point_class=Vendor) as cp:
        await cp.boot()
        kind = {"certificate_type": "ManufacturerRootCertificate"}
        shown = await live.http.get(base, params=kind)
        assert shown.status_code == 200, shown.text
        assert shown.json() == {"status": "Accepted", "certificate_hash_data": [reported]}
        listed = shown.json()["certificate_hash_data"][0]
        answer = await live.http.post(f"{base}/delete", json=listed)
        assert answer.json() == {"status": "Accepted"}
        assert deleted == [reported]
        too_long = {**reported, "serial_number": "9" * 41}  # OCPP's limit: 40 characters
        assert (await live.http.post(f"{base}/delete", json=too_long)).status_code == 422
