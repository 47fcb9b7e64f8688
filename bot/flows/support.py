"""support: the driver asks for a person; the conversation waits in the support queue."""

from __future__ import annotations

from backend.db import utcnow
from backend.models import ConversationMode
from bot.context import Context
from bot.messages import Reply


async def request(ctx: Context) -> list[Reply]:
    conversation = ctx.conversation
    if conversation.mode in {ConversationMode.WAITING, ConversationMode.AGENT}:
        return [ctx.reply(ctx.t("support_already"))]
    conversation.mode = ConversationMode.WAITING
    conversation.waiting_since = utcnow()
    return [ctx.reply(ctx.t("support_queued"))]
