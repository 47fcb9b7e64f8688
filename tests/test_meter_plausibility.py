"""Meter plausibility (issue #13): a charger's meter figures are billed only as far as its
connector's power and the time that passed allow; beyond that the session waits for an
operator's decision (`needs_review`).

The incidents: an impostor's StopTransaction with `meterStop: 2000000000` completed a running
session at 1,999,824 kWh (about 9 million kr on an invoice driver), and `meterStart +
1,000,000` ten seconds into a session on a 50 kW connector charged a saved card 4,505 kr.

Live tests run the whole app on a loopback port, on SQLite and PostgreSQL, with the DEFAULT
tolerance and slack (the shared fixtures raise them for the time-compressed simulators); the
forged frames come from the bare OCPP client. The rules themselves are property-tested.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from ocpp.v16 import call
from sqlalchemy import update
from sqlmodel import col, select

from backend.app import create_app
from backend.chargers import handlers
from backend.chargers.protocol import ocpp_time
from backend.db import utcnow
from backend.models import ChargingSession, Driver, MeterSample
from backend.services import plausibility, pricing
from backend.services.events import SessionCompleted, SessionNeedsReview
from backend.services.plausibility import PlausibilityRules, Verdict
from backend.settings import Settings
from backend.timezones import STOCKHOLM
from tests.helpers.charging import (
    TARIFF,
    driver_with_tag,
    priced_charger,
    record_events,
    session_of,
    simulator,
)
from tests.helpers.chat import chat_driver, wait_for_text
from tests.helpers.console import csrf_of
from tests.helpers.payments import Paying, paying_app, stripe_settings
from tests.helpers.server import LiveServer, served
from tests.helpers.support import PASSWORD, add_staff
from tests.helpers.waiting import eventually
from tests.ocpp_client import BareChargePoint, bare_charger

DEFAULT_TOLERANCE: float = Settings.model_fields["meter_power_tolerance"].default
DEFAULT_SLACK_WH: int = Settings.model_fields["meter_slack_wh"].default
DEFAULT_RULES = PlausibilityRules(DEFAULT_TOLERANCE, DEFAULT_SLACK_WH)
FIFTY_KW = [
    {"connector_id": 1, "connector_type": "ccs", "max_power_kw": 50},
    {"connector_id": 2, "connector_type": "ccs", "max_power_kw": 50},
]
PHONE = "+46705550101"


def test_the_defaults_are_ten_percent_and_one_kwh() -> None:
    assert (DEFAULT_TOLERANCE, DEFAULT_SLACK_WH) == (0.1, 1000)


# -- the rules, property-tested ------------------------------------------------------------------

powers = st.floats(min_value=0.1, max_value=1000, allow_nan=False)
seconds = st.floats(min_value=0, max_value=7 * 24 * 3600, allow_nan=False)
rules = st.builds(
    PlausibilityRules,
    tolerance=st.floats(min_value=0, max_value=10, allow_nan=False),
    slack_wh=st.integers(min_value=0, max_value=100_000),
)
registers = st.integers(min_value=0, max_value=plausibility.MAX_REGISTER_WH)


@given(powers, seconds, rules)
def test_the_bound_is_never_below_what_the_connector_can_deliver(
    power_kw: float, elapsed: float, chosen: PlausibilityRules
) -> None:
    bound = plausibility.max_energy_wh(power_kw, elapsed, chosen)
    delivered = power_kw * 1000 * elapsed / 3600
    assert bound >= min(plausibility.MAX_REGISTER_WH, math.floor(delivered) + chosen.slack_wh)
    assert bound >= chosen.slack_wh
    assert bound <= plausibility.MAX_REGISTER_WH


@given(powers, seconds, seconds, rules)
def test_the_bound_grows_with_time_and_power(
    power_kw: float, a: float, b: float, chosen: PlausibilityRules
) -> None:
    shorter, longer = sorted((a, b))
    assert plausibility.max_energy_wh(power_kw, shorter, chosen) <= plausibility.max_energy_wh(
        power_kw, longer, chosen
    )
    assert plausibility.max_energy_wh(power_kw, longer, chosen) <= plausibility.max_energy_wh(
        power_kw * 2, longer, chosen
    )


@given(powers, seconds)
def test_the_tolerance_allows_exactly_its_share_above_the_connectors_power(
    power_kw: float, elapsed: float
) -> None:
    bound = plausibility.max_energy_wh(power_kw, elapsed, DEFAULT_RULES)
    delivered = power_kw * 1000 * elapsed / 3600
    assert bound - DEFAULT_SLACK_WH <= delivered * 1.1 + 1e-6 * max(1.0, delivered)
    assert bound - DEFAULT_SLACK_WH >= math.floor(delivered * 1.1 - 1e-6 * max(1.0, delivered))


@given(
    st.floats(allow_nan=True, allow_infinity=True),
    registers,
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10_000),
)
def test_the_plausible_energy_is_within_the_bound_and_never_above_the_claim(
    register: float, start: int, bound: int, previous: int, slack: int
) -> None:
    verdict = plausibility.judge(register, start, bound, previous, slack)
    assert 0 <= verdict.plausible_wh <= bound
    assert verdict.plausible_wh <= max(0, verdict.measured_wh)
    assert -(2**31) <= verdict.measured_wh <= plausibility.MAX_REGISTER_WH
    if verdict.plausible:
        assert verdict.plausible_wh == verdict.measured_wh  # a plausible claim is billed as is


@given(registers, registers, st.integers(min_value=0, max_value=10**9))
def test_a_register_is_plausible_exactly_when_it_counts_up_within_the_bound(
    register: int, start: int, bound: int
) -> None:
    verdict = plausibility.judge(register, start, bound)
    assert verdict.plausible == (0 <= register - start <= bound)
    if register < start:
        assert verdict == Verdict(register - start, 0, plausibility.BELOW_START)
    elif register - start > bound:
        assert verdict == Verdict(register - start, bound, plausibility.ABOVE_POWER)


@given(registers, st.integers(min_value=0, max_value=10**6), st.integers(0, 10**6))
def test_a_register_more_than_the_slack_below_the_previous_reading_went_backwards(
    start: int, previous: int, drop: int
) -> None:
    register = start + previous - drop
    verdict = plausibility.judge(register, start, 10**9, previous, DEFAULT_SLACK_WH)
    in_range = register <= plausibility.MAX_REGISTER_WH  # beyond it: out of range instead
    backwards = in_range and register >= start and drop > DEFAULT_SLACK_WH
    assert (verdict.reason == plausibility.WENT_BACKWARDS) == backwards


@given(st.floats(min_value=-1e30, max_value=1e30) | st.sampled_from([math.inf, -math.inf]))
def test_registers_outside_what_a_meter_column_holds_are_implausible(register: float) -> None:
    verdict = plausibility.judge(register, 0, 10**6)
    if not plausibility.in_range(register):
        assert verdict.reason == plausibility.OUT_OF_RANGE
    assert 0 <= plausibility.clamp_register(register) <= plausibility.MAX_REGISTER_WH


@given(
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=-(10**7), max_value=10**7),
)
def test_elapsed_time_is_the_shorter_clock_so_forged_timestamps_cannot_stretch_it(
    ours: int, charger_says: int, skew: int
) -> None:
    created = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    received = created + timedelta(seconds=ours)
    started = created + timedelta(seconds=skew)  # the charger's clock, maybe forged
    read = started + timedelta(seconds=charger_says)
    elapsed = plausibility.elapsed_seconds(started, read, created, received)
    assert elapsed == min(ours, charger_says)
    assert elapsed <= ours  # however far apart the charger puts its two timestamps


def test_the_incidents_readings_are_implausible_with_the_default_rules() -> None:
    ten_seconds = plausibility.max_energy_wh(50, 10, DEFAULT_RULES)
    assert ten_seconds == 1152  # 50 kW × 10 s = 138.9 Wh, +10 % = 152.8, + 1000 Wh slack
    forged = plausibility.judge(2_000_000_000, 176_000, ten_seconds)
    assert forged == Verdict(1_999_824_000, 1152, plausibility.ABOVE_POWER)
    a_million = plausibility.judge(5000 + 1_000_000, 5000, ten_seconds)
    assert a_million == Verdict(1_000_000, 1152, plausibility.ABOVE_POWER)


# -- through real sockets, with the default rules ------------------------------------------------


def plausible_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "ocpp_call_timeout": 5.0,
            "ocpp_start_timeout": 30.0,
            "sweep_interval": 0.1,
            "meter_power_tolerance": DEFAULT_TOLERANCE,
            "meter_slack_wh": DEFAULT_SLACK_WH,
        }
    )


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveServer]:
    """The whole app with the default plausibility rules (conftest's `live` allows more)."""
    async with served(create_app(plausible_settings(settings))) as running:
        yield running


@pytest.fixture
async def paying(settings: Settings) -> AsyncIterator[Paying]:
    values = {"meter_power_tolerance": DEFAULT_TOLERANCE, "meter_slack_wh": DEFAULT_SLACK_WH}
    async with paying_app(stripe_settings(settings, **values)) as running:
        yield running


@contextlib.asynccontextmanager
async def fifty_kw_charger(live: LiveServer) -> AsyncIterator[tuple[str, BareChargePoint]]:
    charger = await priced_charger(live.http, connectors=FIFTY_KW)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await cp.boot()
        yield charger["id"], cp


async def one_session(http: httpx.AsyncClient, charger_id: str) -> dict[str, Any]:
    rows = (await http.get("/admin/sessions", params={"charger_id": charger_id})).json()
    assert len(rows) == 1, rows
    return await session_of(http, rows[0]["id"])


def bound_wh(power_kw: float, within: timedelta) -> int:
    """The most the default rules accept for `within` (the test's own span bounds ours)."""
    return plausibility.max_energy_wh(power_kw, within.total_seconds(), DEFAULT_RULES)


def cost_of(energy_wh: int) -> int:
    """TARIFF: 4.50 kr/kWh + 5 kr per session (no time fee; these sessions never idle)."""
    price = TARIFF["price_per_kwh_minor"]
    assert isinstance(price, int)
    return int(energy_wh * price / 1000 + 0.5) + 500


async def invoice_rows(http: httpx.AsyncClient, stopped_at: str) -> list[dict[str, str]]:
    month = datetime.fromisoformat(stopped_at).astimezone(STOCKHOLM).strftime("%Y-%m")
    report = await http.get("/admin/reports/invoices.csv", params={"month": month})
    assert report.status_code == 200, report.text
    return list(csv.DictReader(io.StringIO(report.text)))


async def test_a_forged_meter_stop_of_two_billion_wh_bills_nothing_beyond_the_plausible_energy(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    seen = record_events(live)
    driver = await driver_with_tag(live.http, "INVOICE-13", billing="invoice")
    began = utcnow()
    async with fifty_kw_charger(live) as (charger_id, cp):
        start = await cp.start_transaction(1, "INVOICE-13", 176_000, ocpp_time(began))
        assert start.id_tag_info["status"] == "Accepted"
        # The impostor's frame, ten seconds "later" by its own clock.
        await cp.stop_transaction(
            start.transaction_id, 2_000_000_000, timestamp=ocpp_time(began + timedelta(seconds=10))
        )
        span = utcnow() - began
        session = await one_session(live.http, charger_id)

        assert session["status"] == "needs_review"
        assert session["review_reason"] == "above_connector_power"
        assert session["meter_stop_wh"] == 2_000_000_000
        assert session["measured_energy_wh"] == 1_999_824_000  # what the charger claimed
        assert DEFAULT_SLACK_WH <= session["energy_wh"] <= bound_wh(50, span)
        assert session["cost_minor"] == cost_of(session["energy_wh"])
        assert session["cost_minor"] <= cost_of(bound_wh(50, timedelta(seconds=10)))  # 10.18 kr

        # Terminal for the charger: the connector takes the next transaction.
        again = await cp.start_transaction(1, "INVOICE-13", 176_100)
        assert again.id_tag_info["status"] == "Accepted"
        await cp.stop_transaction(again.transaction_id, 176_200)

    completed = [e for e in seen if isinstance(e, SessionCompleted)]
    assert completed[0].session_id == session["id"]
    assert completed[0].cost_minor == session["cost_minor"]  # payments see the plausible cost
    [alert] = [e for e in seen if isinstance(e, SessionNeedsReview)]
    assert (alert.session_id, alert.driver_id) == (session["id"], driver["id"])
    assert (alert.measured_energy_wh, alert.energy_wh) == (1_999_824_000, session["energy_wh"])
    warnings = [r.getMessage() for r in caplog.records if "needs review" in r.getMessage()]
    assert warnings and all("INVOICE-13" not in text for text in warnings)
    assert all("INVOICE-13" not in r.getMessage() for r in caplog.records)

    rows = await invoice_rows(live.http, session["stopped_at"])
    forged = [r for r in rows if r["session_id"] == str(session["id"])]
    assert [(r["total_minor"], r["status"]) for r in forged] == [
        (str(session["cost_minor"]), "needs_review")
    ]
    waiting = (await live.http.get("/admin/sessions", params={"status": "needs_review"})).json()
    assert [s["id"] for s in waiting] == [session["id"]]


async def test_a_million_wh_ten_seconds_into_a_session_charges_the_card_at_most_the_plausible_amount(  # noqa: E501
    paying: Paying,
) -> None:
    live = paying.live
    driver = await driver_with_tag(
        live.http, "CARD-13", name="Anna", phone=PHONE, billing="card_on_file"
    )
    async with live.app.state.sessions() as db:
        await db.execute(
            update(Driver)
            .where(col(Driver.id) == driver["id"])
            .values(stripe_customer_id="cus_anna", stripe_payment_method_id="pm_anna")
        )
        await db.commit()
    paying.stripe.customers["cus_anna"] = {"id": "cus_anna", "object": "customer"}  # a saved card
    anna = chat_driver(live.app, phone=PHONE)
    await anna.say("hej")
    began = utcnow()
    async with fifty_kw_charger(live) as (charger_id, cp):
        start = await cp.start_transaction(1, "CARD-13", 5000, ocpp_time(began))
        await cp.stop_transaction(
            start.transaction_id,
            5000 + 1_000_000,
            timestamp=ocpp_time(began + timedelta(seconds=10)),
        )
    session = await one_session(live.http, charger_id)
    assert session["status"] == "needs_review"
    assert session["measured_energy_wh"] == 1_000_000
    plausible_cost = session["cost_minor"]
    assert plausible_cost <= cost_of(bound_wh(50, timedelta(seconds=10)))  # 10.18 kr, not 4,505

    receipt = await wait_for_text(anna, "Mätarvärdet")
    assert "Kvitto:" in receipt and "operatören kontrollerar" in receipt
    billed = f"{plausible_cost // 100},{plausible_cost % 100:02d} kr"
    assert billed in receipt
    paid = await eventually(
        lambda: session_of(live.http, session["id"]),
        lambda s: (s["payment"] or {}).get("status") == "captured",
    )
    [charge] = paying.stripe.posts("/v1/payment_intents")
    assert charge.params["amount"] == str(plausible_cost)
    assert paid["payment"]["amount_captured_minor"] == plausible_cost

    # The operator bills 2 kWh: more than the card paid; no second charge, the rest is flagged.
    decided = await live.http.post(
        f"/admin/sessions/{session['id']}/review",
        json={"decision": "set_energy", "energy_wh": 2000},
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert (body["status"], body["energy_wh"], body["cost_minor"]) == ("completed", 2000, 1400)
    assert body["payment"]["amount_captured_minor"] == plausible_cost
    assert body["payment"]["amount_uncollected_minor"] == 1400 - plausible_cost
    assert len(paying.stripe.posts("/v1/payment_intents")) == 1
    told = await wait_for_text(anna, "Operatören har kontrollerat mätarvärdet")
    owed = 1400 - plausible_cost
    assert "debiteras 14,00 kr för 2,00 kWh" in told
    assert f"{owed // 100},{owed % 100:02d} kr av det har inte dragits från ditt kort" in told


async def test_the_operators_decision_completes_the_session_and_recomputes_its_cost(
    live: LiveServer,
) -> None:
    await driver_with_tag(live.http, "DECIDE-13", billing="invoice")
    async with fifty_kw_charger(live) as (charger_id, cp):
        start = await cp.start_transaction(1, "DECIDE-13", 1000)
        await cp.stop_transaction(start.transaction_id, 61_000)
    session = await one_session(live.http, charger_id)
    assert session["status"] == "needs_review"
    assert session["measured_energy_wh"] == 60_000
    review = f"/admin/sessions/{session['id']}/review"

    too_much = await live.http.post(review, json={"decision": "set_energy", "energy_wh": 60_001})
    assert too_much.status_code == 422
    assert "0..60000" in too_much.text
    for wrong in [
        {"decision": "set_energy"},
        {"decision": "accept_measured", "energy_wh": 5},
        {"decision": "guess"},
        {"decision": "set_energy", "energy_wh": -1},
    ]:
        assert (await live.http.post(review, json=wrong)).status_code == 422, wrong
    assert (await session_of(live.http, session["id"]))["status"] == "needs_review"

    accepted = await live.http.post(review, json={"decision": "accept_measured"})
    assert accepted.status_code == 200, accepted.text
    done = accepted.json()
    # 60 kWh × 4.50 kr + 5 kr = 275.00 kr, with the tariff of the session's start.
    assert (done["status"], done["energy_wh"], done["cost_minor"]) == ("completed", 60_000, 27_500)
    assert done["reviewed_by"] == "admin-token"
    assert done["reviewed_at"] is not None
    assert done["measured_energy_wh"] == 60_000

    again = await live.http.post(review, json={"decision": "keep_plausible"})
    assert again.status_code == 409
    assert (await session_of(live.http, session["id"]))["cost_minor"] == 27_500
    assert (await live.http.get("/admin/sessions", params={"status": "needs_review"})).json() == []
    rows = await invoice_rows(live.http, done["stopped_at"])
    assert [(r["total_minor"], r["status"]) for r in rows if r["row"] == "session"] == [
        ("27500", "completed")
    ]
    unknown = await live.http.post(
        "/admin/sessions/999999/review", json={"decision": "keep_plausible"}
    )
    assert unknown.status_code == 404


async def test_keeping_the_plausible_amount_keeps_its_cost(live: LiveServer) -> None:
    await driver_with_tag(live.http, "KEEP-13")
    async with fifty_kw_charger(live) as (charger_id, cp):
        start = await cp.start_transaction(1, "KEEP-13", 0)
        await cp.stop_transaction(start.transaction_id, 90_000)
    session = await one_session(live.http, charger_id)
    kept = await live.http.post(
        f"/admin/sessions/{session['id']}/review", json={"decision": "keep_plausible"}
    )
    assert kept.status_code == 200
    assert (kept.json()["energy_wh"], kept.json()["cost_minor"]) == (
        session["energy_wh"],
        session["cost_minor"],
    )


async def test_the_power_bound_holds_to_the_watt_hour_over_an_hour(live: LiveServer) -> None:
    """An hour at 50 kW: 50 kWh, +10 % and 1 kWh slack = 56,000 Wh plausible; one more is not."""
    await driver_with_tag(live.http, "HOUR-13")
    hour_ago = utcnow() - timedelta(hours=1)
    async with fifty_kw_charger(live) as (_, cp):
        first = await cp.start_transaction(1, "HOUR-13", 0, ocpp_time(hour_ago))
        second = await cp.start_transaction(2, "HOUR-13", 0, ocpp_time(hour_ago))
        async with live.app.state.sessions() as db:  # our rows are two hours old, too
            await db.execute(
                update(ChargingSession).values(created_at=hour_ago - timedelta(hours=1))
            )
            await db.commit()
        an_hour_later = ocpp_time(hour_ago + timedelta(hours=1))
        await cp.stop_transaction(first.transaction_id, 56_000, timestamp=an_hour_later)
        await cp.stop_transaction(second.transaction_id, 56_001, timestamp=an_hour_later)
    at_bound = await session_of(live.http, first.transaction_id)
    above = await session_of(live.http, second.transaction_id)
    assert (at_bound["status"], at_bound["energy_wh"]) == ("completed", 56_000)
    assert at_bound["measured_energy_wh"] is None and at_bound["review_reason"] is None
    assert (above["status"], above["energy_wh"], above["measured_energy_wh"]) == (
        "needs_review",
        56_000,
        56_001,
    )
    assert above["cost_minor"] == at_bound["cost_minor"] == cost_of(56_000)


async def test_a_normal_session_in_real_time_is_unaffected(live: LiveServer) -> None:
    charger = await priced_charger(live.http)
    await driver_with_tag(live.http, "NORMAL-13")
    async with simulator(live, charger["id"], power_kw=22, time_scale=1.0):
        started = await live.http.post(
            f"/admin/chargers/{charger['id']}/remote-start",
            json={"connector_id": 1, "id_tag": "NORMAL-13"},
        )
        assert started.status_code == 200, started.text
        session_id = started.json()["session_id"]
        await eventually(lambda: session_of(live.http, session_id), lambda s: s["energy_wh"] > 0)
        stop = await live.http.post(f"/admin/sessions/{session_id}/stop")
        assert stop.status_code == 200, stop.text
        done = await eventually(
            lambda: session_of(live.http, session_id), lambda s: s["stopped_at"] is not None
        )
    assert done["status"] == "completed"
    assert done["measured_energy_wh"] is None and done["review_reason"] is None
    assert done["energy_wh"] == done["meter_stop_wh"] - done["meter_start_wh"] > 0
    assert done["cost_minor"] == cost_of(done["energy_wh"])


async def test_meter_values_never_count_a_register_below_the_start_backwards_or_beyond_power(
    live: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await driver_with_tag(live.http, "MONO-13")
    began = utcnow()
    async with fifty_kw_charger(live) as (charger_id, cp):
        start = await cp.start_transaction(1, "MONO-13", 10_000, ocpp_time(began))
        tx = start.transaction_id

        async def reading(wh: int) -> int:
            await cp.meter(1, tx, wh, 7400.0)
            energy: int = (await session_of(live.http, tx))["energy_wh"]
            return energy

        assert await reading(10_500) == 500
        assert await reading(9_000) == 500  # below meterStart: ignored, flagged
        assert await reading(10_200) == 500  # a little back (within the slack): never lowers
        capped = await reading(2_000_000_000)
        assert 500 < capped <= bound_wh(50, utcnow() - began)  # raised only to the bound
        await cp.stop_transaction(tx, 10_700)
    done = await one_session(live.http, charger_id)
    assert (done["status"], done["energy_wh"]) == ("completed", 700)  # a plausible stop
    reasons = [
        r.getMessage() for r in caplog.records if "implausible MeterValues" in r.getMessage()
    ]
    assert len(reasons) == 2
    assert "register_below_start" in reasons[0] and "above_connector_power" in reasons[1]
    assert all("MONO-13" not in r.getMessage() for r in caplog.records)
    async with live.app.state.sessions() as db:  # the samples are kept as reported
        values = (
            await db.scalars(
                select(col(MeterSample.value)).where(
                    col(MeterSample.session_id) == tx, col(MeterSample.unit) == "Wh"
                )
            )
        ).all()
    assert sorted(values) == [9_000, 10_200, 10_500, 2_000_000_000]


async def test_a_meter_stop_below_the_meter_start_waits_for_review_billing_no_energy(
    live: LiveServer,
) -> None:
    await driver_with_tag(live.http, "BELOW-13")
    async with fifty_kw_charger(live) as (charger_id, cp):
        start = await cp.start_transaction(1, "BELOW-13", 10_000)
        await cp.stop_transaction(start.transaction_id, 9_000)
    session = await one_session(live.http, charger_id)
    assert session["status"] == "needs_review"
    assert session["review_reason"] == "register_below_start"
    assert (session["energy_wh"], session["measured_energy_wh"]) == (0, -1000)
    assert session["cost_minor"] == 500  # the session fee only


async def test_closing_a_session_whose_meter_values_were_capped_puts_it_under_review(
    live: LiveServer,
) -> None:
    await driver_with_tag(live.http, "CLOSE-13")
    async with fifty_kw_charger(live) as (_, cp):
        start = await cp.start_transaction(1, "CLOSE-13", 0)
        await cp.meter(1, start.transaction_id, 500_000, 50_000.0)
        closed = await live.http.post(f"/admin/sessions/{start.transaction_id}/close")
    assert closed.status_code == 200, closed.text
    session = await session_of(live.http, start.transaction_id)
    assert session["status"] == "needs_review"
    assert session["measured_energy_wh"] == 500_000  # the highest register it sent
    assert session["energy_wh"] < 2 * DEFAULT_SLACK_WH


# -- forged clocks: billed times are clamped to ours ---------------------------------------------

SKEW = DEFAULT_RULES.clock_skew
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moments, moments, moments, st.none() | moments, st.integers(0, 3600))
def test_billed_times_lie_between_our_session_row_and_our_clock(
    claimed_start: datetime,
    claimed_stop: datetime,
    created: datetime,
    claimed_finished: datetime | None,
    later_s: int,
) -> None:
    now = created + timedelta(seconds=later_s)
    times = plausibility.billing_times(
        claimed_start, created, claimed_stop, claimed_finished, now, DEFAULT_RULES
    )
    assert created <= times.started_at <= now
    assert times.started_at <= times.stopped_at <= now + SKEW
    if times.charging_finished_at is not None:
        assert times.started_at <= times.charging_finished_at <= times.stopped_at
    moved = (
        abs(times.started_at - claimed_start) > SKEW or abs(times.stopped_at - claimed_stop) > SKEW
    )
    if moved:
        assert times.out_of_range


def test_a_sane_clock_is_billed_as_the_charger_says() -> None:
    created = utcnow() - timedelta(hours=1)
    start, finished, stop = (created + timedelta(minutes=m) for m in (0.5, 40, 59))
    times = plausibility.billing_times(start, created, stop, finished, utcnow(), DEFAULT_RULES)
    assert (times.started_at, times.stopped_at, times.charging_finished_at) == (
        start,
        stop,
        finished,
    )
    assert not times.out_of_range
    slow = plausibility.billing_times(
        created - timedelta(minutes=2), created, stop, None, utcnow(), DEFAULT_RULES
    )
    assert slow.started_at == created and not slow.out_of_range  # a few minutes: no review


@given(
    st.integers(0, 10**12),
    st.integers(0, 10**10),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, pricing.MAX_COST_MINOR),
)
def test_no_cost_exceeds_its_cap_and_the_parts_still_sum_to_the_total(
    energy_wh: int, seconds_: int, per_minute: int, per_kwh: int, cap: int
) -> None:
    tariff = pricing.TariffSnapshot("SEK", per_kwh, per_minute, 500, per_minute, 0, 25)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cost = pricing.compute_cost(
        tariff, energy_wh, start, start + timedelta(seconds=seconds_), start
    )
    assert cost.total_minor <= pricing.MAX_COST_MINOR
    for billed in (cost, pricing.capped(cost, cap)):
        parts = (
            billed.energy_minor + billed.time_minor + billed.session_fee_minor + billed.idle_minor
        )
        assert parts == billed.total_minor
        assert min(parts, billed.energy_minor, billed.time_minor, billed.idle_minor) >= 0
    assert pricing.capped(cost, cap).total_minor == min(cost.total_minor, cap)


def without_the_protocols_clock_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OCPP handlers refuse timestamps far ahead; billing must hold without that check."""
    monkeypatch.setattr(handlers, "MAX_CLOCK_AHEAD", timedelta(days=365 * 100))


async def forged_meter_values(
    cp: BareChargePoint, connector_id: int, transaction_id: int, at: datetime, wh: int, w: int
) -> None:
    frame = call.MeterValues(
        connector_id=connector_id,
        transaction_id=transaction_id,
        meter_value=[
            {
                "timestamp": ocpp_time(at),
                "sampled_value": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": str(w), "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    )
    await cp.call(frame, suppress=False)  # a CALLERROR (e.g. InternalError) raises


async def stored(live: LiveServer, session_id: int) -> ChargingSession:
    async with live.app.state.sessions() as db:
        row: ChargingSession | None = await db.get(ChargingSession, session_id)
        assert row is not None
        return row


async def test_a_start_dated_years_back_bills_no_time_or_idle_fees_beyond_our_clock(
    live: LiveServer,
) -> None:
    """The incident: a start dated ten years back and a 0 W sample dated 3,000 days back billed
    8.6 million kr of per-minute and idle fees, `completed` with no review."""
    await driver_with_tag(live.http, "YEARS-13", billing="invoice")
    charger = await priced_charger(live.http, connectors=FIFTY_KW)
    per_minute = {**TARIFF, "price_per_minute_minor": 100}  # 1 kr/min, idle 2 kr/min after 15
    put = await live.http.put(f"/admin/stations/{charger['station_id']}/tariff", json=per_minute)
    assert put.status_code == 200, put.text
    began = utcnow()
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await cp.boot()
        start = await cp.start_transaction(
            1, "YEARS-13", 1000, ocpp_time(began - timedelta(days=3650))
        )
        assert start.id_tag_info["status"] == "Accepted"
        tx = start.transaction_id
        await forged_meter_values(cp, 1, tx, began - timedelta(days=3000), 1500, 0)
        await cp.stop_transaction(tx, 1500, timestamp=ocpp_time(utcnow()))
    ended = utcnow()
    session = await one_session(live.http, charger["id"])
    assert (session["status"], session["review_reason"]) == ("needs_review", "clock_out_of_range")
    assert (session["energy_wh"], session["measured_energy_wh"]) == (500, 500)
    started_at = datetime.fromisoformat(session["started_at"])
    stopped_at = datetime.fromisoformat(session["stopped_at"])
    assert began - timedelta(seconds=1) <= started_at <= stopped_at <= ended + SKEW
    row = await stored(live, tx)
    breakdown = pricing.CostBreakdown(**(row.cost_breakdown or {}))
    assert breakdown.idle_minutes == 0 and breakdown.idle_minor == 0
    assert breakdown.charging_seconds <= (ended - began).total_seconds() + 1
    assert session["cost_minor"] == cost_of(500) + breakdown.time_minor
    assert breakdown.time_minor <= 100  # not 5 million minutes: at most the minute it lasted

    # Accepting the charger's figures bills its energy, still over our clock's times.
    decided = await live.http.post(
        f"/admin/sessions/{session['id']}/review", json={"decision": "accept_measured"}
    )
    assert decided.status_code == 200, decided.text
    assert (decided.json()["energy_wh"], decided.json()["cost_minor"]) == (
        500,
        session["cost_minor"],
    )


async def test_a_reading_refused_as_implausible_is_not_billed_when_the_session_is_superseded(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The incident: a +1,000,000 Wh reading refused at the time was billed in full 20 h later
    when a new StartTransaction superseded the session, `completed` with no review."""
    without_the_protocols_clock_check(monkeypatch)
    await driver_with_tag(live.http, "LATER-13", billing="invoice")
    async with fifty_kw_charger(live) as (_, cp):
        start = await cp.start_transaction(1, "LATER-13", 1000)
        tx = start.transaction_id
        await forged_meter_values(cp, 1, tx, utcnow() + timedelta(hours=1), 1_001_000, 50_000)
        kept = (await session_of(live.http, tx))["energy_wh"]
        assert kept < 2 * DEFAULT_SLACK_WH  # refused: raised only to the bound of a second
        # The charger goes silent; twenty hours later it reboots and starts a new transaction.
        async with live.app.state.sessions() as db:
            row = await db.get(ChargingSession, tx)
            assert row is not None and row.started_at is not None
            silent = timedelta(hours=20)
            await db.execute(
                update(ChargingSession)
                .where(col(ChargingSession.id) == tx)
                .values(
                    created_at=row.created_at - silent,
                    started_at=row.started_at - silent,
                    updated_at=row.updated_at - silent,
                )
            )
            await db.commit()
        again = await cp.start_transaction(1, "LATER-13", 500)
        assert again.id_tag_info["status"] == "Accepted"
        superseded = await session_of(live.http, tx)
    assert superseded["status"] == "needs_review"
    assert superseded["review_reason"] == "above_connector_power"
    assert superseded["measured_energy_wh"] == 1_000_000  # what it claimed, for the operator
    assert superseded["energy_wh"] == kept  # what was judged plausible when it came
    assert superseded["cost_minor"] == cost_of(kept)
    stopped_at = datetime.fromisoformat(superseded["stopped_at"])
    assert stopped_at <= utcnow() - timedelta(hours=19)  # its last sign of life, not +1 h
    fresh = await session_of(live.http, again.transaction_id)
    assert fresh["status"] == "charging"


async def test_a_future_dated_meter_value_cannot_stretch_a_superseded_session(
    live: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The incident: a 0 W sample dated 2099, then a new StartTransaction: the superseded
    session stopped in 2099 at 7.58 billion öre; on PostgreSQL the cost overflowed the column
    and every later start on that connector (and force_close) answered InternalError."""
    without_the_protocols_clock_check(monkeypatch)
    await driver_with_tag(live.http, "LATE-13", billing="invoice")
    far = datetime(2099, 1, 1, tzinfo=UTC)
    async with fifty_kw_charger(live) as (_, cp):
        first = await cp.start_transaction(1, "LATE-13", 1000)
        await cp.meter(1, first.transaction_id, 1100, 0)
        await forged_meter_values(cp, 1, first.transaction_id, far, 1200, 0)
        again = await cp.start_transaction(1, "LATE-13", 1300)  # supersedes the first
        assert again.id_tag_info["status"] == "Accepted"
        await cp.stop_transaction(again.transaction_id, 1400)

        closing = await cp.start_transaction(2, "LATE-13", 0)
        await cp.meter(2, closing.transaction_id, 100, 0)
        await forged_meter_values(cp, 2, closing.transaction_id, far, 200, 0)
        closed = await live.http.post(f"/admin/sessions/{closing.transaction_id}/close")
        assert closed.status_code == 200, closed.text
    now = utcnow()
    for tx, energy in [(first.transaction_id, 200), (closing.transaction_id, 200)]:
        session = await session_of(live.http, tx)
        assert (session["status"], session["review_reason"]) == (
            "needs_review",
            "clock_out_of_range",
        ), session
        assert session["energy_wh"] == energy
        assert datetime.fromisoformat(session["stopped_at"]) <= now
        assert session["cost_minor"] == cost_of(energy)  # no idle fee: it never idled 15 min
    normal = await session_of(live.http, again.transaction_id)
    assert (normal["status"], normal["energy_wh"], normal["cost_minor"]) == (
        "completed",
        100,
        cost_of(100),
    )


async def test_a_cost_above_the_cap_is_billed_up_to_it_and_waits_for_review(
    live: LiveServer,
) -> None:
    """50 kWh in an hour is plausible; at 10,000 kr/kWh it is not a cost anyone is billed
    unseen (nor one the 32-bit cost column could hold for a longer session)."""
    await driver_with_tag(live.http, "DEAR-13", billing="invoice")
    charger = await priced_charger(live.http, connectors=FIFTY_KW)
    dear = {**TARIFF, "price_per_kwh_minor": 1_000_000}
    put = await live.http.put(f"/admin/stations/{charger['station_id']}/tariff", json=dear)
    assert put.status_code == 200, put.text
    hour_ago = utcnow() - timedelta(hours=1)
    async with bare_charger(live.ocpp_url, charger["id"]) as cp:
        await cp.boot()
        start = await cp.start_transaction(1, "DEAR-13", 0, ocpp_time(hour_ago))
        async with live.app.state.sessions() as db:  # our row is an hour old, too
            await db.execute(update(ChargingSession).values(created_at=hour_ago))
            await db.commit()
        await cp.stop_transaction(start.transaction_id, 50_000, timestamp=ocpp_time(utcnow()))
    session = await one_session(live.http, charger["id"])
    assert (session["status"], session["review_reason"]) == ("needs_review", "cost_above_cap")
    assert (session["energy_wh"], session["measured_energy_wh"]) == (50_000, 50_000)
    assert session["cost_minor"] == DEFAULT_RULES.max_cost_minor  # 100,000 kr, not 500,005 kr
    row = await stored(live, start.transaction_id)
    breakdown = pricing.CostBreakdown(**(row.cost_breakdown or {}))
    assert breakdown.energy_minor + breakdown.session_fee_minor == breakdown.total_minor


# -- the console ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def browser_on(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping staff browser on the running app (https: the cookies are Secure)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


async def console_login(browser: httpx.AsyncClient, email: str) -> str:
    form = await browser.get("/console/login")
    response = await browser.post(
        "/console/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(form), "next": ""},
    )
    assert response.status_code == 303, response.text
    return csrf_of(await browser.get("/console/queue"))


async def test_operators_decide_in_the_console_and_support_agents_cannot(
    live: LiveServer,
) -> None:
    await driver_with_tag(live.http, "CONSOLE-13", name="Bo Ek")
    async with fifty_kw_charger(live) as (_, cp):
        start = await cp.start_transaction(1, "CONSOLE-13", 0)
        await cp.stop_transaction(start.transaction_id, 1_000_000)
    session_id = start.transaction_id
    await add_staff(live.http, "olle@example.se", "operator")
    await add_staff(live.http, "lena@example.se", "support")

    async with browser_on(live.app) as lena:
        csrf = await console_login(lena, "lena@example.se")
        assert (await lena.get("/console/review")).status_code == 403
        refused = await lena.post(
            f"/console/sessions/{session_id}/review",
            data={"decision": "accept_measured", "csrf_token": csrf},
        )
        assert refused.status_code == 403

    async with browser_on(live.app) as olle:
        csrf = await console_login(olle, "olle@example.se")
        page = await olle.get("/console/review")
        assert page.status_code == 200
        assert f'id="review-{session_id}"' in page.text
        assert "Bo Ek" in page.text
        assert "1000,00 kWh · 4505,00 kr" in page.text  # what accepting the claim would bill
        no_csrf = await olle.post(
            f"/console/sessions/{session_id}/review", data={"decision": "keep_plausible"}
        )
        assert no_csrf.status_code == 403
        too_much = await olle.post(
            f"/console/sessions/{session_id}/review",
            data={"decision": "set_energy", "energy_wh": "1000001", "csrf_token": csrf},
        )
        assert too_much.status_code == 303
        assert (await session_of(live.http, session_id))["status"] == "needs_review"
        decided = await olle.post(
            f"/console/sessions/{session_id}/review",
            data={"decision": "set_energy", "energy_wh": "800", "csrf_token": csrf},
        )
        assert decided.status_code == 303
        assert decided.headers["location"] == "/console/review"
        after = await olle.get("/console/review")
        assert f'id="review-{session_id}"' not in after.text
    done = await session_of(live.http, session_id)
    assert (done["status"], done["energy_wh"], done["cost_minor"]) == ("completed", 800, 860)
    assert done["reviewed_by"] == "olle@example.se"
