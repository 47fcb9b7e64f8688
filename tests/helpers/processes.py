"""Helpers for tests that run `chargebot` as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers.waiting import eventually_blocking

CHARGEBOT = str(Path(sys.executable).with_name("chargebot"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus anything chargebot reads, plus `extra`."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "ADMIN_TOKEN", "SECRET_KEY", "ENVIRONMENT", "PUBLIC_BASE_URL"}
    }
    return {**keep, **extra}


def wait_for_health(base: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until `base`/healthz answers 200; fails at once, with its output, if the process exits."""

    def health() -> int | None:
        if process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"process exited with {process.returncode}:\n{out}\n{err}")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code
        except httpx.TransportError:
            return None

    eventually_blocking(health, lambda status: status == 200, within=timeout)


def interrupt(process: subprocess.Popen[str], timeout: float = 20) -> tuple[str, str]:
    """Ctrl-C the process and collect its output."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()
