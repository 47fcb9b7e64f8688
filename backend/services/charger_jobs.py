"""Firmware updates, diagnostics and log uploads, and security events (OCPP 1.6 Firmware
Management profile and the 1.6 security whitepaper's extension).

Each request is a `ChargerJob` row written before the call goes out (its id is the requestId
of GetLog and SignedUpdateFirmware). The charger's answer, then every status notification it
sends, is a `charger_job_status` row (appended, never rewritten: notifications may arrive
while the answer is being written) and the job's `status` (the answer only while it is
still `requested`). FirmwareStatusNotification and
DiagnosticsStatusNotification carry no request id: they belong to the charger's newest job of
that kind. Uploads (diagnostics, logs) go to `<PUBLIC_BASE_URL>/uploads/<token>`: a random
token per job, of which only a hash is stored, so the URL is the charger's whole permission;
or, for chargers that only upload by FTP, to `ftp://chargebot:<token>@<host>:<port>/` on our
FTP server (`backend/api/ftp_uploads.py`), where the token is the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import Charger, ChargerJob, ChargerJobStatus, SecurityEvent
from backend.services.charger_configuration import reported_value
from backend.services.errors import InvalidFieldError, NotFoundError
from backend.services.ports import ChargerCommands, CommandResult
from backend.services.rows import get_or_404

log = logging.getLogger(__name__)

FIRMWARE, SIGNED_FIRMWARE, DIAGNOSTICS, LOG = "firmware", "signed_firmware", "diagnostics", "log"
UPLOADS = (DIAGNOSTICS, LOG)
REQUESTED = "requested"
# A job the charger is still working on: an Idle report then means it dropped the job.
UNDER_WAY = frozenset(
    {
        REQUESTED,
        "Accepted",
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Uploading",
    }
)
FTP_USER = "chargebot"  # FTP uploads log in as this user with the job's token as password
TRANSFER_PROTOCOLS_KEY = "SupportedFileTransferProtocols"
LOCATION_SCHEMES = ("http://", "https://", "ftp://", "ftps://", "sftp://")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class JobOutcome:
    """A job after its request went out, and the charger's answer."""

    job: ChargerJob
    result: CommandResult


