"""Where chargers upload the diagnostics and logs an operator asked for (GetDiagnostics, GetLog).

`PUT` or `POST` the file to the URL the request named (`/uploads/<token>`), optionally with
the file name appended; a `multipart/form-data` POST (curl `-F`) works as well as a raw body.
No other credential: the token, random per request, is the permission (only its hash is kept).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from backend.services.charger_jobs import ChargerJobs, UploadRefusedError

router = APIRouter(tags=["uploads"])
CHUNK = 64 * 1024
Token = Annotated[str, Path(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Name = Annotated[str, Path(min_length=1, max_length=255)]


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


async def _receive(request: Request, token: str, name: str | None) -> JSONResponse:
    jobs: ChargerJobs = request.app.state.jobs
    limit = request.app.state.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:  # multipart framing aside
        return JSONResponse(status_code=413, content={"detail": f"at most {limit} bytes"})
    chunks: AsyncIterator[bytes]
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=10)
        upload = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if upload is None:
            return JSONResponse(status_code=400, content={"detail": "no file in the form"})
        name = name or upload.filename
        chunks = _file_chunks(upload)
    else:
        chunks = request.stream()
    try:
        job = await jobs.receive_upload(token, name, chunks)
    except UploadRefusedError as refused:
        return JSONResponse(status_code=refused.status, content={"detail": str(refused)})
    return JSONResponse(status_code=201, content={"received_bytes": job.file_size})


async def upload(request: Request, token: Token) -> JSONResponse:
    """A charger's upload for the request whose URL this is."""
    return await _receive(request, token, None)


async def upload_named(request: Request, token: Token, name: Name) -> JSONResponse:
    """The same, the file name appended to the URL (as many chargers do)."""
    return await _receive(request, token, name)


for _method in ("PUT", "POST"):  # one route per method: each its own OpenAPI operation
    router.add_api_route(
        "/uploads/{token}", upload, methods=[_method], name=f"upload_{_method.lower()}"
    )
    router.add_api_route(
        "/uploads/{token}/{name}",
        upload_named,
        methods=[_method],
        name=f"upload_named_{_method.lower()}",
    )
