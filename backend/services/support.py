"""The support queue: agents claim a driver's conversation, reply, and hand it back.

Every claim, reply and action lands in the transcript (`Message`) with the agent's id; the
actions as `direction="sys"` lines naming the agent ("Lena claimed the conversation").

Least privilege (issue #13): staff claim only from the queue (mode `waiting`) and act only
on a conversation they hold. A support agent reads a transcript only while it is queued or
held by them, or after opening it on purpose with a reason (`open_transcript`); operators
read any. Every read, claim and open is in the staff audit log (`backend.services.audit`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.lifecycles import CONVERSATION_LIFECYCLE
from backend.models import (
    Charger,
    ChargingSession,
    Connector,
    Conversation,
    ConversationMode,
    Driver,
    EscalationReason,
    Message,
    Payment,
    StaffRole,
    StaffUser,
)
from backend.services import audit
from backend.services.audit import AuditAction
from backend.services.errors import (
    AccessDeniedError,
    ConflictError,
    InvalidFieldError,
    NotFoundError,
)
from backend.services.rows import get_or_404

RECENT_BOT_TURNS = 5
ESCALATED = "Escalated:"  # the transcript's line when a chat enters the queue
HELD_MODES = frozenset({ConversationMode.WAITING, ConversationMode.AGENT})
# Leaving the queue (release, close) forgets why the conversation entered it.
NOT_ESCALATED = {"escalation_reason": None, "escalation_detail": None}
# Stored after the visible escalation detail: the charging session the escalation is about.
SESSION_MARK = " @session:"
MIN_OPEN_REASON = 10  # characters: a sentence someone reviewing the audit log can follow
OPEN_GRANT = timedelta(minutes=30)  # an open lets its agent read the transcript this long
# Live refreshes of a page already read are one read: another row only after this long.
READ_DEDUPE = timedelta(minutes=10)


class StaffForbiddenError(AccessDeniedError):
    """This staff member may not do this to this conversation (403); `reason` is a code:
    `not_in_queue`, `held_by_other` or `not_held`."""


def is_operator(staff: StaffUser) -> bool:
    return staff.role == StaffRole.OPERATOR


def holds(conversation: Conversation, staff: StaffUser) -> bool:
    return conversation.mode == ConversationMode.AGENT and conversation.assigned_to == staff.id


def not_held(conversation: Conversation, doing: str) -> StaffForbiddenError:
    """The refusal of an action (`doing`: "reply", "stop the charge"...) by a non-holder."""
    if conversation.mode == ConversationMode.BOT:
        return StaffForbiddenError(
            "not_in_queue",
            f"conversation {conversation.id} is not in the support queue (the driver is with "
            f"the bot): you cannot {doing} there",
        )
    if conversation.mode == ConversationMode.WAITING:
        return StaffForbiddenError(
            "not_held", f"claim the conversation from the queue before you {doing}"
        )
    return StaffForbiddenError(
        "held_by_other", f"another agent holds this conversation: only they can {doing}"
    )


async def note(db: AsyncSession, conversation_id: int, staff: StaffUser, text: str) -> None:
    """An action of the agent in the transcript, naming them (the caller commits)."""
    db.add(
        Message(
            conversation_id=conversation_id,
            direction="sys",
            author="agent",
            staff_id=staff.id,
            text=f"{staff.name} {text}",
            created_at=utcnow(),
        )
    )


async def _move(
    db: AsyncSession,
    conversation_id: int,
    to: ConversationMode,
    only_from: Mapping[ConversationMode, Any],
    values: dict[str, Any],
) -> bool:
    """The mode change of a conversation: one UPDATE to `to`, with `values`, compare-and-set.

    `only_from` maps each mode the row may be in to what else must hold in it (who holds
    it); each must be a move CONVERSATION_LIFECYCLE allows (IllegalTransition, writing
    nothing, otherwise). A concurrent change makes the UPDATE match no row: False.
    """
    CONVERSATION_LIFECYCLE.sources(to, only_from)
    condition = or_(
        *(and_(col(Conversation.mode) == mode, guard) for mode, guard in only_from.items())
    )
    result: CursorResult[Any] = await db.execute(  # type: ignore[assignment]
        update(Conversation)
        .where(col(Conversation.id) == conversation_id, condition)
        .values(**values, mode=to, version=col(Conversation.version) + 1, updated_at=utcnow())
    )
    return result.rowcount == 1


async def claim(db: AsyncSession, conversation_id: int, staff: StaffUser) -> None:
    """The agent holds the conversation, taken from the queue (again if theirs already).

    StaffForbiddenError for a conversation that never asked for help (with the bot): a claim
    would silence the bot and open the driver's charge to the agent's actions. ConflictError
    when another agent holds it (they were first).
    """
    assert staff.id is not None
    queued_or_mine = {
        ConversationMode.WAITING: col(Conversation.assigned_to).is_(None),
        ConversationMode.AGENT: col(Conversation.assigned_to) == staff.id,
    }
    values = {"assigned_to": staff.id}
    if not await _move(db, conversation_id, ConversationMode.AGENT, queued_or_mine, values):
        await db.rollback()
        conversation = await get_or_404(db, Conversation, conversation_id, "conversation")
        if conversation.mode == ConversationMode.BOT:
            raise StaffForbiddenError(
                "not_in_queue",
                f"conversation {conversation_id} is not in the support queue: the driver has "
                "not asked for help, so it cannot be claimed",
            )
        raise ConflictError("another agent holds this conversation")
    await note(db, conversation_id, staff, "claimed the conversation")
    audit.record(db, staff, AuditAction.CLAIM, conversation_id)
    await db.commit()


async def _held(db: AsyncSession, conversation_id: int, staff: StaffUser, doing: str) -> None:
    """NotFoundError, or StaffForbiddenError unless `staff` holds the conversation."""
    conversation = await get_or_404(db, Conversation, conversation_id, "conversation")
    if not holds(conversation, staff):
        raise not_held(conversation, doing)


def unanswered(messages: Sequence[Message]) -> list[Message]:
    """What the driver wrote since the chat was queued or an agent last replied: only a person
    answers it (the bot's "you are in line" is no answer)."""
    start = 0
    for position, message in enumerate(messages):
        answered = message.author == "agent" and message.direction == "out"
        queued = message.direction == "sys" and message.text.startswith(ESCALATED)
        if answered or queued:
            start = position + 1
    return [m for m in messages[start:] if m.direction == "in" and m.author == "driver"]


async def _messages(db: AsyncSession, conversation_id: int) -> list[Message]:
    return list(
        (
            await db.scalars(
                select(Message)
                .where(col(Message.conversation_id) == conversation_id)
                .order_by(col(Message.created_at), col(Message.id))
            )
        ).all()
    )


async def release(
    db: AsyncSession, conversation_id: int, staff: StaffUser, *, seen_unanswered: int = 0
) -> None:
    """Back to the bot; only the agent holding it may release it.

    Messages the driver wrote that no agent answered must have been seen: a release that
    acknowledges fewer than there are is refused (ConflictError naming them), so nothing the
    driver asked a person is dropped silently. StaffForbiddenError unless `staff` holds it
    (checked first: the refusal above quotes the driver).
    """
    await _held(db, conversation_id, staff, "hand it back")
    waiting = unanswered(await _messages(db, conversation_id))
    if len(waiting) > seen_unanswered:
        shown = "; ".join(repr(m.text[:80]) for m in waiting[-3:])
        raise ConflictError(
            f"the driver wrote {len(waiting)} message(s) nobody answered ({shown}): answer "
            f"them, or release acknowledging them (seen_unanswered={len(waiting)})"
        )
    held_by_me = {ConversationMode.AGENT: col(Conversation.assigned_to) == staff.id}
    values = {
        "assigned_to": None,
        "waiting_since": None,
        "state": None,  # no question the bot asked before the agent came is still open
        **NOT_ESCALATED,
    }
    if not await _move(db, conversation_id, ConversationMode.BOT, held_by_me, values):
        await db.rollback()
        raise ConflictError("the conversation changed meanwhile; reload it")
    await note(db, conversation_id, staff, "released the conversation to the bot")
    await db.commit()


async def close(db: AsyncSession, conversation_id: int, staff: StaffUser) -> None:
    """Done: back to the bot and out of the queue; only by the staff member holding it."""
    await _held(db, conversation_id, staff, "close it")
    held_by_me = {ConversationMode.AGENT: col(Conversation.assigned_to) == staff.id}
    values = {"assigned_to": None, "waiting_since": None, "state": None, **NOT_ESCALATED}
    if not await _move(db, conversation_id, ConversationMode.BOT, held_by_me, values):
        await db.rollback()
        raise ConflictError("the conversation changed meanwhile; reload it")
    await note(db, conversation_id, staff, "closed the conversation")
    await db.commit()


def _stored_detail(detail: str | None, session_id: int | None) -> str | None:
    """The escalation detail as stored: the visible part, and the session it is about."""
    about = f"{SESSION_MARK}{session_id}" if session_id is not None else ""
    return ((detail or "")[: 200 - len(about)] + about) or None


def split_detail(stored: str | None) -> tuple[str | None, int | None]:
    """(visible detail, charging session id) of a stored escalation detail."""
    if not stored:
        return None, None
    visible, mark, number = stored.rpartition(SESSION_MARK)
    if not mark or not number.isdigit():
        return stored, None
    return visible or None, int(number)


async def escalate(
    db: AsyncSession,
    conversation: Conversation,
    reason: EscalationReason,
    detail: str | None = None,
    *,
    session_id: int | None = None,
) -> bool:
    """Put the conversation in the support queue, with why; the caller commits.

    `session_id`: the charging session the problem belongs to (a failed start, a payment
    problem); the agent's context shows that session, not the driver's latest attempt.

    False, changing nothing, when it is waiting or held by an agent already: a held chat
    is never taken from its agent, and the first reason stays, except that a payment problem
    replaces it (with a transcript line): money owed is what the agent must see. Lock the row first
    (`SELECT ... FOR NO KEY UPDATE`) when the caller is not the conversation engine.
    """
    detail = detail[:200] if detail else None
    if conversation.mode in HELD_MODES:
        if reason == EscalationReason.PAYMENT_PROBLEM and conversation.id is not None:
            # Money owed outranks the first reason: the agent's context moves to that session.
            _note_escalation(db, conversation, reason, detail, session_id, utcnow())
        return False
    assert conversation.id is not None
    CONVERSATION_LIFECYCLE.check(conversation.mode, ConversationMode.WAITING)
    now = utcnow()
    conversation.mode = ConversationMode.WAITING
    conversation.waiting_since = now
    _note_escalation(db, conversation, reason, detail, session_id, now)
    return True


def _note_escalation(
    db: AsyncSession,
    conversation: Conversation,
    reason: EscalationReason,
    detail: str | None,
    session_id: int | None,
    now: datetime,
) -> None:
    """The reason and its session on the conversation, and a line in the transcript."""
    assert conversation.id is not None
    conversation.escalation_reason = reason
    conversation.escalation_detail = _stored_detail(detail, session_id)
    conversation.version += 1
    conversation.updated_at = now
    line = f"{ESCALATED} {reason}" + (f" ({detail})" if detail else "")
    db.add(
        Message(
            conversation_id=conversation.id,
            direction="sys",
            author="bot",
            text=line,
            created_at=now,
        )
    )


async def record_reply(
    db: AsyncSession, conversation_id: int, staff: StaffUser, text: str
) -> Conversation:
    """The agent's reply in the transcript (committed); ConflictError unless they hold it."""
    conversation = await db.scalar(
        select(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    if conversation is None:
        raise NotFoundError(f"conversation {conversation_id} not found")
    if not holds(conversation, staff):
        refusal = not_held(conversation, "reply")  # before the rollback expires the row
        await db.rollback()
        raise refusal
    db.add(
        Message(
            conversation_id=conversation_id,
            direction="out",
            author="agent",
            staff_id=staff.id,
            text=text,
            created_at=utcnow(),
        )
    )
    conversation.updated_at = utcnow()
    conversation.version += 1
    await db.commit()
    return conversation


async def queue(db: AsyncSession, staff: StaffUser | None = None) -> list[dict[str, Any]]:
    """Conversations waiting for an agent or held by one, the longest waiting first.

    A support agent (`staff`) sees who holds a colleague's conversation, not its last message.
    """
    rows = (
        await db.execute(
            select(Conversation, Driver)
            .outerjoin(Driver, col(Driver.id) == col(Conversation.driver_id))
            .where(col(Conversation.mode).in_([ConversationMode.WAITING, ConversationMode.AGENT]))
            .order_by(col(Conversation.waiting_since).asc(), col(Conversation.id))
        )
    ).all()
    items = []
    for conversation, driver in rows:
        private = (
            staff is not None
            and not is_operator(staff)
            and conversation.mode == ConversationMode.AGENT
            and conversation.assigned_to != staff.id
        )
        last = None
        if not private:
            last = await db.scalar(
                select(Message)
                .where(col(Message.conversation_id) == conversation.id)
                .order_by(col(Message.created_at).desc(), col(Message.id).desc())
                .limit(1)
            )
        items.append(
            {
                "conversation_id": conversation.id,
                "channel": conversation.channel,
                "address": conversation.address,
                "mode": conversation.mode,
                "driver_name": driver.name if driver is not None else None,
                "waiting_since": conversation.waiting_since,
                "escalation_reason": conversation.escalation_reason,
                "assigned_to": conversation.assigned_to,
                "last_message": _message_out(last) if last is not None else None,
            }
        )
    return items


def _message_out(message: Message, names: dict[int, str] | None = None) -> dict[str, Any]:
    staff_id = message.staff_id
    return {
        "author": message.author,
        "kind": "event" if message.direction == "sys" else "message",
        "staff_id": staff_id,
        "staff_name": (names or {}).get(staff_id) if staff_id is not None else None,
        "text": message.text,
        "created_at": message.created_at,
    }


async def readable(db: AsyncSession, conversation_id: int, staff: StaffUser) -> Conversation:
    """The conversation if `staff` may read it: operators any; an agent one in the queue, one
    they hold, or one they opened with a reason in the last `OPEN_GRANT`. Records nothing."""
    conversation = await get_or_404(db, Conversation, conversation_id, "conversation")
    if is_operator(staff) or conversation.mode == ConversationMode.WAITING:
        return conversation
    if holds(conversation, staff):
        return conversation
    if await audit.latest(db, staff, AuditAction.OPEN, conversation_id, OPEN_GRANT) is not None:
        return conversation
    where = "is not in the support queue"
    if conversation.mode != ConversationMode.BOT:
        holder = (
            await db.get(StaffUser, conversation.assigned_to)
            if conversation.assigned_to is not None
            else None
        )
        where = f"is held by {holder.name if holder else 'another agent'}"
    raise StaffForbiddenError(
        "not_in_queue" if conversation.mode == ConversationMode.BOT else "held_by_other",
        f"conversation {conversation_id} {where}: to read it, open it with a reason "
        f"(at least {MIN_OPEN_REASON} characters; it is recorded)",
    )


async def read_transcript(
    db: AsyncSession,
    conversation_id: int,
    staff: StaffUser,
    *,
    dedupe: timedelta | None = None,
) -> dict[str, Any]:
    """The transcript for `staff` (see `readable`), the read recorded in the audit log.

    With `dedupe` (a live refresh of a page) no row is added when `staff` read it in that
    time already; a refresh is never a way to read without a record.
    """
    await readable(db, conversation_id, staff)
    seen = dedupe is not None and (
        await audit.latest(db, staff, AuditAction.READ, conversation_id, dedupe) is not None
    )
    if not seen:
        audit.record(db, staff, AuditAction.READ, conversation_id)
        await db.commit()
    return await transcript(db, conversation_id)


async def open_transcript(
    db: AsyncSession, conversation_id: int, staff: StaffUser, reason: str
) -> dict[str, Any]:
    """Open a conversation outside the queue on purpose: the reason is recorded, and for
    `OPEN_GRANT` the staff member may read it (read only: nothing here allows a claim)."""
    reason = " ".join(reason.split())
    if not reason.isprintable():  # PostgreSQL refuses NUL; the log is read by people
        raise InvalidFieldError("reason", "the reason must be plain text")
    if len(reason) < MIN_OPEN_REASON:
        raise InvalidFieldError(
            "reason",
            f"opening a conversation outside the queue needs a reason of at least "
            f"{MIN_OPEN_REASON} characters",
        )
    await get_or_404(db, Conversation, conversation_id, "conversation")
    audit.record(db, staff, AuditAction.OPEN, conversation_id, reason)
    await db.commit()
    return await transcript(db, conversation_id)


async def transcript(db: AsyncSession, conversation_id: int) -> dict[str, Any]:
    """The transcript and its context, unchecked and unrecorded: callers serving staff use
    `read_transcript` or `open_transcript`."""
    conversation = await get_or_404(db, Conversation, conversation_id, "conversation")
    messages = await _messages(db, conversation_id)
    staff_ids = {m.staff_id for m in messages if m.staff_id is not None}
    names: dict[int, str] = {}
    if staff_ids:
        rows = await db.execute(
            select(col(StaffUser.id), col(StaffUser.name)).where(col(StaffUser.id).in_(staff_ids))
        )
        names = {int(staff_id): name for staff_id, name in rows.all() if staff_id is not None}
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "address": conversation.address,
        "mode": conversation.mode,
        "assigned_to": conversation.assigned_to,
        "waiting_since": conversation.waiting_since,
        "context": await context_of(db, conversation, messages),
        "messages": [_message_out(m, names) for m in messages],
    }


async def context_of(
    db: AsyncSession, conversation: Conversation, messages: list[Message] | Any
) -> dict[str, Any]:
    """What an agent needs at a glance: who, on which channel, their charging and paying.

    The session shown is the one the escalation is about (a failed start, a payment
    problem), else the driver's latest.
    """
    driver = (
        await db.get(Driver, conversation.driver_id) if conversation.driver_id is not None else None
    )
    detail, about = split_detail(conversation.escalation_detail)
    session = None
    if driver is not None and about is not None:  # the session the escalation is about
        session = await db.scalar(
            select(ChargingSession).where(
                col(ChargingSession.id) == about, col(ChargingSession.driver_id) == driver.id
            )
        )
    if driver is not None and session is None:
        session = await db.scalar(
            select(ChargingSession)
            .where(col(ChargingSession.driver_id) == driver.id)
            .order_by(col(ChargingSession.created_at).desc(), col(ChargingSession.id).desc())
            .limit(1)
        )
    bot_turns = [m.text for m in messages if m.author == "bot" and m.direction == "out"]
    return {
        "driver": None
        if driver is None
        else {
            "id": driver.id,
            "name": driver.name,
            "phone": driver.phone,
            "billing": driver.billing,
            "language": driver.language,
        },
        "channel": conversation.channel,
        "session": await _session_context(db, session) if session is not None else None,
        "recent_bot_turns": bot_turns[-RECENT_BOT_TURNS:],
        "unanswered": [m.text for m in unanswered(list(messages))],
        "escalation": {
            "reason": conversation.escalation_reason,
            "detail": detail,
            "waiting_since": conversation.waiting_since,
        },
    }


async def _session_context(db: AsyncSession, session: ChargingSession) -> dict[str, Any]:
    connector = await db.scalar(
        select(Connector).where(
            col(Connector.charger_id) == session.charger_id,
            col(Connector.connector_id) == session.connector_id,
        )
    )
    charger = await db.get(Charger, session.charger_id)
    payment = await db.scalar(
        select(Payment)
        .where(col(Payment.session_id) == session.id)
        .order_by(col(Payment.id).desc())
        .limit(1)
    )
    return {
        "id": session.id,
        "status": session.status,
        "failure_reason": session.failure_reason,
        "charger_id": session.charger_id,
        "charger_online": charger.online if charger is not None else None,
        "connector_id": session.connector_id,
        "connector_code": connector.code if connector is not None else None,
        "connector_status": connector.status if connector is not None else None,
        "energy_wh": session.energy_wh,
        "cost_minor": session.cost_minor,
        "currency": session.currency,
        "started_at": session.started_at,
        "stopped_at": session.stopped_at,
        "payment": None
        if payment is None
        else {
            "method": payment.method,
            "status": payment.status,
            "amount_authorized_minor": payment.amount_authorized_minor,
            "amount_captured_minor": payment.amount_captured_minor,
            "amount_uncollected_minor": payment.amount_uncollected_minor,
        },
    }
