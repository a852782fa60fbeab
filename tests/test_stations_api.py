"""The four public station endpoints, field by field, evaluated by the server clock in each
station's own zone."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app import create_app
from app import directory as directory_module
from app.bus import RedisBus
from app.clock import FrozenClock
from app.directory import StationDirectory
from app.hours import HoursSpec, RegularPeriod
from app.models import BookingStatus, Charger, ChargerStatus, Station
from app.models import StationStatus as StationState
from app.state import state
from tests.conftest import DEFAULT_PASSWORD, ApiClient, Backend
from tests.helpers import add_station, another_site, daily, insert_booking

#: DEFAULT_NOW is 10:30 in Kolkata and 06:00 in Berlin, on a Wednesday.
IST_1030 = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


async def json_of(client: ApiClient, path: str, status: int = 200) -> Any:
    response = await client.get(path)
    body = await response.get_json()
    assert response.status_code == status, body
    return body


async def test_station_list_items_carry_every_contract_field(client: ApiClient) -> None:
    station_id = await add_station()
    page = await json_of(client, "/api/stations")
    assert page == {
        "items": [
            {
                "id": station_id,
                "name": "Mumbai Central Charging Hub",
                "location": "Dr Anandrao Nair Marg, Mumbai Central",
                "city": "Mumbai",
                "latitude": 18.969,
                "longitude": 72.8205,
                "timezone": "Asia/Kolkata",
                "price_per_hour": "150.00",
                "currency": "INR",
                "status": "ACTIVE",
                "is_open": True,
                "open_time": "08:00:00",
                "close_time": "22:00:00",
                "exceptions_today": [],
                "next_change_at": "2026-12-02T22:00:00+05:30",
                "total_chargers": 4,
                "available_chargers": 4,
            }
        ],
        "total": 1,
        "limit": 50,
        "offset": 0,
    }


async def test_station_detail_adds_chargers_hours_and_server_time(client: ApiClient) -> None:
    station_id = await add_station(chargers=("CCS2", "TYPE2"))
    await Charger.filter(station_id=station_id, charger_number=2).update(status=ChargerStatus.OUT_OF_SERVICE)
    body = await json_of(client, f"/api/stations/{station_id}")
    listed = (await json_of(client, "/api/stations"))["items"][0]
    assert {key: body[key] for key in listed} == {**listed, "available_chargers": 1}
    assert body["chargers"] == [
        {
            "id": body["chargers"][0]["id"],
            "charger_number": 1,
            "charger_type": "CCS2",
            "power_kw": 60.0,
            "status": "AVAILABLE",
            "available_now": True,
        },
        {
            "id": body["chargers"][1]["id"],
            "charger_number": 2,
            "charger_type": "TYPE2",
            "power_kw": 60.0,
            "status": "OUT_OF_SERVICE",
            "available_now": False,
        },
    ]
    assert body["hours"] == {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": day, "period_begin": "08:00", "period_end": "22:00"} for day in range(1, 8)],
        "exceptional_openings": [],
        "exceptional_closings": [],
    }
    assert body["exceptions"] == []
    assert body["current_server_time"] == "2026-12-02T05:00:00+00:00"


async def test_status_is_the_lightweight_contract(client: ApiClient) -> None:
    station_id = await add_station()
    assert await json_of(client, f"/api/stations/{station_id}/status") == {
        "station_id": station_id,
        "is_open": True,
        "open_time": "08:00:00",
        "close_time": "22:00:00",
        "next_change_at": "2026-12-02T22:00:00+05:30",
        "exceptions_today": [],
        "current_server_time": "2026-12-02T05:00:00+00:00",
        "available_chargers": 4,
        "total_chargers": 4,
        "station_status": "ACTIVE",
    }


async def test_a_short_exceptional_closing_keeps_todays_hours_and_is_listed_as_itself(
    client: ApiClient, operator_client: ApiClient
) -> None:
    station_id = await add_station()  # 08:00-22:00 in Kolkata; the clock reads 10:30 there
    closing = {"kind": "closing", "period_begin": "2026-12-02T02:30:00Z", "period_end": "2026-12-02T03:49:00Z"}
    added = await operator_client.post(f"/api/stations/{station_id}/exceptions", json=closing)
    assert added.status_code == 201
    today = [{"kind": "closing", "begin": "08:00:00", "end": "09:19:00"}]
    for path in (f"/api/stations/{station_id}/status", f"/api/stations/{station_id}"):
        body = await json_of(client, path)
        assert (body["open_time"], body["close_time"], body["exceptions_today"]) == ("08:00:00", "22:00:00", today)
    listed = (await json_of(client, "/api/stations"))["items"][0]
    assert listed["exceptions_today"] == today


async def test_status_needs_no_database_once_warm(client: ApiClient, monkeypatch: pytest.MonkeyPatch) -> None:
    station_id = await add_station()
    await json_of(client, f"/api/stations/{station_id}/status")
    await json_of(client, "/api/stations")

    async def no_database(*args: Any) -> None:
        raise AssertionError("the database was queried")

    monkeypatch.setattr(directory_module, "load_views", no_database)
    assert (await json_of(client, f"/api/stations/{station_id}/status"))["is_open"] is True
    assert (await json_of(client, "/api/stations"))["total"] == 1


async def test_warm_status_answers_like_the_route_without_entering_quart(
    client: ApiClient, app, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm status request is answered before Quart (app.fast_lane); it must be
    indistinguishable from the route's own answer, headers included."""
    station_id = await add_station()
    path = f"/api/stations/{station_id}/status"
    cold = await client.get(path, headers={"X-Request-ID": "poll-1"})  # the route loads the view

    async def route_used(*args: Any) -> None:
        raise AssertionError("the request went through the route")

    monkeypatch.setattr(StationDirectory, "get", route_used)
    warm = await client.get(path, headers={"X-Request-ID": "poll-1"})
    assert (warm.status_code, await warm.get_data()) == (cold.status_code, await cold.get_data())

    def headers(response: Any) -> dict[str, str]:
        return {name.lower(): value for name, value in response.headers.items() if name.lower() != "date"}

    assert headers(warm) == headers(cold)
    assert headers(warm)["x-request-id"] == "poll-1"
    generated = await client.get(path)
    assert len(generated.headers["X-Request-ID"]) == 16
    monkeypatch.undo()
    assert (await client.get("/api/stations/999/status")).status_code == 404  # unknown ids still reach the route


