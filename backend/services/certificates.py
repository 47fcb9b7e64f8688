"""Certificate management of the OCPP 1.6 security extension.

Operators install root certificates on chargers (InstallCertificate), list them
(GetInstalledCertificateIds) and delete them (DeleteCertificate, by their hash data). A charger
asks for its own client certificate with SignCertificate (a CSR): when the central system has a
CA (`OCPP_CA_CERTFILE`, `OCPP_CA_KEYFILE`), the CSR is checked (its signature, its subject's
CN is the charger's identity or its serial number) and signed, and the certificate goes back
with CertificateSigned, recorded as a job of kind `certificate`. Without a CA, SignCertificate
is answered Rejected. X.509 work is the `cryptography` library's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.chargers.certificate_hash import hash_data as hash_data
from backend.db import utcnow
from backend.models import Charger, ChargerJob, ChargerJobStatus
from backend.services.errors import InvalidFieldError
from backend.services.ports import ChargerCommands, CommandResult
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

CERTIFICATE_TYPES = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
CERTIFICATE_JOB = "certificate"
MAX_PEM = 5500  # OCPP 1.6 security: a certificate is at most 5500 characters


def parse_certificate(pem: str) -> x509.Certificate:
    """A PEM certificate, or InvalidFieldError."""
    if len(pem) > MAX_PEM:
        raise InvalidFieldError("certificate", f"at most {MAX_PEM} characters")
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise InvalidFieldError("certificate", "not a PEM X.509 certificate") from exc


@dataclass(frozen=True)
class CertificateAuthority:
    """The CA chargers' client certificates are signed with (security profile 3)."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    valid_days: int = 365

    @classmethod
    def load(cls, certfile: str, keyfile: str, valid_days: int = 365) -> CertificateAuthority:
        certificate = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
        key = serialization.load_pem_private_key(Path(keyfile).read_bytes(), password=None)
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise ValueError("OCPP_CA_KEYFILE: an RSA or EC private key")
        return cls(certificate, key, valid_days)

    def sign(self, csr_pem: str, names: set[str]) -> str:
        """The certificate (PEM, then the CA's) for a CSR whose CN is one of `names`."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise InvalidFieldError("csr", "not a PEM certificate signing request") from exc
        if not csr.is_signature_valid:
            raise InvalidFieldError("csr", "the request's signature does not verify")
        common = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if len(common) != 1 or str(common[0].value) not in names:
            raise InvalidFieldError("csr", "it needs one CN, this charger's identity or serial")
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=self.valid_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        chain = [certificate, self.certificate]
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)


class ChargerCertificates:
    """Install, list and delete chargers' root certificates; sign their CSRs."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        commands: ChargerCommands,
        authority: CertificateAuthority | None = None,
    ) -> None:
        self._sessions = sessions
        self._commands = commands
        self._authority = authority
        self._tasks: set[asyncio.Task[None]] = set()

    async def _known(self, charger_id: str) -> Charger:
        async with self._sessions() as db:
            return await get_or_404(db, Charger, charger_id, "charger")

    async def install(self, charger_id: str, certificate_type: str, pem: str) -> CommandResult:
        if certificate_type not in CERTIFICATE_TYPES:
            raise InvalidFieldError("certificate_type", " or ".join(CERTIFICATE_TYPES))
        parse_certificate(pem)
        await self._known(charger_id)
        return await self._commands.operate(
            charger_id,
            "InstallCertificate",
            {"certificate_type": certificate_type, "certificate": pem},
        )

    async def installed(self, charger_id: str, certificate_type: str) -> CommandResult:
        if certificate_type not in CERTIFICATE_TYPES:
            raise InvalidFieldError("certificate_type", " or ".join(CERTIFICATE_TYPES))
        await self._known(charger_id)
        return await self._commands.operate(
            charger_id, "GetInstalledCertificateIds", {"certificate_type": certificate_type}
        )

    async def delete(self, charger_id: str, hashes_of: dict[str, str]) -> CommandResult:
        await self._known(charger_id)
        return await self._commands.operate(
            charger_id, "DeleteCertificate", {"certificate_hash_data": hashes_of}
        )

    # -- SignCertificate -----------------------------------------------------------------------

    def accepts_csr(self) -> bool:
        return self._authority is not None

    def on_csr(self, charger_id: str, csr: str) -> None:
        """A SignCertificate was answered Accepted: sign and send it from a task of its own."""
        task = asyncio.create_task(self._sign_and_send(charger_id, csr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=10)

    async def _sign_and_send(self, charger_id: str, csr: str) -> None:
        assert self._authority is not None
        async with self._sessions() as db:
            charger = await db.get(Charger, charger_id)
            names = {charger_id}
            if charger is not None and charger.serial_number:
                names.add(charger.serial_number)
            job = ChargerJob(charger_id=charger_id, kind=CERTIFICATE_JOB, location="")
            db.add(job)
            await db.flush()
            assert job.id is not None
            db.add(ChargerJobStatus(job_id=job.id, status="csr_received", at=utcnow()))
            job.status = "csr_received"
            await db.commit()
        try:
            chain = self._authority.sign(csr, names)
        except InvalidFieldError as refused:
            log.warning("%s: CSR refused: %s", charger_id, refused)
            await _note(self._sessions, job.id, "csr_refused")
            return
        result = await self._commands.operate(
            charger_id, "CertificateSigned", {"certificate_chain": chain}
        )
        if result.ocpp_status == "Accepted":
            # Profile 3 admits this charger with exactly this certificate (not any of ours
            # whose CN looks right: serial numbers are whatever a charger says it has).
            pin = fingerprint(x509.load_pem_x509_certificates(chain.encode())[0])
            async with self._sessions() as db:
                await db.execute(
                    update(Charger)
                    .where(col(Charger.id) == charger_id)
                    .values(client_certificate_sha256=pin)
                )
                await db.commit()
        await _note(self._sessions, job.id, result.word)


async def _note(sessions: async_sessionmaker[AsyncSession], job_id: int, status: str) -> None:
    async with sessions() as db:
        job = await db.get(ChargerJob, job_id)
        if job is None:
            return
        job.status, job.updated_at = status[:32], utcnow()
        db.add(ChargerJobStatus(job_id=job_id, status=status[:32], at=job.updated_at))
        await db.commit()


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate (DER), hex: what a charger's profile-3 login is pinned to."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def certificate_hash_list(response: dict[str, Any]) -> list[dict[str, str]]:
    """GetInstalledCertificateIds' hash data, as plain dicts."""
    return [dict(item) for item in response.get("certificate_hash_data") or []]
