"""Operator analytics (backend.services.usage), the console's SVG charts and the demo history."""

from __future__ import annotations

import csv
import io
import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from backend.console.charts import bar_chart, horizontal_bar_chart, label_step
from backend.models import (
    Charger,
    ChargingSession,
    Connector,
    Driver,
    Payment,
    PaymentStatus,
    SessionStatus,
    Station,
    Tariff,
)
from backend.services.demo_history import seed_history
from backend.services.network import ChargerView, ConnectorSpec, create_charger, create_station
from backend.services.network_status import UNPLACED, connector_state, network_status
from backend.services.pricing import TariffSnapshot, compute_cost, for_plan
from backend.services.seed import seed_demo_network
from backend.services.usage import CSV_COLUMNS, active_sessions, sessions_csv, usage_report
from backend.timezones import STOCKHOLM
from tests.helpers.factories import charger_body, station_body

SVG = "{http://www.w3.org/2000/svg}"
TARIFF = TariffSnapshot("SEK", 450, 0, 500, 0, 0, 25)
ONE_TYPE2 = [{"connector_id": 1, "connector_type": "type2", "max_power_kw": 22}]


async def make_station(db: AsyncSession, **overrides: Any) -> Station:
    """Through the service, not the admin API: these tests need no app."""
    return await create_station(db, **station_body(**overrides))


async def make_charger(db: AsyncSession, station: Station, **overrides: Any) -> ChargerView:
    assert station.id is not None
    body = charger_body(station.id, **overrides)
    specs = [ConnectorSpec(**c) for c in body["connectors"]]
    return await create_charger(db, body["id"], station.id, None, specs)


async def make_driver(db: AsyncSession, name: str) -> Driver:
    driver = Driver(name=name)
    db.add(driver)
    await db.commit()
    return driver


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Stockholm wall-clock time as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=STOCKHOLM).astimezone(UTC)


def session(
    charger_id: str,
    started: datetime | None,
    stopped: datetime | None,
    energy_wh: int = 0,
    cost_minor: int | None = None,
    status: SessionStatus = SessionStatus.COMPLETED,
    connector_id: int = 1,
    **fields: Any,
) -> ChargingSession:
    return ChargingSession(
        charger_id=charger_id,
        connector_id=connector_id,
        status=status,
        started_at=started,
        stopped_at=stopped,
        energy_wh=energy_wh,
        cost_minor=cost_minor,
        **fields,
    )


async def set_statuses(
    db: AsyncSession, charger_id: str, online: bool, statuses: list[str], status: str | None = None
) -> None:
    charger = await db.get(Charger, charger_id)
    assert charger is not None
    charger.online, charger.status = online, status
    connectors = (
        await db.scalars(
            select(Connector)
            .where(col(Connector.charger_id) == charger_id)
            .order_by(col(Connector.connector_id))
        )
    ).all()
    for connector, value in zip(connectors, statuses, strict=True):
        connector.status = value
    await db.commit()


# -- network status ---------------------------------------------------------------------------


async def test_network_status_counts_offline_chargers_as_offline(db: AsyncSession) -> None:
    uppsala = await make_station(db, name="Alpha", city="Uppsala")
    goteborg = await make_station(db, name="Beta", city="Goteborg")
    live = await make_charger(db, goteborg)
    dead = await make_charger(db, uppsala)
    broken = await make_charger(db, uppsala)
    await make_station(db, name="Empty", city="Visby")
    db.add(Charger(id="CP-LOOSE", online=True))
    await db.commit()
    await set_statuses(db, live.charger.id, True, ["Available", "Charging"])
    await set_statuses(db, dead.charger.id, False, ["Faulted", "Available"])
    await set_statuses(db, broken.charger.id, True, ["Faulted", "Preparing"])

    stations = await network_status(db)

    assert [(s.name, s.city) for s in stations] == [
        ("Beta", "Goteborg"),
        ("Alpha", "Uppsala"),
        ("Empty", "Visby"),
        (UNPLACED, ""),
    ]
    beta, alpha, empty, unplaced = stations
    assert (beta.available, beta.charging, beta.faulted, beta.offline) == (1, 1, 0, 0)
    assert (alpha.available, alpha.charging, alpha.faulted, alpha.offline) == (0, 0, 1, 2)
    assert alpha.counts.other == 1 and alpha.counts.total == 4
    assert empty.chargers == [] and empty.counts.total == 0
    assert unplaced.station_id is None and [c.id for c in unplaced.chargers] == ["CP-LOOSE"]
    by_id = {c.id: c for c in alpha.chargers}
    offline = by_id[dead.charger.id]
    assert not offline.online
    assert [c.status for c in offline.connectors] == ["Faulted", "Available"]  # as last told
    assert [offline.state_of(c) for c in offline.connectors] == ["offline", "offline"]
    codes = [c.code for c in beta.chargers[0].connectors]
    assert codes == [c.code for c in live.connectors]
    assert [c.connector_type for c in beta.chargers[0].connectors] == ["ccs", "chademo"]