class UploadRefusedError(Exception):
    """An upload that is not taken: `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ocpp_time(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def check_location(location: str) -> str:
    """A URL a charger can fetch a firmware image from (HTTP(S) or FTP(S)/SFTP)."""
    location = location.strip()
    if not location.lower().startswith(LOCATION_SCHEMES) or len(location) > 512:
        raise InvalidFieldError(
            "location", "an http(s)://, ftp(s):// or sftp:// URL of at most 512 characters"
        )
    return location


async def _record(
    db: AsyncSession, job_id: int, status: str, at: datetime, *, only_if_requested: bool = False
) -> None:
    """Append the charger's word to the job's history; make it the job's status (an answer
    only while nothing newer came). Atomic UPDATEs: no notification is lost to a race."""
    status = status[:32]
    db.add(ChargerJobStatus(job_id=job_id, status=status, at=at))
    query = update(ChargerJob).where(col(ChargerJob.id) == job_id)
    if only_if_requested:
        query = query.where(col(ChargerJob.status) == REQUESTED)
    await db.execute(query.values(status=status, updated_at=at))


class ChargerJobs:
    """Requests files from and to chargers, and records what the chargers report."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        commands: ChargerCommands,
        *,
        public_base_url: str,
        upload_dir: Path,
        max_upload_bytes: int,
        ftp_base: str | None = None,
    ) -> None:
        self._sessions = sessions
        self._commands = commands
        self._base = public_base_url.rstrip("/")
        self._ftp_base = ftp_base  # "ftp://host:port" of our FTP upload server, if it runs
        self._upload_dir = upload_dir
        self._max_upload_bytes = max_upload_bytes

    # -- requests ---------------------------------------------------------------------------

    async def _open(
        self,
        charger_id: str,
        kind: str,
        location: str | None,
        requested_by: str | None,
        protocol: str = "auto",
    ) -> tuple[ChargerJob, str | None]:
        """The job's row (committed) and, for an upload, its token."""
        token = secrets.token_urlsafe(24) if location is None else None
        async with self._sessions() as db:
            await get_or_404(db, Charger, charger_id, "charger")
            if token is not None:
                ftp = await self._by_ftp(db, charger_id, protocol)
            job = ChargerJob(
                charger_id=charger_id,
                kind=kind,
                status=REQUESTED,
                location=location or "",
                upload_token_hash=token_hash(token) if token else None,
                requested_by=requested_by,
            )
            db.add(job)
            await db.flush()
            assert job.id is not None
            db.add(ChargerJobStatus(job_id=job.id, status=REQUESTED, at=job.created_at))
            await db.commit()
            if token is not None:
                job.location = (
                    f"{self._ftp_base.replace('://', f'://{FTP_USER}:{token}@', 1)}/"
                    if ftp and self._ftp_base
                    else f"{self._base}/uploads/{token}"
                )
                await db.commit()
        return job, token

    async def _by_ftp(self, db: AsyncSession, charger_id: str, protocol: str) -> bool:
        """Upload by FTP: asked for, or (auto) the charger reports FTP but no HTTP(S) among its
        SupportedFileTransferProtocols and our FTP server runs."""
        if protocol == "ftp" and self._ftp_base is None:
            raise InvalidFieldError("protocol", "FTP uploads are off (FTP_UPLOAD_PORT)")
        if protocol != "auto":
            return protocol == "ftp"
        reported = await reported_value(db, charger_id, TRANSFER_PROTOCOLS_KEY)
        offered = {p.strip().upper() for p in (reported or "").split(",")}
        return self._ftp_base is not None and "FTP" in offered and not {"HTTP", "HTTPS"} & offered

    async def _send(self, job: ChargerJob, action: str, fields: dict[str, Any]) -> JobOutcome:
        assert job.id is not None
        result = await self._commands.operate(job.charger_id, action, fields)
        answered_at = utcnow()
        async with self._sessions() as db:
            # The charger answers before it notifies: a notification written first keeps its
            # place after the answer in the history.
            first_note = await db.scalar(
                select(func.min(col(ChargerJobStatus.at))).where(
                    col(ChargerJobStatus.job_id) == job.id,
                    col(ChargerJobStatus.status) != REQUESTED,
                )
            )
            if first_note is not None and first_note <= answered_at:
                answered_at = first_note - timedelta(microseconds=1)
            await _record(db, job.id, result.word, answered_at, only_if_requested=True)
            name = result.response.get("file_name") or result.response.get("filename")
            if name:
                await db.execute(
                    update(ChargerJob)
                    .where(col(ChargerJob.id) == job.id)
                    .values(file_name=str(name)[:255])
                )
            await db.commit()
            current = await db.get(ChargerJob, job.id, populate_existing=True)
        assert current is not None
        return JobOutcome(current, result)

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime | None = None,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        requested_by: str | None = None,
    ) -> JobOutcome:
        """UpdateFirmware: the charger fetches `location` from `retrieve_at` (default now)."""
        job, _ = await self._open(charger_id, FIRMWARE, check_location(location), requested_by)
        fields: dict[str, Any] = {
            "location": job.location,
            "retrieve_date": ocpp_time(retrieve_at or utcnow()),
            "retries": retries,
            "retry_interval": retry_interval,
        }
        return await self._send(job, "UpdateFirmware", fields)

    async def signed_update_firmware(
        self,
        charger_id: str,
        location: str,
        signing_certificate: str,
        signature: str,
        retrieve_at: datetime | None = None,
        install_at: datetime | None = None,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        requested_by: str | None = None,
    ) -> JobOutcome:
        """SignedUpdateFirmware: the charger checks the image's signature before installing."""
        job, _ = await self._open(
            charger_id, SIGNED_FIRMWARE, check_location(location), requested_by
        )
        firmware: dict[str, Any] = {
            "location": job.location,
            "retrieve_date_time": ocpp_time(retrieve_at or utcnow()),
            "signing_certificate": signing_certificate,
            "signature": signature,
        }
        if install_at is not None:
            firmware["install_date_time"] = ocpp_time(install_at)
        fields = {
            "request_id": job.id,
            "firmware": firmware,
            "retries": retries,
            "retry_interval": retry_interval,
        }
        return await self._send(job, "SignedUpdateFirmware", fields)

    async def get_diagnostics(
        self,
        charger_id: str,
        start_time: datetime | None = None,
        stop_time: datetime | None = None,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        requested_by: str | None = None,
        protocol: str = "auto",
    ) -> JobOutcome:
        """GetDiagnostics: the charger uploads its diagnostics file to our upload URL (HTTP,
        or FTP: `protocol` auto, http or ftp)."""
        job, _ = await self._open(charger_id, DIAGNOSTICS, None, requested_by, protocol)
        fields: dict[str, Any] = {
            "location": job.location,
            "retries": retries,
            "retry_interval": retry_interval,
            "start_time": ocpp_time(start_time) if start_time else None,
            "stop_time": ocpp_time(stop_time) if stop_time else None,
        }
        return await self._send(job, "GetDiagnostics", fields)

    async def get_log(
        self,
        charger_id: str,
        log_type: str,
        oldest: datetime | None = None,
        latest: datetime | None = None,
        *,
        retries: int | None = None,
        retry_interval: int | None = None,
        requested_by: str | None = None,
        protocol: str = "auto",
    ) -> JobOutcome:
        """GetLog (DiagnosticsLog or SecurityLog), uploaded to our upload URL (as above)."""
        job, _ = await self._open(charger_id, LOG, None, requested_by, protocol)
        entry: dict[str, Any] = {"remote_location": job.location}
        if oldest is not None:
            entry["oldest_timestamp"] = ocpp_time(oldest)
        if latest is not None:
            entry["latest_timestamp"] = ocpp_time(latest)
        fields = {
            "log": entry,
            "log_type": log_type,
            "request_id": job.id,
            "retries": retries,
            "retry_interval": retry_interval,
        }
        return await self._send(job, "GetLog", fields)

    # -- what chargers report -----------------------------------------------------------------

    async def reported(
        self, charger_id: str, kinds: tuple[str, ...], status: str, request_id: int | None = None
    ) -> ChargerJob | None:
        """A status notification: the job it names, else the charger's newest of `kinds`.
        Idle (a triggered report: nothing under way) ends only a job still under way (the
        charger dropped it, e.g. in a reboot); a finished job stays as it ended."""
        async with self._sessions() as db:
            query = select(ChargerJob).where(
                col(ChargerJob.charger_id) == charger_id, col(ChargerJob.kind).in_(kinds)
            )
            if request_id is not None:
                query = query.where(col(ChargerJob.id) == request_id)
            job = (await db.scalars(query.order_by(col(ChargerJob.id).desc()))).first()
            if job is None or job.id is None:
                log.info("%s reported %s for no job of ours (%s)", charger_id, status, kinds)
                return None
            if status == "Idle" and job.status not in UNDER_WAY:
                log.info("%s reports %s idle", charger_id, "/".join(kinds))
                return None
            await _record(db, job.id, status, utcnow())
            await db.commit()
            return job

    async def security_event(
        self, charger_id: str, kind: str, at: datetime, tech_info: str | None
    ) -> None:
        async with self._sessions() as db:
            db.add(
                SecurityEvent(
                    charger_id=charger_id,
                    type=kind[:50],
                    tech_info=tech_info[:255] if tech_info else None,
                    occurred_at=at,
                )
            )
            await db.commit()
        log.warning("%s security event %s: %s", charger_id, kind, tech_info or "-")

    # -- uploads --------------------------------------------------------------------------------

    async def _upload_job(self, token: str) -> ChargerJob | None:
        """The upload job (diagnostics, log) whose token this is, if any."""
        async with self._sessions() as db:
            job = await db.scalar(
                select(ChargerJob).where(col(ChargerJob.upload_token_hash) == token_hash(token))
            )
        return job if job is not None and job.kind in UPLOADS else None

    async def upload_expected(self, token: str) -> bool:
        """Whether `token` is an upload job's (the FTP server's login check)."""
        return await self._upload_job(token) is not None

    async def receive_upload(
        self, token: str, name: str | None, chunks: AsyncIterator[bytes]
    ) -> ChargerJob:
        """Store an upload for the job whose token this is; the file replaces an earlier one."""
        job = await self._upload_job(token)
        if job is None:
            raise UploadRefusedError(404, "no upload is expected here")
        safe = _SAFE_NAME.sub("_", name or job.file_name or f"{job.kind}-{job.id}")[-100:]
        folder = self._upload_dir / _SAFE_NAME.sub("_", job.charger_id)
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        target = folder / f"{job.id}-{safe.lstrip('.') or 'upload'}"
        partial = target.with_suffix(target.suffix + ".part")
        size = 0
        out = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:  # the disk writes off the event loop
                size += len(chunk)
                if size > self._max_upload_bytes:
                    raise UploadRefusedError(413, f"at most {self._max_upload_bytes} bytes")
                await asyncio.to_thread(out.write, chunk)
            await asyncio.to_thread(out.close)
            await asyncio.to_thread(partial.replace, target)
        finally:
            out.close()
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        async with self._sessions() as db:
            current = await db.get(ChargerJob, job.id)
            assert current is not None
            current.stored_as, current.file_size = str(target), size
            current.file_name = current.file_name or (name or safe)[:255]
            current.updated_at = utcnow()
            await db.commit()
        return current


