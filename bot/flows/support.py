"""support: the driver asks for a person; the conversation waits in the support queue.

`in_line` is the sentence that tells a driver they are in line, with when support opens
if it is closed now; the notifier appends it when a failed start or a payment problem
queues the chat.
"""

from __future__ import annotations

from datetime import datetime

from backend.models import ConversationMode, EscalationReason
from backend.services import support
from backend.services.support_hours import DAYS, SupportHours
from bot.context import Context
from bot.i18n import t
from bot.messages import Reply

AFTER_FAQ = "faq"  # choice `support:faq`: "talk to a person" after an FAQ miss


async def request(ctx: Context, reason: EscalationReason = EscalationReason.ASKED) -> list[Reply]:
    if ctx.conversation.mode == ConversationMode.AGENT:
        return [ctx.reply(ctx.t("agent_holds"))]  # a person is on it, whatever the hours
    queued = await support.escalate(ctx.db, ctx.conversation, reason)
    hours, now = ctx.services.support_hours, ctx.services.clock()
    return [ctx.reply(in_line(ctx.lang, hours, now, already=not queued))]


def already(ctx: Context) -> Reply:
    """The answer to free text while the driver waits for a person."""
    return ctx.reply(in_line(ctx.lang, ctx.services.support_hours, ctx.services.clock(), True))


def in_line(lang: str, hours: SupportHours, now: datetime, already: bool = False) -> str:
    """ "You are (already) in line", and when support opens if it is closed now."""
    opening = hours.next_opening(now)
    key = "support_already" if already else "support_queued"
    if opening is None:
        return t(lang, key)
    return t(lang, f"{key}_closed", opening=opening_text(lang, opening, now))


def opening_text(lang: str, opening: datetime, now: datetime) -> str:
    """ "today 14:00", "tomorrow 08:00" or "Monday 08:00", by the opening's local date."""
    days = (opening.date() - now.astimezone(opening.tzinfo).date()).days
    clock = opening.strftime("%H:%M")
    if days == 0:
        return t(lang, "opening_today", time=clock)
    if days == 1:
        return t(lang, "opening_tomorrow", time=clock)
    day = t(lang, f"day_{DAYS[opening.weekday()]}")
    return t(lang, "opening_weekday", day=day, time=clock)
