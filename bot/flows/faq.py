"""FAQ: free text matched against data/faq.yaml; sure answers, unsure choices, or a person.

An answer uses what the bot knows: asked about the idle fee or the price while charging, the
driver also hears this station's own figures (`HERE`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel import col, select

from backend.models import ChargingSession, Tariff
from bot.context import Context
from bot.faq.matcher import FaqEntry
from bot.flows.charging import active_session, station_of
from bot.flows.pricing_text import full_price
from bot.flows.support import AFTER_FAQ
from bot.formatting import kronor
from bot.messages import Choice, Reply


async def ask(ctx: Context, text: str) -> list[Reply]:
    result = ctx.services.faq.match(text, ctx.lang)
    if result.kind == "answer" and result.best is not None:
        return [ctx.reply(await _answer_text(ctx, result.best.entry))]
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
    return [ctx.reply(await _answer_text(ctx, entry))]


async def _answer_text(ctx: Context, entry: FaqEntry) -> str:
    """The entry's answer, and what it means at the driver's station right now."""
    text = entry.answer(ctx.lang)
    here = HERE.get(entry.id)
    if here is None:
        return text
    session = await active_session(ctx)
    if session is None:
        return text
    tariff = await _tariff_of(ctx, session)
    if tariff is None:
        return text
    extra = await here(ctx, session, tariff)
    return f"{text}\n\n{extra}" if extra else text


async def _tariff_of(ctx: Context, session: ChargingSession) -> Tariff | None:
    station = await station_of(ctx, session)
    if station is None:
        return None
    return await ctx.db.scalar(select(Tariff).where(col(Tariff.station_id) == station.id))


async def _idle_fee_here(ctx: Context, session: ChargingSession, tariff: Tariff) -> str:
    station = await station_of(ctx, session)
    name = station.name if station else session.charger_id
    if not tariff.idle_fee_per_minute_minor:
        return ctx.t("faq_here_no_idle_fee", station=name)
    return ctx.t(
        "faq_here_idle_fee",
        station=name,
        grace=tariff.idle_grace_minutes,
        price=kronor(tariff.idle_fee_per_minute_minor, ctx.lang),
    )


async def _price_here(ctx: Context, session: ChargingSession, tariff: Tariff) -> str:
    station = await station_of(ctx, session)
    name = station.name if station else session.charger_id
    return f"{ctx.t('faq_here_prices', station=name)}\n{full_price(ctx, tariff)}"


Here = Callable[[Context, ChargingSession, Tariff], Awaitable[str]]
# FAQ entries whose answer depends on the station the driver is charging at.
HERE: dict[str, Here] = {
    "idle-fee": _idle_fee_here,
    "prices": _price_here,
    "cost-estimate": _price_here,
    "kwh-vs-minute": _price_here,
}
