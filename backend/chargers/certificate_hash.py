"""OCPP 1.6 security extension CertificateHashData of an X.509 certificate (both sides use it:
the central system's certificate service and the simulated charge point)."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization


def hash_data(certificate: x509.Certificate) -> dict[str, str]:
    """SHA256 of the issuer's name and of its key (a root certificate's own), and the serial."""
    issuer_key = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "hash_algorithm": "SHA256",
        "issuer_name_hash": hashlib.sha256(certificate.issuer.public_bytes()).hexdigest(),
        "issuer_key_hash": hashlib.sha256(issuer_key).hexdigest(),
        "serial_number": format(certificate.serial_number, "x"),
    }
