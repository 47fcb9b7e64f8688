"""Who may charge where, and when: groups, restricted stations and opening hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession

from backend.services import access
from backend.services.access import describe_hours, is_open, validate_opening_hours
from backend.timezones import STOCKHOLM
from tests.helpers.factories import make_driver, make_station

WEEKDAYS_6_22 = [{"days": [0, 1, 2, 3, 4], "open": "06:00", "close": "22:00"}]
WEEK_AND_WEEKEND = [
    {"days": [0, 1, 2, 3, 4], "open": "06:00", "close": "22:00"},
    {"days": [5, 6], "open": "08:00", "close": "20:00"},
]
ALWAYS = [{"days": [0, 1, 2, 3, 4, 5, 6], "open": "00:00", "close": "24:00"}]
# 2026-11-24 is a Tuesday, 2026-11-28 a Saturday (winter time, UTC+1).
TUESDAY_NOON = "2026-11-24T12:00:00+01:00"
TUESDAY_23 = "2026-11-24T23:00:00+01:00"
SATURDAY_10 = "2026-11-28T10:00:00+01:00"


async def make_group(admin: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await admin.post("/admin/groups", json={"name": name})
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


async def join(admin: httpx.AsyncClient, group_id: int, driver_id: int) -> httpx.Response:
    return await admin.put(f"/admin/groups/{group_id}/members/{driver_id}")


async def put_access(
    admin: httpx.AsyncClient,
    station_id: int,
    access_: str = "public",
    group_ids: list[int] | None = None,
    opening_hours: Any = None,
) -> httpx.Response:
    body = {"access": access_, "group_ids": group_ids or [], "opening_hours": opening_hours}
    return await admin.put(f"/admin/stations/{station_id}/access", json=body)


async def check(
    admin: httpx.AsyncClient, station_id: int, driver_id: int | None = None, at: str | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if driver_id is not None:
        params["driver_id"] = driver_id
    if at is not None:
        params["at"] = at
    response = await admin.get(f"/admin/stations/{station_id}/access/check", params=params)
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


async def solrosen_station(
    admin: httpx.AsyncClient, opening_hours: Any = None
) -> tuple[int, int, int]:
    """A station restricted to Brf Solrosen: (station id, member id, non-member id)."""
    station = await make_station(admin, name="Brf Solrosen garage")
    group = await make_group(admin, "Brf Solrosen")
    member = await make_driver(admin, name="Anna Lindqvist")
    outsider = await make_driver(admin, name="Bo Ek")
    assert (await join(admin, group["id"], member["id"])).status_code == 200
    response = await put_access(admin, station["id"], "restricted", [group["id"]], opening_hours)
    assert response.status_code == 200, response.text
    return station["id"], member["id"], outsider["id"]


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- who ------------------------------------------------------------------------------


async def test_a_public_station_lets_everyone_charge(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    driver = await make_driver(admin)
    for driver_id in (driver["id"], None):
        decision = await check(admin, station["id"], driver_id, TUESDAY_23)
        assert decision["allowed"] is True
        assert decision["reason"] is None
        assert decision["message"] is None
        assert decision["groups"] == []
        assert decision["hours"] is None
    shown = (await admin.get(f"/admin/stations/{station['id']}/access")).json()
    assert shown == {
        "station_id": station["id"],
        "access": "public",
        "groups": [],
        "opening_hours": None,
        "hours": None,
    }


async def test_a_restricted_station_lets_members_charge_and_tells_others_who_may(
    admin: httpx.AsyncClient,
) -> None:
    station_id, member_id, outsider_id = await solrosen_station(admin)
    allowed = await check(admin, station_id, member_id, TUESDAY_NOON)
    assert allowed["allowed"] is True
    assert allowed["groups"] == ["Brf Solrosen"]
    for driver_id in (outsider_id, None):
        refused = await check(admin, station_id, driver_id, TUESDAY_NOON)
        assert refused["allowed"] is False
        assert refused["reason"] == "members_only"
        assert refused["message"] == "members of Brf Solrosen only"
        assert refused["groups"] == ["Brf Solrosen"]


async def test_a_member_of_any_of_the_stations_groups_may_charge(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    tallen = await make_group(admin, "Brf Tallen")
    fleet = await make_group(admin, "Ericsson fleet")
    driver = await make_driver(admin)
    outsider = await make_driver(admin, name="Bo Ek")
    await join(admin, fleet["id"], driver["id"])
    response = await put_access(admin, station["id"], "restricted", [fleet["id"], tallen["id"]])
    assert [g["name"] for g in response.json()["groups"]] == ["Brf Tallen", "Ericsson fleet"]
    assert (await check(admin, station["id"], driver["id"]))["allowed"] is True
    refused = await check(admin, station["id"], outsider["id"])
    assert refused["message"] == "members of Brf Tallen or Ericsson fleet only"


async def test_a_non_member_hears_members_only_even_when_the_station_is_closed(
    admin: httpx.AsyncClient,
) -> None:
    station_id, member_id, outsider_id = await solrosen_station(admin, WEEKDAYS_6_22)
    outsider = await check(admin, station_id, outsider_id, SATURDAY_10)
    assert outsider["reason"] == "members_only"
    member = await check(admin, station_id, member_id, SATURDAY_10)
    assert member["reason"] == "closed"


async def test_leaving_the_group_ends_access(admin: httpx.AsyncClient) -> None:
    station_id, member_id, _ = await solrosen_station(admin)
    group_id = (await admin.get("/admin/groups")).json()[0]["id"]
    assert (await admin.delete(f"/admin/groups/{group_id}/members/{member_id}")).status_code == 204
    assert (await check(admin, station_id, member_id))["reason"] == "members_only"


async def test_the_service_decides_like_the_api(admin: httpx.AsyncClient, db: AsyncSession) -> None:
    station_id, member_id, outsider_id = await solrosen_station(admin, WEEK_AND_WEEKEND)
    at = local(TUESDAY_NOON)
    assert await access.check_access(db, station_id, member_id, at) == access.AccessDecision(
        allowed=True,
        reason=None,
        groups=("Brf Solrosen",),
        hours="Mon-Fri 06:00-22:00, Sat-Sun 08:00-20:00",
        message=None,
    )
    refused = await access.check_access(db, station_id, outsider_id, at)
    assert (refused.allowed, refused.reason) == (False, "members_only")
    closed = await access.check_access(db, station_id, member_id, local(TUESDAY_23))
    assert closed.message == "open Mon-Fri 06:00-22:00, Sat-Sun 08:00-20:00"


async def test_a_check_for_an_unknown_station_or_driver_is_404(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    assert (await admin.get("/admin/stations/999/access/check")).status_code == 404
    unknown_driver = await admin.get(
        f"/admin/stations/{station['id']}/access/check", params={"driver_id": 999}
    )
    assert unknown_driver.status_code == 404
    assert "driver 999" in unknown_driver.json()["detail"]
    assert (await admin.get("/admin/stations/999/access")).status_code == 404
    assert (await put_access(admin, 999)).status_code == 404


async def test_a_check_needs_an_aware_time_and_defaults_to_now(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    url = f"/admin/stations/{station['id']}/access/check"
    naive = await admin.get(url, params={"at": "2026-11-24T12:00:00"})
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["loc"] == ["query", "at"]
    before = datetime.now(UTC)
    decision = await check(admin, station["id"])
    assert before <= datetime.fromisoformat(decision["at"]) <= datetime.now(UTC)
    given_at = await check(admin, station["id"], at=TUESDAY_NOON)
    assert datetime.fromisoformat(given_at["at"]) == local(TUESDAY_NOON)


# --- when -----------------------------------------------------------------------------


async def test_weekday_hours_allow_tuesday_noon_and_refuse_late_evening_and_saturday(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    response = await put_access(admin, station["id"], opening_hours=WEEKDAYS_6_22)
    assert response.status_code == 200
    assert response.json()["hours"] == "Mon-Fri 06:00-22:00"
    assert response.json()["opening_hours"] == WEEKDAYS_6_22
    assert (await check(admin, station["id"], at=TUESDAY_NOON))["allowed"] is True
    for at in (TUESDAY_23, SATURDAY_10):
        decision = await check(admin, station["id"], at=at)
        assert decision["allowed"] is False, at
        assert decision["reason"] == "closed"
        assert decision["hours"] == "Mon-Fri 06:00-22:00"
        assert decision["message"] == "open Mon-Fri 06:00-22:00"


async def test_hours_are_read_in_stockholm_time_whatever_offset_the_time_has(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    await put_access(admin, station["id"], opening_hours=WEEKDAYS_6_22)
    # Tuesday 21:30 UTC is 22:30 in Stockholm: closed, though 21:30 is inside 06:00-22:00.
    assert (await check(admin, station["id"], at="2026-11-24T21:30:00Z"))["allowed"] is False
    # Friday 23:30 UTC is already Saturday in Stockholm.
    assert (await check(admin, station["id"], at="2026-11-27T23:30:00Z"))["allowed"] is False
    # Monday 00:30 in New York is Monday 06:30 in Stockholm.
    assert (await check(admin, station["id"], at="2026-11-30T00:30:00-05:00"))["allowed"]


def test_opening_hours_follow_summer_time_from_the_spring_change() -> None:
    # 2026-03-29 (Sunday): at 02:00 CET the clocks jump to 03:00 CEST (UTC+2).
    sunday_early = [{"days": [6], "open": "05:00", "close": "06:00"}]
    assert is_open(sunday_early, local("2026-03-29T05:30:00+02:00"))
    assert is_open(sunday_early, local("2026-03-29T03:30:00+00:00"))  # 05:30 CEST, not 04:30
    assert not is_open(sunday_early, local("2026-03-29T02:30:00+00:00"))  # 04:30 CEST
    assert not is_open(sunday_early, local("2026-03-29T04:00:00+00:00"))  # 06:00 CEST
    # The day before, the same UTC time is still winter time: 04:30 CET.
    saturday_early = [{"days": [5], "open": "05:00", "close": "06:00"}]
    assert not is_open(saturday_early, local("2026-03-28T03:30:00+00:00"))


def test_the_repeated_hour_of_the_autumn_change_is_open_both_times() -> None:
    # 2026-10-25 (Sunday): at 03:00 CEST the clocks go back to 02:00 CET, so 02:xx happens twice.
    sunday_two_to_three = [{"days": [6], "open": "02:00", "close": "03:00"}]
    assert is_open(sunday_two_to_three, local("2026-10-25T00:30:00+00:00"))  # 02:30 CEST
    assert is_open(sunday_two_to_three, local("2026-10-25T01:30:00+00:00"))  # 02:30 CET
    assert not is_open(sunday_two_to_three, local("2026-10-25T02:00:00+00:00"))  # 03:00 CET
    assert not is_open(sunday_two_to_three, local("2026-10-24T23:59:00+00:00"))  # 01:59 CEST
    sunday_day = [{"days": [6], "open": "08:00", "close": "20:00"}]
    assert is_open(sunday_day, local("2026-10-25T07:30:00+00:00"))  # 08:30 CET
    assert not is_open(sunday_day, local("2026-10-25T06:30:00+00:00"))  # 07:30 CET


async def test_the_api_check_uses_summer_time_after_the_spring_change(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    hours = [{"days": [6], "open": "05:00", "close": "06:00"}]
    await put_access(admin, station["id"], opening_hours=hours)
    assert (await check(admin, station["id"], at="2026-03-29T05:30:00+02:00"))["allowed"]
    assert (await check(admin, station["id"], at="2026-03-29T03:30:00Z"))["allowed"]
    autumn = await check(admin, station["id"], at="2026-10-25T04:30:00Z")  # 05:30 CET
    assert autumn["allowed"] is True
    assert (await check(admin, station["id"], at="2026-10-25T03:30:00Z"))["reason"] == "closed"


async def test_a_window_may_close_at_midnight_and_continue_the_next_day(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    friday_night = [
        {"days": [4], "open": "18:00", "close": "24:00"},
        {"days": [5], "open": "00:00", "close": "02:00"},
    ]
    response = await put_access(admin, station["id"], opening_hours=friday_night)
    assert response.status_code == 200
    assert response.json()["hours"] == "Fri 18:00-24:00, Sat 00:00-02:00"
    for at, allowed in (
        ("2026-11-27T23:59:59+01:00", True),
        ("2026-11-28T00:00:00+01:00", True),
        ("2026-11-28T01:59:00+01:00", True),
        ("2026-11-28T02:00:00+01:00", False),
        ("2026-11-27T17:59:00+01:00", False),
    ):
        assert (await check(admin, station["id"], at=at))["allowed"] is allowed, at


def test_the_hours_text_groups_days_with_the_same_windows() -> None:
    assert describe_hours(None) is None
    assert describe_hours(WEEK_AND_WEEKEND) == "Mon-Fri 06:00-22:00, Sat-Sun 08:00-20:00"
    assert describe_hours(ALWAYS) == "daily 00:00-24:00"
    assert describe_hours([{"days": [4, 0, 2], "open": "08:00", "close": "10:00"}]) == (
        "Mon, Wed, Fri 08:00-10:00"
    )
    lunch_break = [
        {"days": [0, 1, 2, 3, 4], "open": "13:00", "close": "22:00"},
        {"days": [0, 1, 2, 3, 4], "open": "06:00", "close": "12:00"},
        {"days": [6], "open": "10:00", "close": "14:00"},
    ]
    assert describe_hours(lunch_break) == "Mon-Fri 06:00-12:00 and 13:00-22:00, Sun 10:00-14:00"
    touching = [
        {"days": [0], "open": "06:00", "close": "12:00"},
        {"days": [0], "open": "12:00", "close": "18:00"},
    ]
    assert describe_hours(touching) == "Mon 06:00-18:00"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(WEEKDAYS_6_22, datetime(2026, 11, 24, 12, 0))


# --- validation -----------------------------------------------------------------------

INVALID_HOURS: list[tuple[Any, str]] = [
    ("06:00-22:00", "list of windows"),
    ([], "null for a station that is always open"),
    (["Mon-Fri"], "must be an object"),
    ([{"days": [0], "open": "06:00"}], "lacks close"),
    ([{"days": [0], "open": "06:00", "close": "22:00", "tz": "UTC"}], "unknown"),
    ([{"days": [7], "open": "06:00", "close": "22:00"}], "0..6"),
    ([{"days": [], "open": "06:00", "close": "22:00"}], "non-empty"),
    ([{"days": [True], "open": "06:00", "close": "22:00"}], "0..6"),
    ([{"days": [1, 1], "open": "06:00", "close": "22:00"}], "repeat"),
    ([{"days": [0], "open": "6:00", "close": "22:00"}], "HH:MM"),
    ([{"days": [0], "open": "24:00", "close": "24:00"}], "HH:MM"),
    ([{"days": [0], "open": "06:00", "close": "24:30"}], "24:00"),
    ([{"days": [0], "open": "06:00", "close": 22}], "HH:MM"),
    ([{"days": [0], "open": "22:00", "close": "06:00"}], "split it"),
    ([{"days": [0], "open": "10:00", "close": "10:00"}], "before close"),
    (
        [
            {"days": [0, 1], "open": "06:00", "close": "12:00"},
            {"days": [1], "open": "11:00", "close": "14:00"},
        ],
        "11:00-14:00 on Tue overlaps 06:00-12:00",
    ),
]


@pytest.mark.parametrize(("value", "message"), INVALID_HOURS)
def test_invalid_opening_hours_are_refused_with_a_clear_message(value: Any, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_opening_hours(value)
    assert message in str(raised.value)


async def test_invalid_hours_are_422_naming_opening_hours_and_change_nothing(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    await put_access(admin, station["id"], opening_hours=WEEKDAYS_6_22)
    before = (await admin.get(f"/admin/stations/{station['id']}/access")).json()
    for value, _ in INVALID_HOURS:
        response = await put_access(admin, station["id"], opening_hours=value)
        assert response.status_code == 422, value
        assert response.json()["detail"][0]["loc"] == ["body", "opening_hours"], value
    assert (await admin.get(f"/admin/stations/{station['id']}/access")).json() == before


async def test_opening_hours_must_be_given_even_if_null(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    response = await admin.put(f"/admin/stations/{station['id']}/access", json={"access": "public"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "opening_hours"


async def test_restricted_without_groups_is_422_naming_group_ids(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    response = await put_access(admin, station["id"], "restricted", [])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "group_ids"]
    assert "at least one group" in response.json()["detail"][0]["msg"]
    assert (await admin.get(f"/admin/stations/{station['id']}/access")).json()["access"] == (
        "public"
    )


async def test_a_public_station_takes_no_groups(admin: httpx.AsyncClient) -> None:
    station = await make_station(admin)
    group = await make_group(admin, "Brf Solrosen")
    response = await put_access(admin, station["id"], "public", [group["id"]])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "group_ids"]


async def test_bad_access_or_unknown_fields_are_422_naming_them(
    admin: httpx.AsyncClient,
) -> None:
    station = await make_station(admin)
    url = f"/admin/stations/{station['id']}/access"
    cases = {
        "access": {"access": "private", "opening_hours": None},
        "group_ids": {"access": "restricted", "group_ids": "1", "opening_hours": None},
        "groups": {"access": "public", "opening_hours": None, "groups": []},
    }
    for field, body in cases.items():
        response = await admin.put(url, json=body)
        assert response.status_code == 422, field
        assert response.json()["detail"][0]["loc"][1] == field, response.json()


async def test_an_unknown_group_is_404_and_the_old_access_stays(admin: httpx.AsyncClient) -> None:
    station_id, _, _ = await solrosen_station(admin, WEEKDAYS_6_22)
    before = (await admin.get(f"/admin/stations/{station_id}/access")).json()
    group_id = before["groups"][0]["id"]
    response = await put_access(admin, station_id, "restricted", [group_id, 999], ALWAYS)
    assert response.status_code == 404
    assert "999" in response.json()["detail"]
    assert (await admin.get(f"/admin/stations/{station_id}/access")).json() == before


async def test_putting_access_replaces_the_group_list(admin: httpx.AsyncClient) -> None:
    station_id, _, _ = await solrosen_station(admin)
    tallen = await make_group(admin, "Brf Tallen")
    response = await put_access(admin, station_id, "restricted", [tallen["id"], tallen["id"]])
    assert response.status_code == 200
    assert [g["name"] for g in response.json()["groups"]] == ["Brf Tallen"]
    public = await put_access(admin, station_id, "public", [], WEEKDAYS_6_22)
    assert public.json()["groups"] == []
    assert public.json()["access"] == "public"


# --- groups ---------------------------------------------------------------------------


async def test_group_names_are_unique_ignoring_case(admin: httpx.AsyncClient) -> None:
    await make_group(admin, "Brf Solrosen")
    await make_group(admin, "Brf Ängen")
    for name in ("brf solrosen", "  BRF SOLROSEN ", "BRF ÄNGEN"):
        response = await admin.post("/admin/groups", json={"name": name})
        assert response.status_code == 409, name
        assert "already exists" in response.json()["detail"]
    assert len((await admin.get("/admin/groups")).json()) == 2


async def test_a_group_needs_a_name(admin: httpx.AsyncClient) -> None:
    for body in ({"name": "  "}, {}, {"name": "x", "members": []}):
        response = await admin.post("/admin/groups", json=body)
        assert response.status_code == 422, body
    assert (await admin.get("/admin/groups")).json() == []


async def test_a_group_lists_its_members_and_adding_twice_changes_nothing(
    admin: httpx.AsyncClient,
) -> None:
    group = await make_group(admin, "Brf Solrosen")
    assert group["member_count"] == 0
    anna = await make_driver(admin, name="Anna Lindqvist")
    bo = await make_driver(admin, name="Bo Ek")
    first = await join(admin, group["id"], anna["id"])
    assert first.status_code == 200
    assert first.json() == {
        "group_id": group["id"],
        "driver_id": anna["id"],
        "name": "Anna Lindqvist",
    }
    again = await join(admin, group["id"], anna["id"])
    assert again.status_code == 200
    assert again.json() == first.json()
    await join(admin, group["id"], bo["id"])
    detail = (await admin.get(f"/admin/groups/{group['id']}")).json()
    assert detail == {
        "id": group["id"],
        "name": "Brf Solrosen",
        "member_count": 2,
        "members": [
            {"driver_id": anna["id"], "name": "Anna Lindqvist"},
            {"driver_id": bo["id"], "name": "Bo Ek"},
        ],
    }
    listed = (await admin.get("/admin/groups")).json()
    assert listed == [{"id": group["id"], "name": "Brf Solrosen", "member_count": 2}]


async def test_membership_of_unknown_groups_drivers_or_non_members_is_404(
    admin: httpx.AsyncClient,
) -> None:
    group = await make_group(admin, "Brf Solrosen")
    driver = await make_driver(admin)
    assert (await join(admin, 999, driver["id"])).status_code == 404
    assert (await join(admin, group["id"], 999)).status_code == 404
    not_member = await admin.delete(f"/admin/groups/{group['id']}/members/{driver['id']}")
    assert not_member.status_code == 404
    assert "not a member" in not_member.json()["detail"]
    assert (await admin.delete(f"/admin/groups/999/members/{driver['id']}")).status_code == 404
    assert (await admin.get("/admin/groups/999")).status_code == 404
    assert (await admin.delete("/admin/groups/999")).status_code == 404


async def test_deleting_a_group_removes_it_and_its_memberships(admin: httpx.AsyncClient) -> None:
    group = await make_group(admin, "Brf Solrosen")
    driver = await make_driver(admin)
    await join(admin, group["id"], driver["id"])
    assert (await admin.delete(f"/admin/groups/{group['id']}")).status_code == 204
    assert (await admin.get(f"/admin/groups/{group['id']}")).status_code == 404
    assert (await admin.get(f"/admin/drivers/{driver['id']}")).status_code == 200
    again = await make_group(admin, "Brf Solrosen")
    assert again["member_count"] == 0


async def test_the_only_group_of_a_restricted_station_cannot_be_deleted(
    admin: httpx.AsyncClient,
) -> None:
    station_id, member_id, _ = await solrosen_station(admin)
    group_id = (await admin.get(f"/admin/stations/{station_id}/access")).json()["groups"][0]["id"]
    response = await admin.delete(f"/admin/groups/{group_id}")
    assert response.status_code == 409
    assert str(station_id) in response.json()["detail"]
    assert (await check(admin, station_id, member_id))["allowed"] is True
    tallen = await make_group(admin, "Brf Tallen")
    await put_access(admin, station_id, "restricted", [group_id, tallen["id"]])
    assert (await admin.delete(f"/admin/groups/{group_id}")).status_code == 204
    shown = (await admin.get(f"/admin/stations/{station_id}/access")).json()
    assert [g["name"] for g in shown["groups"]] == ["Brf Tallen"]


# --- the station search ---------------------------------------------------------------


async def test_usable_stations_are_the_open_public_ones_and_the_drivers_own(
    admin: httpx.AsyncClient, db: AsyncSession
) -> None:
    public_open = (await make_station(admin, name="Open"))["id"]
    public_closed = (await make_station(admin, name="Office hours"))["id"]
    await put_access(admin, public_closed, opening_hours=WEEKDAYS_6_22)
    mine, member_id, outsider_id = await solrosen_station(admin)
    mine_closed = (await make_station(admin, name="Solrosen weekdays"))["id"]
    group_id = (await admin.get("/admin/groups")).json()[0]["id"]
    await put_access(admin, mine_closed, "restricted", [group_id], WEEKDAYS_6_22)
    others = (await make_station(admin, name="Tallen"))["id"]
    tallen = await make_group(admin, "Brf Tallen")
    await put_access(admin, others, "restricted", [tallen["id"]])

    saturday = local(SATURDAY_10)
    assert await access.usable_station_ids(db, member_id, saturday) == {public_open, mine}
    assert await access.usable_station_ids(db, outsider_id, saturday) == {public_open}
    assert await access.usable_station_ids(db, None, saturday) == {public_open}
    tuesday = local(TUESDAY_NOON)
    assert await access.usable_station_ids(db, member_id, tuesday) == {
        public_open,
        public_closed,
        mine,
        mine_closed,
    }
    assert await access.usable_station_ids(db, 999, tuesday) == {public_open, public_closed}


# --- properties -----------------------------------------------------------------------

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


def _window(days: set[int], a: int, b: int) -> dict[str, Any]:
    return {
        "days": sorted(days),
        "open": f"{min(a, b) // 60:02d}:{min(a, b) % 60:02d}",
        "close": f"{max(a, b) // 60:02d}:{max(a, b) % 60:02d}",
    }


def _opens_before_it_closes(window: dict[str, Any]) -> bool:
    return bool(window["open"] < window["close"])


windows = st.builds(
    _window,
    st.sets(st.integers(0, 6), min_size=1),
    st.integers(0, 1440),
    st.integers(0, 1440),
).filter(_opens_before_it_closes)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(instants)
def test_a_station_open_all_day_every_day_is_always_open(at: datetime) -> None:
    assert is_open(ALWAYS, at)
    assert is_open(None, at)


@given(instants)
def test_an_empty_schedule_is_never_open(at: datetime) -> None:
    assert not is_open([], at)


@given(windows, instants, offsets)
def test_the_answer_depends_on_the_instant_not_on_its_offset(
    window: dict[str, Any], at: datetime, offset: timezone
) -> None:
    assert is_open([window], at) == is_open([window], at.astimezone(offset))


@given(windows, instants)
def test_a_window_is_open_exactly_on_its_days_and_hours_in_stockholm(
    window: dict[str, Any], at: datetime
) -> None:
    wall = at.astimezone(STOCKHOLM)
    clock = f"{wall.hour:02d}:{wall.minute:02d}"
    expected = wall.weekday() in window["days"] and window["open"] <= clock < window["close"]
    assert is_open([window], at) == expected
    assert validate_opening_hours([window]) == [window]
    assert describe_hours([window])


def test_stockholm_winter_and_summer_offsets_are_what_we_expect() -> None:
    assert datetime(2026, 1, 15, 12, tzinfo=STOCKHOLM).utcoffset() == timedelta(hours=1)
    assert datetime(2026, 7, 15, 12, tzinfo=STOCKHOLM).utcoffset() == timedelta(hours=2)
