"""The staff audit log: who read which driver's conversation, claimed it, opened it with a
reason, or stopped or unlocked a charge from it, and which operator sent which command to a
charger from its console page (`staff_audit`, exported as CSV).

Rows are added in the caller's transaction, so an action and its record commit together.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.db import utcnow
from backend.models import StaffAudit, StaffUser
from backend.services.usage import range_bounds, safe_cell
from backend.timezones import STOCKHOLM

ADMIN_TOKEN_ACTOR = "admin-token"
REASON_LIMIT = 300  # the column's size
CSV_COLUMNS = [
    "id",
    "created_at",
    "actor",
    "staff_id",
    "staff_name",
    "role",
    "action",
    "conversation_id",
    "reason",
]


class AuditAction(StrEnum):
    READ = "read"  # a transcript shown to staff (API read or console page view)
    OPEN = "open"  # a conversation outside the queue opened on purpose, with a reason
    CLAIM = "claim"
    STOP = "stop"  # RemoteStopTransaction of the driver's charge, from their conversation
    UNLOCK = "unlock"
    # An operator's command to a charger from its console page (reason: charger, what, answer)
    CHARGER_RESET = "charger_reset"
    CHARGER_UNLOCK = "charger_unlock"
    CHARGER_AVAILABILITY = "charger_availability"
    CHARGER_CONFIGURATION = "charger_configuration"
    CHARGER_FIRMWARE = "charger_firmware"
    CHARGER_DIAGNOSTICS = "charger_diagnostics"
    CHARGER_CLEAR_CACHE = "charger_clear_cache"
    CHARGER_TRIGGER = "charger_trigger"


def record(
    db: AsyncSession,
    staff: StaffUser | None,
    action: AuditAction,
    conversation_id: int | None = None,
    reason: str | None = None,
) -> None:
    """One audit row in the caller's transaction (the caller commits); `staff=None` is the
    machine admin token."""
    db.add(
        StaffAudit(
            staff_id=staff.id if staff is not None else None,
            actor=staff.email if staff is not None else ADMIN_TOKEN_ACTOR,
            action=action.value,
            conversation_id=conversation_id,
            reason=reason[:REASON_LIMIT] if reason else None,
            created_at=utcnow(),
        )
    )


async def latest(
    db: AsyncSession,
    staff: StaffUser,
    action: AuditAction,
    conversation_id: int,
    within: timedelta,
    now: datetime | None = None,
) -> StaffAudit | None:
    """The newest row of `action` by `staff` on the conversation in the last `within`."""
    since = (now or utcnow()) - within
    row: StaffAudit | None = await db.scalar(
        select(StaffAudit)
        .where(
            col(StaffAudit.staff_id) == staff.id,
            col(StaffAudit.action) == action.value,
            col(StaffAudit.conversation_id) == conversation_id,
            col(StaffAudit.created_at) >= since,
        )
        .order_by(col(StaffAudit.created_at).desc(), col(StaffAudit.id).desc())
        .limit(1)
    )
    return row


@dataclass(frozen=True)
class AuditEntry:
    """A row as operators see it, with the staff member's current name and role."""

    row: StaffAudit
    staff_name: str
    role: str


async def entries(
    db: AsyncSession, start: date, end: date, tz: ZoneInfo = STOCKHOLM, limit: int | None = None
) -> list[AuditEntry]:
    """Rows of the local-date range, newest first; ValueError for a bad range."""
    first, after = range_bounds(start, end, tz)
    query = (
        select(StaffAudit, StaffUser)
        .outerjoin(StaffUser, col(StaffUser.id) == col(StaffAudit.staff_id))
        .where(col(StaffAudit.created_at) >= first, col(StaffAudit.created_at) < after)
        .order_by(col(StaffAudit.created_at).desc(), col(StaffAudit.id).desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = (await db.execute(query)).all()
    return [
        AuditEntry(row, staff.name if staff else "", staff.role if staff else "")
        for row, staff in rows
    ]


async def csv_export(db: AsyncSession, start: date, end: date, tz: ZoneInfo = STOCKHOLM) -> str:
    """The range as CSV, oldest first; times are local ISO 8601 with their offset."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in reversed(await entries(db, start, end, tz)):
        row = entry.row
        cells: list[object] = [
            row.id,
            row.created_at.astimezone(tz).isoformat(timespec="seconds"),
            row.actor,
            row.staff_id if row.staff_id is not None else "",
            entry.staff_name,
            entry.role,
            row.action,
            row.conversation_id if row.conversation_id is not None else "",
            row.reason or "",
        ]
        writer.writerow([safe_cell(cell) for cell in cells])
    return out.getvalue()
