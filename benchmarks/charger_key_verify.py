"""Benchmark: what one charger connect costs to authenticate, keyed hash vs argon2.

    .venv/bin/python -m benchmarks.charger_key_verify --rounds 7

Times `charger_keys.verify_hmac` (HMAC-SHA256 under the pepper, what every connect does now)
and argon2-cffi's `PasswordHasher.verify` with its defaults (what a connect cost before, and
what a legacy hash costs once), on the same 40-hex-digit key, in one run. Prints medians and
the ratio; the machine is shared, so compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from argon2 import PasswordHasher

from backend.services import charger_keys

COMMAND = ".venv/bin/python -m benchmarks.charger_key_verify"


def _median_seconds(work: Callable[[], object], number: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(number):
            work()
        samples.append((time.perf_counter() - started) / number)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    pepper = charger_keys.pepper_from("", "benchmark-secret-key-0123456789abcdef")
    key = charger_keys.generate_key()
    stored = charger_keys.hash_key("CP-BENCH", key, pepper)
    password = key.encode()
    hasher = PasswordHasher()
    legacy = hasher.hash(key)
    assert charger_keys.verify_hmac("CP-BENCH", stored, password, pepper)
    hmac_s = _median_seconds(
        lambda: charger_keys.verify_hmac("CP-BENCH", stored, password, pepper), 2000, args.rounds
    )
    argon2_s = _median_seconds(lambda: hasher.verify(legacy, key), 1, args.rounds)
    print(f"command: {COMMAND} --rounds {args.rounds}")
    print(f"HMAC-SHA256 verify (now):  median {hmac_s * 1e6:8.1f} µs per connect")
    print(f"argon2id verify (before):  median {argon2_s * 1e3:8.1f} ms per connect")
    print(f"ratio: argon2 / HMAC = {argon2_s / hmac_s:,.0f}x")
    print(
        f"10,000 chargers reconnecting: {10_000 * hmac_s:.2f} s of CPU vs {10_000 * argon2_s:.0f} s"
    )


if __name__ == "__main__":
    main()
