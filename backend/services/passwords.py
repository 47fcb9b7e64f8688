"""Salted, slow password hashes (argon2id via argon2-cffi) for charger and staff secrets.

argon2 is meant to be slow (tens of ms of CPU and 64 MiB per hash), so it never runs on the
event loop: `verify_password_async` hands it to a small thread pool of its own. The pool
bounds how many hashes run at once (memory and CPU), and a cap on the verifications
waiting for it makes a flood fail fast (`PasswordCheckBusyError`) instead of queueing forever.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Hashes at once per process. One argon2-cffi hash already runs its 4 lanes on 4 threads
# (parallelism=4), so one hash per 4 cores: more only makes the event loop wait for a core
# (benchmarks/login_flood.py: on 2 cores, 2 at once gave no more logins/s and twice the
# /healthz p95 of 1). Each one holds 64 MiB.
VERIFY_WORKERS = max(1, (os.cpu_count() or 1) // 4)
MAX_WAITING = 16  # queued behind them (about a second's work); more answer "busy" at once


class PasswordCheckBusyError(RuntimeError):
    """Too many password checks are waiting; the caller should try again shortly."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class PasswordVerifier:
    """argon2 verification in a bounded thread pool, with a bounded queue in front of it."""

    def __init__(self, workers: int = VERIFY_WORKERS, max_waiting: int = MAX_WAITING) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._limit = workers + max_waiting
        self._in_flight = 0  # touched only from event loops' threads, between awaits

    def check_room(self) -> None:
        """PasswordCheckBusyError now, if a verification would be refused (before any work)."""
        if self._in_flight >= self._limit:
            raise PasswordCheckBusyError("too many password checks at once")

    async def verify(self, password_hash: str, password: str) -> bool:
        self.check_room()
        self._in_flight += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, verify_password, password_hash, password
            )
        finally:
            self._in_flight -= 1


_verifier = PasswordVerifier()


def check_room() -> None:
    """Refuse a login early (PasswordCheckBusyError) when its check could not be queued."""
    _verifier.check_room()


async def verify_password_async(password_hash: str, password: str) -> bool:
    """`verify_password` off the event loop, at most `VERIFY_WORKERS` at once per process."""
    return await _verifier.verify(password_hash, password)
