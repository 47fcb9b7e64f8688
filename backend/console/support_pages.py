"""Console pages of support agents: the queue, a conversation and its actions, live updates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Form, HTTPException, Query, Request, status
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.api.deps import IdPath, SessionDep, SettingsDep
from backend.api.support_desk import ActionResult, SupportDesk
from backend.console import live
from backend.console.pages import (
    CsrfField,
    Visitor,
    VisitorDep,
    check_csrf,
    console_router,
    redirect,
    render,
)
from backend.models import StaffUser
from backend.services import support
from backend.services.errors import (
    CommandFailedError,
    ConflictError,
    InvalidFieldError,
    NotFoundError,
)
from backend.services.support import StaffForbiddenError
from backend.settings import Settings

MAX_REPLY = 1600  # characters of an agent's reply, as the support API allows

router = console_router()


async def _staff_names(db: SessionDep) -> dict[int, str]:
    rows = await db.execute(select(col(StaffUser.id), col(StaffUser.name)))
    return {int(staff_id): name for staff_id, name in rows.all() if staff_id is not None}


@router.get("/queue", response_class=HTMLResponse)
async def queue_page(request: Request, db: SessionDep, visitor: VisitorDep) -> HTMLResponse:
    items = await support.queue(db, visitor.staff)
    return render(
        request, "queue.html", visitor, page="queue", items=items, names=await _staff_names(db)
    )


@router.get("/fragments/queue", response_class=HTMLResponse)
async def queue_fragment(request: Request, db: SessionDep, visitor: VisitorDep) -> HTMLResponse:
    items = await support.queue(db, visitor.staff)
    return render(request, "_queue.html", visitor, items=items, names=await _staff_names(db))


async def _conversation_context(
    db: SessionDep, conversation_id: int, visitor: Visitor, *, refresh: bool = False
) -> dict[str, Any]:
    """The transcript if the visitor may read it, the read audited (a live refresh of a page
    read a moment ago adds no row)."""
    dedupe = support.READ_DEDUPE if refresh else None
    try:
        conversation = await support.read_transcript(
            db, conversation_id, visitor.staff, dedupe=dedupe
        )
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return {"c": conversation, "names": await _staff_names(db)}


@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_page(
    conversation_id: IdPath, request: Request, db: SessionDep, visitor: VisitorDep
) -> HTMLResponse:
    try:
        context = await _conversation_context(db, conversation_id, visitor)
    except StaffForbiddenError as exc:
        # Not theirs to read: say why, and offer the recorded way in.
        return render(
            request,
            "conversation_forbidden.html",
            visitor,
            status_code=status.HTTP_403_FORBIDDEN,
            page="queue",
            conversation_id=conversation_id,
            detail=str(exc),
            min_reason=support.MIN_OPEN_REASON,
        )
    faq_entries = SupportDesk.of(request.app).faq.entries()
    return render(
        request, "conversation.html", visitor, page="queue", faq_entries=faq_entries, **context
    )


@router.get("/fragments/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation_fragment(
    conversation_id: IdPath, request: Request, db: SessionDep, visitor: VisitorDep
) -> Response:
    try:
        context = await _conversation_context(db, conversation_id, visitor, refresh=True)
    except StaffForbiddenError as exc:  # e.g. a colleague claimed it: the page reloads
        return PlainTextResponse(str(exc), status_code=status.HTTP_403_FORBIDDEN)
    return render(request, "_conversation.html", visitor, **context)


@router.post("/conversations/{conversation_id}/open")
async def open_conversation(
    conversation_id: IdPath,
    db: SessionDep,
    visitor: VisitorDep,
    settings: SettingsDep,
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    """Open a conversation outside the queue read-only, the reason in the audit log."""
    check_csrf(visitor, csrf_token)
    back = _back_to(conversation_id)
    try:
        await support.open_transcript(db, conversation_id, visitor.staff, reason[:300])
    except InvalidFieldError as exc:
        return redirect(back, "notice_reason_short", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect(back, "notice_opened", settings=settings)


def _back_to(conversation_id: int) -> str:
    return f"/console/conversations/{conversation_id}"


async def _act(
    conversation_id: int,
    action: Callable[[], Awaitable[ActionResult]],
    notice_for: Callable[[ActionResult], str],
    settings: Settings,
) -> RedirectResponse:
    """Run an action; its outcome or refusal comes back as the page's notice."""
    back = _back_to(conversation_id)
    try:
        result = await action()
    except StaffForbiddenError as exc:
        return redirect(back, "notice_forbidden", str(exc), settings=settings)
    except ConflictError as exc:
        return redirect(back, "notice_conflict", str(exc), settings=settings)
    except CommandFailedError as exc:
        return redirect(back, "notice_command_failed", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect(back, notice_for(result), result.detail, settings=settings)


def _sent(result: ActionResult) -> str:
    return "notice_sent" if result.delivered else "notice_not_delivered"


def _commanded(success: str) -> Callable[[ActionResult], str]:
    def notice(result: ActionResult) -> str:
        return success if result.outcome in {"stopping", "accepted"} else "notice_command_failed"

    return notice


HoldStep = Callable[[AsyncSession, int, StaffUser], Awaitable[None]]
# Claim and close (hand back is `release`): the service call, where the agent goes next,
# what they are told.
HOLD_STEPS: dict[str, tuple[HoldStep, str | None, str]] = {
    "claim": (support.claim, None, "notice_claimed"),
    "close": (support.close, "/console/queue", "notice_closed"),
}


@router.post("/conversations/{conversation_id}/release")
async def release(
    conversation_id: IdPath,
    request: Request,
    visitor: VisitorDep,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
    seen_unanswered: Annotated[int, Form(ge=0, le=10_000)] = 0,
) -> Response:
    """Back to the bot, which tells the driver; unanswered messages must have been shown."""
    check_csrf(visitor, csrf_token)
    desk = SupportDesk.of(request.app)
    release = desk.release(conversation_id, visitor.staff, seen_unanswered)
    return await _change_held(
        conversation_id, release, "/console/queue", "notice_released", settings
    )


@router.post("/conversations/{conversation_id}/{step}")
async def hold_step(
    conversation_id: IdPath,
    step: Literal["claim", "close"],
    db: SessionDep,
    visitor: VisitorDep,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(visitor, csrf_token)
    change, destination, notice = HOLD_STEPS[step]
    done = destination or _back_to(conversation_id)
    return await _change_held(
        conversation_id, change(db, conversation_id, visitor.staff), done, notice, settings
    )


async def _change_held(
    conversation_id: int,
    change: Awaitable[object],
    destination: str,
    notice: str,
    settings: Settings,
) -> Response:
    """Run a change to a conversation someone holds: done, to `destination` with `notice`;
    refused (not theirs, changed meanwhile), back to its page saying why; gone, 404."""
    try:
        await change
    except StaffForbiddenError as exc:
        return redirect(_back_to(conversation_id), "notice_forbidden", str(exc), settings=settings)
    except ConflictError as exc:
        return redirect(_back_to(conversation_id), "notice_conflict", str(exc), settings=settings)
    except NotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    return redirect(destination, notice, settings=settings)


DeskAction = Callable[[SupportDesk, int, StaffUser, str], Awaitable[ActionResult]]
# What an agent holding the conversation does from its page: the desk call (given the
# reply's text or the FAQ entry) and the notice its result gives.
ACTIONS: dict[str, tuple[DeskAction, Callable[[ActionResult], str]]] = {
    "reply": (lambda desk, cid, staff, text: desk.reply(cid, staff, text), _sent),
    "faq": (lambda desk, cid, staff, entry: desk.send_faq(cid, staff, entry), _sent),
    "stop": (
        lambda desk, cid, staff, _: desk.stop_charging(cid, staff),
        _commanded("notice_stopping"),
    ),
    "unlock": (
        lambda desk, cid, staff, _: desk.unlock(cid, staff),
        _commanded("notice_unlocked"),
    ),
    "card-link": (lambda desk, cid, staff, _: desk.send_card_link(cid, staff), _sent),
}


@router.post("/conversations/{conversation_id}/actions/{action}")
async def act(
    conversation_id: IdPath,
    action: Literal["reply", "faq", "stop", "unlock", "card-link"],
    request: Request,
    visitor: VisitorDep,
    settings: SettingsDep,
    # A browser sends a textarea's newlines as CRLF: room for them, checked after folding.
    text: Annotated[str, Form(max_length=2 * MAX_REPLY)] = "",
    entry_id: Annotated[str, Form(max_length=64)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    check_csrf(visitor, csrf_token)
    text = text.replace("\r\n", "\n").strip()
    if action == "reply" and not text:
        return redirect(_back_to(conversation_id))
    if len(text) > MAX_REPLY:
        return redirect(_back_to(conversation_id), "notice_too_long", settings=settings)
    call, notice_for = ACTIONS[action]
    argument = text if action == "reply" else entry_id
    desk = SupportDesk.of(request.app)
    return await _act(
        conversation_id,
        lambda: call(desk, conversation_id, visitor.staff, argument),
        notice_for,
        settings,
    )


# -- live updates -----------------------------------------------------------------------------


@router.get("/events")
async def events(
    request: Request, visitor: VisitorDep, settings: SettingsDep, topic: str = Query(max_length=40)
) -> StreamingResponse:
    """`change` events for `queue`, `conversation:<id>` or (operators) `network`."""
    fingerprint = live.fingerprint_for(topic)
    if fingerprint is None:
        raise HTTPException(status_code=404, detail="unknown topic")
    if topic == "network" and not visitor.is_operator:
        raise HTTPException(status_code=403, detail=visitor.t("forbidden"))
    watched = live.CONVERSATION_TOPIC.fullmatch(topic)
    if watched is not None:  # even when a conversation changes is not for everyone
        async with request.app.state.sessions() as db:
            try:
                await support.readable(db, int(watched.group(1)), visitor.staff)
            except StaffForbiddenError as exc:
                raise HTTPException(status_code=403, detail=str(exc)) from exc
            except NotFoundError as exc:
                raise HTTPException(status_code=404, detail=str(exc)) from exc
    stream = live.change_stream(
        request.app.state.sessions, fingerprint, settings.console_poll_seconds
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
