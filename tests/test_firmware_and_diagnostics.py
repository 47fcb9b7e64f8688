"""Firmware updates, diagnostics and log uploads, security events and ExtendedTriggerMessage
(OCPP 1.6 Firmware Management, the 1.6 security extension; OCTT TC_044, TC_045 and the
security cases without certificates), with the simulator fetching and uploading over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import ftplib
import functools
import http.server
import io
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action

from backend.app import create_app
from backend.chargers.typed_ocpp import on
from backend.settings import Settings
from tests.helpers.charging import priced_charger, simulator
from tests.helpers.server import LiveServer, free_port, served
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger

CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIB...\n-----END CERTIFICATE-----\n"


@contextlib.contextmanager
def file_server(folder: Path) -> Iterator[str]:
    """A plain HTTP server of `folder` (where an operator keeps firmware images)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
async def live_uploads(live_settings: Settings, tmp_path: Path) -> AsyncIterator[LiveServer]:
    """The live server at a URL it knows (chargers upload to PUBLIC_BASE_URL/uploads/...)."""
    port = free_port()
    settings = live_settings.model_copy(
        update={
            "public_base_url": f"http://127.0.0.1:{port}",
            "upload_dir": str(tmp_path / "uploads"),
            "max_upload_bytes": 4096,
        }
    )
    async with served(create_app(settings), port=port) as live:
        yield live


async def job(http: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get(f"/admin/jobs/{job_id}")).json()
    return found


def statuses(found: dict[str, Any]) -> list[str]:
    return [line["status"] for line in found["history"]]


async def test_a_firmware_update_is_followed_to_installed(
    live: LiveServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "fw-2.0.bin").write_bytes(b"\x7fFIRMWARE" * 100)
    charger = await priced_charger(live.http)
    url = f"/admin/chargers/{charger['id']}/firmware"
    with file_server(tmp_path) as base:
        async with simulator(live, charger["id"]) as sim:
            started = await live.http.post(url, json={"location": f"{base}/fw-2.0.bin"})
            assert started.status_code == 200, started.text
            assert started.json()["status"] == "Accepted"
            job_id = started.json()["job"]["id"]
            done = await eventually(
                lambda: job(live.http, job_id), lambda j: j["status"] == "Installed"
            )
            assert statuses(done) == [
                "requested",
                "Accepted",
                "Downloading",
                "Downloaded",
                "Installing",
                "Installed",
            ]
            assert sim.maintenance.firmware_version == "fw-2.0.bin"
            # OCTT TC_054: the operator asks for its firmware and diagnostics status; Idle (nothing
            # under way) leaves the finished job as it was.
            caplog.set_level(logging.INFO, logger="backend.services.charger_jobs")
            for message in ("FirmwareStatusNotification", "DiagnosticsStatusNotification"):
                trigger = await live.http.post(
                    f"/admin/chargers/{charger['id']}/trigger", json={"message": message}
                )
                assert trigger.json()["status"] == "Accepted", trigger.text
            await eventually(
                lambda: asyncio.sleep(0, caplog.text),
                lambda text: (
                    "reports firmware idle" in text
                    and "reported Idle for no job of ours (('diagnostics',))" in text
                ),
            )
            assert (await job(live.http, job_id))["status"] == "Installed"

            missing = await live.http.post(url, json={"location": f"{base}/no-such-image.bin"})
            failed = await eventually(
                lambda: job(live.http, missing.json()["job"]["id"]),
                lambda j: j["status"] == "DownloadFailed",
            )
            assert failed["kind"] == "firmware"
    local_file = await live.http.post(url, json={"location": "file:///etc/passwd"})
    assert local_file.status_code == 422
    offline = await live.http.post(url, json={"location": "https://fw.example.se/fw.bin"})
    assert offline.status_code == 409
    listed = (await live.http.get(f"/admin/chargers/{charger['id']}/jobs")).json()
    assert [j["status"] for j in listed] == ["offline", "DownloadFailed", "Installed"]