def test_connector_state() -> None:
    assert connector_state(False, None, "Charging") == "offline"
    assert connector_state(True, "Faulted", "Available") == "faulted"  # the whole charge point
    assert connector_state(True, None, "Faulted") == "faulted"
    assert connector_state(True, None, "SuspendedEV") == "charging"
    assert connector_state(True, "Available", "Available") == "available"
    assert connector_state(True, None, "Unavailable") == "other"


# -- usage report -----------------------------------------------------------------------------


async def two_stations(db: AsyncSession) -> tuple[str, str]:
    """Södra (created first) and Norra, one connector each: two connectors in all."""
    south = await make_station(db, name="Södra")
    north = await make_station(db, name="Norra")
    south_charger = await make_charger(db, south, connectors=ONE_TYPE2)
    north_charger = await make_charger(db, north, connectors=ONE_TYPE2)
    return north_charger.charger.id, south_charger.charger.id


async def test_usage_report_across_midnight_and_dst(db: AsyncSession) -> None:
    north, south = await two_stations(db)
    # Summer time starts on 29 March 2026 at 02:00 → 03:00.
    db.add_all(
        [
            session(north, local(2026, 3, 28, 18, 0), local(2026, 3, 28, 19, 30), 20_000, 9_000),
            # Across midnight: a session of the 28th, revenue of the 29th.
            session(south, local(2026, 3, 28, 23, 30), local(2026, 3, 29, 0, 30), 10_000, 4_500),
            # Across the DST jump: one real hour, 01:30-02:00 and 03:00-03:30 on the clock.
            session(south, local(2026, 3, 29, 1, 30), local(2026, 3, 29, 3, 30), 5_000, 2_500),
            # Started the day before the range: only its revenue and its last 20 minutes count.
            session(north, local(2026, 3, 27, 23, 0), local(2026, 3, 28, 0, 20), 3_000, 1_000),
            # Stopped after the range: a session of the 29th without revenue in the range.
            session(south, local(2026, 3, 29, 23, 50), local(2026, 3, 30, 0, 40), 7_000, 3_000),
            session(
                north,
                local(2026, 3, 28, 12, 0),
                local(2026, 3, 28, 12, 1),
                status=SessionStatus.FAILED,
            ),
            session(
                north,
                local(2026, 3, 29, 22, 0),
                None,
                4_000,
                status=SessionStatus.CHARGING,
            ),
        ]
    )
    await db.commit()

    report = await usage_report(
        db, date(2026, 3, 28), date(2026, 3, 29), now=local(2026, 3, 29, 22, 45)
    )

    assert [(d.day, d.sessions, d.energy_wh, d.revenue_minor) for d in report.days] == [
        (date(2026, 3, 28), 2, 30_000, 10_000),
        (date(2026, 3, 29), 3, 16_000, 7_000),
    ]
    assert (report.totals.sessions, report.totals.energy_wh, report.totals.revenue_minor) == (
        5,
        46_000,
        17_000,
    )
    assert [(s.name, s.sessions, s.energy_wh, s.revenue_minor) for s in report.stations] == [
        ("Norra", 2, 24_000, 10_000),
        ("Södra", 3, 22_000, 7_000),
    ]
    assert report.connectors == 2
    # Busy seconds per local hour over 2 connectors × 2 days × 3600 s = 14 400.
    expected = [0.0] * 24
    expected[18] = 3600 / 14400  # 0.25: one connector 18:00-19:30
    expected[19] = 1800 / 14400  # 0.125
    expected[23] = (1800 + 600) / 14400
    expected[0] = (1800 + 1200) / 14400
    expected[1] = 1800 / 14400
    expected[3] = 1800 / 14400  # 02:00-03:00 did not exist that night
    expected[22] = 2700 / 14400  # the active session, up to now
    assert report.utilisation_by_hour == pytest.approx(expected)
    assert report.utilisation_by_hour[18] == 0.25


