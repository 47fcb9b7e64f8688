"""Benchmark: resolving one driver message (intent + FAQ), against a bare rapidfuzz baseline.

    .venv/bin/python -m benchmarks.understanding --rounds 10 --repeat 5

Times, per message, what the engine does with free text before any database work:
`IntentTable.understand` (keywords, phrasings, places) and then `FaqIndex.match` (the FAQ is
consulted for every message here, the worst case: the engine skips it for certain intents).
The messages are the blind driver utterances and paraphrases of tests/data (intents, FAQ tuning
and held-out sets, off-topic), shuffled per round. In the same run the baseline is the bare
library: one `rapidfuzz.process.extractOne` of the message against every FAQ phrasing
(`fuzz.WRatio`), the obvious hand-rolled matcher.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from rapidfuzz import fuzz, process

from backend.paths import DATA_DIR
from backend.services.places import Gazetteer
from benchmarks.common import percentile
from benchmarks.faq_match import cpu_model
from bot.faq.matcher import LANGS, FaqIndex
from bot.understanding import IntentTable

TEST_DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
COMMAND = ".venv/bin/python -m benchmarks.understanding"


def messages() -> list[str]:
    """Every driver text of tests/data: utterances, paraphrases and off-topic messages."""
    texts: list[str] = []
    for path in sorted(TEST_DATA.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("utterances", "paraphrases", "off_topic"):
            texts += [str(item["text"]) for item in data.get(key) or []]
    return texts


def timed(
    resolve: Callable[[str], object], texts: list[str], rounds: int, warm: bool = True
) -> list[float]:
    """Microseconds per call, over `rounds` shuffled passes (after one warm-up pass)."""
    for text in texts if warm else ():
        resolve(text)
    order = random.Random(7)
    shuffled = list(texts)
    micros: list[float] = []
    for _ in range(rounds):
        order.shuffle(shuffled)
        for text in shuffled:
            start = time.perf_counter_ns()
            resolve(text)
            micros.append((time.perf_counter_ns() - start) / 1000)
    return micros


def line(name: str, runs: list[list[float]]) -> str:
    """Median over the runs of each run's p50, p99 and max (the machine is shared and noisy)."""
    p50 = statistics.median(statistics.median(run) for run in runs)
    p99 = statistics.median(percentile(run, 99) for run in runs)
    top = statistics.median(max(run) for run in runs)
    n = sum(len(run) for run in runs)
    return f"{name:<30} n={n} ({len(runs)} runs) p50={p50:.0f} us p99={p99:.0f} us max={top:.0f} us"


def resolver(faq: FaqIndex, intents: IntentTable) -> Callable[[str], object]:
    def resolve(text: str) -> object:
        return intents.understand(text), faq.match(text)

    return resolve


def run(rounds: int, repeat: int) -> None:
    places = Gazetteer.load()
    # Cold: fresh tables, every text once; the per-word caches start empty.
    cold = [
        timed(
            resolver(FaqIndex.load(DATA_DIR / "faq.yaml"), IntentTable.load(places)),
            messages(),
            1,
            warm=False,
        )
        for _ in range(repeat)
    ]
    faq = FaqIndex.load(DATA_DIR / "faq.yaml")
    intents = IntentTable.load(places)
    phrasings = [q for entry in faq.entries for lang in LANGS for q in entry.questions[lang]]
    texts = messages()
    resolve = resolver(faq, intents)

    def bare(text: str) -> object:
        return process.extractOne(text, phrasings, scorer=fuzz.WRatio)

    ours, understand_only, baseline = [], [], []
    for _ in range(repeat):  # interleaved, so each sees the same moments of the machine
        ours.append(timed(resolve, texts, rounds))
        understand_only.append(timed(intents.understand, texts, rounds))
        baseline.append(timed(bare, texts, max(1, rounds // 5)))
    print(f"machine        {cpu_model()}, Python {platform.python_version()}")
    print(f"messages       {len(texts)} driver texts x {rounds} rounds; {len(phrasings)} phrasings")
    print(line("intent + FAQ, cold caches", cold))
    print(line("intent + FAQ (chargebot)", ours))
    print(line("intent only", understand_only))
    print(line("bare rapidfuzz extractOne", baseline))
    ratio = statistics.median(statistics.median(run) for run in ours) / statistics.median(
        statistics.median(run) for run in baseline
    )
    print(f"ratio          chargebot / bare p50 = {ratio:.2f}")
    print(f"rerun          {COMMAND} --rounds {rounds} --repeat {repeat}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="shuffled passes per run")
    parser.add_argument("--repeat", type=int, default=5, help="runs; medians are reported")
    args = parser.parse_args()
    run(args.rounds, args.repeat)


if __name__ == "__main__":
    main()
