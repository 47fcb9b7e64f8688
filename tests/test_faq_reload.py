"""Operators reload the FAQ without a restart; a broken file never replaces a good one."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
import yaml
from fastapi import FastAPI

from backend.paths import DATA_DIR
from backend.settings import Settings
from bot.faq.matcher import FaqService
from bot.messages import ChannelUser, Inbound


@pytest.fixture
def faq_file(tmp_path: Path) -> Path:
    target = tmp_path / "faq.yaml"
    shutil.copyfile(DATA_DIR / "faq.yaml", target)
    return target


@pytest.fixture
def settings(settings: Settings, faq_file: Path) -> Settings:
    return settings.model_copy(update={"faq_file": str(faq_file)})


async def _ask(app: FastAPI, text: str) -> str:
    inbound = Inbound("console", "+46705555555", text=text, user=ChannelUser(phone="+46705555555"))
    replies = await app.state.chat_engine.handle(inbound)
    return "\n".join(r.text for r in replies)


async def test_a_new_entry_answers_after_a_reload(
    app: FastAPI, admin: httpx.AsyncClient, faq_file: Path
) -> None:
    question = "Får man grilla korv vid laddstationen?"
    before = await _ask(app, question)
    assert "korv" not in before.lower()
    entries = yaml.safe_load(faq_file.read_text(encoding="utf-8"))
    entries.append(
        {
            "id": "sausages",
            "tags": [],
            "questions": {
                "sv": [question, "grilla korv", "korvgrillning vid laddaren", "får jag grilla här"],
                "en": [
                    "can I grill sausages",
                    "barbecue at the charger",
                    "grilling allowed",
                    "bbq",
                ],
            },
            "answer": {
                "sv": "Nej, ingen korvgrillning vid laddarna.",
                "en": "No grilling, please.",
            },
        }
    )
    faq_file.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    response = await admin.post("/admin/faq/reload")
    assert response.status_code == 200
    assert response.json()["entries"] == len(entries)
    assert "ingen korvgrillning" in await _ask(app, question)


async def test_a_broken_file_is_refused_and_the_old_faq_kept(
    app: FastAPI, admin: httpx.AsyncClient, faq_file: Path
) -> None:
    faq_file.write_text("- id: only-an-id\n", encoding="utf-8")
    response = await admin.post("/admin/faq/reload")
    assert response.status_code == 422
    assert "old one is kept" in response.json()["detail"][0]["msg"]
    assert "QR" in await _ask(app, "hur startar jag laddningen")


def test_a_new_app_reads_the_faq_as_it_is_now(faq_file: Path) -> None:
    """Services of one process share a built index only while its files are unchanged."""
    question = "Får man grilla korv vid laddstationen?"
    first = FaqService(faq_file)
    assert FaqService(faq_file).index is first.index  # unchanged: built once
    entries = yaml.safe_load(faq_file.read_text(encoding="utf-8"))
    entries.append(
        {
            "id": "sausages",
            "tags": [],
            "questions": {"sv": [question, "grilla korv"], "en": ["can I grill sausages"]},
            "answer": {"sv": "Nej, ingen korvgrillning.", "en": "No grilling, please."},
        }
    )
    faq_file.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
    edited = FaqService(faq_file)
    assert edited.index is not first.index
    found = edited.match(question, "sv")
    assert found.best is not None and found.best.entry.id == "sausages", found
    before = first.match(question, "sv").best  # the first service keeps its index
    assert before is None or before.entry.id != "sausages"