async def test_usage_report_autumn_day_and_empty_days(db: AsyncSession) -> None:
    north, _ = await two_stations(db)
    # Winter time on 25 October 2026: 02:00-03:00 happens twice; 02:30 CEST to 02:30 CET.
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    db.add(session(north, start, start + timedelta(hours=1), 1_000, 100))
    await db.commit()

    report = await usage_report(db, date(2026, 10, 24), date(2026, 10, 26))

    assert [d.sessions for d in report.days] == [0, 1, 0]
    assert [d.revenue_minor for d in report.days] == [0, 100, 0]
    assert report.utilisation_by_hour[2] == pytest.approx(3600 / (2 * 3 * 3600))
    assert sum(report.utilisation_by_hour) == pytest.approx(3600 / (2 * 3 * 3600))
    assert [s.sessions for s in report.stations] == [1, 0]  # idle stations are listed too


async def test_bad_ranges_are_rejected(db: AsyncSession) -> None:
    with pytest.raises(ValueError, match="after it ends"):
        await usage_report(db, date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError, match="longer than 366 days"):
        await usage_report(db, date(2026, 1, 1), date(2027, 1, 2))
    with pytest.raises(ValueError, match="after it ends"):
        await sessions_csv(db, date(2026, 3, 2), date(2026, 3, 1))
    with pytest.raises(ValueError, match="longer than 366 days"):
        await sessions_csv(db, date(2026, 1, 1), date(2027, 1, 2))
    leap_year = await usage_report(db, date(2028, 1, 1), date(2028, 12, 31))
    assert len(leap_year.days) == 366
    assert leap_year.utilisation_by_hour == [0.0] * 24  # no connectors: no division by zero


# -- active sessions --------------------------------------------------------------------------


async def test_active_sessions(db: AsyncSession) -> None:
    station = await make_station(db, name="Kista Galleria")
    charger = await make_charger(db, station)
    driver = await make_driver(db, "Bo Ek")
    now = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    charging = session(
        charger.charger.id,
        now - timedelta(minutes=30),
        None,
        4_000,
        status=SessionStatus.CHARGING,
        driver_id=driver.id,
        channel="telegram",
        power_w=7_400.0,
        tariff_snapshot=TARIFF.to_json(),
    )
    pending = session(
        charger.charger.id,
        None,
        None,
        status=SessionStatus.PENDING,
        connector_id=2,
        channel="sms",
        created_at=now - timedelta(minutes=1),
        tariff_snapshot=TARIFF.to_json(),
    )
    done = session(charger.charger.id, now - timedelta(hours=3), now - timedelta(hours=2), 1, 1)
    db.add_all([pending, charging, done])
    await db.commit()

    found = await active_sessions(db, now=now)

    assert [(a.status, a.connector_id) for a in found] == [("charging", 1), ("pending", 2)]
    first, second = found
    assert first.station_name == "Kista Galleria"
    assert first.connector_code == charger.connectors[0].code
    assert (first.driver_name, first.channel, first.energy_wh, first.power_w) == (
        "Bo Ek",
        "telegram",
        4_000,
        7_400.0,
    )
    assert first.cost_so_far_minor == 4 * 450 + 500  # 4 kWh at 4.50 kr plus the session fee
    assert first.started_at == now - timedelta(minutes=30)
    assert second.started_at == now - timedelta(minutes=1)  # not started: when it was asked
    assert second.cost_so_far_minor is None and second.driver_name is None
    assert second.connector_code == charger.connectors[1].code


# -- CSV export -------------------------------------------------------------------------------


