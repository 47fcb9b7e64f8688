"""OCPP security profile 3: a charger identified by its TLS client certificate.

The TLS handshake itself (Python's `ssl`, through uvicorn's `ssl_ca_certs` and
`ssl_cert_reqs=CERT_OPTIONAL`) verifies a presented certificate against the operator's CA.
uvicorn's ASGI scope does not carry the peer certificate, so `PeerCertificateWebSockets` adds
it as the ASGI TLS extension (`scope["extensions"]["tls"]["client_cert_chain"]`, PEM) for the
OCPP endpoint to bind the certificate to the identity in the URL.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

PROTOCOL_PATH = "backend.chargers.client_certificates:PeerCertificateWebSockets"


class PeerCertificateWebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with the verified client certificate in the scope."""

    async def run_asgi(self) -> None:
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions["tls"] = tls_extension(self.transport.get_extra_info("ssl_object"))
        await super().run_asgi()


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any]:
    """The ASGI TLS extension's client fields: the leaf certificate the handshake verified."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return {"client_cert_chain": [], "client_cert_name": None, "client_cert_error": None}
    certificate = x509.load_der_x509_certificate(der)
    return {
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)],
        "client_cert_name": certificate.subject.rfc4514_string(),
        "client_cert_error": None,
    }


def client_certificate(scope: Mapping[str, Any]) -> x509.Certificate | None:
    """The verified client certificate of this connection, if it presented one."""
    chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
    return x509.load_pem_x509_certificate(chain[0].encode()) if chain else None


def common_names(certificate: x509.Certificate) -> set[str]:
    return {
        str(attribute.value)
        for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    }
