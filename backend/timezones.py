"""The time zone of the network: local dates, receipts, reports and quiet hours are Stockholm's."""

from __future__ import annotations

from zoneinfo import ZoneInfo

STOCKHOLM = ZoneInfo("Europe/Stockholm")