async def test_diagnostics_are_uploaded_to_us_and_downloadable(live_uploads: LiveServer) -> None:
    live = live_uploads
    charger = await priced_charger(live.http)
    async with simulator(live, charger["id"]) as sim:
        asked = await live.http.post(f"/admin/chargers/{charger['id']}/diagnostics", json={})
        assert asked.status_code == 200, asked.text
        body = asked.json()
        assert body["job"]["file_name"] == f"{charger['id']}-diagnostics.txt"
        assert body["job"]["location"].endswith("/uploads/…")  # the token is not shown again
        done = await eventually(
            lambda: job(live.http, body["job"]["id"]),
            lambda j: j["status"] == "Uploaded" and j["file_size"],
        )
        assert statuses(done)[-2:] == ["Uploading", "Uploaded"]
        assert sim.maintenance.uploads == [f"{charger['id']}-diagnostics.txt"]
    download = await live.http.get(f"/admin/jobs/{body['job']['id']}/file")
    assert download.status_code == 200
    assert f"diagnostics of {charger['id']}".encode() in download.content


async def test_uploads_need_the_request_s_token_and_stay_small(live_uploads: LiveServer) -> None:
    live = live_uploads
    charger = await priced_charger(live.http)
    anonymous = httpx.AsyncClient(base_url=f"http://127.0.0.1:{live.port}")
    async with anonymous, simulator(live, charger["id"], diagnostics=False):
        nothing = await live.http.post(f"/admin/chargers/{charger['id']}/diagnostics")
        assert nothing.json()["job"]["file_name"] is None  # the charger had nothing to send
        guessed = await anonymous.put("/uploads/AAAAAAAAAAAAAAAAAAAAAAAA/x.txt", content=b"x")
        assert guessed.status_code == 404
        no_file = await live.http.get(f"/admin/jobs/{nothing.json()['job']['id']}/file")
        assert no_file.status_code == 404
        short = await anonymous.put("/uploads/abc/x.txt", content=b"x")
        assert short.status_code == 422  # not even a token's shape


async def test_logs_and_security_events(live_uploads: LiveServer) -> None:
    live = live_uploads
    charger = await priced_charger(live.http)
    base = f"/admin/chargers/{charger['id']}"
    async with simulator(live, charger["id"]) as sim:
        asked = await live.http.post(f"{base}/logs", json={"log_type": "SecurityLog"})
        assert asked.json()["status"] == "Accepted", asked.text
        job_id = asked.json()["job"]["id"]
        done = await eventually(lambda: job(live.http, job_id), lambda j: j["status"] == "Uploaded")
        assert done["file_name"] == f"{charger['id']}-securitylog.txt"
        await sim.send_security_event("InvalidCentralSystemCertificate", "expired")
        events = (await live.http.get(f"{base}/security-events")).json()
        assert [(e["type"], e["tech_info"]) for e in events] == [
            ("InvalidCentralSystemCertificate", "expired")
        ]
        triggered = await live.http.post(
            f"{base}/extended-trigger", json={"message": "LogStatusNotification"}
        )
        assert triggered.json() == {"status": "Accepted"}
        unknown = await live.http.post(
            f"{base}/extended-trigger", json={"message": "StatusNotification", "connector_id": 7}
        )
        assert unknown.json() == {"status": "Rejected"}  # the charger has no connector 7


async def test_signed_firmware_is_checked_and_followed(live: LiveServer, tmp_path: Path) -> None:
    (tmp_path / "fw-3.0-signed.bin").write_bytes(b"signed image")
    charger = await priced_charger(live.http)
    url = f"/admin/chargers/{charger['id']}/firmware/signed"
    with file_server(tmp_path) as base:
        async with simulator(live, charger["id"]) as sim:
            body = {
                "location": f"{base}/fw-3.0-signed.bin",
                "signing_certificate": CERTIFICATE,
                "signature": "c2lnbmF0dXJl",
            }
            started = (await live.http.post(url, json=body)).json()
            assert started["status"] == "Accepted"
            done = await eventually(
                lambda: job(live.http, started["job"]["id"]), lambda j: j["status"] == "Installed"
            )
            assert "SignatureVerified" in statuses(done)  # the request id tied them to the job
            assert sim.maintenance.firmware_version == "fw-3.0-signed.bin"
            refused = await live.http.post(url, json={**body, "signing_certificate": "garbage"})
            assert refused.json()["status"] == "InvalidCertificate"
            assert refused.json()["job"]["status"] == "InvalidCertificate"


async def test_a_large_upload_is_refused(live_uploads: LiveServer) -> None:
    live = live_uploads
    charger = await priced_charger(live.http)
    async with simulator(live, charger["id"]) as sim:
        sim.maintenance.firmware_version = "x" * 5000  # a diagnostics file beyond 4 KiB
        asked = (await live.http.post(f"/admin/chargers/{charger['id']}/diagnostics")).json()
        failed = await eventually(
            lambda: job(live.http, asked["job"]["id"]), lambda j: j["status"] == "UploadFailed"
        )
        assert failed["file_size"] is None


