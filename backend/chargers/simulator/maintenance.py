"""A simulated charge point's firmware updates and its diagnostics and log uploads.

UpdateFirmware: the image is fetched over HTTP(S) (FTP is not simulated: DownloadFailed),
then Downloaded, Installing, Installed, each a FirmwareStatusNotification, and the charge
point reports the new version (the image's file name) at its next boot. SignedUpdateFirmware
does the same with SignedFirmwareStatusNotifications (the signature is checked for presence
only: the simulator holds no manufacturer certificate). GetDiagnostics and GetLog upload a
small text file with HTTP PUT to the location given, the file name appended, or with FTP STOR
(`ftplib`) to an ftp:// location.
"""

from __future__ import annotations

import asyncio
import ftplib
import io
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import httpx
from ocpp.v16 import call

if TYPE_CHECKING:
    from backend.chargers.simulator.charge_point import SimulatedChargePoint

LOG = logging.getLogger(__name__)
HTTP_TIMEOUT = 10.0


def _http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


async def _fetch(url: str) -> bytes | None:
    if not _http(url):
        return None
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            response = await client.get(url)
    except httpx.HTTPError:
        return None
    return response.content if response.status_code == 200 else None


def _ftp_store(location: str, name: str, content: bytes) -> None:
    """STOR `content` as `name` at an ftp:// location (user and password in the URL)."""
    parts = urlsplit(location)
    with ftplib.FTP(timeout=HTTP_TIMEOUT) as ftp:
        ftp.connect(parts.hostname or "", parts.port or 21)
        ftp.login(unquote(parts.username or "anonymous"), unquote(parts.password or ""))
        if parts.path.strip("/"):
            ftp.cwd(parts.path)
        ftp.storbinary(f"STOR {name}", io.BytesIO(content))


async def _put(location: str, name: str, content: bytes) -> bool:
    if location.startswith("ftp://"):
        try:
            await asyncio.to_thread(_ftp_store, location, name, content)
        except (OSError, ftplib.Error):
            return False
        return True
    if not _http(location):
        return False
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            response = await client.put(f"{location.rstrip('/')}/{name}", content=content)
    except httpx.HTTPError:
        return False
    return response.is_success


CORE_FIRMWARE = frozenset(
    {"Downloaded", "DownloadFailed", "Downloading", "Idle", "InstallationFailed", "Installing"}
)


class Maintenance:
    """What one simulated charge point does for UpdateFirmware, GetDiagnostics and GetLog."""

    def __init__(self, sim: SimulatedChargePoint) -> None:
        self._sim = sim
        self.firmware_version = "sim-1.0"
        self.firmware_status = "Idle"
        self.log_status = "Idle"
        self.diagnostics_status = "Idle"
        self.uploads: list[str] = []  # file names uploaded, oldest first
        self.upload_locations: list[str] = []  # where it was asked to upload, oldest first

    async def _tell(self, payload: Any) -> None:
        try:
            await self._sim._call(payload)
        except Exception as exc:  # offline: a status notification is not queued
            LOG.info("%s: %s not sent: %r", self._sim._id, type(payload).__name__, exc)

    async def _firmware(self, status: str, request_id: int | None) -> None:
        self.firmware_status = status
        if request_id is None:
            await self._tell(call.FirmwareStatusNotification(status=status))
        else:
            await self._tell(
                call.SignedFirmwareStatusNotification(status=status, request_id=request_id)
            )

    async def update_firmware(self, location: str, request_id: int | None = None) -> None:
        """Download, install, and take the image's name as the new version."""
        await self._firmware("Downloading", request_id)
        image = await _fetch(location)
        if image is None:
            await self._firmware("DownloadFailed", request_id)
            return
        await self._firmware("Downloaded", request_id)
        if request_id is not None:
            await self._firmware("SignatureVerified", request_id)
        await self._firmware("Installing", request_id)
        name = urlsplit(location).path.rsplit("/", 1)[-1] or "image"
        self.firmware_version = name[:50]
        await self._firmware("Installed", request_id)

    async def upload_diagnostics(self, location: str, name: str) -> None:
        self.upload_locations.append(location)
        self.diagnostics_status = "Uploading"
        await self._tell(call.DiagnosticsStatusNotification(status="Uploading"))
        uploaded = await _put(location, name, self._report("diagnostics"))
        if uploaded:
            self.uploads.append(name)
        self.diagnostics_status = "Uploaded" if uploaded else "UploadFailed"
        await self._tell(call.DiagnosticsStatusNotification(status=self.diagnostics_status))

    async def upload_log(self, location: str, name: str, request_id: int, log_type: str) -> None:
        self.log_status = "Uploading"
        await self._tell(call.LogStatusNotification(status="Uploading", request_id=request_id))
        uploaded = await _put(location, name, self._report(log_type))
        if uploaded:
            self.uploads.append(name)
        self.log_status = "Uploaded" if uploaded else "UploadFailure"
        await self._tell(call.LogStatusNotification(status=self.log_status, request_id=request_id))

    async def report_firmware_status(self) -> None:
        """ExtendedTriggerMessage FirmwareStatusNotification: the signed one, as the
        security extension says (Idle when nothing is going on)."""
        await self._tell(call.SignedFirmwareStatusNotification(status=self.firmware_status))

    async def report_core_firmware_status(self) -> None:
        """TriggerMessage FirmwareStatusNotification (OCPP 1.6 core): Idle unless an update is
        under way (a signed update's own states are the security extension's)."""
        status = self.firmware_status if self.firmware_status in CORE_FIRMWARE else "Idle"
        await self._tell(call.FirmwareStatusNotification(status=status))

    async def report_diagnostics_status(self) -> None:
        """TriggerMessage DiagnosticsStatusNotification: Idle unless an upload is under way."""
        status = "Uploading" if self.diagnostics_status == "Uploading" else "Idle"
        await self._tell(call.DiagnosticsStatusNotification(status=status))

    async def report_log_status(self) -> None:
        await self._tell(call.LogStatusNotification(status=self.log_status))

    def _report(self, what: str) -> bytes:
        lines = [
            f"{what} of {self._sim._id}",
            f"firmware {self.firmware_version}",
            *(f"connector {c.id}: {c.status}" for c in self._sim._outlets.values()),
        ]
        return "\n".join(lines).encode() + b"\n"
