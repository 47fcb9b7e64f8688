"""A simulated charge point's certificates: the root certificates an operator installs, and
its own client certificate (a CSR sent with SignCertificate, the answer CertificateSigned)."""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.chargers.certificate_hash import hash_data

MAX_INSTALLED = 10  # per certificate type


@dataclass
class Certificates:
    installed: dict[str, list[x509.Certificate]] = field(default_factory=dict)
    key: ec.EllipticCurvePrivateKey | None = None
    client_certificate: x509.Certificate | None = None

    def install(self, certificate_type: str, pem: str) -> str:
        """InstallCertificate: Accepted, Rejected (not a certificate) or Failed (full)."""
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            return "Rejected"
        kept = self.installed.setdefault(certificate_type, [])
        if len(kept) >= MAX_INSTALLED:
            return "Failed"
        kept.append(certificate)
        return "Accepted"

    def ids(self, certificate_type: str) -> list[dict[str, str]]:
        return [hash_data(c) for c in self.installed.get(certificate_type, [])]

    def delete(self, wanted: dict[str, str]) -> str:
        """DeleteCertificate: Accepted or NotFound (by issuer hashes and serial)."""
        keys = ("issuer_name_hash", "issuer_key_hash", "serial_number")
        for certificates in self.installed.values():
            for certificate in certificates:
                found = hash_data(certificate)
                if all(found[k].lower() == str(wanted.get(k, "")).lower() for k in keys):
                    certificates.remove(certificate)
                    return "Accepted"
        return "NotFound"

    def csr(self, common_name: str) -> str:
        """A new key and its certificate signing request (PEM), CN = `common_name`."""
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "chargebot simulator"),
            ]
        )
        request = x509.CertificateSigningRequestBuilder().subject_name(name)
        signed = request.sign(self.key, hashes.SHA256())
        return signed.public_bytes(serialization.Encoding.PEM).decode()

    def load_into(self, context: ssl.SSLContext) -> None:
        """Present our client certificate in TLS handshakes (security profile 3)."""
        if self.key is None or self.client_certificate is None:
            return
        with tempfile.TemporaryDirectory() as folder:  # ssl reads certificates from files
            cert, key = Path(folder, "client.pem"), Path(folder, "client.key")
            cert.write_bytes(self.client_certificate.public_bytes(serialization.Encoding.PEM))
            key.write_bytes(
                self.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            context.load_cert_chain(cert, key)

    def signed(self, chain: str) -> str:
        """CertificateSigned: Accepted when the first certificate is for our own key."""
        try:
            certificate = x509.load_pem_x509_certificates(chain.encode())[0]
        except (ValueError, IndexError):
            return "Rejected"
        if self.key is None or certificate.public_key() != self.key.public_key():
            return "Rejected"
        self.client_certificate = certificate
        return "Accepted"
