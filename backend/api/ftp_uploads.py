"""FTP uploads for chargers that cannot upload by HTTP (OCPP 1.6 GetDiagnostics, GetLog).

pyftpdlib serves FTP in its own threads (one per connection, so a login check or a file being
stored, which wait for the app's event loop, hold up only their own connection). A charger
logs in as `chargebot` with its job's upload token as the password (the token is in the
location it was given), may only store files, each into a private folder of that login; a
stored file is handed to `ChargerJobs.receive_upload` on the app's event loop, like an HTTP
upload, and the temporary copy is removed. Uploads larger than MAX_UPLOAD_BYTES are cut off.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import socket
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pyftpdlib.authorizers import AuthenticationFailed, DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import ThreadedFTPServer

from backend.services.charger_jobs import FTP_USER, ChargerJobs, UploadRefusedError
from backend.settings import Settings

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
STORE_TIMEOUT = 120.0  # seconds the FTP thread waits for an upload to be stored
PERMISSIONS = "elw"  # change into the folder, list it, store files: nothing else


class _TokenAuthorizer(DummyAuthorizer):  # type: ignore[misc]
    """Admits `chargebot` with a live upload token; every login gets only PERMISSIONS."""

    def __init__(self, uploads: FtpUploads) -> None:
        super().__init__()
        self._uploads = uploads

    def validate_authentication(self, username: str, password: str, handler: Any) -> None:
        if username != FTP_USER or not self._uploads.token_valid(password):
            raise AuthenticationFailed("Authentication failed.")

    def has_user(self, username: str) -> bool:
        return username == FTP_USER

    def get_home_dir(self, username: str) -> str:
        return tempfile.gettempdir()  # replaced by the login's own folder (below)

    def get_perms(self, username: str) -> str:
        return PERMISSIONS

    def has_perm(self, username: str, perm: str, path: str | None = None) -> bool:
        return perm in PERMISSIONS

    def get_msg_login(self, username: str) -> str:
        return "Upload your file here."

    def get_msg_quit(self, username: str) -> str:
        return "Thank you."


class _CappedDTPHandler(DTPHandler):  # type: ignore[misc]
    """A data connection that stops receiving beyond the upload limit."""

    max_bytes = 0

    def handle_read(self) -> None:
        super().handle_read()
        if self.max_bytes and self.tot_bytes_received > self.max_bytes and not self._closed:
            log.warning("FTP upload cut off at %d bytes", self.max_bytes)
            self._resp = (f"552 At most {self.max_bytes} bytes; transfer aborted.", log.info)
            self.close()  # an incomplete file: not stored

    handle_read_event = handle_read  # DTPHandler binds its own handle_read to this name


class _UploadHandler(FTPHandler):  # type: ignore[misc]
    """One FTP login: a private temporary folder, each received file stored for its job."""

    uploads: FtpUploads
    _folder: str | None = None

    def handle_auth_success(self, home: str, password: str, msg_login: str) -> None:
        self._drop_folder()  # a second login on one connection
        self._folder = tempfile.mkdtemp(prefix="ftp-upload-", dir=self.uploads.spool)
        super().handle_auth_success(self._folder, password, msg_login)

    def on_file_received(self, file: str) -> None:
        self.uploads.store(self.password, Path(file))

    def on_incomplete_file_received(self, file: str) -> None:
        Path(file).unlink(missing_ok=True)

    def close(self) -> None:
        self._drop_folder()
        super().close()

    def _drop_folder(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


class _Server(ThreadedFTPServer):  # type: ignore[misc]
    """pyftpdlib's threaded server with its stop flag and lock per instance, not per class."""

    def __init__(self, address: tuple[str, int], handler: type[FTPHandler]) -> None:
        self._exit = threading.Event()
        self._lock = threading.Lock()
        super().__init__(address, handler)


