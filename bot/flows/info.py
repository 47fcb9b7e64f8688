"""prices, help, language: answers that need no session."""

from __future__ import annotations

from rapidfuzz import fuzz, process
from sqlmodel import col, func, select

from backend.models import Connector, Station, Tariff
from backend.services.places import fold
from backend.services.pricing import member_price_per_kwh
from bot.context import Context
from bot.flows import start
from bot.flows.pricing_text import full_price, member_discount
from bot.formatting import kronor
from bot.messages import Choice, Reply


async def prices(ctx: Context, code: str = "") -> list[Reply]:
    """The prices: of a connector (its code), of a station or town by name, or in general."""
    if code.strip():
        found = await start._place(ctx, code)
        if found is not None:
            _, _, station, tariff = found
            name = station.name if station else ""
            return [ctx.reply(f"{name}\n{full_price(ctx, tariff)}".strip())]
        named = await _stations_named(ctx, code)
        if not named:
            return [ctx.reply(ctx.t("unknown_code_or_station", code=code.strip()))]
        blocks = []
        for station in named[:3]:
            tariff = await ctx.db.scalar(select(Tariff).where(col(Tariff.station_id) == station.id))
            blocks.append(f"{station.name}\n{full_price(ctx, tariff)}")
        return [ctx.reply("\n\n".join(blocks))]
    low, high = (
        await ctx.db.execute(
            select(
                func.min(col(Tariff.price_per_kwh_minor)), func.max(col(Tariff.price_per_kwh_minor))
            )
        )
    ).one()
    parts = [ctx.t("prices_intro")]
    if low is not None and high is not None and low == high:
        parts.append(ctx.t("prices_single", price=kronor(low, ctx.lang)))
    elif low is not None and high is not None:
        parts.append(ctx.t("prices_range", low=kronor(low, ctx.lang), high=kronor(high, ctx.lang)))
    discount = member_discount(ctx)
    if discount:
        fee = kronor(ctx.services.settings.member_monthly_fee_minor, ctx.lang)
        span = ""
        if low is not None and high is not None:
            span = ctx.t(
                "prices_member_range",
                low=kronor(member_price_per_kwh(low, discount), ctx.lang),
                high=kronor(member_price_per_kwh(high, discount), ctx.lang),
            )
        parts.append(ctx.t("prices_plans_side", fee=fee, percent=discount, range=span))
    else:
        parts.append(ctx.t("prices_plans"))
    example = await ctx.db.scalar(select(col(Connector.code)).order_by(col(Connector.id)).limit(1))
    if example:
        parts.append(ctx.t("prices_hint", code=example))
    return [ctx.reply("\n\n".join(parts))]


async def _stations_named(ctx: Context, text: str) -> list[Station]:
    """Stations whose name is `text` (typos forgiven), else the stations of a town so named."""
    stations = list((await ctx.db.scalars(select(Station).order_by(col(Station.id)))).all())
    wanted = fold(text)
    by_name = process.extractOne(
        wanted, {s.id: fold(s.name) for s in stations}, scorer=fuzz.WRatio, score_cutoff=88
    )
    if by_name is not None:
        return [s for s in stations if s.id == by_name[2]]
    return [s for s in stations if fuzz.ratio(wanted, fold(s.city)) >= 85]


async def help_text(ctx: Context) -> list[Reply]:
    if ctx.conversation.channel == "sms":
        return [ctx.reply(ctx.t("sms_menu"))]  # words to text, not /commands
    return [ctx.reply(ctx.t("help"), request_location=True)]


async def welcome(ctx: Context) -> list[Reply]:
    first_name = (ctx.inbound.user.name or "").split(" ")[0]
    sms = ctx.conversation.channel == "sms"  # a plain phone shares no position
    return [
        ctx.reply(
            ctx.t("welcome_sms" if sms else "welcome", name=first_name)
            .replace("  ", " ")
            .replace(" !", "!"),
            request_location=not sms,
        )
    ]


async def language(ctx: Context, wanted: str = "") -> list[Reply]:
    wanted = wanted.strip().lower()[:2]
    aliases = {"sv": "sv", "en": "en", "sw": "sv", "sl": "sv"}
    if wanted in aliases:
        return await set_language(ctx, aliases[wanted])
    return [
        ctx.reply(
            ctx.t("language_choose"),
            [Choice("Svenska", "lang:sv"), Choice("English", "lang:en")],
        )
    ]


async def set_language(ctx: Context, lang: str) -> list[Reply]:
    ctx.conversation.language = lang
    ctx.driver.language = lang
    return [ctx.reply(ctx.t("language_set"))]
