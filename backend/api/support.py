"""/support: the JSON API of support agents and operators (bearer token from /auth/token)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from backend.api.deps import CurrentStaff, SessionDep
from backend.services import support
from bot.messages import Reply

log = logging.getLogger(__name__)

router = APIRouter(prefix="/support", tags=["support"])


class AgentText(BaseModel):
    text: str = Field(min_length=1, max_length=1600)


@router.get("/queue")
async def queue(db: SessionDep, staff: CurrentStaff) -> list[dict[str, Any]]:
    """Conversations waiting for an agent or held by one."""
    return await support.queue(db)


@router.get("/conversations/{conversation_id}")
async def conversation(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """The whole transcript (driver, bot and agent turns) and the escalation context."""
    return await support.transcript(db, conversation_id)


@router.post("/conversations/{conversation_id}/claim")
async def claim(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """Hold the conversation (the bot goes quiet); 409 when another agent holds it."""
    await support.claim(db, conversation_id, staff)
    return {"conversation_id": conversation_id, "mode": "agent", "assigned_to": staff.id}


@router.post("/conversations/{conversation_id}/messages", status_code=status.HTTP_201_CREATED)
async def reply(
    conversation_id: int, body: AgentText, request: Request, db: SessionDep, staff: CurrentStaff
) -> dict[str, Any]:
    """Recorded, then sent to the driver on their channel; 409 unless you hold it."""
    conversation = await support.record_reply(db, conversation_id, staff, body.text)
    delivered = False
    try:
        delivered = await request.app.state.outbox.deliver(
            conversation.channel, conversation.address, [Reply(body.text)]
        )
    except Exception:  # recorded either way; the agent sees delivered=false
        log.exception("agent reply to conversation %s not delivered", conversation_id)
    return {"conversation_id": conversation_id, "delivered": delivered}


@router.post("/conversations/{conversation_id}/release")
async def release(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """Hand the conversation back to the bot."""
    await support.release(db, conversation_id, staff)
    return {"conversation_id": conversation_id, "mode": "bot", "assigned_to": None}


@router.post("/conversations/{conversation_id}/close")
async def close(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """Done: out of the queue, back to the bot."""
    await support.close(db, conversation_id, staff)
    return {"conversation_id": conversation_id, "mode": "bot", "closed": True}
