"""Chargers' certificates (OCPP 1.6 security extension): InstallCertificate,
GetInstalledCertificateIds, DeleteCertificate."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from backend.api.admin.operations import charger_word
from backend.services import certificates as certs
from backend.services.certificates import ChargerCertificates

router = APIRouter(tags=["certificates"])

CertificateType = Literal["CentralSystemRootCertificate", "ManufacturerRootCertificate"]
# OCPP 1.6 security extension CertificateHashDataType: strings of at most 128 (hashes) and
# 40 (serial number) characters. Chargers report what they hold, not always hex: taken as is.
Hash = Annotated[str, Field(min_length=1, max_length=128)]


class InstallIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    certificate_type: CertificateType
    certificate: Annotated[str, Field(min_length=1, max_length=certs.MAX_PEM)]  # PEM


class HashData(BaseModel):
    """A certificate's hash data, as an operator sends it to DeleteCertificate."""

    model_config = ConfigDict(extra="forbid")
    hash_algorithm: Literal["SHA256", "SHA384", "SHA512"] = "SHA256"
    issuer_name_hash: Hash
    issuer_key_hash: Hash
    serial_number: Annotated[str, Field(min_length=1, max_length=40)]


class ReportedHashData(BaseModel):
    """A certificate's hash data as the charger reported it (GetInstalledCertificateIds)."""

    model_config = ConfigDict(extra="ignore")
    hash_algorithm: str = ""
    issuer_name_hash: str = ""
    issuer_key_hash: str = ""
    serial_number: str = ""


class StatusOut(BaseModel):
    status: str


class InstalledOut(BaseModel):
    status: str  # Accepted | NotFound
    certificate_hash_data: list[ReportedHashData]


def _service(request: Request) -> ChargerCertificates:
    service: ChargerCertificates = request.app.state.certificates
    return service


@router.post("/chargers/{charger_id}/certificates")
async def install(charger_id: str, body: InstallIn, request: Request) -> StatusOut:
    """InstallCertificate: Accepted, Failed or Rejected (422 for what is not a PEM X.509)."""
    result = await _service(request).install(charger_id, body.certificate_type, body.certificate)
    return StatusOut(status=charger_word(result, charger_id, "InstallCertificate"))


@router.get("/chargers/{charger_id}/certificates")
async def installed(
    charger_id: str, request: Request, certificate_type: Annotated[CertificateType, Query()]
) -> InstalledOut:
    """GetInstalledCertificateIds: the hash data of the charger's root certificates."""
    result = await _service(request).installed(charger_id, certificate_type)
    status = charger_word(result, charger_id, "GetInstalledCertificateIds")
    reported = certs.certificate_hash_list(result.response)
    found = [ReportedHashData.model_validate(item) for item in reported]
    return InstalledOut(status=status, certificate_hash_data=found)


@router.post("/chargers/{charger_id}/certificates/delete")
async def delete(charger_id: str, body: HashData, request: Request) -> StatusOut:
    """DeleteCertificate: Accepted, Failed or NotFound."""
    result = await _service(request).delete(charger_id, body.model_dump())
    return StatusOut(status=charger_word(result, charger_id, "DeleteCertificate"))