async def test_sessions_csv(db: AsyncSession) -> None:
    station = await make_station(db, name='Mall, "Nord"')
    charger = await make_charger(db, station)
    cid = charger.charger.id
    quoted = Driver(name='Eva "Evy", Öst')
    formula = Driver(name='=HYPERLINK("http://x")')
    db.add_all([quoted, formula])
    await db.commit()
    first = session(
        cid,
        local(2026, 3, 28, 18, 0),
        local(2026, 3, 28, 19, 30),
        20_000,
        9_000,
        driver_id=quoted.id,
        channel="telegram",
        stop_reason="Remote",
    )
    failed_start = session(
        cid,
        None,
        None,
        status=SessionStatus.FAILED,
        driver_id=formula.id,
        channel="sms",
        failure_reason="-charger_offline",
        created_at=local(2026, 3, 29, 8, 0),
    )
    outside = session(cid, local(2026, 3, 27, 23, 0), local(2026, 3, 28, 0, 30), 1, 1)
    db.add_all([first, failed_start, outside])
    await db.commit()
    db.add_all(
        [
            Payment(session_id=first.id, method="card_on_file", status=PaymentStatus.FAILED),
            Payment(session_id=first.id, method="card_on_file", status=PaymentStatus.CAPTURED),
        ]
    )
    await db.commit()

    text = await sessions_csv(db, date(2026, 3, 28), date(2026, 3, 29))

    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [r["session_id"] for r in body] == [str(first.id), str(failed_start.id)]
    one, two = body
    assert one["station"] == 'Mall, "Nord"'
    assert one["driver_name"] == 'Eva "Evy", Öst'
    assert '"Eva ""Evy"", Öst"' in text
    assert (one["started_at"], one["stopped_at"]) == (
        "2026-03-28T18:00:00+01:00",
        "2026-03-28T19:30:00+01:00",
    )
    assert (one["energy_wh"], one["cost_minor"], one["currency"]) == ("20000", "9000", "SEK")
    assert (one["payment_method"], one["payment_status"]) == ("card_on_file", "captured")
    assert (one["connector_code"], one["channel"], one["stop_reason"]) == (
        charger.connectors[0].code,
        "telegram",
        "Remote",
    )
    assert two["driver_name"] == '\'=HYPERLINK("http://x")'  # no formula in a spreadsheet
    assert two["failure_reason"] == "'-charger_offline"
    assert (two["status"], two["started_at"], two["cost_minor"], two["payment_status"]) == (
        "failed",
        "",
        "",
        "",
    )

    empty = await sessions_csv(db, date(2025, 1, 1), date(2025, 1, 31))
    assert empty == ",".join(CSV_COLUMNS) + "\r\n"


# -- charts -----------------------------------------------------------------------------------


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    return root


def bars(root: ET.Element) -> list[ET.Element]:
    return [r for r in root.iter(f"{SVG}rect") if "bar" in (r.get("class") or "").split()]


def test_bar_chart_is_well_formed_svg() -> None:
    values = [float(i % 7) for i in range(30)]
    labels = [f"2026-03-{i + 1:02d}" for i in range(30)]
    svg = bar_chart(values, labels, title="kWh per day", unit="kWh", highlight_last=True)
    root = parse(svg)
    assert root.get("aria-label") == "kWh per day"
    assert root.find(f"{SVG}title") is not None
    found = bars(root)
    assert len(found) == 30
    assert found[-1].get("class") == "bar highlight"
    tips = [r.find(f"{SVG}title") for r in found]
    assert tips[3] is not None and tips[3].text == "2026-03-04: 3 kWh"
    heights = [float(r.get("height") or "") for r in found]
    assert heights[0] == 0 and heights[6] == max(heights) > 0
    labels_shown = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    axis = [t.text for t in root.iter(f"{SVG}text") if "axis-label" in (t.get("class") or "")]
    assert "2026-03-01" in labels_shown and "2026-03-06" in labels_shown
    assert "2026-03-02" not in labels_shown  # 30 dates: every 5th
    assert axis == ["0", "6"]  # the 0 and max gridlines
    assert label_step(labels, 580) == 5
    assert label_step([f"{h:02d}" for h in range(24)], 580) == 1


def test_charts_escape_text() -> None:
    svg = bar_chart([1, 2], ["<script>alert(1)</script>", "a&b"], title='Q1 "<b>"', unit="<u>")
    assert "<script>" not in svg and "<b>" not in svg
    root = parse(svg)
    assert root.get("aria-label") == 'Q1 "<b>"'
    tips = [r.find(f"{SVG}title") for r in bars(root)]
    assert tips[0] is not None and tips[0].text == "<script>alert(1)</script>: 1 <u>"
    hsvg = horizontal_bar_chart([5, 1], ["<script>x</script>", "Ö & co"], title="<Top>")
    assert "<script>" not in hsvg
    assert len(bars(parse(hsvg))) == 2


@pytest.mark.parametrize("chart", [bar_chart, horizontal_bar_chart])
def test_charts_without_data(chart: Any) -> None:
    empty = parse(chart([], [], title="Nothing"))
    assert bars(empty) == []
    assert any(t.text == "No data" for t in empty.iter(f"{SVG}text"))
    zeros = parse(chart([0, 0, 0], ["a", "b", "c"], title="Zeros"))
    assert [
        float(r.get("height" if chart is bar_chart else "width") or "") for r in bars(zeros)
    ] == [
        0.0,
        0.0,
        0.0,
    ]
    with pytest.raises(ValueError):
        chart([1, 2], ["one"], title="Mismatch")


