"""Firmware updates, diagnostics and log uploads, security events and ExtendedTriggerMessage
(OCPP 1.6 Firmware Management and the security extension)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from backend.api.admin.operations import charger_word
from backend.api.deps import CommandsDep, IdPath, ReviewerDep, SessionDep, SessionsDep
from backend.models import ChargerJob, ChargerJobStatus, SecurityEvent
from backend.services import charger_jobs
from backend.services.charger_jobs import ChargerJobs, JobOutcome
from backend.services.rows import get_or_404

router = APIRouter(tags=["firmware and diagnostics"])

Retries = Annotated[int, Field(ge=0, le=100)]
Interval = Annotated[int, Field(ge=0, le=86400)]
Location = Annotated[str, Field(min_length=8, max_length=512)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FirmwareIn(_In):
    location: Location  # where the charger fetches the image: http(s), ftp(s), sftp
    retrieve_at: AwareDatetime | None = None  # default: now
    retries: Retries | None = None
    retry_interval: Interval | None = None


class SignedFirmwareIn(FirmwareIn):
    install_at: AwareDatetime | None = None
    signing_certificate: Annotated[str, Field(min_length=1, max_length=5500)]  # PEM
    signature: Annotated[str, Field(min_length=1, max_length=800)]  # base64


UploadProtocol = Literal["auto", "http", "ftp"]


class DiagnosticsIn(_In):
    start_time: AwareDatetime | None = None
    stop_time: AwareDatetime | None = None
    retries: Retries | None = None
    retry_interval: Interval | None = None
    protocol: UploadProtocol = Field(
        default="auto",
        description="How the charger uploads: http (our /uploads URL), ftp (our FTP server, "
        "FTP_UPLOAD_PORT) or auto (FTP only for a charger reporting FTP but no HTTP(S) in "
        "SupportedFileTransferProtocols).",
    )


class LogIn(_In):
    log_type: Literal["DiagnosticsLog", "SecurityLog"] = "DiagnosticsLog"
    oldest: AwareDatetime | None = None
    latest: AwareDatetime | None = None
    retries: Retries | None = None
    retry_interval: Interval | None = None
    protocol: UploadProtocol = "auto"  # as for diagnostics


class ExtendedTriggerIn(_In):
    message: Literal[
        "BootNotification",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "SignChargePointCertificate",
        "StatusNotification",
    ]
    connector_id: Annotated[int, Field(ge=0, le=99)] | None = None


class JobPublic(BaseModel):
    id: int  # the requestId of GetLog / SignedUpdateFirmware
    charger_id: str
    kind: str  # firmware | signed_firmware | diagnostics | log
    status: str  # the charger's last word: its answer, then its status notifications
    location: str
    file_name: str | None
    file_size: int | None  # of the upload received (None: nothing arrived yet)
    history: list[dict[str, str]]
    requested_by: str | None
    created_at: datetime
    updated_at: datetime


class JobCommandOut(BaseModel):
    status: str
    job: JobPublic


class SecurityEventPublic(BaseModel):
    id: int
    type: str
    tech_info: str | None
    occurred_at: datetime
    received_at: datetime


class StatusOut(BaseModel):
    status: str


def _jobs(request: Request) -> ChargerJobs:
    jobs: ChargerJobs = request.app.state.jobs
    return jobs


async def _public_all(db: AsyncSession, jobs: list[ChargerJob]) -> list[JobPublic]:
    histories = await charger_jobs.history_of(db, [job.id or 0 for job in jobs])
    return [_public(job, histories[job.id or 0]) for job in jobs]


def _public(job: ChargerJob, history: list[ChargerJobStatus]) -> JobPublic:
    location = job.location
    if job.upload_token_hash:  # the upload URL is a credential: not shown again
        location = charger_jobs.without_token(location)
    return JobPublic(
        id=job.id or 0,
        charger_id=job.charger_id,
        kind=job.kind,
        status=job.status,
        location=location,
        file_name=job.file_name,
        file_size=job.file_size,
        history=[{"status": h.status, "at": h.at.isoformat()} for h in history],
        requested_by=job.requested_by,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


async def _out(
    outcome: JobOutcome, charger_id: str, action: str, sessions: async_sessionmaker[AsyncSession]
) -> JobCommandOut:
    status = charger_word(outcome.result, charger_id, action)
    async with sessions() as db:
        (public,) = await _public_all(db, [outcome.job])
    return JobCommandOut(status=status, job=public)


@router.post("/chargers/{charger_id}/firmware")
async def update_firmware(
    charger_id: str, body: FirmwareIn, request: Request, who: ReviewerDep, sessions: SessionsDep
) -> JobCommandOut:
    """UpdateFirmware; follow the job for Downloading … Installed (or a failure)."""
    outcome = await _jobs(request).update_firmware(
        charger_id,
        body.location,
        body.retrieve_at,
        retries=body.retries,
        retry_interval=body.retry_interval,
        requested_by=who,
    )
    return await _out(outcome, charger_id, "UpdateFirmware", sessions)


@router.post("/chargers/{charger_id}/firmware/signed")
async def signed_update_firmware(
    charger_id: str,
    body: SignedFirmwareIn,
    request: Request,
    who: ReviewerDep,
    sessions: SessionsDep,
) -> JobCommandOut:
    """SignedUpdateFirmware (security extension): Accepted, Rejected, AcceptedCanceled,
    InvalidCertificate or RevokedCertificate."""
    outcome = await _jobs(request).signed_update_firmware(
        charger_id,
        body.location,
        body.signing_certificate,
        body.signature,
        body.retrieve_at,
        body.install_at,
        retries=body.retries,
        retry_interval=body.retry_interval,
        requested_by=who,
    )
    return await _out(outcome, charger_id, "SignedUpdateFirmware", sessions)


@router.post("/chargers/{charger_id}/diagnostics")
async def get_diagnostics(
    charger_id: str,
    request: Request,
    who: ReviewerDep,
    sessions: SessionsDep,
    body: DiagnosticsIn | None = None,
) -> JobCommandOut:
    """GetDiagnostics: the charger uploads to a URL of ours; `job.file_name` is its name
    (None: the charger has no diagnostics)."""
    body = body or DiagnosticsIn()
    outcome = await _jobs(request).get_diagnostics(
        charger_id,
        body.start_time,
        body.stop_time,
        retries=body.retries,
        retry_interval=body.retry_interval,
        requested_by=who,
        protocol=body.protocol,
    )
    return await _out(outcome, charger_id, "GetDiagnostics", sessions)


@router.post("/chargers/{charger_id}/logs")
async def get_log(
    charger_id: str,
    request: Request,
    who: ReviewerDep,
    sessions: SessionsDep,
    body: LogIn | None = None,
) -> JobCommandOut:
    """GetLog (security extension): Accepted, Rejected or AcceptedCanceled."""
    body = body or LogIn()
    outcome = await _jobs(request).get_log(
        charger_id,
        body.log_type,
        body.oldest,
        body.latest,
        retries=body.retries,
        retry_interval=body.retry_interval,
        requested_by=who,
        protocol=body.protocol,
    )
    return await _out(outcome, charger_id, "GetLog", sessions)


@router.get("/chargers/{charger_id}/jobs")
async def list_jobs(charger_id: str, db: SessionDep) -> list[JobPublic]:
    """The charger's newest 50 firmware and upload jobs."""
    return await _public_all(db, await charger_jobs.jobs_of(db, charger_id))


