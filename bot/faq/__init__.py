"""FAQ loading and fuzzy matching over data/faq.yaml."""

from bot.faq.matcher import FaqEntry, FaqIndex, FaqMatch, FaqResult, FaqService

__all__ = ["FaqEntry", "FaqIndex", "FaqMatch", "FaqResult", "FaqService"]
