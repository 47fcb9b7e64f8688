"""Support hours: weekly windows in local time, the next opening, and how a driver reads it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from backend.services.support_hours import SupportHours
from backend.settings import Settings
from bot.flows.support import in_line, opening_text

OFFICE = "Mon-Fri 08:00-17:00, Sat 10:00-14:00"


def hours(text: str = OFFICE) -> SupportHours:
    return SupportHours.parse(text, "Europe/Stockholm")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(value: datetime | None) -> str:
    assert value is not None
    return value.strftime("%a %Y-%m-%d %H:%M %z")


# 2026-11-24 is a Tuesday; Stockholm is UTC+1 in winter, UTC+2 in summer.


def test_open_within_the_window_and_closed_before_and_after() -> None:
    office = hours()
    assert office.is_open(utc(2026, 11, 24, 7, 0))  # 08:00 local
    assert office.is_open(utc(2026, 11, 24, 15, 59))  # 16:59 local
    assert not office.is_open(utc(2026, 11, 24, 6, 59))  # 07:59 local
    assert not office.is_open(utc(2026, 11, 24, 16, 0))  # 17:00 local: the end is not open
    assert office.next_opening(utc(2026, 11, 24, 12, 0)) is None  # open now
    assert local(office.next_opening(utc(2026, 11, 24, 5, 0))) == "Tue 2026-11-24 08:00 +0100"
    assert local(office.next_opening(utc(2026, 11, 24, 16, 0))) == "Wed 2026-11-25 08:00 +0100"


def test_the_weekend_opens_on_saturday_morning_and_then_on_monday() -> None:
    office = hours()
    friday_evening = utc(2026, 11, 27, 18, 0)
    assert local(office.next_opening(friday_evening)) == "Sat 2026-11-28 10:00 +0100"
    assert office.is_open(utc(2026, 11, 28, 12, 0))
    saturday_afternoon = utc(2026, 11, 28, 13, 0)  # 14:00 local
    assert local(office.next_opening(saturday_afternoon)) == "Mon 2026-11-30 08:00 +0100"
    assert local(office.next_opening(utc(2026, 11, 29, 12, 0))) == "Mon 2026-11-30 08:00 +0100"


def test_windows_keep_their_local_hours_across_daylight_saving_changes() -> None:
    office = hours("Mon-Fri 08:00-17:00")
    # Summer time starts on Sunday 2026-03-29: Monday 08:00 is 06:00 UTC, Friday's was 07:00.
    opening = office.next_opening(utc(2026, 3, 27, 17, 0))
    assert opening == utc(2026, 3, 30, 6, 0)
    assert office.is_open(utc(2026, 3, 30, 6, 30))
    assert not office.is_open(utc(2026, 3, 27, 6, 30))  # 07:30 in winter time
    # ... and ends on Sunday 2026-10-25: Monday 08:00 is 07:00 UTC again.
    assert office.next_opening(utc(2026, 10, 23, 16, 0)) == utc(2026, 10, 26, 7, 0)
    assert not office.is_open(utc(2026, 10, 26, 6, 30))  # 07:30 local


def test_a_window_in_the_hour_skipped_in_spring_opens_after_the_change() -> None:
    night = hours("Sun 02:30-04:00")
    opening = night.next_opening(utc(2026, 3, 29, 0, 0))
    assert opening is not None and opening > utc(2026, 3, 29, 0, 0)
    assert night.is_open(opening)


def test_24_7_is_always_open_and_24_00_ends_a_window_at_midnight() -> None:
    always = hours("24/7")
    assert always.always_open
    assert always.is_open(utc(2026, 12, 25, 3, 0))
    assert always.next_opening(utc(2026, 12, 25, 3, 0)) is None
    late = hours("sunday 20:00-24:00, Fri-Mon 10:00-12:00")
    assert late.is_open(utc(2026, 11, 29, 22, 59))  # Sunday 23:59 local
    assert not late.is_open(utc(2026, 11, 29, 23, 0))  # Monday 00:00 local
    assert late.is_open(utc(2026, 11, 28, 10, 0))  # the range wraps over the weekend
    assert not late.is_open(utc(2026, 11, 25, 10, 0))  # but not to Wednesday


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Mon-Fri",
        "Mon-Fri 8-17",
        "Moo 08:00-17:00",
        "Mon 17:00-08:00",
        "Mon 08:00-08:00",
        "Mon 08:00-25:00",
        "Mon 08:60-09:00",
        "Mon 24:00-24:00",
        "Mon-Fri 08:00-17:00,",
        "always",
    ],
)
def test_unreadable_hours_are_refused_at_settings_load_naming_the_variable(text: str) -> None:
    with pytest.raises(ValueError):
        hours(text)
    with pytest.raises(ValidationError, match="SUPPORT_HOURS"):
        Settings(_env_file=None, support_hours=text)


def test_an_unknown_time_zone_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValidationError, match="SUPPORT_TIMEZONE"):
        Settings(_env_file=None, support_timezone="Europe/Atlantis")
    assert Settings(_env_file=None, support_hours="24/7").support_hours == "24/7"


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        hours().is_open(datetime(2026, 11, 24, 12, 0))


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)))
def test_the_next_opening_is_the_first_open_minute_after_now(naive: datetime) -> None:
    office = hours()
    now = naive.replace(tzinfo=UTC)
    opening = office.next_opening(now)
    if opening is None:
        assert office.is_open(now)
        return
    assert not office.is_open(now)
    assert now < opening <= now + timedelta(days=7)
    assert office.is_open(opening)
    assert not office.is_open(opening - timedelta(minutes=1))


# --- what the driver reads ----------------------------------------------------------------------


def test_the_opening_is_today_tomorrow_or_a_weekday_in_the_drivers_language() -> None:
    office = hours()
    early = utc(2026, 11, 24, 5, 0)  # Tuesday 06:00 local
    evening = utc(2026, 11, 24, 20, 0)
    weekend = utc(2026, 11, 28, 15, 0)  # Saturday 16:00 local
    assert opening_text("en", _opening(office, early), early) == "08:00 today"
    assert opening_text("sv", _opening(office, early), early) == "kl. 08:00 i dag"
    assert opening_text("en", _opening(office, evening), evening) == "08:00 tomorrow"
    assert opening_text("sv", _opening(office, evening), evening) == "kl. 08:00 i morgon"
    assert opening_text("en", _opening(office, weekend), weekend) == "Monday 08:00"
    assert opening_text("sv", _opening(office, weekend), weekend) == "måndag kl. 08:00"
    # Late at night in UTC is already the next day in Stockholm.
    midnight = utc(2026, 11, 24, 23, 30)  # Wednesday 00:30 local
    assert opening_text("en", _opening(office, midnight), midnight) == "08:00 today"


def test_the_in_line_sentence_names_the_opening_only_when_closed() -> None:
    office = hours()
    open_now = utc(2026, 11, 24, 12, 0)
    closed = utc(2026, 11, 28, 15, 0)
    assert in_line("en", office, open_now).startswith("You are now in line")
    assert "closed" not in in_line("en", office, open_now)
    assert in_line("en", office, closed) == (
        "You are now in line for our support. We are closed right now; a colleague will "
        "answer here from Monday 08:00."
    )
    assert "från måndag kl. 08:00" in in_line("sv", office, closed)
    assert "redan i kö" in in_line("sv", office, closed, already=True)
    assert "from Monday 08:00" in in_line("en", office, closed, already=True)


def _opening(office: SupportHours, now: datetime) -> datetime:
    opening = office.next_opening(now)
    assert opening is not None
    return opening
