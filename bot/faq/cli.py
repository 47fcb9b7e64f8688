"""`chargebot faq ask|check`: try a question against the FAQ file, lint the file."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from bot.faq.matcher import LANGS, FaqIndex, FaqMatch, FaqResult, examples_file


def add_faq_parser(subparsers: Any) -> None:
    """Register `faq ask` and `faq check` on the `chargebot` sub-commands."""
    faq = subparsers.add_parser("faq", help="try questions against the FAQ, check the FAQ file")
    faq_commands = faq.add_subparsers(dest="faq_command", required=True)
    ask = faq_commands.add_parser("ask", help="show the best FAQ match for a question")
    ask.add_argument("question", help="the text a driver would send")
    ask.add_argument("--lang", choices=LANGS, default=None, help="the driver's language")
    ask.add_argument("--json", action="store_true", help='print {"id", "score", "alternatives"}')
    check = faq_commands.add_parser(
        "check",
        help="validate the FAQ file (and faq_examples.yaml beside it); show phrasings that "
        "match another entry better",
    )
    check.add_argument(
        "--strict", action="store_true", help="exit 1 also when a phrasing matches another entry"
    )
    for command in (ask, check):
        command.add_argument(
            "--file", type=Path, default=None, help="FAQ YAML (default: FAQ_FILE or data/faq.yaml)"
        )
    faq.set_defaults(handler=faq_command)


def faq_command(args: argparse.Namespace) -> int:
    """Run `faq ask` or `faq check`; the exit code."""
    path: Path = args.file or _default_file()
    try:
        index = FaqIndex.load(path)
    except (OSError, ValueError) as exc:
        print(f"chargebot faq: {exc}", file=sys.stderr)
        return 1
    if args.faq_command == "ask":
        return _ask(index, args.question, args.lang, args.json)
    return _check(index, path, args.strict)


def _default_file() -> Path:
    from backend.paths import DATA_DIR
    from backend.settings import Settings

    configured = Settings().faq_file
    return Path(configured) if configured else DATA_DIR / "faq.yaml"


def _ask(index: FaqIndex, question: str, lang: str | None, as_json: bool) -> int:
    result = index.match(question, lang)
    nearest = index.rank(question, lang, limit=1)
    if as_json:
        best = result.best
        score = best.score if best else (nearest[0].score if nearest else 0.0)
        print(
            json.dumps(
                {
                    "id": best.entry.id if best else None,
                    "score": round(score, 1),
                    "alternatives": [
                        {"id": m.entry.id, "score": round(m.score, 1)} for m in result.alternatives
                    ],
                },
                ensure_ascii=False,
            )
        )
        return 0
    print(_describe(index, result, nearest, lang))
    return 0


def _describe(index: FaqIndex, result: FaqResult, nearest: list[FaqMatch], lang: str | None) -> str:
    limits = (
        f"thresholds: answer from {index.answer_threshold:g} and {index.answer_margin:g} ahead "
        f"of the next entry, choices from {index.unsure_threshold:g}"
    )
    best = result.best
    if best is None:
        closest = f"{nearest[0].entry.id} {nearest[0].score:.1f}" if nearest else "nothing"
        return f"none: the driver is offered a person (nearest: {closest})\n{limits}"
    shown = lang or best.lang or "sv"
    lines = [
        f"{result.kind}: {best.entry.id}  {best.score:.1f}  "
        f'closest phrasing: "{best.phrasing}" [{best.lang}]',
        f"  Q: {best.entry.question(shown)}",
        textwrap.fill(
            best.entry.answer(shown), width=96, initial_indent="  A: ", subsequent_indent="     "
        ),
    ]
    if result.alternatives:
        lines.append("also offered:" if result.kind == "unsure" else "alternatives:")
        width = max(len(m.entry.id) for m in result.alternatives)
        lines += [
            f"  {m.entry.id:<{width}}  {m.score:5.1f}  {m.entry.question(shown)}"
            for m in result.alternatives
        ]
    return "\n".join([*lines, limits])


def _check(index: FaqIndex, path: Path, strict: bool) -> int:
    phrasings = sum(len(e.questions[lang]) for e in index.entries for lang in LANGS)
    print(f"{path}: valid, {len(index.entries)} entries, {phrasings} phrasings")
    if index.examples:
        examples = sum(
            len(texts) for by_lang in index.examples.values() for texts in by_lang.values()
        )
        missing = [entry_id for entry_id in index.ids() if entry_id not in index.examples]
        print(
            f"{examples_file(path)}: valid, {examples} driver examples"
            + (f" (none for {', '.join(missing)})" if missing else "")
        )
    width = max(len(entry_id) for entry_id in index.ids())
    conflicts = ambiguous = 0
    for entry in index.entries:
        notes: list[str] = []
        for lang in LANGS:
            for phrasing in entry.questions[lang]:
                ranked = index.rank(phrasing, lang)
                own = next(m for m in ranked if m.entry.id == entry.id)
                rival = next(m for m in ranked if m.entry.id != entry.id)
                if rival.score >= own.score:
                    conflicts += 1
                    verdict = "matches another entry better"
                elif own.score - rival.score < index.answer_margin:
                    ambiguous += 1
                    verdict = "is ambiguous (drivers get choices)"
                else:
                    continue
                notes.append(
                    f'    "{phrasing}" [{lang}] {verdict}: {rival.entry.id} {rival.score:.1f}'
                    f" vs own {own.score:.1f}"
                )
        print(f"  {entry.id:<{width}}  {'ok' if not notes else f'{len(notes)} to look at'}")
        for note in notes:
            print(note)
    print(
        f"{conflicts} phrasing(s) match another entry better, "
        f"{ambiguous} are too close to another entry to answer"
    )
    return 1 if strict and conflicts else 0