async def test_a_charger_that_only_speaks_ftp_uploads_to_our_ftp_server(
    live_settings: Settings, tmp_path: Path
) -> None:
    """GetDiagnostics and GetLog for a charger whose SupportedFileTransferProtocols is FTP:
    the location is our FTP server, the job's token is the password, the file lands like an
    HTTP upload; a wrong password gets nothing."""
    port = free_port()
    settings = live_settings.model_copy(
        update={
            "public_base_url": "http://127.0.0.1:1",
            "upload_dir": str(tmp_path / "uploads"),
            "max_upload_bytes": 4096,
            "ftp_upload_port": port,
            "ftp_bind_host": "127.0.0.1",
        }
    )
    async with served(create_app(settings)) as live:
        charger = await priced_charger(live.http)
        base = f"/admin/chargers/{charger['id']}"
        async with simulator(live, charger["id"], file_transfer_protocols="FTP") as sim:
            await live.http.post(f"{base}/configuration/fetch")  # what it supports
            asked = await live.http.post(f"{base}/diagnostics", json={})
            body = asked.json()
            assert body["job"]["location"] == f"ftp://chargebot:…@127.0.0.1:{port}/"
            done = await eventually(
                lambda: job(live.http, body["job"]["id"]),
                lambda j: j["status"] == "Uploaded" and j["file_size"],
            )
            assert sim.maintenance.uploads == [done["file_name"]]
            download = await live.http.get(f"/admin/jobs/{body['job']['id']}/file")
            assert f"diagnostics of {charger['id']}".encode() in download.content

            logged = await live.http.post(f"{base}/logs", json={"log_type": "SecurityLog"})
            assert logged.json()["job"]["location"].startswith("ftp://")
            await eventually(
                lambda: job(live.http, logged.json()["job"]["id"]),
                lambda j: j["status"] == "Uploaded" and j["file_size"],
            )
            # Beyond MAX_UPLOAD_BYTES the upload is cut off and nothing of it is kept.
            given = urlsplit(sim.maintenance.upload_locations[0])
            stored = await job(live.http, body["job"]["id"])

            def too_large() -> None:
                with ftplib.FTP() as ftp:
                    ftp.connect("127.0.0.1", port, timeout=10)
                    ftp.login(given.username or "", given.password or "")
                    ftp.storbinary("STOR huge.txt", io.BytesIO(b"x" * 100_000))

            with pytest.raises((ftplib.Error, OSError)):
                await asyncio.to_thread(too_large)
            after = await job(live.http, body["job"]["id"])
            assert (after["file_name"], after["file_size"]) == (
                stored["file_name"],
                stored["file_size"],
            )
            over_http = await live.http.post(f"{base}/diagnostics", json={"protocol": "http"})
            assert over_http.json()["job"]["location"].startswith("http://127.0.0.1:1/uploads/")

        def wrong_password() -> None:
            with ftplib.FTP() as ftp:
                ftp.connect("127.0.0.1", port, timeout=10)
                ftp.login("chargebot", "not-a-token")

        with pytest.raises(ftplib.error_perm):
            await asyncio.to_thread(wrong_password)


async def test_ftp_uploads_are_off_unless_configured(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    asked = await live.http.post(
        f"/admin/chargers/{charger['id']}/diagnostics", json={"protocol": "ftp"}
    )
    assert asked.status_code == 422
    assert "FTP_UPLOAD_PORT" in asked.text


async def test_an_idle_report_ends_a_job_the_charger_dropped(live: LiveServer) -> None:
    """A charger that answered GetDiagnostics and then reports Idle (it rebooted mid-upload)
    will never upload: the job ends Idle instead of waiting forever."""

    class Forgetful(BareChargePoint):
        @on(Action.get_diagnostics)
        async def on_get_diagnostics(self, **_: Any) -> call_result.GetDiagnostics:
            return call_result.GetDiagnostics(file_name="diag.txt")

    charger = await priced_charger(live.http)
    async with bare_charger(live.ocpp_url, charger["id"], charge_point_class=Forgetful) as cp:
        await cp.boot()
        asked = await live.http.post(f"/admin/chargers/{charger['id']}/diagnostics", json={})
        job_id = asked.json()["job"]["id"]
        assert (await job(live.http, job_id))["status"] == "Accepted"
        await cp.call(call.DiagnosticsStatusNotification(status="Idle"))
        assert (await job(live.http, job_id))["status"] == "Idle"
