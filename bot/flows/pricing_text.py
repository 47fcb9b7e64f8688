"""Prices in words: the one-liner of a station and the full list before a start."""

from __future__ import annotations

from backend.models import Tariff
from backend.services.pricing import MEMBER_PLAN, member_price_per_kwh
from bot.context import Context
from bot.formatting import kronor


def member_discount(ctx: Context) -> int:
    """The member plan's % off the price per kWh; 0 when there is no member plan."""
    return ctx.services.settings.member_price_per_kwh_discount_percent


def short_price(ctx: Context, tariff: Tariff | None) -> str:
    if tariff is None:
        return ""
    parts = [ctx.t("price_short", price=kronor(tariff.price_per_kwh_minor, ctx.lang))]
    if tariff.price_per_minute_minor:
        parts.append(
            ctx.t("price_short_minute", price=kronor(tariff.price_per_minute_minor, ctx.lang))
        )
    if tariff.session_fee_minor:
        parts.append(ctx.t("price_short_fee", price=kronor(tariff.session_fee_minor, ctx.lang)))
    return " ".join(parts)


def full_price(ctx: Context, tariff: Tariff | None) -> str:
    """Every component, so nothing on the receipt comes as a surprise."""
    lines = [ctx.t("price_header")]
    if tariff is None:
        lines.append(ctx.t("price_energy", price=kronor(0, ctx.lang)))
        return "\n".join(lines)
    discount = member_discount(ctx)
    if discount and ctx.driver.plan == MEMBER_PLAN:
        price = member_price_per_kwh(tariff.price_per_kwh_minor, discount)
        lines.append(ctx.t("price_energy_member", price=kronor(price, ctx.lang)))
    else:
        lines.append(ctx.t("price_energy", price=kronor(tariff.price_per_kwh_minor, ctx.lang)))
    if tariff.price_per_minute_minor:
        lines.append(ctx.t("price_minute", price=kronor(tariff.price_per_minute_minor, ctx.lang)))
    if tariff.session_fee_minor:
        lines.append(ctx.t("price_fee", price=kronor(tariff.session_fee_minor, ctx.lang)))
    if tariff.idle_fee_per_minute_minor:
        lines.append(
            ctx.t(
                "price_idle",
                price=kronor(tariff.idle_fee_per_minute_minor, ctx.lang),
                grace=tariff.idle_grace_minutes,
            )
        )
    else:
        lines.append(ctx.t("price_no_idle"))
    return "\n".join(lines)