async def test_overnight_station_is_open_across_midnight_by_the_server_clock(client: ApiClient, clock) -> None:
    station_id = await add_station("Chennai Night Owl", hours=daily("20:00", "06:00"))
    path = f"/api/stations/{station_id}/status"
    clock.set(datetime(2026, 12, 2, 18, 0, tzinfo=UTC))  # 23:30 IST
    status = await json_of(client, path)
    assert (status["is_open"], status["open_time"], status["close_time"]) == (True, "20:00:00", "06:00:00")
    assert status["next_change_at"] == "2026-12-03T06:00:00+05:30"
    clock.set(datetime(2026, 12, 2, 21, 0, tzinfo=UTC))  # 02:30 IST the next day: still the same night
    status = await json_of(client, path)
    assert (status["is_open"], status["next_change_at"]) == (True, "2026-12-03T06:00:00+05:30")
    clock.set(datetime(2026, 12, 3, 1, 30, tzinfo=UTC))  # 07:00 IST
    status = await json_of(client, path)
    assert (status["is_open"], status["next_change_at"]) == (False, "2026-12-03T20:00:00+05:30")


async def test_a_station_in_another_zone_follows_its_own_clock(client: ApiClient, clock) -> None:
    berlin = await add_station(
        "Berlin Adlershof", city="Berlin", timezone="Europe/Berlin", hours=daily("06:00", "15:00")
    )
    mumbai = await add_station()
    clock.set(datetime(2026, 12, 2, 5, 0, tzinfo=UTC))  # 06:00 in Berlin: opening instant
    assert (await json_of(client, f"/api/stations/{berlin}/status"))["is_open"] is True
    clock.set(datetime(2026, 12, 2, 14, 30, tzinfo=UTC))  # 15:30 in Berlin, 20:00 in Mumbai
    items = {item["id"]: item for item in (await json_of(client, "/api/stations"))["items"]}
    assert (items[berlin]["is_open"], items[berlin]["next_change_at"]) == (False, "2026-12-03T06:00:00+01:00")
    assert (items[mumbai]["is_open"], items[mumbai]["next_change_at"]) == (True, "2026-12-02T22:00:00+05:30")


