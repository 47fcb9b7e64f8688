"""Benchmark: a staff-login flood against one server process, and what it does to /healthz.

    .venv/bin/python -m benchmarks.login_flood --seconds 20 --concurrency 32
    .venv/bin/python -m benchmarks.login_flood --seconds 20 --concurrency 32 --compare-on-loop

Starts the app with production settings (uvicorn, a temporary SQLite database) in its own
process, adds a staff account, then for each server variant:

1. baseline: /healthz alone, one request every 20 ms, for `--seconds`;
2. flood: `--concurrency` clients POST /auth/token as fast as they can (the right password
   by default, so the throttle never answers for the hash; `--wrong-password` floods with
   failures, which the throttle turns into fast 429s) while /healthz is timed the same way.

It prints p50/p95/max of /healthz in both phases, logins/s and the answers' status codes.
`--compare-on-loop` runs a second server whose argon2 verification runs on the event loop,
as it did before issue #13, so the before/after ratio comes from one run on one machine.
The /healthz probe runs in its own thread, so the flood's client tasks do not delay it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from backend.services import passwords
from benchmarks.common import free_port, percentile

TOKEN = "benchmark-admin-token-0123456789abcdef"
SECRET_KEY = "benchmark-secret-key-0123456789abcdef"
EMAIL = "flood@example.se"
PASSWORD = "correct horse battery staple"
PROBE_INTERVAL = 0.02


def serve(port: int, on_loop: bool, workers: int | None) -> None:
    """The server process: the real app; with `on_loop`, argon2 as it ran before #13."""
    import uvicorn

    from backend.app import create_app
    from backend.services import passwords, staff
    from backend.settings import Settings

    if on_loop:

        async def on_the_loop(password_hash: str, password: str) -> bool:
            return passwords.verify_password(password_hash, password)

        # Replace the name staff.py imported (mypy sees no such attribute: it is not re-exported).
        staff.__dict__["verify_password_async"] = on_the_loop
    elif workers is not None:
        passwords._verifier = passwords.PasswordVerifier(workers=workers)
    settings = Settings()
    settings.check_secrets()
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


def start(workdir: Path, on_loop: bool, workers: int | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "ADMIN_TOKEN": TOKEN,
        "SECRET_KEY": SECRET_KEY,
        "PUBLIC_BASE_URL": "https://chargebot.example.se",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.sqlite3'}",
        "TELEGRAM_BOT_TOKEN": "",
        "REDIS_URL": "",
    }
    command = [sys.executable, "-m", "benchmarks.login_flood", "--serve", str(port)]
    if on_loop:
        command.append("--on-loop")
    if workers is not None:
        command += ["--workers", str(workers)]
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        command, env=env, cwd=Path(__file__).parent.parent, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start; see {workdir / 'server.log'}")


def probe(base: str, stop: threading.Event, out: list[float]) -> None:
    """/healthz latency (ms), sequentially on one keep-alive connection, until `stop`."""
    with httpx.Client(base_url=base, timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get("/healthz").raise_for_status()
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(PROBE_INTERVAL)


async def flood(
    base: str, seconds: float, concurrency: int, password: str
) -> tuple[Counter[int], float]:
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                response = await client.post(
                    "/auth/token", data={"username": EMAIL, "password": password}
                )
                statuses[response.status_code] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return statuses, time.perf_counter() - started


def timed_healthz(base: str, seconds: float) -> list[float]:
    """/healthz latencies (ms) with nothing else going on."""
    latencies: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=probe, args=(base, stop, latencies))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join()
    return latencies


def timed_flood(
    base: str, seconds: float, concurrency: int, password: str
) -> tuple[list[float], Counter[int], float]:
    """/healthz latencies (ms) during the flood, the flood's status codes and duration."""
    latencies: list[float] = []
    stop = threading.Event()
    thread = threading.Thread(target=probe, args=(base, stop, latencies))
    thread.start()
    try:
        statuses, elapsed = asyncio.run(flood(base, seconds, concurrency, password))
    finally:
        stop.set()
        thread.join()
    return latencies, statuses, elapsed


def line(label: str, values: list[float]) -> str:
    return (
        f"  /healthz {label:<9} n={len(values):>5}  p50={statistics.median(values):7.1f} ms  "
        f"p95={percentile(values, 95):7.1f} ms  max={max(values):7.1f} ms"
    )


def run_variant(
    workdir: Path,
    on_loop: bool,
    seconds: float,
    concurrency: int,
    password: str,
    workers: int | None,
) -> None:
    workdir.mkdir()
    process, base = start(workdir, on_loop, workers)
    try:
        created = httpx.post(
            f"{base}/admin/staff",
            json={"email": EMAIL, "name": "Flood", "role": "operator", "password": PASSWORD},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        created.raise_for_status()
        baseline = timed_healthz(base, seconds)
        loaded, statuses, elapsed = timed_flood(base, seconds, concurrency, password)
    finally:
        process.terminate()
        process.wait(30)
    pool = f"argon2 in the bounded pool ({workers or passwords.VERIFY_WORKERS} threads)"
    title = "argon2 on the event loop (before #13)" if on_loop else pool
    print(f"{title}:")
    print(line("alone", baseline))
    print(line("flooded", loaded))
    answered = sum(statuses.values())
    logins = statuses.get(200, 0)
    codes = ", ".join(f"{code}: {count}" for code, count in sorted(statuses.items()))
    print(
        f"  /auth/token x{concurrency} for {elapsed:.1f} s: {logins / elapsed:.1f} logins/s, "
        f"{answered / elapsed:.1f} answers/s ({codes})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--wrong-password", action="store_true", help="flood with failures (the throttle's case)"
    )
    parser.add_argument(
        "--compare-on-loop", action="store_true", help="also a server hashing on the event loop"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="argon2 threads (default: the app's)"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--on-loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.on_loop, args.workers)
        return
    command = " ".join(["python -m benchmarks.login_flood", *sys.argv[1:]])
    print(f"reproduce: .venv/bin/{command}")
    print(f"cpus: {os.cpu_count()}, load: {os.getloadavg()[0]:.2f}")
    password = "not the password" if args.wrong_password else PASSWORD
    workdir = Path(tempfile.mkdtemp(prefix="chargebot-login-flood-"))
    variants = [False, True] if args.compare_on_loop else [False]
    for on_loop in variants:
        label = "on-loop" if on_loop else "pool"
        run_variant(
            workdir / label, on_loop, args.seconds, args.concurrency, password, args.workers
        )


if __name__ == "__main__":
    main()
