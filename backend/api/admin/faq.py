"""/admin/faq: reload the FAQ file without a restart, and try a question."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from pydantic import BaseModel

from backend.services.errors import InvalidFieldError
from bot.faq.matcher import FaqService

router = APIRouter(prefix="/faq", tags=["faq"])


class FaqReloaded(BaseModel):
    entries: int
    path: str


def _faq(request: Request) -> FaqService:
    service: FaqService = request.app.state.engine.services.faq
    return service


@router.post("/reload")
async def reload_faq(request: Request) -> FaqReloaded:
    """Re-read data/faq.yaml (or FAQ_FILE); a broken file is refused and the old one kept."""
    service = _faq(request)
    try:
        index = await asyncio.to_thread(service.reload)
    except (ValueError, OSError) as error:
        raise InvalidFieldError(
            "faq_file", f"FAQ not reloaded, the old one is kept: {error}"
        ) from error
    return FaqReloaded(entries=len(index.entries), path=str(service.path))