async def test_closed_all_day_shows_no_hours(client: ApiClient, clock) -> None:
    weekdays = HoursSpec(regular_hours=tuple(RegularPeriod(day, "09:00", "17:00") for day in range(1, 6)))
    station_id = await add_station(hours=weekdays)
    clock.set(datetime(2026, 12, 6, 6, 0, tzinfo=UTC))  # Sunday 11:30 IST
    status = await json_of(client, f"/api/stations/{station_id}/status")
    assert (status["is_open"], status["open_time"], status["close_time"]) == (False, None, None)
    assert status["next_change_at"] == "2026-12-07T09:00:00+05:30"


async def seed_list() -> dict[str, int]:
    return {
        "mumbai": await add_station(),
        "pune": await add_station(
            "Pune Expressway", city="Pune", location="Lonavala", chargers=("TYPE2",), latitude=18.75, longitude=73.4
        ),
        "night": await add_station(
            "Chennai Night Owl",
            city="Chennai",
            location="Anna Salai",
            hours=daily("20:00", "06:00"),
            latitude=13.04,
            longitude=80.23,
        ),
        "delhi": await add_station(
            "Delhi EV", city="Delhi", location="Connaught Place", latitude=28.63, longitude=77.2
        ),
    }


async def ids(client: ApiClient, query: str) -> list[int]:
    return [item["id"] for item in (await json_of(client, f"/api/stations?{query}"))["items"]]


def answer(response: Any) -> tuple[int, dict[str, str]]:
    """Status and headers as a client sees them, but for the date of sending."""
    return response.status_code, {name.lower(): value for name, value in response.headers.items() if name != "Date"}


