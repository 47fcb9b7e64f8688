"""The bot's FAQ as `backend.services.ports.FaqCatalogue`: what support and operators see."""

from __future__ import annotations

from collections.abc import Sequence

from backend.services.ports import FaqTopic
from bot.faq.matcher import FaqService


class ServiceCatalogue:
    """The entries of a `FaqService`: the same index the bot answers from, reloaded in place."""

    def __init__(self, service: FaqService) -> None:
        self.service = service

    @property
    def path(self) -> str:
        return str(self.service.path)

    def entries(self) -> Sequence[FaqTopic]:
        return self.service.index.entries

    def entry(self, entry_id: str) -> FaqTopic | None:
        return self.service.index.get(entry_id)

    def reload(self) -> int:
        return len(self.service.reload().entries)
