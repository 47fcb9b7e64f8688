"""The intent table: each intent of data/intents.yaml and the flow step that serves it.

The engine reads a message (bot/understanding.py) and calls `HANDLERS[intent]`; commands
(/stop), buttons (`do:stop`) and typed text all end here, so a word means the same on every
channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.context import Context
from bot.flows import charging, faq, find, info, payment, reserve, start, support
from bot.messages import Choice, Reply
from bot.understanding import Understanding

Handler = Callable[[Context, Understanding], Awaitable[list[Reply]]]
STOP_CONFIRM = "stop:confirm"  # Conversation.state while "stop now?" waits for an answer
OPEN_CHOICES = "open_choices"  # Conversation.data: the payloads of the menu open now


async def _find(ctx: Context, understood: Understanding) -> list[Reply]:
    return await find.by_text(ctx, understood.args) if understood.args else await find.ask(ctx)


async def _start(ctx: Context, understood: Understanding) -> list[Reply]:
    if understood.args:
        return await start.show(ctx, understood.args)
    return [ctx.reply(ctx.t("start_ask"))]


async def _stop(ctx: Context, understood: Understanding) -> list[Reply]:
    ctx.conversation.state = None
    return await charging.stop(ctx)


async def _reserve(ctx: Context, understood: Understanding) -> list[Reply]:
    return await reserve.reserve(ctx, understood.args)


async def _queue(ctx: Context, understood: Understanding) -> list[Reply]:
    return await reserve.queue(ctx, understood.args)


async def _prices(ctx: Context, understood: Understanding) -> list[Reply]:
    """The price list asked for; while charging, "vad kostar det?" means here."""
    if not understood.args:
        session = await charging.active_session(ctx)
        if session is not None:
            code = await charging.connector_code(ctx, session)
            if code is not None:
                return await info.prices(ctx, code)
    return await info.prices(ctx, understood.args)


async def _language(ctx: Context, understood: Understanding) -> list[Reply]:
    return await info.language(ctx, understood.args)


async def _thanks(ctx: Context, understood: Understanding) -> list[Reply]:
    return [ctx.reply(ctx.t("greeting_thanks"))]


def _asked(ctx: Context) -> str | None:
    """The question the bot's last message asked, while that message's choices are open
    (a later message closes them: a "ja" an hour later confirms nothing)."""
    data = ctx.conversation.data or {}
    offered = data.get(OPEN_CHOICES) or []
    state = ctx.conversation.state
    if state == "start:confirm" and f"start:{data.get('start_code')}" in offered:
        return state
    if state == STOP_CONFIRM and "do:stop" in offered:
        return state
    return None


async def _yes(ctx: Context, understood: Understanding) -> list[Reply]:
    """ "ja"/"yes": answers the question the bot asked last, if it is still open."""
    asked = _asked(ctx)
    if asked == "start:confirm":
        return await start.confirm(ctx, str(ctx.conversation.data["start_code"]))
    if asked == STOP_CONFIRM:
        return await _stop(ctx, understood)
    return [ctx.reply(ctx.t("yes_nothing_asked"))]


async def _no(ctx: Context, understood: Understanding) -> list[Reply]:
    asked = _asked(ctx)
    if asked == "start:confirm":
        return await start.cancel(ctx)
    ctx.conversation.state = None
    if asked == STOP_CONFIRM:
        return [ctx.reply(ctx.t("stop_kept"))]
    return [ctx.reply(ctx.t("no_thanks_reply"))]


def _step(step: Callable[[Context], Awaitable[list[Reply]]]) -> Handler:
    """A flow step that needs nothing of the message but that it was asked for."""

    async def handler(ctx: Context, understood: Understanding) -> list[Reply]:
        return await step(ctx)

    return handler


HANDLERS: dict[str, Handler] = {
    "find": _find,
    "start": _start,
    "stop": _stop,
    "status": _step(charging.status),
    "history": _step(charging.history),
    "prices": _prices,
    "card": _step(payment.card),
    "member": _step(payment.member),
    "language": _language,
    "support": _step(support.request),
    "help": _step(info.help_text),
    "greeting": _step(info.welcome),
    "thanks": _thanks,
    "yes": _yes,
    "no": _no,
    "reserve": _reserve,
    "unreserve": _step(reserve.unreserve),
    "queue": _queue,
    "leave_queue": _step(reserve.leave_queue),
}


def offer(ctx: Context, names: Sequence[str]) -> Reply:
    """Two or three readings of an unclear message, as choices."""
    choices = [Choice(ctx.t(f"intent_{name}"), f"do:{name}") for name in dict.fromkeys(names)]
    return ctx.reply(ctx.t("intent_which"), choices[:3])


async def confirm_or_answer(ctx: Context, understood: Understanding, text: str) -> list[Reply]:
    """A likely "stop": asked first when something is charging, else a question for the FAQ."""
    session = await charging.active_session(ctx)
    if session is None or understood.intent != "stop" or understood.negated:
        return await faq.ask(ctx, text)
    station = await charging.station_of(ctx, session)
    ctx.conversation.state = STOP_CONFIRM
    return [
        ctx.reply(
            ctx.t("stop_confirm", station=station.name if station else session.charger_id),
            [ctx.choice("stop_confirm_button", "do:stop"), ctx.choice("no_button", "do:no")],
        )
    ]