def site_without_fast_lane(backend: Backend, clock: FrozenClock) -> contextlib.AbstractAsyncContextManager[ApiClient]:
    return another_site(backend, clock, fast_lane=False)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "limit=2&offset=1",
        "open_now=true",
        "city=pUNE",
        "q=connaught",
        "charger_type=TYPE2&city=Pune&open_now=true",
        "near=18.52,73.85&limit=2",
        "near=18.52,73.85&radius_km=500",
        "q=&city=&offset=10",
    ],
)
async def test_the_fast_lane_answers_the_list_exactly_as_the_route_does(
    client: ApiClient, app, backend: Backend, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    await seed_list()
    path, request_id = f"/api/stations?{query}", {"X-Request-ID": "list-1"}
    async with site_without_fast_lane(backend, clock) as route_client:
        route = await route_client.get(path, headers=request_id)

    async def route_used() -> None:
        raise AssertionError("the request went through the route")

    monkeypatch.setitem(app.view_functions, "stations.list_stations", route_used)
    lane = await client.get(path, headers=request_id)
    assert await lane.get_data() == await route.get_data()
    assert answer(lane) == answer(route)
    assert answer(lane)[1]["x-request-id"] == "list-1"


@pytest.mark.parametrize("path", ["/api/stations", "/api/stations/{id}/status"])
async def test_a_signed_in_client_that_lost_its_csrf_cookie_gets_it_back_from_a_station_read(
    client: ApiClient, driver, path: str
) -> None:
    """Requests with cookies go through Quart, whose hooks restore the token cookie our pages need."""
    station_id = await add_station()
    await client.sign_in(driver)
    await client.get(path.format(id=station_id))  # warm: the lane could answer it
    lost = next(cookie for cookie in client.cookie_jar if cookie.name == "csrf_token")
    client.cookie_jar.clear(lost.domain, lost.path, lost.name)
    response = await client.get(path.format(id=station_id))
    assert response.status_code == 200
    assert client.cookie("csrf_token")


async def test_list_filters(client: ApiClient) -> None:
    s = await seed_list()
    assert await ids(client, "open_now=true") == [s["mumbai"], s["pune"], s["delhi"]]
    assert await ids(client, "open_now=false") == sorted(s.values())
    assert await ids(client, "city=pUNE") == [s["pune"]]
    assert await ids(client, "q=connaught") == [s["delhi"]]
    assert await ids(client, "q=owl") == [s["night"]]
    assert await ids(client, "charger_type=chademo") == [s["mumbai"], s["night"], s["delhi"]]
    assert await ids(client, "charger_type=TYPE2&city=Pune&open_now=true") == [s["pune"]]
    assert await ids(client, "city=Nowhere") == []
    assert await ids(client, "q=&city=") == sorted(s.values())  # empty boxes filter nothing


async def test_near_sorts_by_distance_and_adds_it(client: ApiClient) -> None:
    s = await seed_list()
    page = await json_of(client, "/api/stations?near=18.52,73.85&radius_km=500&limit=2")  # central Pune
    assert [item["id"] for item in page["items"]] == [s["pune"], s["mumbai"]]
    assert page["total"] == 2, "Chennai and Delhi are farther than 500 km"
    assert 40 < page["items"][0]["distance_km"] < 60
    assert 110 < page["items"][1]["distance_km"] < 130
    assert "distance_km" not in (await json_of(client, "/api/stations"))["items"][0]


async def test_pagination_reports_the_total(client: ApiClient) -> None:
    s = await seed_list()
    page = await json_of(client, "/api/stations?limit=2&offset=1")
    assert ([item["id"] for item in page["items"]], page["total"], page["limit"], page["offset"]) == (
        [s["pune"], s["night"]],
        4,
        2,
        1,
    )
    assert (await json_of(client, "/api/stations?offset=10"))["items"] == []


async def test_near_looks_50_km_around_unless_told_otherwise(client: ApiClient) -> None:
    s = await seed_list()
    assert await ids(client, "near=18.76,73.45") == [s["pune"]]  # 5 km from Lonavala, Mumbai is 85 km off
    assert await ids(client, "near=18.76,73.45&radius_km=100") == [s["pune"], s["mumbai"]]
    assert await ids(client, "near=18.76,73.45&radius_km=2") == []
    page = await json_of(client, "/api/stations?near=28.6,77.2&radius_km=500")
    assert [item["id"] for item in page["items"]] == [s["delhi"]] and page["total"] == 1


@pytest.mark.parametrize("lane", [True, False], ids=["fast-lane", "quart"])
async def test_inactive_stations_are_left_out_of_the_public_list_and_search(
    client: ApiClient, backend: Backend, clock: FrozenClock, lane: bool
) -> None:
    s = await seed_list()
    await Station.filter(id=s["pune"]).update(status=StationState.INACTIVE)
    await Station.filter(id=s["delhi"]).update(status=StationState.MAINTENANCE)
    visible = [s["mumbai"], s["night"], s["delhi"]]
    async with site_without_fast_lane(backend, clock) as route_client:
        reader = client if lane else route_client
        assert [item["id"] for item in (await json_of(reader, "/api/stations"))["items"]] == visible
        assert (await json_of(reader, "/api/stations"))["total"] == 3
        assert [i["id"] for i in (await json_of(reader, "/api/stations?city=Pune"))["items"]] == []
        assert [i["id"] for i in (await json_of(reader, "/api/stations?q=lonavala"))["items"]] == []
        near = await json_of(reader, "/api/stations?near=18.52,73.85&radius_km=500")
        assert [item["id"] for item in near["items"]] == [s["mumbai"]], "Pune is nearer but inactive"
        assert [i["id"] for i in (await json_of(reader, "/api/stations?open_now=true"))["items"]] == [
            s["mumbai"],
            s["delhi"],
        ]


async def test_operators_see_inactive_stations_when_they_ask(client: ApiClient, operator) -> None:
    s = await seed_list()
    await Station.filter(id=s["pune"]).update(status=StationState.INACTIVE)
    assert await ids(client, "") == [s["mumbai"], s["night"], s["delhi"]]
    await client.sign_in(operator)
    page = await json_of(client, "/api/stations?include_inactive=true")
    assert [(item["id"], item["status"]) for item in page["items"]] == [
        (s["mumbai"], "ACTIVE"),
        (s["pune"], "INACTIVE"),
        (s["night"], "ACTIVE"),
        (s["delhi"], "ACTIVE"),
    ]
    assert await ids(client, "include_inactive=true&city=pune") == [s["pune"]]
    assert await ids(client, "") == [s["mumbai"], s["night"], s["delhi"]], "only when asked"


async def test_drivers_and_visitors_asking_for_inactive_stations_are_refused(client: ApiClient, driver) -> None:
    await add_station()
    signed_out = await json_of(client, "/api/stations?include_inactive=true", 401)
    assert signed_out["code"] == "unauthenticated"
    await client.sign_in(driver)
    refused = await json_of(client, "/api/stations?include_inactive=true", 403)
    assert refused["code"] == "forbidden"
    assert len((await json_of(client, "/api/stations?include_inactive=false"))["items"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=201", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("open_now=perhaps", "open_now"),
        ("near=18.5", "near"),
        ("near=91,10", "near"),
        ("near=north,south", "near"),
        ("near=18.5,73.8&radius_km=501", "radius_km"),
        ("near=18.5,73.8&radius_km=0", "radius_km"),
        ("radius_km=far", "radius_km"),
        ("include_inactive=maybe", "include_inactive"),
        ("limit=5&limit=6", "limit"),
        ("city[]=Pune", "city"),
    ],
)
async def test_bad_list_queries_are_422_naming_the_parameter(client: ApiClient, query: str, field: str) -> None:
    body = await json_of(client, f"/api/stations?{query}", 422)
    assert body["code"] == "validation_error"
    assert [error["loc"] for error in body["errors"]] == [["query", field]]


@pytest.mark.parametrize(
    "path",
    [
        "/api/stations/999",
        "/api/stations/999/status",
        "/api/stations/999/chargers/available?slot_time=2026-12-02T12:00:00",
    ],
)
async def test_unknown_station_is_problem_json_404(client: ApiClient, path: str) -> None:
    await add_station()
    response = await client.get(path)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert (body["status"], body["code"], body["detail"]) == (404, "not_found", "Station not found.")


@pytest.mark.parametrize("station_id", [2**31, 2**64])
@pytest.mark.parametrize("suffix", ["", "/status", "/chargers/available?slot_time=2026-12-02T12:00:00"])
async def test_station_id_beyond_any_row_is_404_not_an_overflow(
    client: ApiClient, station_id: int, suffix: str
) -> None:
    response = await client.get(f"/api/stations/{station_id}{suffix}")
    assert response.status_code == 404
    assert (await response.get_json())["code"] == "not_found"


async def book(station_id: int, number: int, start: datetime, minutes: int, driver, status=BookingStatus.PAID) -> None:
    hold = IST_1030 + timedelta(minutes=10)
    await insert_booking(
        station_id, start=start, minutes=minutes, status=status, hold_until=hold, charger_number=number, user=driver
    )


@pytest.mark.parametrize(
    ("slot_time", "duration", "reason"),
    [
        ("2026-12-02T09:00:00", 60, "The slot starts in the past."),
        ("2026-12-10T12:00:00", 60, "Slots can be booked at most 7 days ahead."),
        ("2026-12-02T21:30:00", 60, "The whole slot must lie inside the station's opening hours."),
    ],
    ids=["past", "beyond-horizon", "outside-hours"],
)
async def test_free_chargers_hint_refuses_what_booking_refuses_and_says_why(
    driver_client: ApiClient, slot_time: str, duration: int, reason: str
) -> None:
    station_id = await add_station()
    query = f"slot_time={slot_time}&duration_minutes={duration}"
    body = await json_of(driver_client, f"/api/stations/{station_id}/chargers/available?{query}")
    assert (body["available"], body["available_count"], body["reason"]) == (False, 0, reason)
    assert not any(charger["available"] for charger in body["chargers"])
    booked = await driver_client.post(
        "/api/bookings", json={"station_id": station_id, "slot_time": slot_time, "duration_minutes": duration}
    )
    assert booked.status_code == 422
    assert (await booked.get_json())["detail"] == reason


async def test_free_chargers_hint_says_a_station_under_maintenance_takes_no_bookings(client: ApiClient) -> None:
    from app.models import Station, StationStatus

    station_id = await add_station()
    await Station.filter(id=station_id).update(status=StationStatus.MAINTENANCE)
    body = await json_of(client, f"/api/stations/{station_id}/chargers/available?slot_time=2026-12-02T12:00:00")
    assert (body["available"], body["reason"]) == (False, "The station is not taking bookings.")


async def test_chargers_available_for_a_slot(client: ApiClient, driver) -> None:
    station_id = await add_station(chargers=("CCS2", "CCS2", "TYPE2"))
    noon_ist = datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    await book(station_id, 1, noon_ist + timedelta(minutes=30), 60, driver)  # overlaps 12:00-13:00 IST
    await book(station_id, 2, noon_ist + timedelta(hours=1), 60, driver)  # starts as the slot ends
    await Charger.filter(station_id=station_id, charger_number=3).update(status=ChargerStatus.OUT_OF_SERVICE)
    body = await json_of(client, f"/api/stations/{station_id}/chargers/available?slot_time=2026-12-02T12:00:00")
    chargers = body.pop("chargers")
    assert body == {
        "available": True,
        "available_count": 1,
        "booked_count": 1,
        "total_chargers": 3,
        "slot_time": "2026-12-02T12:00:00+05:30",  # no offset given: the station's own clock
        "slot_end": "2026-12-02T13:00:00+05:30",
        "duration_minutes": 60,
        "within_opening_hours": True,
        "amount_due": "150.00",  # what booking it would cost, shown before booking
        "currency": "INR",
        "reason": None,
    }
    assert [(c["charger_number"], c["status"], c["available"]) for c in chargers] == [
        (1, "AVAILABLE", False),
        (2, "AVAILABLE", True),
        (3, "OUT_OF_SERVICE", False),
    ]
    assert set(chargers[0]) == {"id", "charger_number", "charger_type", "power_kw", "status", "available"}

    longer = await json_of(
        client, f"/api/stations/{station_id}/chargers/available?slot_time=2026-12-02T06:30:00Z&duration_minutes=90"
    )
    assert (longer["available"], longer["available_count"], longer["booked_count"]) == (False, 0, 2)
    assert (longer["amount_due"], longer["currency"]) == ("225.00", "INR")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("slot_time=tomorrow", "slot_time"),
        ("slot_time=2026-12-02T12:00:00&duration_minutes=20", "duration_minutes"),
        ("slot_time=2026-12-02T12:00:00&duration_minutes=255", "duration_minutes"),
        ("duration_minutes=60", "slot_time"),
        ("slot_time=0001-01-01T00:00:00", "slot_time"),
        ("slot_time=9999-12-31T23:59:00", "slot_time"),
    ],
)
async def test_bad_slot_queries_are_422(client: ApiClient, query: str, field: str) -> None:
    station_id = await add_station()
    body = await json_of(client, f"/api/stations/{station_id}/chargers/available?{query}", 422)
    assert [error["loc"] for error in body["errors"]] == [["query", field]]