class FtpUploads:
    """The FTP upload server, run in a thread beside the app's event loop."""

    def __init__(
        self,
        jobs: ChargerJobs,
        loop: asyncio.AbstractEventLoop,
        *,
        host: str,
        port: int,
        spool: Path,
        max_bytes: int,
        passive_ports: range | None = None,
        masquerade: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._loop = loop
        self.spool = str(spool)
        spool.mkdir(parents=True, exist_ok=True)
        dtp = type("DTP", (_CappedDTPHandler,), {"max_bytes": max_bytes})
        handler = type(
            "Handler",
            (_UploadHandler,),
            {
                "uploads": self,
                "authorizer": _TokenAuthorizer(self),
                "dtp_handler": dtp,
                "passive_ports": passive_ports,
                "masquerade_address": masquerade,
                "banner": "chargebot uploads",
                "timeout": 120,
            },
        )
        self._server = _Server((host, port), handler)
        self.port: int = self._server.socket.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="ftp-uploads", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            self._server.serve_forever(timeout=0.2, blocking=False, handle_exit=False)
        self._server.close_all()

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, 10)

    # -- called on the FTP thread -----------------------------------------------------------

    def token_valid(self, token: str) -> bool:
        future = asyncio.run_coroutine_threadsafe(self._jobs.upload_expected(token), self._loop)
        try:
            return future.result(timeout=STORE_TIMEOUT)
        except Exception:
            log.exception("FTP login check failed")
            return False

    def store(self, token: str, path: Path) -> None:
        """Hand a received file to its job, then drop the temporary copy."""
        future = asyncio.run_coroutine_threadsafe(self._store(token, path), self._loop)
        try:
            future.result(timeout=STORE_TIMEOUT)
        except UploadRefusedError as refused:
            log.warning("FTP upload %s refused: %s", path.name, refused)
        except Exception:
            log.exception("FTP upload %s could not be stored", path.name)
        finally:
            path.unlink(missing_ok=True)

    async def _store(self, token: str, path: Path) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as source:
                while chunk := await asyncio.to_thread(source.read, CHUNK):
                    yield chunk

        await self._jobs.receive_upload(token, path.name, chunks())


def ftp_base(settings: Settings) -> str:
    """The ftp:// base chargers are given: FTP_PUBLIC_HOST, else PUBLIC_BASE_URL's host."""
    host = settings.ftp_public_host or urlsplit(settings.public_base_url).hostname or "localhost"
    return f"ftp://{host}:{settings.ftp_upload_port}"


def _masquerade(public_host: str) -> str | None:
    """The address passive replies name when chargers reach us through NAT: FTP_PUBLIC_HOST
    (resolved once if it is a name); None: the address the charger connected to."""
    if not public_host:
        return None
    try:
        return str(ipaddress.ip_address(public_host))
    except ValueError:
        try:
            return socket.gethostbyname(public_host)
        except OSError:
            log.warning(
                "FTP_PUBLIC_HOST %s does not resolve; passive replies name ours", public_host
            )
            return None


def passive_range(value: str) -> range | None:
    if not value:
        return None
    first, last = (int(part) for part in value.split("-"))
    return range(first, last + 1)


async def start_ftp_uploads(settings: Settings, jobs: ChargerJobs) -> FtpUploads | None:
    """The FTP server if FTP_UPLOAD_PORT is set; None if off, or if another process of this
    machine serves the port already (`--workers`: any process stores any job's upload)."""
    if not settings.ftp_upload_port:
        return None
    try:
        server = FtpUploads(
            jobs,
            asyncio.get_running_loop(),
            host=settings.ftp_bind_host,
            port=settings.ftp_upload_port,
            spool=Path(settings.upload_dir) / ".ftp-spool",
            max_bytes=settings.max_upload_bytes,
            passive_ports=passive_range(settings.ftp_passive_ports),
            masquerade=_masquerade(settings.ftp_public_host),
        )
    except OSError as error:
        log.warning("FTP uploads not served here (%s): another process may serve them", error)
        return None
    server.start()
    log.info("FTP uploads on port %d", server.port)
    return server


async def stop_ftp_uploads(server: FtpUploads | None) -> None:
    if server is not None:
        with contextlib.suppress(Exception):
            await server.stop()
