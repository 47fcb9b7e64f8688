"""An operator's page for one charger: what it is and reports (connectors, configuration,
jobs, security events, local list) and the commands to send it, each in the audit log with
the operator who sent it and the charger's answer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from backend.api.deps import SessionDep, SettingsDep
from backend.console.pages import (
    CsrfField,
    OperatorDep,
    check_csrf,
    console_router,
    redirect,
    render,
)
from backend.models import ChargerJob
from backend.services import audit, charger_configuration, charger_jobs, local_list, network
from backend.services.audit import AuditAction
from backend.services.errors import DomainError
from backend.services.ports import ChargerCommands, CommandResult

router = console_router()

Action = Literal[
    "reset",
    "unlock",
    "availability",
    "configuration",
    "firmware",
    "diagnostics",
    "clear_cache",
    "trigger",
]
AUDITED: dict[str, AuditAction] = {
    "reset": AuditAction.CHARGER_RESET,
    "unlock": AuditAction.CHARGER_UNLOCK,
    "availability": AuditAction.CHARGER_AVAILABILITY,
    "configuration": AuditAction.CHARGER_CONFIGURATION,
    "firmware": AuditAction.CHARGER_FIRMWARE,
    "diagnostics": AuditAction.CHARGER_DIAGNOSTICS,
    "clear_cache": AuditAction.CHARGER_CLEAR_CACHE,
    "trigger": AuditAction.CHARGER_TRIGGER,
}
Trigger = Literal["StatusNotification", "BootNotification", "Heartbeat", "MeterValues"]
TRIGGERS = get_args(Trigger)


def _page(charger_id: str) -> str:
    return f"/console/chargers/{charger_id}"


@router.get("/chargers/{charger_id}", response_class=HTMLResponse)
async def charger_page(
    charger_id: str, request: Request, db: SessionDep, visitor: OperatorDep
) -> HTMLResponse:
    view = await network.get_charger(db, charger_id)
    keys, reported_at = await charger_configuration.stored(db, charger_id)
    jobs: list[ChargerJob] = await charger_jobs.jobs_of(db, charger_id, limit=5)
    events = await charger_jobs.security_events_of(db, charger_id, limit=10)
    held = await local_list.held(db, charger_id)
    return render(
        request,
        "charger.html",
        visitor,
        page="network",
        charger=view.charger,
        connectors=view.connectors,
        keys=keys,
        reported_at=reported_at,
        jobs=jobs,
        events=events,
        local_list=held,
        triggers=TRIGGERS,
    )


async def _send(
    request: Request, action: str, fields: dict[str, str], charger_id: str
) -> tuple[CommandResult, str]:
    """The command `action` with the form's fields; its result and a line for the audit."""
    commands: ChargerCommands = request.app.state.commands
    connector = int(fields.get("connector_id") or 0)
    sends: dict[str, Callable[[], Awaitable[CommandResult]]] = {
        "reset": lambda: commands.reset(
            charger_id, "Hard" if fields.get("kind") == "Hard" else "Soft"
        ),
        "unlock": lambda: commands.unlock(charger_id, connector),
        "availability": lambda: commands.change_availability(
            charger_id, connector, fields.get("available") == "true"
        ),
        "configuration": lambda: charger_configuration.change(
            request.app.state.sessions,
            commands,
            charger_id,
            fields.get("key", ""),
            fields.get("value", ""),
            client_certificates=bool(request.app.state.settings.tls_client_cafile),
        ),
        "clear_cache": lambda: local_list.clear_cache(
            request.app.state.sessions, commands, charger_id
        ),
        "trigger": lambda: commands.trigger_message(
            charger_id, fields.get("message", ""), connector or None
        ),
    }
    if action in sends:
        result = await sends[action]()
    else:  # firmware, diagnostics: jobs
        jobs: charger_jobs.ChargerJobs = request.app.state.jobs
        outcome = (
            await jobs.update_firmware(charger_id, fields.get("location", ""))
            if action == "firmware"
            else await jobs.get_diagnostics(charger_id)
        )
        result = outcome.result
    what = ", ".join(f"{k}={v}" for k, v in sorted(fields.items()) if v)
    return result, what


@router.post("/chargers/{charger_id}/actions/{action}")
async def charger_action(
    charger_id: str,
    action: Action,
    request: Request,
    db: SessionDep,
    visitor: OperatorDep,
    settings: SettingsDep,
    csrf_token: CsrfField = "",
    connector_id: Annotated[int | None, Form(ge=0, le=99)] = None,
    kind: Annotated[Literal["Soft", "Hard"] | None, Form()] = None,
    available: Annotated[Literal["true", "false"] | None, Form()] = None,
    key: Annotated[str | None, Form(max_length=50)] = None,
    value: Annotated[str | None, Form(max_length=500)] = None,
    location: Annotated[str | None, Form(max_length=512)] = None,
    message: Annotated[Trigger | None, Form()] = None,
) -> RedirectResponse:
    """Send the command, record who sent it and what the charger said; back to the page."""
    check_csrf(visitor, csrf_token)
    await network.get_charger(db, charger_id)  # 404 for an unknown charger
    await db.rollback()  # no transaction held across the charger's answer
    fields: dict[str, Any] = {
        "connector_id": "" if connector_id is None else str(connector_id),
        "kind": kind or "",
        "available": available or "",
        "key": key or "",
        "value": value or "",
        "location": location or "",
        "message": message or "",
    }
    try:
        result, what = await _send(request, action, fields, charger_id)
    except DomainError as refused:
        return redirect(
            _page(charger_id), "notice_charger_refused", str(refused), settings=settings
        )
    answer = result.word
    audit.record(
        db, visitor.staff, AUDITED[action], reason=f"{charger_id}: {action} {what} -> {answer}"
    )
    await db.commit()
    return redirect(
        _page(charger_id), "notice_charger_done", f"{action}: {answer}", settings=settings
    )
