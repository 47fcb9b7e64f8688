"""FAQ: free text matched against data/faq.yaml; sure answers, unsure choices, or a person."""

from __future__ import annotations

from bot.context import Context
from bot.flows.support import AFTER_FAQ
from bot.messages import Choice, Reply


async def ask(ctx: Context, text: str) -> list[Reply]:
    result = ctx.services.faq.match(text, ctx.lang)
    if result.kind == "answer" and result.best is not None:
        return [ctx.reply(result.best.entry.answer(ctx.lang))]
    if result.kind == "unsure" and result.best is not None:
        options = [result.best, *result.alternatives][:3]
        choices = [Choice(m.entry.question(ctx.lang), f"faq:{m.entry.id}") for m in options]
        choices.append(ctx.choice("faq_none_of_these", "support:offer"))
        return [ctx.reply(ctx.t("faq_unsure"), choices)]
    return [offer_support(ctx)]


def offer_support(ctx: Context) -> Reply:
    return ctx.reply(
        ctx.t("faq_none"),
        [
            ctx.choice("support_button", f"support:{AFTER_FAQ}"),
            ctx.choice("no_thanks", "nothanks"),
        ],
    )


async def answer(ctx: Context, entry_id: str) -> list[Reply]:
    entry = ctx.services.faq.index.get(entry_id)
    if entry is None:
        return [ctx.reply(ctx.t("stale_choice"))]
    return [ctx.reply(entry.answer(ctx.lang))]