async def test_a_local_time_the_clocks_skip_is_422_not_a_guess(client: ApiClient) -> None:
    station_id = await add_station(timezone="Europe/Berlin")
    # 28 March 2027, Berlin springs from 02:00 to 03:00: 02:30 never happens there.
    query = "slot_time=2027-03-28T02:30:00&duration_minutes=60"
    body = await json_of(client, f"/api/stations/{station_id}/chargers/available?{query}", 422)
    assert [error["loc"] for error in body["errors"]] == [["query", "slot_time"]]


async def test_operator_change_reaches_a_second_app_instance_through_redis(
    client: ApiClient, operator_client: ApiClient, backend, clock
) -> None:
    """A second web process: its own Redis connection and station directory, sharing only the
    database and Redis with the first. It serves /status from its warm cache, so it can only learn
    of the change through the bus."""
    if not backend.is_postgres:
        pytest.skip("needs Redis: the embedded bus lives inside one process")
    from quart import Quart

    from app import start_services, stop_services

    station_id = await add_station()
    second: Quart = create_app(backend.settings, clock=clock)  # not started: the ORM is already up
    second_state = state(second)
    assert isinstance(second_state.bus, RedisBus)
    await start_services(second_state)
    try:
        assert await second_state.bus.wait_connected(5)
        second_client = second.test_client()
        path = f"/api/stations/{station_id}/status"

        async def status() -> dict[str, Any]:
            response = await second_client.get(path)
            assert response.status_code == 200
            return await response.get_json()

        assert (await status())["is_open"] is True
        closed = await operator_client.put(
            f"/api/stations/{station_id}/hours", json={"open_time": "12:00", "close_time": "13:00"}
        )
        assert closed.status_code == 200, await closed.get_json()
        for _ in range(500):
            if not (await status())["is_open"]:
                break
            await asyncio.sleep(0.01)
        current = await status()
        assert (current["is_open"], current["open_time"], current["close_time"]) == (False, "12:00:00", "13:00:00")
    finally:
        await stop_services(second_state)


