"""Benchmark: FAQ match latency over every FAQ phrasing and the driver paraphrase set.

    .venv/bin/python -m benchmarks.faq_match --rounds 20

Times `FaqIndex.match` (pure CPU, one thread) on each text of data/faq.yaml's phrasings,
tests/data/faq_paraphrases.yaml's paraphrases and off-topic messages, in a shuffled order
per round, and the time to load and prepare the FAQ file.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from pathlib import Path

import yaml

from backend.paths import DATA_DIR
from benchmarks.common import percentile, summary
from bot.faq.matcher import LANGS, FaqIndex, load_entries

PARAPHRASES = Path(__file__).resolve().parent.parent / "tests" / "data" / "faq_paraphrases.yaml"
COMMAND = ".venv/bin/python -m benchmarks.faq_match"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def queries(index: FaqIndex) -> list[tuple[str, str | None]]:
    """(text, lang) for every phrasing in the FAQ and every paraphrase and off-topic text."""
    data = yaml.safe_load(PARAPHRASES.read_text(encoding="utf-8"))
    texts: list[tuple[str, str | None]] = [
        (phrasing, lang)
        for entry in index.entries
        for lang in LANGS
        for phrasing in entry.questions[lang]
    ]
    texts += [(item["text"], item["lang"]) for item in data["paraphrases"] + data["off_topic"]]
    return texts


def run(path: Path, rounds: int, loads: int) -> None:
    load_ms, parse_ms = [], []
    for _ in range(loads):
        began = time.perf_counter()
        entries = load_entries(path)
        parsed = time.perf_counter()
        index = FaqIndex(entries)
        parse_ms.append((parsed - began) * 1000)
        load_ms.append((time.perf_counter() - began) * 1000)
    texts = queries(index)
    for text, lang in texts:  # warm-up
        index.match(text, lang)
    order = random.Random(7)
    micros: list[float] = []
    began = time.perf_counter()
    for _ in range(rounds):
        order.shuffle(texts)
        for text, lang in texts:
            start = time.perf_counter_ns()
            index.match(text, lang)
            micros.append((time.perf_counter_ns() - start) / 1000)
    wall = time.perf_counter() - began
    phrasings = sum(len(entry.questions[lang]) for entry in index.entries for lang in LANGS)
    print(f"machine        {cpu_model()}, Python {platform.python_version()}")
    print(f"FAQ            {path}: {len(index.entries)} entries, {phrasings} phrasings")
    parse_p50 = statistics.median(parse_ms)
    print(f"load           {summary(load_ms)} (of which read + validate: p50 {parse_p50:.1f} ms)")
    print(
        f"match          n={len(micros)} ({len(texts)} texts x {rounds} rounds) "
        f"p50={statistics.median(micros):.0f} us p99={percentile(micros, 99):.0f} us "
        f"max={max(micros):.0f} us"
    )
    print(f"throughput     {len(micros) / wall:.0f} matches/s on one core")
    print(f"rerun          {COMMAND} --rounds {rounds}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--loads", type=int, default=10, help="times to load the FAQ file")
    parser.add_argument("--file", type=Path, default=DATA_DIR / "faq.yaml")
    args = parser.parse_args()
    run(args.file, args.rounds, args.loads)


if __name__ == "__main__":
    main()
