"""/support: the JSON API of support agents and operators (bearer token from /auth/token).

Least privilege: a conversation is claimed only from the queue, and acted on only by the
staff member holding it. A support agent reads a transcript while it is queued or theirs;
any other needs `POST .../open` with a reason. Operators read any. Refusals are 403 with a
`detail` and a `reason` code; every read, claim, open, stop and unlock is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, Field, StringConstraints

from backend.api.deps import CurrentStaff, DeskDep, SessionDep
from backend.services import support

router = APIRouter(prefix="/support", tags=["support"])


class AgentText(BaseModel):
    # Trimmed first: a blank reply would send an empty SMS or Telegram message.
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1600)]


@router.get("/queue")
async def queue(db: SessionDep, staff: CurrentStaff) -> list[dict[str, Any]]:
    """Conversations waiting for an agent or held by one (a colleague's without its text)."""
    return await support.queue(db, staff)


@router.get("/conversations/{conversation_id}")
async def conversation(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """The whole transcript (driver, bot and agent turns) and the escalation context.

    Support agents: queued conversations, the ones they hold, and the ones they opened with
    a reason in the last 30 minutes; 403 for any other. Operators: any. Each read is audited.
    """
    return await support.read_transcript(db, conversation_id, staff)


class OpenReason(BaseModel):
    # Whitespace folded first: "          " is no reason.
    reason: Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=support.MIN_OPEN_REASON, max_length=300
        ),
    ]


@router.post("/conversations/{conversation_id}/open")
async def open_conversation(
    conversation_id: int, body: OpenReason, db: SessionDep, staff: CurrentStaff
) -> dict[str, Any]:
    """Read a conversation outside the queue on purpose (a driver phoned in, a review...).

    The reason (at least 10 characters) goes to the staff audit log; the transcript comes
    back, and for 30 minutes GET reads it too. Read only: it gives no claim or action.
    """
    return await support.open_transcript(db, conversation_id, staff, body.reason)


@router.post("/conversations/{conversation_id}/claim")
async def claim(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """Hold a conversation from the queue (the bot goes quiet); 403 for one that is not in
    the queue (the driver never asked for help), 409 when another agent holds it."""
    await support.claim(db, conversation_id, staff)
    return {"conversation_id": conversation_id, "mode": "agent", "assigned_to": staff.id}


@router.post("/conversations/{conversation_id}/messages", status_code=status.HTTP_201_CREATED)
async def reply(
    conversation_id: int, body: AgentText, desk: DeskDep, staff: CurrentStaff
) -> dict[str, Any]:
    """Recorded, then sent to the driver on their channel; 403 unless you hold it."""
    result = await desk.reply(conversation_id, staff, body.text)
    return {"conversation_id": conversation_id, "delivered": result.delivered}


class FaqChoice(BaseModel):
    entry_id: str = Field(min_length=1, max_length=64)


@router.post("/conversations/{conversation_id}/actions/faq")
async def send_faq(
    conversation_id: int, body: FaqChoice, desk: DeskDep, staff: CurrentStaff
) -> dict[str, Any]:
    """Quick action: an FAQ answer in the driver's language; 404 for an unknown entry."""
    return (await desk.send_faq(conversation_id, staff, body.entry_id)).as_json()


@router.post("/conversations/{conversation_id}/actions/stop")
async def stop_charging(conversation_id: int, desk: DeskDep, staff: CurrentStaff) -> dict[str, Any]:
    """Quick action: stop the driver's charging session (RemoteStopTransaction)."""
    return (await desk.stop_charging(conversation_id, staff)).as_json()


@router.post("/conversations/{conversation_id}/actions/unlock")
async def unlock(conversation_id: int, desk: DeskDep, staff: CurrentStaff) -> dict[str, Any]:
    """Quick action: unlock the connector of the driver's current or last session."""
    return (await desk.unlock(conversation_id, staff)).as_json()


@router.post("/conversations/{conversation_id}/actions/card-link")
async def card_link(conversation_id: int, desk: DeskDep, staff: CurrentStaff) -> dict[str, Any]:
    """Quick action: send the driver a link to save a card (needs Stripe)."""
    return (await desk.send_card_link(conversation_id, staff)).as_json()


@router.post("/conversations/{conversation_id}/release")
async def release(
    conversation_id: int,
    desk: DeskDep,
    staff: CurrentStaff,
    seen_unanswered: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> dict[str, Any]:
    """Hand the conversation back to the bot; the driver is told. 403 unless you hold it;
    409 while the driver has messages nobody answered (`context.unanswered`), unless
    `seen_unanswered` counts them."""
    result = await desk.release(conversation_id, staff, seen_unanswered)
    return {
        "conversation_id": conversation_id,
        "mode": "bot",
        "assigned_to": None,
        "driver_told": result.delivered,
    }


@router.post("/conversations/{conversation_id}/close")
async def close(conversation_id: int, db: SessionDep, staff: CurrentStaff) -> dict[str, Any]:
    """Done: out of the queue, back to the bot; 403 unless you hold it."""
    await support.close(db, conversation_id, staff)
    return {"conversation_id": conversation_id, "mode": "bot", "closed": True}