@router.get("/jobs/{job_id}")
async def get_job(job_id: IdPath, db: SessionDep) -> JobPublic:
    (public,) = await _public_all(db, [await get_or_404(db, ChargerJob, job_id, "job")])
    return public


@router.get("/jobs/{job_id}/file", response_class=FileResponse)
async def job_file(job_id: IdPath, db: SessionDep) -> FileResponse:
    """The diagnostics or log file the charger uploaded (404 until it has)."""
    job, path = await charger_jobs.uploaded_file(db, job_id)
    return FileResponse(path, filename=job.file_name or path.name)


@router.get("/chargers/{charger_id}/security-events")
async def security_events(charger_id: str, db: SessionDep) -> list[SecurityEventPublic]:
    """The newest 100 SecurityEventNotifications of the charger."""
    found: list[SecurityEvent] = await charger_jobs.security_events_of(db, charger_id)
    return [
        SecurityEventPublic(
            id=e.id or 0,
            type=e.type,
            tech_info=e.tech_info,
            occurred_at=e.occurred_at,
            received_at=e.received_at,
        )
        for e in found
    ]


@router.post("/chargers/{charger_id}/extended-trigger")
async def extended_trigger(
    charger_id: str, body: ExtendedTriggerIn, sessions: SessionsDep, commands: CommandsDep
) -> StatusOut:
    """ExtendedTriggerMessage (security extension): Accepted, Rejected or NotImplemented."""
    async with sessions() as db:
        await charger_jobs.known_charger(db, charger_id)
    result = await commands.operate(
        charger_id,
        "ExtendedTriggerMessage",
        {"requested_message": body.message, "connector_id": body.connector_id},
    )
    return StatusOut(status=charger_word(result, charger_id, "ExtendedTriggerMessage"))
