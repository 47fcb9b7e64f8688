"""/admin/faq: reload the FAQ file without a restart, and try a question."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel

from backend.api.deps import FaqDep
from backend.services.errors import InvalidFieldError

router = APIRouter(prefix="/faq", tags=["faq"])


class FaqReloaded(BaseModel):
    entries: int
    path: str


@router.post("/reload")
async def reload_faq(faq: FaqDep) -> FaqReloaded:
    """Re-read data/faq.yaml (or FAQ_FILE); a broken file is refused and the old one kept."""
    try:
        entries = await asyncio.to_thread(faq.reload)
    except (ValueError, OSError) as error:
        raise InvalidFieldError(
            "faq_file", f"FAQ not reloaded, the old one is kept: {error}"
        ) from error
    return FaqReloaded(entries=entries, path=faq.path)
