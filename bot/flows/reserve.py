"""reserve, unreserve, queue, leave_queue: holding a connector, and waiting for one.

The rules live in backend/services/charging_queue.py; this is what the driver reads.
"""

from __future__ import annotations

from backend.services.charging_queue import ChatReservations, minutes_left
from backend.services.errors import NotFoundError, RefusedError
from backend.timezones import STOCKHOLM
from bot.context import Context
from bot.flows.start import offer_start, refusal
from bot.formatting import kronor
from bot.messages import Reply

START_CODE = "start_code"  # Conversation.data: the connector the driver looked at last


def _service(ctx: Context) -> ChatReservations:
    service = ctx.services.chat_reservations
    assert service is not None, "the app wires chat reservations"
    return service


def _code(ctx: Context, args: str) -> str:
    """The code typed, else the connector the driver was shown last."""
    return (args or str(ctx.conversation.data.get(START_CODE) or "")).strip().upper()


async def reserve(ctx: Context, args: str) -> list[Reply]:
    code = _code(ctx, args)
    if not code:
        return [ctx.reply(ctx.t("reserve_ask"))]
    assert ctx.driver.id is not None
    await ctx.db.commit()  # the conversation, before the slow part
    try:
        reserved = await _service(ctx).reserve(ctx.driver.id, code)
    except NotFoundError:
        return [ctx.reply(ctx.t("unknown_code", code=code))]
    except RefusedError as refused:
        return [ctx.reply(await refusal(ctx, refused.reason, None, code=code))]
    reservation = reserved.reservation
    if reserved.status in ("offline", "timed_out"):
        return [ctx.reply(ctx.t("reserve_offline"))]
    if reserved.status != "Accepted":
        return [ctx.reply(ctx.t("reserve_refused", status=reserved.status))]
    fee = (
        ctx.t("reserved_fee", fee=kronor(reservation.fee_minor, ctx.lang))
        if reservation.fee_minor
        else ""
    )
    until = reservation.expires_at.astimezone(STOCKHOLM).strftime("%H:%M")
    offer_start(ctx, reserved.code)  # its start button works whatever was shown before
    text = ctx.t(
        "reserved",
        code=reserved.code,
        station=reserved.station.name if reserved.station else reserved.code,
        until=until,
        minutes=minutes_left(reservation.expires_at),
        fee=fee,
    )
    return [
        ctx.reply(
            text,
            [
                ctx.choice("confirm_button", f"start:{reserved.code}"),
                ctx.choice("intent_unreserve", "do:unreserve"),
            ],
        )
    ]


async def unreserve(ctx: Context) -> list[Reply]:
    assert ctx.driver.id is not None
    await ctx.db.commit()
    word = await _service(ctx).cancel(ctx.driver.id)
    if word is None:
        return [ctx.reply(ctx.t("reservation_none"))]
    if word in ("offline", "timed_out"):
        return [ctx.reply(ctx.t("reservation_cancel_failed"))]
    return [ctx.reply(ctx.t("reservation_cancelled"))]


async def queue(ctx: Context, args: str) -> list[Reply]:
    """Join the queue of the station of `args` (a code); bare, where the driver stands in
    line, or else join at the connector shown last."""
    assert ctx.driver.id is not None
    service = _service(ctx)
    if not args.strip():  # bare KÖ: where they stand, if they are in a queue
        place = await service.place_of(ctx.driver.id)
        if place is not None:
            entry = place.entry
            return [_place_text(ctx, place.station.name, place.position, entry.connector_code)]
    code = _code(ctx, args)
    if not code:
        return [ctx.reply(ctx.t("queue_ask"))]
    try:
        station_id = await service.station_of(code)
    except NotFoundError:
        return [ctx.reply(ctx.t("unknown_code", code=code))]
    if station_id is None:
        return [ctx.reply(ctx.t("refused_unplaced"))]
    free = await service.free_code(station_id)
    if free is not None:
        name, free_code = free
        offer_start(ctx, free_code)
        return [
            ctx.reply(
                ctx.t("queue_not_needed", station=name, code=free_code),
                [ctx.choice("confirm_button", f"start:{free_code}")],
            )
        ]
    await ctx.db.commit()
    place = await service.join(ctx.driver.id, station_id, ctx.conversation.channel)
    return [
        ctx.reply(
            ctx.t(
                "queue_joined",
                station=place.station.name,
                position=place.position,
                minutes=service.claim_minutes,
            ),
            [ctx.choice("intent_leave_queue", "do:leave_queue")],
        )
    ]


def _place_text(ctx: Context, station: str, position: int, code: str | None) -> Reply:
    if position == 0 and code:
        return ctx.reply(ctx.t("queue_offered_now", station=station, code=code))
    return ctx.reply(ctx.t("queue_place", station=station, position=position))


async def leave_queue(ctx: Context) -> list[Reply]:
    assert ctx.driver.id is not None
    await ctx.db.commit()
    left = await _service(ctx).leave(ctx.driver.id)
    return [ctx.reply(ctx.t("queue_left" if left else "queue_none"))]
