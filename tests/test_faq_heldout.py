"""The FAQ on paraphrases it was never tuned on: top-1 accuracy and a real "no match".

tests/data/faq_heldout.yaml was written blind (topics only, never the FAQ) and is never used
to improve data/faq.yaml, data/faq_examples.yaml, data/lexicon.yaml or the matcher: its figure
is the honest guess for what new drivers get. The README ("The FAQ", "Accuracy") reports it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from backend.paths import DATA_DIR
from bot.faq.matcher import FaqIndex

HELD_OUT = Path(__file__).parent / "data" / "faq_heldout.yaml"
TARGET = 0.95  # issue #12: top-1 on unseen paraphrases of both languages together
# Measured 96.7 % (sv) and 94.0 % (en) with the data of 2026-12-01; each language keeps a floor
# a little below what it reached, so a regression in one language fails too.
LANGUAGE_FLOOR = 0.93


@functools.cache
def faq() -> FaqIndex:
    return FaqIndex.load(DATA_DIR / "faq.yaml")


@functools.cache
def held_out() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = yaml.safe_load(HELD_OUT.read_text("utf-8"))
    return data


def test_the_held_out_set_is_sound() -> None:
    items = held_out()["paraphrases"]
    assert len(items) >= 300 and len(held_out()["off_topic"]) >= 30
    assert {item["id"] for item in items} <= set(faq().ids())
    assert min(sum(item["lang"] == lang for item in items) for lang in ("sv", "en")) >= 150


def test_top1_accuracy_on_held_out_paraphrases() -> None:
    index = faq()
    hits: dict[str, list[bool]] = {"sv": [], "en": []}
    for item in held_out()["paraphrases"]:
        ranked = index.rank(item["text"], item["lang"], limit=1)
        hits[item["lang"]].append(bool(ranked) and ranked[0].entry.id == item["id"])
    every = hits["sv"] + hits["en"]
    accuracy = sum(every) / len(every)
    by_lang = {lang: sum(found) / len(found) for lang, found in hits.items()}
    # Only figures, never the misses: what is not seen cannot be tuned to.
    print(
        f"\nFAQ top-1 on {len(every)} held-out paraphrases: {accuracy:.1%} "
        f"(sv {by_lang['sv']:.1%}, en {by_lang['en']:.1%})"
    )
    assert accuracy >= TARGET
    assert min(by_lang.values()) >= LANGUAGE_FLOOR


def test_off_topic_messages_get_no_answer() -> None:
    index = faq()
    answered = [
        item["text"]
        for item in held_out()["off_topic"]
        if index.match(item["text"], item["lang"]).kind == "answer"
    ]
    assert answered == []