def test_horizontal_bar_chart_ranks_stations() -> None:
    svg = horizontal_bar_chart(
        [1200.5, 300.0],
        ["A very long station name that does not fit the label column", "Short"],
        title="kWh per station",
        unit="kWh",
        value_format=lambda v: f"{v:,.0f}",
    )
    root = parse(svg)
    widths = [float(r.get("width") or "") for r in bars(root)]
    assert widths[0] > widths[1] > 0
    assert widths[1] == pytest.approx(widths[0] * 300 / 1200.5, abs=0.01)
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "1,200 kWh" in texts
    assert any(t.endswith("…") for t in texts)
    tips = [r.find(f"{SVG}title") for r in bars(root)]
    assert tips[0] is not None and (tips[0].text or "").startswith("A very long station name")


# -- demo history -----------------------------------------------------------------------------


async def test_seed_history_is_deterministic_and_priced_like_real_sessions(
    db: AsyncSession,
) -> None:
    await seed_demo_network(db)
    now = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)  # a Monday, the day after the DST jump
    start, end = date(2026, 3, 24), date(2026, 3, 30)

    count = await seed_history(db, days=7, seed=7, now=now)
    report = await usage_report(db, start, end, now=now)
    sessions = (await db.scalars(select(ChargingSession))).all()

    assert count == len(sessions) > 100
    assert report.totals.sessions == count
    assert report.totals.energy_wh == sum(s.energy_wh for s in sessions)
    assert report.totals.revenue_minor == sum(s.cost_minor or 0 for s in sessions) > 0
    assert all(5_000 <= s.energy_wh <= 60_000 for s in sessions)
    assert all(s.stopped_at is not None and s.stopped_at < now for s in sessions)
    assert {s.stop_reason for s in sessions} <= {"Local", "Remote", "EVDisconnected"}
    assert all(s.transaction_id == s.id for s in sessions)
    assert report.utilisation_by_hour[18] > report.utilisation_by_hour[3]
    assert sum(d.sessions for d in report.days if d.day.weekday() < 5) > 0
    await check_priced_by_station_tariff(db, sessions)
    by_connector: dict[tuple[str, int], list[ChargingSession]] = {}
    for s in sorted(sessions, key=lambda s: s.started_at or now):
        by_connector.setdefault((s.charger_id, s.connector_id), []).append(s)
    for runs in by_connector.values():
        for before, after in itertools.pairwise(runs):
            assert before.stopped_at is not None and after.started_at is not None
            assert before.stopped_at <= after.started_at  # a connector charges one car at a time
            assert before.meter_stop_wh == after.meter_start_wh

    totals = report.totals
    await db.execute(delete(ChargingSession))
    await db.commit()
    assert await seed_history(db, days=7, seed=7, now=now) == count
    assert (await usage_report(db, start, end, now=now)).totals == totals

    await db.execute(delete(ChargingSession))
    await db.commit()
    await seed_history(db, days=7, seed=8, now=now)
    assert (await usage_report(db, start, end, now=now)).totals != totals


async def check_priced_by_station_tariff(
    db: AsyncSession, sessions: list[ChargingSession] | Any
) -> None:
    """Each session's cost is what compute_cost gives with its station's tariff today."""
    rows = await db.execute(
        select(Charger.id, Tariff).join(Tariff, col(Tariff.station_id) == col(Charger.station_id))
    )
    tariffs = {charger_id: tariff for charger_id, tariff in rows.all()}
    drivers = {d.id: d for d in (await db.scalars(select(Driver))).all()}
    for s in sessions[:50]:
        tariff = tariffs[s.charger_id]
        snapshot = TariffSnapshot(
            **{name: getattr(tariff, name) for name in TariffSnapshot.__dataclass_fields__}
        )
        snapshot = for_plan(snapshot, drivers[s.driver_id].plan, 0)
        assert s.tariff_snapshot == snapshot.to_json()
        cost = compute_cost(
            snapshot, s.energy_wh, s.started_at, s.stopped_at, s.charging_finished_at
        )
        assert (s.cost_minor, s.cost_breakdown) == (cost.total_minor, cost.to_json())
    assert {s.driver_id for s in sessions} <= {
        d.id for d in drivers.values() if d.name in ("Demo Förare", "Demo Driver")
    }
    assert await db.scalar(select(Station.id).limit(1)) is not None
