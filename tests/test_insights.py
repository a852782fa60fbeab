"""Usage figures, checked against values worked out by hand for a small fixed set of bookings."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.models import Booking, BookingStatus, Charger, Role, Station
from tests.conftest import ApiClient
from tests.helpers import daily, make_station

BERLIN = ZoneInfo("Europe/Berlin")
#: 28-30 March 2026: clocks in Berlin go from 02:00 to 03:00 in the night of the 29th.
RANGE = "from=2026-03-28&to=2026-03-30"


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=BERLIN)


@pytest.fixture
async def station(make_user: Any) -> Station:
    """Open 08:00-22:00 every day, two chargers, and these bookings:

    - paid, Sat 28th 10:00-11:30 (1.5 h), 30.00 EUR
    - paid, Sat 28th 23:00 to Sun 29th 04:00 across the DST change: 4 real hours (1 on the 28th,
      3 on the 29th: the hour 02:00-03:00 does not exist), 80.00 EUR
    - completed, Mon 30th 21:00-22:00 (1 h), 20.00 EUR
    - cancelled on the 29th, expired on the 30th, a live hold on the 30th, and one paid booking on
      the 31st, outside the range.
    """
    driver = await make_user(Role.DRIVER)
    hub = await make_station(
        "Mitte", timezone="Europe/Berlin", hours=daily("08:00", "22:00"), chargers=("CCS2", "TYPE2"), currency="EUR"
    )
    charger = await Charger.filter(station_id=hub.id).first()
    for start, end, status, amount in (
        (berlin(28, 10), berlin(28, 11, 30), BookingStatus.PAID, 3000),
        (berlin(28, 23), berlin(29, 4), BookingStatus.PAID, 8000),
        (berlin(30, 21), berlin(30, 22), BookingStatus.COMPLETED, 2000),
        (berlin(29, 12), berlin(29, 13), BookingStatus.CANCELLED, 2000),
        (berlin(30, 9), berlin(30, 10), BookingStatus.EXPIRED, 2000),
        (berlin(30, 15), berlin(30, 16), BookingStatus.CONFIRMED, 2000),
        (berlin(31, 10), berlin(31, 11), BookingStatus.PAID, 2000),
    ):
        await Booking.create(
            user=driver,
            station=hub,
            charger=charger,
            slot_start=start,
            slot_end=end,
            status=status,
            amount_due=amount,
            currency="EUR",
            hold_expires_at=start - timedelta(days=400) if status == BookingStatus.CONFIRMED else None,
        )
    return hub


async def insights(client: ApiClient, query: str) -> Any:
    response = await client.get(f"/api/operator/insights?{query}")
    body = await response.get_json()
    assert response.status_code == 200, body
    return body


async def test_totals_and_days_match_the_hand_computed_figures(operator_client: ApiClient, station: Station) -> None:
    body = await insights(operator_client, f"station_id={station.id}&{RANGE}")
    assert (body["from"], body["to"]) == ("2026-03-28", "2026-03-30")
    assert body["totals"] == {
        "bookings": 3,
        "booked_charger_hours": 6.5,
        "open_charger_hours": 84.0,  # 14 h x 2 chargers x 3 days
        "utilization": round(6.5 / 84, 4),
        "revenue": [{"currency": "EUR", "amount": "130.00"}],
        "cancelled": 1,
        "expired": 1,
        "no_shows": None,
        "energy_kwh": None,
    }
    by_day = {day["date"]: day for day in body["days"]}
    assert [by_day[d]["bookings"] for d in ("2026-03-28", "2026-03-29", "2026-03-30")] == [2, 0, 1]
    assert [by_day[d]["booked_charger_hours"] for d in ("2026-03-28", "2026-03-29", "2026-03-30")] == [2.5, 3.0, 1.0]
    assert by_day["2026-03-29"]["utilization"] == round(3 / 28, 4)
    assert by_day["2026-03-28"]["revenue"] == [{"currency": "EUR", "amount": "110.00"}]


async def test_the_heatmap_splits_slots_into_local_hours_of_the_week(
    operator_client: ApiClient, station: Station
) -> None:
    body = await insights(operator_client, f"station_id={station.id}&{RANGE}")
    cells = {(cell["weekday"], cell["hour"]): cell for cell in body["heatmap"]}
    assert len(cells) == 7 * 24
    saturday, sunday, monday = 6, 7, 1
    assert (cells[saturday, 10]["booked_charger_hours"], cells[saturday, 10]["utilization"]) == (1.0, 0.5)
    assert cells[saturday, 11]["booked_charger_hours"] == 0.5
    assert (cells[saturday, 23]["booked_charger_hours"], cells[saturday, 23]["utilization"]) == (1.0, None)
    overnight = [cells[sunday, hour]["booked_charger_hours"] for hour in range(5)]
    assert overnight == [1.0, 1.0, 0.0, 1.0, 0.0]  # 02:00-03:00 never happened that night
    assert (cells[monday, 21]["open_charger_hours"], cells[monday, 21]["utilization"]) == (2.0, 0.5)
    assert sum(cell["open_charger_hours"] for cell in body["heatmap"]) == 84.0


async def test_all_stations_add_up_and_unknown_stations_are_404(operator_client: ApiClient, station: Station) -> None:
    everything = await insights(operator_client, RANGE)
    assert everything["station_id"] is None and everything["totals"]["bookings"] == 3
    missing = await operator_client.get(f"/api/operator/insights?station_id={station.id + 1000}")
    assert missing.status_code == 404


async def test_drivers_get_403_and_bad_ranges_422(operator_client: ApiClient, driver_client: ApiClient) -> None:
    refused = await driver_client.get("/api/operator/insights")
    assert (refused.status_code, (await refused.get_json())["code"]) == (403, "forbidden")
    for query in ("from=2026-03-30&to=2026-03-28", "from=2025-01-01&to=2026-03-28", "from=0", "from=2020-01-01"):
        assert (await operator_client.get(f"/api/operator/insights?{query}")).status_code == 422