def without_token(location: str) -> str:
    """An upload location as shown again: without its token (the charger's permission)."""
    parts = urlsplit(location)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":…@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return location.rsplit("/", 1)[0] + "/…"


async def known_charger(db: AsyncSession, charger_id: str) -> None:
    """404 for an unknown charger."""
    await get_or_404(db, Charger, charger_id, "charger")


async def jobs_of(db: AsyncSession, charger_id: str, limit: int = 50) -> list[ChargerJob]:
    await get_or_404(db, Charger, charger_id, "charger")
    query = (
        select(ChargerJob)
        .where(col(ChargerJob.charger_id) == charger_id)
        .order_by(col(ChargerJob.id).desc())
        .limit(limit)
    )
    return list((await db.scalars(query)).all())


async def security_events_of(
    db: AsyncSession, charger_id: str, limit: int = 100
) -> list[SecurityEvent]:
    await get_or_404(db, Charger, charger_id, "charger")
    query = (
        select(SecurityEvent)
        .where(col(SecurityEvent.charger_id) == charger_id)
        .order_by(col(SecurityEvent.id).desc())
        .limit(limit)
    )
    return list((await db.scalars(query)).all())


async def history_of(db: AsyncSession, job_ids: list[int]) -> dict[int, list[ChargerJobStatus]]:
    """Each job's status lines, oldest first."""
    rows = (
        await db.scalars(
            select(ChargerJobStatus)
            .where(col(ChargerJobStatus.job_id).in_(job_ids))
            .order_by(col(ChargerJobStatus.at), col(ChargerJobStatus.id))
        )
    ).all()
    found: dict[int, list[ChargerJobStatus]] = {job_id: [] for job_id in job_ids}
    for row in rows:
        found[row.job_id].append(row)
    return found


async def uploaded_file(db: AsyncSession, job_id: int) -> tuple[ChargerJob, Path]:
    """A job's received upload (404 if none)."""
    job = await get_or_404(db, ChargerJob, job_id, "job")
    if not job.stored_as or not await asyncio.to_thread(Path(job.stored_as).is_file):
        raise NotFoundError(f"job {job_id} has no uploaded file")
    return job, Path(job.stored_as)