async def test_second_directory_keeps_its_copy_without_an_event(backend, clock) -> None:
    """The control for the test above: without the bus message the second copy stays as it was,
    so the test above can only pass through Redis."""
    if not backend.is_postgres:
        pytest.skip("needs PostgreSQL and Redis")
    from app.models import Station

    station_id = await add_station()
    assert backend.settings.redis_url is not None
    bus = RedisBus(backend.settings.redis_url, backend.settings.redis_prefix)
    directory = StationDirectory(bus, clock)
    await bus.start()
    try:
        assert await bus.wait_connected(5)
        assert (await directory.get(station_id)).name == "Mumbai Central Charging Hub"
        await Station.filter(id=station_id).update(name="Renamed without telling anyone")
        await asyncio.sleep(0.2)
        assert (await directory.get(station_id)).name == "Mumbai Central Charging Hub"
    finally:
        await bus.close()


async def test_station_endpoints_are_in_the_openapi_document(client: ApiClient) -> None:
    spec = await json_of(client, "/openapi.json")
    paths = spec["paths"]
    assert set(paths["/api/stations"]) == {"get", "post"}
    for path in ("/api/stations/{station_id}", "/api/stations/{station_id}/status"):
        assert "200" in paths[path]["get"]["responses"]
    available = paths["/api/stations/{station_id}/chargers/available"]["get"]
    assert {p["name"] for p in available["parameters"] if p["in"] == "query"} == {"slot_time", "duration_minutes"}
    listing = paths["/api/stations"]["get"]
    assert {p["name"] for p in listing["parameters"] if p["in"] == "query"} >= {"open_now", "city", "q", "near"}


