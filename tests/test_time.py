"""Times are timezone-aware UTC on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.models import Station


async def test_times_come_back_aware_and_in_utc(db: AsyncSession) -> None:
    stockholm_winter = timezone(timedelta(hours=1))
    station = Station(
        name="Visby Hamn",
        address="Skeppsbron 4",
        city="Visby",
        latitude=57.64,
        longitude=18.29,
        created_at=datetime(2026, 12, 24, 15, 0, tzinfo=stockholm_winter),
    )
    db.add(station)
    await db.commit()
    db.expunge_all()
    loaded = await db.get(Station, station.id)
    assert loaded is not None
    assert loaded.created_at == datetime(2026, 12, 24, 14, 0, tzinfo=UTC)
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_a_naive_time_is_refused(db: AsyncSession) -> None:
    db.add(
        Station(
            name="x",
            address="y",
            city="z",
            latitude=0,
            longitude=0,
            created_at=datetime(2026, 1, 1),
        )
    )
    with pytest.raises(StatementError, match="naive"):
        await db.commit()
