"""The monthly invoice report: every completed session of invoice accounts, with totals and VAT.

A month is a calendar month in Europe/Stockholm time, by when the session ended
(`session_day`, the one rule the driver's /history follows too). Each session
contributes the figures of its receipt (total including VAT and the VAT part, as stored when it
was priced), so the report adds up exactly to what drivers were shown; a driver's VAT is the
sum of their sessions' VAT, never re-rounded.

A session under meter review (`status` needs_review) counts with the plausible amount it was
billed; once an operator decides it is `completed` and the report shows the decided cost.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.lifecycles import BILLED_SESSION_STATUSES
from backend.models import Billing, Charger, ChargingSession, Driver, Station
from backend.services.usage import FIRST_DAY, LAST_DAY
from backend.timezones import STOCKHOLM

COLUMNS = [
    "driver_id",
    "driver_name",
    "row",
    "session_id",
    "stopped_at",
    "station",
    "energy_wh",
    "net_minor",
    "vat_minor",
    "total_minor",
    "currency",
    "status",
]
# A session under meter review is billed its plausible amount until an operator decides
# (backend/services/meter_review.py); then it is `completed` at the decided cost.


def session_day(session: ChargingSession) -> date:
    """The day a session counts on, in /history and on the invoice: its Stockholm end date.

    The end, not the start: a session is billed once it is over, so a month's invoice is final
    when the month is, and one running past midnight on the last day belongs to the month it
    ended in. A session that has not ended counts on the day it started.
    """
    moment = session.stopped_at or session.started_at or session.created_at
    return moment.astimezone(STOCKHOLM).date()


MIN_YEAR, MAX_YEAR = FIRST_DAY.year, LAST_DAY.year  # months an invoice report can ask for


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @classmethod
    def parse(cls, text: str) -> Month:
        """`YYYY-MM`; ValueError otherwise."""
        year, _, month = text.partition("-")
        digits = year + month
        if len(year) != 4 or len(month) != 2 or not (digits.isascii() and digits.isdigit()):
            raise ValueError("month must be YYYY-MM")
        parsed = cls(int(year), int(month))
        if not 1 <= parsed.month <= 12:
            raise ValueError("month must be YYYY-MM")
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:  # 9999-12 has no next month to end at
            raise ValueError(f"month must be between {MIN_YEAR}-01 and {MAX_YEAR}-12")
        return parsed

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC: the `stopped_at` of sessions whose `session_day` is in it."""
        start = datetime(self.year, self.month, 1, tzinfo=STOCKHOLM)
        nxt = (self.year + 1, 1) if self.month == 12 else (self.year, self.month + 1)
        end = datetime(nxt[0], nxt[1], 1, tzinfo=STOCKHOLM)
        return start.astimezone(UTC), end.astimezone(UTC)


async def invoice_report(db: AsyncSession, month: Month) -> str:
    """CSV: per invoice driver one row per completed session, then their total row."""
    start, end = month.bounds()
    rows = (
        await db.execute(
            select(ChargingSession, Driver)
            .join(Driver, col(Driver.id) == col(ChargingSession.driver_id))
            .where(
                col(Driver.billing) == Billing.INVOICE,
                col(ChargingSession.status).in_(BILLED_SESSION_STATUSES),
                col(ChargingSession.stopped_at) >= start,
                col(ChargingSession.stopped_at) < end,
            )
            .order_by(col(Driver.id), col(ChargingSession.stopped_at), col(ChargingSession.id))
        )
    ).all()
    stations = await _station_names(db)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    current: Driver | None = None
    totals = [0, 0, 0, 0, 0]  # sessions, energy, net, vat, total
    currency = "SEK"

    def total_row() -> None:
        if current is not None:
            writer.writerow(
                [current.id, current.name, "total", totals[0], "", "", *totals[1:], currency, ""]
            )

    for session, driver in rows:
        if Month.of(session_day(session)) != month:  # the rule; the SQL range only narrows
            continue
        if current is None or driver.id != current.id:
            total_row()
            current, totals = driver, [0, 0, 0, 0, 0]
        cost = session.cost_breakdown or {}
        total = session.cost_minor or 0
        vat = int(cost.get("vat_minor", 0))
        currency = session.currency
        stopped = session.stopped_at.astimezone(STOCKHOLM).isoformat() if session.stopped_at else ""
        writer.writerow(
            [
                driver.id,
                driver.name,
                "session",
                session.id,
                stopped,
                stations.get(session.charger_id, session.charger_id),
                session.energy_wh,
                total - vat,
                vat,
                total,
                session.currency,
                session.status,
            ]
        )
        for i, value in enumerate((1, session.energy_wh, total - vat, vat, total)):
            totals[i] += value
    total_row()
    return out.getvalue()


async def _station_names(db: AsyncSession) -> dict[str, str]:
    found = await db.execute(
        select(col(Charger.id), col(Station.name)).join(
            Station, col(Station.id) == col(Charger.station_id)
        )
    )
    return {charger_id: name for charger_id, name in found.all()}
