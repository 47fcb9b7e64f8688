"""find: the nearest stations with a free connector, by shared location or a typed place."""

from __future__ import annotations

from sqlmodel import select

from backend.db import utcnow
from backend.models import Station
from backend.services import stations
from backend.services.places import Place
from backend.services.stations import StationAvailability
from bot.context import Context
from bot.flows.pricing_text import short_price
from bot.formatting import kilowatts, km
from bot.messages import Choice, Reply

NEARBY_KM = 30.0  # free stations farther than this are not "near"
SHOWN = 3  # stations in one answer (an SMS segment or two)
FARTHER_FACTOR = 2.0  # beyond NEARBY_KM: only stations within this times the nearest's distance
TYPE_LABELS = {"type2": "Typ 2", "ccs": "CCS", "chademo": "CHAdeMO", "type1": "Typ 1"}
TYPE_LABELS_EN = {"type2": "Type 2", "ccs": "CCS", "chademo": "CHAdeMO", "type1": "Type 1"}


def type_label(ctx: Context, connector_type: str) -> str:
    labels = TYPE_LABELS if ctx.lang == "sv" else TYPE_LABELS_EN
    return labels.get(connector_type, connector_type)


async def ask(ctx: Context) -> list[Reply]:
    ctx.conversation.state = "find:place"
    if ctx.conversation.channel == "sms":  # a plain phone shares no position
        return [ctx.reply(ctx.t("find_ask_sms"))]
    return [ctx.reply(ctx.t("find_ask"), request_location=True)]


async def by_text(ctx: Context, text: str) -> list[Reply]:
    ctx.conversation.state = None
    place = ctx.services.places.resolve(text)
    if place is None:  # perhaps a station's own name ("Hyllie Station P-hus")
        rows = (await ctx.db.scalars(select(Station))).all()
        extra = [Place(row.name, row.latitude, row.longitude) for row in rows]
        place = ctx.services.places.with_extra(extra).resolve(text)
    if place is None:
        ctx.conversation.state = "find:place"
        return [ctx.reply(ctx.t("find_unknown_place", text=text.strip()), request_location=True)]
    return await near(ctx, place.latitude, place.longitude, place=place)


async def by_filter(ctx: Context, connector_type: str) -> list[Reply]:
    last = ctx.conversation.data.get("find")
    if not last:
        return await ask(ctx)
    place = Place(last["place"], last["lat"], last["lon"]) if last.get("place") else None
    kind = None if connector_type == "all" else connector_type
    return await near(ctx, last["lat"], last["lon"], place=place, connector_type=kind)


async def near(
    ctx: Context,
    latitude: float,
    longitude: float,
    *,
    place: Place | None = None,
    connector_type: str | None = None,
) -> list[Reply]:
    ctx.conversation.state = None
    ctx.conversation.data = {
        **ctx.conversation.data,
        "find": {"lat": latitude, "lon": longitude, "place": place.name if place else None},
    }
    found = await stations.nearest(
        ctx.db,
        latitude,
        longitude,
        driver_id=ctx.driver.id,
        at=utcnow(),
        connector_type=connector_type,
        limit=20,
    )
    if not found:
        return [ctx.reply(ctx.t("find_nothing"))]
    shown, header = _shown(ctx, found, place)
    blocks = [header]
    for index, item in enumerate(shown, start=1):
        lines = [
            ctx.t(
                "station_line",
                index=index,
                name=item.station.name,
                address=item.station.address,
                city=item.station.city,
                distance=km(item.distance_km, ctx.lang),
            )
        ]
        for group in item.connectors:
            lines.append(
                ctx.t(
                    "availability",
                    type=type_label(ctx, group.connector_type),
                    kw=kilowatts(group.max_power_kw, ctx.lang),
                    free=group.free,
                    total=group.total,
                )
            )
        price = short_price(ctx, item.tariff)
        if price:
            lines.append(price)
        if item.restricted_to:
            lines.append(ctx.t("restricted_to", groups=", ".join(item.restricted_to)))
        if item.hours:
            lines.append(ctx.t("open_hours", hours=item.hours))
        blocks.append("\n".join(lines))
    # Only what the driver sees: a filter for a type no shown station has leads far away.
    kinds = sorted({g.connector_type for s in shown for g in s.connectors})
    choices: list[Choice] = []
    if connector_type is None and len(kinds) > 1:
        choices = [Choice(type_label(ctx, kind), f"find:{kind}") for kind in kinds]
    elif connector_type is not None:
        choices = [ctx.choice("find_all_types", "find:all")]
    text = "\n\n".join(blocks)
    if choices and connector_type is None:
        text += "\n\n" + ctx.t("find_filter_hint")
    return [ctx.reply(text, choices)]


def _shown(
    ctx: Context, found: list[StationAvailability], place: Place | None
) -> tuple[list[StationAvailability], str]:
    """The stations to list, nearest first, and the header that says honestly what they are.

    Free stations within NEARBY_KM; else the busy ones within it; else (nothing near at all)
    the nearest free ones farther away, said so, and only those not much farther than the
    nearest of them (a 150 km drive is no answer to "near Uppsala").
    """
    nearby = [s for s in found if s.distance_km <= NEARBY_KM]
    free = [s for s in nearby if s.free > 0]
    if free:
        header = ctx.t("find_header", place=place.name) if place else ctx.t("find_header_here")
        return free[:SHOWN], header
    if nearby:
        header = (
            ctx.t("find_none_free", place=place.name) if place else ctx.t("find_none_free_here")
        )
        return nearby[:SHOWN], header
    farther = [s for s in found if s.free > 0] or found
    limit = farther[0].distance_km * FARTHER_FACTOR
    shown = [s for s in farther if s.distance_km <= limit][:SHOWN]
    km_text = f"{NEARBY_KM:.0f}"
    header = (
        ctx.t("find_none_within", km=km_text, place=place.name)
        if place
        else ctx.t("find_none_within_here", km=km_text)
    )
    return shown, header
