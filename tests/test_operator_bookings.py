"""Operators find any booking: filters, paging and sorting, and the same rows as streamed CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.hours import HoursSpec
from app.models import Booking, BookingStatus, Charger, Role, Station, User
from tests.conftest import DEFAULT_NOW, ApiClient
from tests.helpers import make_station

#: A name that a CSV writer must quote: a comma and a double quote.
AWKWARD_NAME = 'Depot "A", North'


async def station_in(zone: str, name: str) -> Station:
    return await make_station(name, timezone=zone, hours=HoursSpec(twentyfourseven=True), chargers=1)


async def booked(station: Station, user: User, start: datetime, status: BookingStatus, **extra: Any) -> Booking:
    charger = await Charger.get(station_id=station.id)
    return await Booking.create(
        user=user,
        station=station,
        charger=charger,
        slot_start=start,
        slot_end=start + timedelta(hours=1),
        status=status,
        amount_due=15000,
        currency="INR",
        hold_expires_at=extra.pop("hold_expires_at", None),
        **extra,
    )


@pytest.fixture
async def bookings(make_user: Any) -> dict[str, Booking]:
    """Four bookings at two stations in two zones, by two drivers."""
    asha = await make_user(Role.DRIVER, email="asha@fleet.example")
    ravi = await make_user(Role.DRIVER, email="ravi@home.example")
    kolkata = await station_in("Asia/Kolkata", AWKWARD_NAME)
    berlin = await station_in("Europe/Berlin", "Berlin Mitte")
    return {
        # 23:30 on 2 Dec in Kolkata (18:00 UTC): a 2 Dec booking there.
        "late": await booked(kolkata, asha, datetime(2026, 12, 2, 18, 0, tzinfo=UTC), BookingStatus.PAID),
        # 00:30 on 3 Dec in Berlin (23:30 UTC on the 2nd): a 3 Dec booking there.
        "midnight": await booked(berlin, ravi, datetime(2026, 12, 2, 23, 30, tzinfo=UTC), BookingStatus.PAID),
        # A hold that ran out before now: it reads EXPIRED although close-out has not stored it.
        "lapsed": await booked(
            kolkata,
            ravi,
            datetime(2026, 12, 4, 6, 0, tzinfo=UTC),
            BookingStatus.CONFIRMED,
            hold_expires_at=DEFAULT_NOW - timedelta(minutes=1),
        ),
        "held": await booked(
            berlin,
            asha,
            datetime(2026, 12, 5, 9, 0, tzinfo=UTC),
            BookingStatus.CONFIRMED,
            hold_expires_at=DEFAULT_NOW + timedelta(minutes=5),
            vehicle_number="B-AB 123",
        ),
    }


async def ids(client: ApiClient, query: str) -> tuple[int, list[int]]:
    response = await client.get(f"/api/operator/bookings?{query}")
    body = await response.get_json()
    assert response.status_code == 200, body
    return body["total"], [item["booking_id"] for item in body["items"]]


async def test_dates_are_days_at_each_bookings_own_station(
    operator_client: ApiClient, bookings: dict[str, Booking]
) -> None:
    late, midnight = bookings["late"].id, bookings["midnight"].id
    assert await ids(operator_client, "from=2026-12-02&to=2026-12-02") == (1, [late])
    assert await ids(operator_client, "from=2026-12-03&to=2026-12-03") == (1, [midnight])


async def test_filters_by_station_status_and_driver_email(
    operator_client: ApiClient, bookings: dict[str, Booking]
) -> None:
    kolkata = bookings["late"].station_id  # type: ignore[attr-defined]
    assert await ids(operator_client, f"station_id={kolkata}") == (2, [bookings["lapsed"].id, bookings["late"].id])
    assert await ids(operator_client, "status=EXPIRED") == (1, [bookings["lapsed"].id])
    assert await ids(operator_client, "status=CONFIRMED") == (1, [bookings["held"].id])
    assert await ids(operator_client, "email=FLEET") == (2, [bookings["held"].id, bookings["late"].id])


async def test_pages_are_sorted_by_slot_either_way(operator_client: ApiClient, bookings: dict[str, Booking]) -> None:
    in_order = [bookings[key].id for key in ("late", "midnight", "lapsed", "held")]
    assert await ids(operator_client, "sort=slot&limit=2") == (4, in_order[:2])
    assert await ids(operator_client, "sort=slot&limit=2&offset=2") == (4, in_order[2:])
    assert await ids(operator_client, "limit=1") == (4, in_order[-1:])


async def test_a_range_that_ends_before_it_starts_is_refused(operator_client: ApiClient) -> None:
    response = await operator_client.get("/api/operator/bookings?from=2026-12-03&to=2026-12-02")
    assert response.status_code == 422


async def test_the_csv_has_a_header_quotes_names_and_shows_station_time(
    operator_client: ApiClient, bookings: dict[str, Booking]
) -> None:
    response = await operator_client.get("/api/operator/bookings.csv?sort=slot")
    assert response.status_code == 200
    assert response.content_type.startswith("text/csv")
    text = await response.get_data(as_text=True)
    assert f'"{AWKWARD_NAME.replace(chr(34), chr(34) * 2)}"' in text  # quoted, inner quotes doubled
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["booking_id"]) for row in rows] == [bookings[k].id for k in ("late", "midnight", "lapsed", "held")]
    first, second = rows[0], rows[1]
    assert (first["station_name"], first["slot_start"], first["driver_email"]) == (
        AWKWARD_NAME,
        "2026-12-02T23:30:00+05:30",
        "asha@fleet.example",
    )
    assert second["slot_start"] == "2026-12-03T00:30:00+01:00"
    assert rows[2]["status"] == "EXPIRED" and rows[3]["vehicle_number"] == "B-AB 123"
    assert first["amount_due"] == "150.00"


async def test_the_csv_takes_the_same_filters(operator_client: ApiClient, bookings: dict[str, Booking]) -> None:
    text = await (await operator_client.get("/api/operator/bookings.csv?email=ravi")).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(int(row["booking_id"]) for row in rows) == sorted([bookings["midnight"].id, bookings["lapsed"].id])


async def test_drivers_get_403_on_every_operator_booking_endpoint(driver_client: ApiClient) -> None:
    for path in ("/api/operator/bookings", "/api/operator/bookings.csv"):
        response = await driver_client.get(path)
        assert (response.status_code, (await response.get_json())["code"]) == (403, "forbidden")