FRONT_END = "https://app.example.com"


def cors_headers(response: Any) -> list[str]:
    return [name for name, _ in response.headers.items() if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("path", ["/api/stations", "/api/stations/{id}/status", "/api/stations/{id}"])
async def test_a_listed_front_end_may_read_the_api_with_credentials(
    client: ApiClient, backend: Backend, clock: FrozenClock, path: str
) -> None:
    station_id = await add_station()
    url = path.format(id=station_id)
    async with another_site(backend, clock, cors_origins=(FRONT_END,)) as site:
        await site.get(url)  # warm: the status and list then come from the fast lane
        response = await site.get(url, headers={"Origin": FRONT_END})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == FRONT_END
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in response.headers["Vary"]
        assert "X-Request-ID" in response.headers["Access-Control-Expose-Headers"]
        stranger = await site.get(url, headers={"Origin": "https://evil.example"})
        assert stranger.status_code == 200
        assert not cors_headers(stranger)


async def test_a_preflight_from_a_listed_front_end_is_answered_and_others_are_not(
    client: ApiClient, backend: Backend, clock: FrozenClock
) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-csrf-token"}
    async with another_site(backend, clock, cors_origins=(FRONT_END, "http://localhost:5173")) as site:
        answer_ = await site.request("OPTIONS", "/api/bookings", headers={"Origin": FRONT_END, **preflight})
        assert answer_.status_code == 204
        assert answer_.headers["Access-Control-Allow-Origin"] == FRONT_END
        assert answer_.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in answer_.headers["Access-Control-Allow-Methods"]
        assert "X-CSRF-Token" in answer_.headers["Access-Control-Allow-Headers"]
        refused = await site.request(
            "OPTIONS", "/api/bookings", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "Access-Control-Allow-Origin" not in refused.headers


async def test_without_cors_origins_no_response_has_cors_headers(client: ApiClient) -> None:
    station_id = await add_station()
    for path in ("/api/stations", f"/api/stations/{station_id}", f"/api/stations/{station_id}/status", "/"):
        response = await client.get(path, headers={"Origin": FRONT_END})
        assert not cors_headers(response), path
    preflight = await client.request(
        "OPTIONS", "/api/bookings", headers={"Origin": FRONT_END, "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


async def test_a_listed_front_end_may_sign_in_with_its_origin(
    client: ApiClient, backend: Backend, clock: FrozenClock, driver
) -> None:
    body = {"email": driver.email, "password": DEFAULT_PASSWORD}
    refused = await client.post("/api/auth/login", json=body, headers={"Origin": FRONT_END})
    assert refused.status_code == 403
    async with another_site(backend, clock, cors_origins=(FRONT_END,)) as site:
        response = await site.post("/api/auth/login", json=body, headers={"Origin": FRONT_END})
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == FRONT_END
        token = response.headers["X-CSRF-Token"]  # the front end cannot read the site's cookie
        assert "X-CSRF-Token" in response.headers["Access-Control-Expose-Headers"]
        me = await site.get("/api/auth/me", headers={"Origin": FRONT_END})
        assert me.headers["X-CSRF-Token"] == token
        assert "X-CSRF-Token" not in (await site.get("/api/auth/me")).headers, "only for the listed origin"
        without = await site.raw.post("/api/auth/logout", headers={"Origin": FRONT_END})
        assert without.status_code == 403
        out = await site.raw.post("/api/auth/logout", headers={"Origin": FRONT_END, "X-CSRF-Token": token})
        assert out.status_code == 200
