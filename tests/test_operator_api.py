"""Operators manage stations, hours, exceptional periods and chargers; every change is published
at once and shows on the public endpoints straight away."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from app import stations as stations_module
from app.blueprints.operator import MAX_PRICE_PER_HOUR
from app.bookings import amount_for
from app.bus import Subscription
from app.models import Charger, Station
from app.state import state
from app.wire import MAX_ID
from tests.conftest import ApiClient
from tests.helpers import NEW_STATION


@contextmanager
def published(app) -> Iterator[Subscription]:
    """Everything published on the bus while the block runs."""
    with state(app).bus.subscribe() as subscription:
        yield subscription


async def drain(subscription: Subscription) -> list[dict[str, Any]]:
    """The station messages delivered so far: waits for the first (Redis delivers asynchronously),
    then briefly for any that follow it."""
    messages = [await asyncio.wait_for(subscription.get(), 5)]
    await asyncio.sleep(0.05)
    while not subscription.queue.empty():
        messages.append(subscription.queue.get_nowait())
    return [m for m in messages if m.get("channel", "").startswith("station:")]


async def create(client: ApiClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post("/api/stations", json={**NEW_STATION, **overrides})
    body = await response.get_json()
    assert response.status_code == 201, body
    return body


async def status_of(client: ApiClient, station_id: int) -> dict[str, Any]:
    response = await client.get(f"/api/stations/{station_id}/status")
    assert response.status_code == 200
    return await response.get_json()


async def test_operator_creates_a_station_with_hours_and_chargers(operator_client: ApiClient, app) -> None:
    with published(app) as bus:
        body = await create(operator_client)
        messages = await drain(bus)
    assert {key: body[key] for key in ("name", "timezone", "price_per_hour", "currency", "status")} == {
        "name": "Mumbai Central Charging Hub",
        "timezone": "Asia/Kolkata",
        "price_per_hour": "150.00",
        "currency": "INR",
        "status": "ACTIVE",
    }
    assert (body["is_open"], body["open_time"], body["close_time"]) == (True, "08:00:00", "22:00:00")
    assert body["hours"]["regular_hours"] == [
        {"weekday": day, "period_begin": "08:00", "period_end": "22:00"} for day in range(1, 8)
    ]
    assert [(c["charger_number"], c["charger_type"], c["power_kw"]) for c in body["chargers"]] == [
        (1, "CCS2", 60.0),
        (2, "TYPE2", 22.0),
    ]
    assert [(m["type"], m["station_id"]) for m in messages] == [("status", body["id"])]
    listed = await operator_client.get("/api/stations")
    assert [item["id"] for item in (await listed.get_json())["items"]] == [body["id"]]


async def test_ocpi_hours_with_an_exceptional_closing_are_accepted(operator_client: ApiClient) -> None:
    hours = {
        "twentyfourseven": False,
        "regular_hours": [{"weekday": 3, "period_begin": "22:00", "period_end": "06:00"}],
        "exceptional_openings": [],
        "exceptional_closings": [{"period_begin": "2026-12-25T00:00:00Z", "period_end": "2026-12-26T00:00:00Z"}],
    }
    body = await create(operator_client, hours=hours, chargers=[])
    assert body["hours"] == {
        **hours,
        "exceptional_closings": [
            {"period_begin": "2026-12-25T00:00:00+00:00", "period_end": "2026-12-26T00:00:00+00:00"}
        ],
    }
    assert [e["kind"] for e in body["exceptions"]] == ["closing"]
    assert body["total_chargers"] == 0


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        (
            {"hours": {"regular_hours": [{"weekday": 1, "period_begin": "8am", "period_end": "20:00"}]}},
            ["body", "hours", "regular_hours", 0, "period_begin"],
        ),
        ({"hours": {"open_time": "08:00"}}, ["body", "hours", "close_time"]),
        ({"hours": {"open_time": "08:00", "close_time": "25:00"}}, ["body", "hours", "close_time"]),
        ({"timezone": "Mars/Olympus_Mons"}, ["body", "timezone"]),
        ({"timezone": "localtime"}, ["body", "timezone"]),
        ({"price_per_hour": "12.345"}, ["body", "price_per_hour"]),
        ({"price_per_hour": "\u0661\u0665\u0660"}, ["body", "price_per_hour"]),  # Arabic-Indic 150
        ({"price_per_hour": "1000000.01"}, ["body", "price_per_hour"]),  # a 4-hour slot would overflow
        ({"name": "Hub\u0000"}, ["body", "name"]),  # PostgreSQL text cannot hold NUL
        (
            {
                "hours": {
                    "exceptional_closings": [
                        {"period_begin": "0001-01-01T00:00:00+05:00", "period_end": "2026-12-02T08:00:00Z"}
                    ]
                }
            },
            ["body", "hours", "exceptional_closings", 0, "period_begin"],
        ),
        ({"currency": "RUPEES"}, ["body", "currency"]),
        ({"latitude": 123}, ["body", "latitude"]),
        (
            {"chargers": [{"charger_type": "CCS2", "power_kw": 60}, {"charger_type": "CCS2", "power_kw": -1}]},
            ["body", "chargers", 1, "power_kw"],
        ),
        ({"colour": "green"}, ["body", "colour"]),
    ],
)
async def test_invalid_station_is_422_naming_the_field_and_creates_nothing(
    operator_client: ApiClient, overrides: dict[str, Any], loc: list[Any]
) -> None:
    response = await operator_client.post("/api/stations", json={**NEW_STATION, **overrides})
    body = await response.get_json()
    assert response.status_code == 422, body
    assert body["code"] == "validation_error"
    assert loc in [error["loc"] for error in body["errors"]]
    assert await Station.all().count() == 0


async def test_a_failure_while_adding_chargers_leaves_no_station_behind(
    operator_client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = stations_module.add_chargers

    async def fail_after_first(station: Station, chargers: Any) -> Any:
        await real(station, chargers[:1])
        raise RuntimeError("disk full")

    monkeypatch.setattr(stations_module, "add_chargers", fail_after_first)
    response = await operator_client.post("/api/stations", json=NEW_STATION)
    assert response.status_code == 500
    assert await Station.all().count() == 0
    assert await Charger.all().count() == 0


OPERATOR_ENDPOINTS = [
    ("POST", "/api/stations", NEW_STATION),
    ("PATCH", "/api/stations/{id}", {"name": "Renamed"}),
    ("PUT", "/api/stations/{id}/hours", {"twentyfourseven": True}),
    (
        "POST",
        "/api/stations/{id}/exceptions",
        {"kind": "closing", "period_begin": "2026-12-02T00:00:00Z", "period_end": "2026-12-03T00:00:00Z"},
    ),
    ("DELETE", "/api/stations/{id}/exceptions/1", None),
    ("POST", "/api/stations/{id}/chargers", {"charger_type": "CCS2", "power_kw": 50}),
    ("PATCH", "/api/stations/{id}/chargers/1", {"status": "OUT_OF_SERVICE"}),
]


@pytest.mark.parametrize(("method", "path", "payload"), OPERATOR_ENDPOINTS)
async def test_drivers_are_forbidden_and_strangers_must_sign_in(
    operator_client: ApiClient, driver, app, method: str, path: str, payload: Any
) -> None:
    station = await create(operator_client)
    target = path.format(id=station["id"])
    stranger = ApiClient(app)
    response = await stranger.request(method, target, json=payload)
    assert (response.status_code, (await response.get_json())["code"]) == (401, "unauthenticated")
    await stranger.sign_in(driver)
    response = await stranger.request(method, target, json=payload)
    assert (response.status_code, (await response.get_json())["code"]) == (403, "forbidden")
    after = await stranger.get(f"/api/stations/{station['id']}")
    assert {k: v for k, v in (await after.get_json()).items() if k != "current_server_time"} == {
        k: v for k, v in station.items() if k != "current_server_time"
    }


async def test_maintenance_is_published_and_shown_at_once(operator_client: ApiClient, app) -> None:
    station = await create(operator_client)
    await status_of(operator_client, station["id"])  # warm the cache
    with published(app) as bus:
        response = await operator_client.patch(f"/api/stations/{station['id']}", json={"status": "MAINTENANCE"})
        messages = await drain(bus)
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "MAINTENANCE"
    assert [(m["type"], m["station_status"]) for m in messages] == [("status", "MAINTENANCE")]
    assert (await status_of(operator_client, station["id"]))["station_status"] == "MAINTENANCE"


async def test_renaming_publishes_a_plain_change(operator_client: ApiClient, app) -> None:
    station = await create(operator_client)
    with published(app) as bus:
        response = await operator_client.patch(
            f"/api/stations/{station['id']}", json={"name": "Mumbai Hub", "price_per_hour": "99.5"}
        )
        messages = await drain(bus)
    body = await response.get_json()
    assert (body["name"], body["price_per_hour"]) == ("Mumbai Hub", "99.50")
    assert [m["type"] for m in messages] == ["changed"]
    listed = await (await operator_client.get("/api/stations")).get_json()
    assert listed["items"][0]["name"] == "Mumbai Hub"


@pytest.mark.parametrize(
    ("payload", "loc"),
    [({"name": None}, ["body", "name"]), ({"hours": {"open_time": "x"}}, ["body", "hours", "open_time"])],
)
async def test_bad_patch_is_422(operator_client: ApiClient, payload: dict[str, Any], loc: list[Any]) -> None:
    station = await create(operator_client)
    response = await operator_client.patch(f"/api/stations/{station['id']}", json=payload)
    assert response.status_code == 422
    assert loc in [error["loc"] for error in (await response.get_json())["errors"]]


async def test_replacing_hours_changes_openness_immediately(operator_client: ApiClient, clock) -> None:
    station = await create(operator_client)
    assert (await status_of(operator_client, station["id"]))["is_open"] is True
    response = await operator_client.put(
        f"/api/stations/{station['id']}/hours",
        json={"regular_hours": [{"weekday": 3, "period_begin": "12:00", "period_end": "14:00"}]},
    )
    assert response.status_code == 200
    status = await status_of(operator_client, station["id"])
    assert (status["is_open"], status["open_time"], status["next_change_at"]) == (
        False,
        "12:00:00",
        "2026-12-02T12:00:00+05:30",
    )
    bad = await operator_client.put(f"/api/stations/{station['id']}/hours", json={"twentyfourseven": "yes"})
    assert bad.status_code == 422
    assert [e["loc"] for e in (await bad.get_json())["errors"]] == [["body", "twentyfourseven"]]


async def test_exceptional_closing_can_be_added_and_removed(operator_client: ApiClient, app) -> None:
    station = await create(operator_client)
    path = f"/api/stations/{station['id']}/exceptions"
    closing = {"kind": "closing", "period_begin": "2026-12-02T04:00:00Z", "period_end": "2026-12-02T08:00:00+00:00"}
    with published(app) as bus:
        added = await operator_client.post(path, json=closing)
        messages = await drain(bus)
    exception = await added.get_json()
    assert added.status_code == 201, exception
    assert (exception.pop("dry_run"), exception.pop("affected_bookings")) == (
        False,
        {"moved": 0, "cancelled": 0, "booking_ids": []},
    )
    assert exception == {
        "id": exception["id"],
        "kind": "closing",
        "period_begin": "2026-12-02T04:00:00+00:00",
        "period_end": "2026-12-02T08:00:00+00:00",
    }
    assert [(m["type"], m["is_open"]) for m in messages] == [("status", False)]
    status = await status_of(operator_client, station["id"])
    assert (status["is_open"], status["next_change_at"]) == (False, "2026-12-02T13:30:00+05:30")
    detail = await (await operator_client.get(f"/api/stations/{station['id']}")).get_json()
    assert detail["exceptions"] == [exception]

    removed = await operator_client.delete(f"{path}/{exception['id']}")
    assert removed.status_code == 204
    assert (await status_of(operator_client, station["id"]))["is_open"] is True
    again = await operator_client.delete(f"{path}/{exception['id']}")
    assert (again.status_code, (await again.get_json())["code"]) == (404, "not_found")


async def test_exception_needs_an_end_after_its_begin_with_offsets(operator_client: ApiClient) -> None:
    station = await create(operator_client)
    path = f"/api/stations/{station['id']}/exceptions"
    backwards = {"kind": "opening", "period_begin": "2026-12-02T08:00:00Z", "period_end": "2026-12-02T04:00:00Z"}
    naive = {"kind": "opening", "period_begin": "2026-12-02T08:00:00", "period_end": "2026-12-02T09:00:00Z"}
    for payload, loc in ((backwards, ["body", "period_end"]), (naive, ["body", "period_begin"])):
        response = await operator_client.post(path, json=payload)
        assert response.status_code == 422
        assert [e["loc"] for e in (await response.get_json())["errors"]] == [loc]


async def test_exception_in_year_one_is_422_not_an_overflow(operator_client: ApiClient) -> None:
    station = await create(operator_client)
    payload = {"kind": "closing", "period_begin": "0001-01-01T00:00:00+05:00", "period_end": "2026-12-02T09:00:00Z"}
    response = await operator_client.post(f"/api/stations/{station['id']}/exceptions", json=payload)
    assert response.status_code == 422
    assert [e["loc"] for e in (await response.get_json())["errors"]] == [["body", "period_begin"]]


def test_the_highest_price_still_fits_the_longest_slot_in_an_integer_column() -> None:
    assert amount_for(MAX_PRICE_PER_HOUR, 240) <= MAX_ID


async def test_chargers_are_numbered_next_and_can_go_out_of_service(operator_client: ApiClient, app) -> None:
    station = await create(operator_client)
    with published(app) as bus:
        added = await operator_client.post(
            f"/api/stations/{station['id']}/chargers", json={"charger_type": "chademo", "power_kw": 50}
        )
        messages = await drain(bus)
    charger = await added.get_json()
    assert added.status_code == 201, charger
    assert (charger["charger_number"], charger["charger_type"], charger["available_now"]) == (3, "CHADEMO", True)
    assert [(m["type"], m["available_chargers"]) for m in messages] == [("availability", 3)]

    with published(app) as bus:
        patched = await operator_client.patch(
            f"/api/stations/{station['id']}/chargers/{charger['id']}", json={"status": "OUT_OF_SERVICE"}
        )
        messages = await drain(bus)
    assert patched.status_code == 200
    assert ((await patched.get_json())["status"], (await patched.get_json())["available_now"]) == (
        "OUT_OF_SERVICE",
        False,
    )
    assert [(m["type"], m["available_chargers"]) for m in messages] == [("availability", 2)]
    availability = messages[0]["chargers"]
    assert availability[-1] == {
        "id": charger["id"],
        "charger_number": 3,
        "charger_type": "CHADEMO",
        "power_kw": 50.0,
        "status": "OUT_OF_SERVICE",
        "available_now": False,
    }
    assert (await status_of(operator_client, station["id"]))["available_chargers"] == 2


async def test_unknown_station_or_charger_is_404(operator_client: ApiClient) -> None:
    station = await create(operator_client)
    other = await create(operator_client, name="Other")
    foreign_charger = other["chargers"][0]["id"]
    for method, path, payload in (
        ("PATCH", "/api/stations/999", {"name": "x"}),
        ("PUT", "/api/stations/999/hours", {"twentyfourseven": True}),
        ("POST", "/api/stations/999/chargers", {"charger_type": "CCS2", "power_kw": 50}),
        ("PATCH", f"/api/stations/{station['id']}/chargers/{foreign_charger}", {"status": "AVAILABLE"}),
    ):
        response = await operator_client.request(method, path, json=payload)
        assert (response.status_code, (await response.get_json())["code"]) == (404, "not_found"), path


@pytest.mark.parametrize(
    ("path", "payload", "named"),
    [
        ("", {"timezone": "Mars/Olympus_Mons"}, "timezone: must be an IANA time zone name"),
        (
            "/exceptions",
            {"kind": "closing", "period_begin": "2026-12-10T10:00:00Z", "period_end": "2026-12-10T09:00:00Z"},
            "period_end: must be after period_begin",
        ),
        (
            "/hours",
            {"regular_hours": [{"weekday": 9, "period_begin": "08:00", "period_end": "20:00"}]},
            "regular_hours[0].weekday:",
        ),
    ],
)
async def test_a_refused_change_names_the_field_and_what_is_wrong_in_its_detail(
    operator_client: ApiClient, path: str, payload: dict[str, Any], named: str
) -> None:
    """Clients that show only the problem's ``detail`` still tell the operator what to fix."""
    created = await (await operator_client.post("/api/stations", json=NEW_STATION)).get_json()
    method = {"": "PATCH", "/exceptions": "POST", "/hours": "PUT"}[path]
    response = await operator_client.request(method, f"/api/stations/{created['id']}{path}", json=payload)
    body = await response.get_json()
    assert response.status_code == 422 and body["code"] == "validation_error", body
    assert body["detail"].startswith(named), body["detail"]
    assert not any(error["msg"].startswith("Value error") for error in body["errors"])


async def test_a_detail_names_the_first_three_wrong_fields_and_counts_the_rest(operator_client: ApiClient) -> None:
    bad = {"name": "", "city": "", "latitude": 91, "longitude": 181, "currency": "RUPEES"}
    response = await operator_client.post("/api/stations", json={**NEW_STATION, **bad})
    body = await response.get_json()
    assert response.status_code == 422
    assert len(body["errors"]) == 5
    assert body["detail"].count(": ") == 3 and body["detail"].endswith("(and 2 more)"), body["detail"]
