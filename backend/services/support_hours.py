"""When people from support are on duty: weekly windows in the operator's local time.

The setting is comma-separated windows, each a day or a day range and a time range:
`Mon-Fri 08:00-17:00, Sat 10:00-14:00`; `24/7` means always. Days are English names or
their first three letters (`Mon`, `monday`), any case; a range may wrap (`Fri-Mon`). Times
are 24-hour `HH:MM`; a window ends before its end time, and `24:00` ends it at midnight
(`Mon-Fri 00:00-24:00`). A window never crosses midnight: write night shifts as two
(`Mon 22:00-24:00, Tue 00:00-06:00`). Wall-clock times in `support_timezone`, so a window
keeps its local hours across daylight saving changes (a window starting inside the hour
skipped in spring is announced an hour later; nobody sets support hours at 02:30).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALWAYS = "24/7"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WINDOW = re.compile(
    r"^(?P<first>[a-z]+)(?:\s*-\s*(?P<last>[a-z]+))?\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$",
    re.IGNORECASE,
)
_MIDNIGHT = 24 * 60


@dataclass(frozen=True)
class Window:
    """One weekday's open minutes: [start, end) counted from local midnight."""

    weekday: int  # Monday is 0
    start: int
    end: int  # at most 24 * 60

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return local.weekday() == self.weekday and self.start <= minute < self.end


@dataclass(frozen=True)
class SupportHours:
    """Parsed support hours; `windows` is empty for 24/7 (always open)."""

    windows: tuple[Window, ...]
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, timezone: str = "Europe/Stockholm") -> SupportHours:
        """ValueError naming what is wrong, for the hours or the time zone."""
        return cls(parse_windows(text), parse_zone(timezone))

    @property
    def always_open(self) -> bool:
        return not self.windows

    def is_open(self, now: datetime) -> bool:
        if self.always_open:
            return True
        local = _aware(now).astimezone(self.zone)
        return any(window.contains(local) for window in self.windows)

    def next_opening(self, now: datetime) -> datetime | None:
        """When support opens next, in the local time zone; None while open (or 24/7)."""
        if self.is_open(now):
            return None
        now = _aware(now)
        today = now.astimezone(self.zone).date()
        candidates = (
            self._local(today + timedelta(days=offset), window.start)
            for offset in range(8)  # windows repeat weekly: one week and a day is enough
            for window in self.windows
            if (today + timedelta(days=offset)).weekday() == window.weekday
        )
        return min(at for at in candidates if at > now)

    def _local(self, day: date, minute: int) -> datetime:
        """Wall-clock `minute` of `day`; a time the spring change skips moves an hour later."""
        naive = datetime.combine(day, time(minute // 60, minute % 60))
        return naive.replace(tzinfo=self.zone).astimezone(UTC).astimezone(self.zone)


ALWAYS_OPEN = SupportHours((), ZoneInfo("UTC"))


def parse_windows(text: str) -> tuple[Window, ...]:
    """`Mon-Fri 08:00-17:00, Sat 10:00-14:00` → windows; `24/7` → (); ValueError if malformed."""
    cleaned = text.strip()
    if cleaned == ALWAYS:
        return ()
    if not cleaned:
        raise ValueError(f"is empty; write day and time windows or {ALWAYS!r}")
    windows: list[Window] = []
    for part in cleaned.split(","):
        windows.extend(_parse_window(part.strip()))
    return tuple(windows)


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        hint = "use an IANA name like Europe/Stockholm"
        raise ValueError(f"unknown time zone {name!r} ({hint})") from exc


def _parse_window(part: str) -> list[Window]:
    found = _WINDOW.match(part)
    if found is None:
        raise ValueError(f"cannot read {part!r}; expected a window like 'Mon-Fri 08:00-17:00'")
    first = _day(found["first"])
    last = _day(found["last"]) if found["last"] else first
    start, end = _minute(found["start"]), _minute(found["end"])
    if start >= _MIDNIGHT or end <= start:
        raise ValueError(f"{part!r}: the window must end after it starts, by 24:00 at the latest")
    days = [(first + step) % 7 for step in range((last - first) % 7 + 1)]
    return [Window(day, start, end) for day in days]


def _day(name: str) -> int:
    word = name.lower()
    if word in DAYS:
        return DAYS.index(word)
    if word in FULL_DAYS:
        return FULL_DAYS.index(word)
    raise ValueError(f"unknown day {name!r}; use Mon, Tue, Wed, Thu, Fri, Sat or Sun")


def _minute(text: str) -> int:
    hours, minutes = (int(x) for x in text.split(":"))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValueError(f"no such time {text!r}; use 00:00-24:00")
    return hours * 60 + minutes


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("support hours need an aware datetime (UTC or with an offset)")
    return now
