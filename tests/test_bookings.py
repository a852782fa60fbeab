"""Booking a slot: the original design's checks in order, charger choice, holds, cancelling, privacy.

The default station is open 08:00-22:00 in Asia/Kolkata; the suite's clock starts at 10:30 there
(2026-12-02 05:00 UTC, a Wednesday), so it is open and slots are given in its local time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app import events
from app.bookings import amount_for
from app.hours import HoursSpec
from app.models import Booking, BookingStatus, Charger, ChargerStatus, Role, Station, StationStatus, User
from app.state import state
from tests.conftest import DEFAULT_NOW, ApiClient
from tests.helpers import SLOT, book, daily, next_event, ok, problem, signed_in
from tests.helpers import make_kolkata_station as make_station


@pytest.fixture
async def station(db: Any) -> Station:
    return await make_station()


# -- success -------------------------------------------------------------------------------------


async def test_booking_returns_the_contract_shape_and_holds_the_slot(driver_client: ApiClient, station, driver) -> None:
    body = await ok(await book(driver_client, station, vehicle_number=" MH01AB1234 "))
    charger = await Charger.get(station=station, charger_number=1)
    assert body == {
        "booking_id": body["booking_id"],
        "station_id": station.id,
        "station_name": station.name,
        "charger_id": charger.id,
        "charger_number": 1,
        "charger_type": "CCS2",
        "slot_time": "2026-12-02T12:00:00+05:30",
        "slot_end": "2026-12-02T13:00:00+05:30",
        "duration_minutes": 60,
        "status": "CONFIRMED",
        "amount_due": "250.00",
        "currency": "INR",
        "hold_expires_at": "2026-12-02T05:10:00+00:00",
        "vehicle_number": "MH01AB1234",
        "user_id": driver.id,
        "created_at": body["created_at"],
        "cancel_reason": None,
        "cancellable": True,
        "energy_wh": None,
    }
    stored = await Booking.get(id=body["booking_id"])
    assert stored.slot_start == datetime(2026, 12, 2, 6, 30, tzinfo=UTC)
    assert stored.status == BookingStatus.CONFIRMED


async def test_slot_time_with_an_offset_is_that_instant(driver_client: ApiClient, station) -> None:
    body = await ok(await book(driver_client, station, slot="2026-12-02T06:30:00Z", minutes=45))
    assert (body["slot_time"], body["slot_end"]) == ("2026-12-02T12:00:00+05:30", "2026-12-02T12:45:00+05:30")
    assert body["amount_due"] == "187.50"


@pytest.mark.parametrize(
    ("price", "minutes", "expected"),
    [(25_000, 60, 25_000), (9_999, 15, 2_500), (1_001, 15, 250), (1_002, 30, 501), (1, 30, 1), (1, 15, 0)],
)
def test_amount_due_is_price_times_duration_rounded_half_up(price: int, minutes: int, expected: int) -> None:
    assert amount_for(price, minutes) == expected


async def test_overnight_slot_at_an_overnight_station_is_accepted(driver_client: ApiClient, clock) -> None:
    night = await make_station(timezone="UTC", hours=daily("20:00", "06:00"), name="Night Owl")
    clock.set(datetime(2026, 12, 2, 21, 0, tzinfo=UTC))
    body = await ok(await book(driver_client, night, slot="2026-12-02T23:00:00", minutes=120))
    assert (body["slot_time"], body["slot_end"]) == ("2026-12-02T23:00:00+00:00", "2026-12-03T01:00:00+00:00")


# -- the checks, in the original design's order --------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"slot_time": SLOT, "duration_minutes": 60},
        {"station_id": 1, "slot_time": "tomorrow at noon", "duration_minutes": 60},
        {"station_id": 1, "slot_time": 1764654000, "duration_minutes": 60},
        {"station_id": 1, "slot_time": SLOT, "duration_minutes": "60"},
        {"station_id": "1", "slot_time": SLOT, "duration_minutes": 60},
        # Beyond what the database and datetime arithmetic can hold: refused, not a 500.
        {"station_id": 2**31, "slot_time": SLOT, "duration_minutes": 60},
        {"station_id": 1, "slot_time": SLOT, "duration_minutes": 60, "charger_id": 2**63},
        {"station_id": 1, "slot_time": "0001-01-01T00:00:00", "duration_minutes": 60},
        {"station_id": 1, "slot_time": "9999-12-31T23:30:00-05:00", "duration_minutes": 60},
        {"station_id": 1, "slot_time": SLOT, "duration_minutes": 60, "vehicle_number": "MH01\u0000"},
        {"station_id": 1, "slot_time": SLOT, "duration_minutes": 60, "vehicle_number": "MH01\udfff"},
    ],
)
async def test_malformed_request_is_422_before_anything_else(client: ApiClient, body: dict[str, Any]) -> None:
    # Not even signed in: the format check comes first.
    await problem(await client.post("/api/bookings", json=body), 422, "validation_error")


async def test_booking_needs_a_signed_in_user(client: ApiClient, station) -> None:
    await problem(await book(client, station), 401, "unauthenticated")


async def test_unknown_station_is_404(driver_client: ApiClient, db) -> None:
    await problem(await book(driver_client, 999), 404, "not_found")


async def test_inactive_station_is_refused_before_its_hours_are_looked_at(driver_client: ApiClient, clock) -> None:
    closed_for_works = await make_station(status=StationStatus.MAINTENANCE)
    clock.set(datetime(2026, 12, 2, 20, 0, tzinfo=UTC))  # 01:30 in Kolkata: also closed
    await problem(await book(driver_client, closed_for_works, slot="2026-12-03T12:00:00"), 403, "station_inactive")


async def test_booking_is_refused_when_station_closed_by_server_clock(driver_client: ApiClient, station, clock) -> None:
    # 23:00 in Kolkata: closed now, although tomorrow's 12:00 slot lies inside opening hours.
    clock.set(datetime(2026, 12, 2, 17, 30, tzinfo=UTC))
    body = await problem(await book(driver_client, station, slot="2026-12-03T12:00:00"), 403, "station_closed")
    assert body["detail"] == "Station is closed. Booking not allowed."
    assert await Booking.all().count() == 0


async def test_closed_station_is_reported_before_an_inactive_user(client: ApiClient, station, make_user, clock) -> None:
    user = await make_user(Role.DRIVER)
    await signed_in(client, user)
    await User.filter(id=user.id).update(is_active=False)
    clock.set(datetime(2026, 12, 2, 17, 30, tzinfo=UTC))
    await problem(await book(client, station, slot="2026-12-03T12:00:00"), 403, "station_closed")
    clock.set(DEFAULT_NOW)
    await problem(await book(client, station), 403, "user_inactive")


async def test_inactive_user_is_refused_before_the_slot_is_checked(client: ApiClient, station, make_user) -> None:
    user = await make_user(Role.DRIVER)
    await signed_in(client, user)
    await User.filter(id=user.id).update(is_active=False)
    await problem(await book(client, station, slot="2026-12-01T12:00:00"), 403, "user_inactive")


INVALID_SLOTS = (
    ("2026-12-02T10:00:00", 60, "slot_time"),  # started half an hour ago
    ("2026-12-10T12:00:00", 60, "slot_time"),  # beyond the 7-day horizon
    (SLOT, 10, "duration_minutes"),
    (SLOT, 50, "duration_minutes"),
    (SLOT, 255, "duration_minutes"),
    ("2026-12-02T21:30:00", 60, "slot_time"),  # runs past 22:00 closing
    ("2026-12-03T07:30:00", 60, "slot_time"),  # begins before 08:00 opening
)


async def test_invalid_slot_is_422_naming_the_field(driver_client: ApiClient, station) -> None:
    for slot, minutes, field in INVALID_SLOTS:
        response = await book(driver_client, station, slot=slot, minutes=minutes)
        body = await problem(response, 422, "validation_error")
        assert ["body", field] in [error["loc"] for error in body["errors"]], (slot, minutes)
    assert await Booking.all().count() == 0


async def test_slot_partly_outside_opening_hours_is_422(driver_client: ApiClient, station) -> None:
    body = await problem(await book(driver_client, station, slot="2026-12-02T21:30:00"), 422, "validation_error")
    assert "opening hours" in body["detail"]
    assert (await ok(await book(driver_client, station, slot="2026-12-02T21:00:00"))) is not None


async def test_local_time_the_clocks_skip_is_422(client: ApiClient, driver, clock) -> None:
    berlin = await make_station(timezone="Europe/Berlin", hours=HoursSpec(twentyfourseven=True), currency="EUR")
    clock.set(datetime(2027, 3, 27, 12, 0, tzinfo=UTC))
    await signed_in(client, driver)
    driver_client = client
    body = await problem(await book(driver_client, berlin, slot="2027-03-28T02:30:00"), 422, "validation_error")
    assert "skip" in body["detail"]
    # The same wall time one day later exists and is fine.
    assert (await ok(await book(driver_client, berlin, slot="2027-03-29T02:30:00")))["slot_time"].endswith("+02:00")


async def test_a_fourth_unpaid_hold_is_refused(driver_client: ApiClient, station) -> None:
    for hour in (12, 14, 16):
        await ok(await book(driver_client, station, slot=f"2026-12-02T{hour}:00:00"))
    await problem(await book(driver_client, station, slot="2026-12-02T18:00:00"), 409, "hold_limit_reached")


async def test_hold_limit_is_checked_before_charger_availability(
    driver_client: ApiClient, other_client: ApiClient, make_user
) -> None:
    single = await make_station(chargers=("CCS2",))
    other = await make_user(Role.DRIVER)
    await signed_in(other_client, other)
    await ok(await book(other_client, single))  # the only charger is taken at SLOT
    for hour in (14, 16, 18):
        await ok(await book(driver_client, single, slot=f"2026-12-02T{hour}:00:00"))
    await problem(await book(driver_client, single), 409, "hold_limit_reached")


# -- charger choice ------------------------------------------------------------------------------


async def test_lowest_numbered_free_charger_is_assigned(driver_client: ApiClient, other_client, make_user, station):
    other = await make_user(Role.DRIVER)
    await signed_in(other_client, other)
    first = await ok(await book(driver_client, station))
    second = await ok(await book(other_client, station))
    assert (first["charger_number"], second["charger_number"]) == (1, 2)


async def test_charger_type_picks_a_charger_with_that_connector(driver_client: ApiClient, station) -> None:
    body = await ok(await book(driver_client, station, charger_type="chademo"))
    assert (body["charger_number"], body["charger_type"]) == (3, "CHADEMO")
    await problem(await book(driver_client, station, charger_type="CHADEMO"), 409, "no_charger_available")


async def test_out_of_service_charger_is_never_assigned(driver_client: ApiClient, station) -> None:
    broken = await Charger.get(station=station, charger_number=1)
    broken.status = ChargerStatus.OUT_OF_SERVICE
    await broken.save()
    assert (await ok(await book(driver_client, station)))["charger_number"] == 2
    await problem(await book(driver_client, station, charger_id=broken.id), 409, "no_charger_available")


async def test_explicit_charger_already_taken_is_409(driver_client: ApiClient, other_client, make_user, station):
    other = await make_user(Role.DRIVER)
    await signed_in(other_client, other)
    charger = await Charger.get(station=station, charger_number=2)
    assert (await ok(await book(other_client, station, charger_id=charger.id)))["charger_number"] == 2
    # Overlapping by 30 minutes is enough to be refused; the other chargers being free does not help.
    body = await problem(
        await book(driver_client, station, slot="2026-12-02T12:30:00", charger_id=charger.id),
        409,
        "no_charger_available",
    )
    assert "Charger 2" in body["detail"]


async def test_charger_of_another_station_is_404(driver_client: ApiClient, station) -> None:
    elsewhere = await make_station(name="Elsewhere")
    foreign = await Charger.get(station=elsewhere, charger_number=1)
    await problem(await book(driver_client, station, charger_id=foreign.id), 404, "not_found")


async def test_no_charger_free_for_the_whole_slot_is_409_but_back_to_back_is_fine(
    driver_client: ApiClient, other_client, make_user
) -> None:
    single = await make_station(chargers=("CCS2",))
    other = await make_user(Role.DRIVER)
    await signed_in(other_client, other)
    await ok(await book(other_client, single))
    await problem(await book(driver_client, single, slot="2026-12-02T12:45:00"), 409, "no_charger_available")
    await ok(await book(driver_client, single, slot="2026-12-02T13:00:00"))
    await ok(await book(driver_client, single, slot="2026-12-02T11:00:00"))


async def test_expired_hold_does_not_block_the_slot(driver_client: ApiClient, other_client, make_user, clock) -> None:
    single = await make_station(chargers=("CCS2",))
    other = await make_user(Role.DRIVER)
    await signed_in(other_client, other)
    stale = await ok(await book(other_client, single))
    clock.advance(timedelta(minutes=10))  # the hold ends now; no close-out job has run
    fresh = await ok(await book(driver_client, single))
    assert fresh["charger_id"] == stale["charger_id"]
    assert (await Booking.get(id=stale["booking_id"])).status == BookingStatus.EXPIRED
    assert (await ok(await other_client.get(f"/api/bookings/{stale['booking_id']}")))["status"] == "EXPIRED"


# -- who sees and changes what -------------------------------------------------------------------


async def test_user_id_in_the_body_must_be_the_signed_in_user(driver_client: ApiClient, station, driver) -> None:
    await problem(await book(driver_client, station, user_id=driver.id + 1), 403, "forbidden")
    assert (await ok(await book(driver_client, station, user_id=driver.id)))["user_id"] == driver.id


async def test_another_users_booking_is_404_for_detail_quote_and_cancel(
    driver_client: ApiClient, other_client: ApiClient, make_user, station
) -> None:
    booking = await ok(await book(driver_client, station))
    intruder = await make_user(Role.DRIVER)
    await signed_in(other_client, intruder)
    path = f"/api/bookings/{booking['booking_id']}"
    await problem(await other_client.get(path), 404, "not_found")
    await problem(await other_client.get(f"{path}/quote"), 404, "not_found")
    await problem(await other_client.post(f"{path}/cancel"), 404, "not_found")
    assert await other_client.get("/api/bookings") is not None
    assert await ok(await other_client.get("/api/bookings")) == []
    assert (await Booking.get(id=booking["booking_id"])).status == BookingStatus.CONFIRMED


async def test_list_shows_own_bookings_and_operators_see_all_with_filters(
    driver_client: ApiClient, operator_client: ApiClient, make_user, station
) -> None:
    mine = await ok(await book(driver_client, station))
    tomorrow = await ok(await book(driver_client, station, slot="2026-12-03T09:00:00"))
    rival = await make_user(Role.DRIVER)
    rival_client = ApiClient(driver_client.app)
    await signed_in(rival_client, rival)
    theirs = await ok(await book(rival_client, station, slot="2026-12-02T15:00:00"))

    own = await ok(await driver_client.get("/api/bookings"))
    assert [b["booking_id"] for b in own] == [tomorrow["booking_id"], mine["booking_id"]]
    everyone = await ok(await operator_client.get("/api/bookings"))
    assert {b["booking_id"] for b in everyone} == {mine["booking_id"], tomorrow["booking_id"], theirs["booking_id"]}
    on_day = await ok(await operator_client.get("/api/bookings?date=2026-12-02"))
    assert {b["booking_id"] for b in on_day} == {mine["booking_id"], theirs["booking_id"]}
    await ok(await driver_client.post(f"/api/bookings/{mine['booking_id']}/cancel"))
    cancelled = await ok(await operator_client.get(f"/api/bookings?status=CANCELLED&station_id={station.id}"))
    assert [b["booking_id"] for b in cancelled] == [mine["booking_id"]]
    assert await ok(await operator_client.get("/api/bookings?station_id=999")) == []
    await problem(await operator_client.get("/api/bookings?limit=500"), 422, "validation_error")


@pytest.mark.parametrize(
    "query", ["station_id=2147483648", "date=9999-12-31", "date=0001-01-01", "offset=9223372036854775808"]
)
async def test_list_filters_beyond_what_can_be_stored_are_422(operator_client: ApiClient, query: str) -> None:
    await problem(await operator_client.get(f"/api/bookings?{query}"), 422, "validation_error")


async def test_cancelling_a_held_booking_frees_its_charger(driver_client: ApiClient, other_client, make_user) -> None:
    single = await make_station(chargers=("CCS2",))
    held = await ok(await book(driver_client, single))
    cancelled = await ok(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"))
    assert cancelled["status"] == "CANCELLED"
    await problem(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"), 409, "conflict")
    other = await make_user(Role.DRIVER)
    await signed_in(other_client, other)
    await ok(await book(other_client, single))


async def test_a_lapsed_hold_cannot_be_cancelled(driver_client: ApiClient, station, clock) -> None:
    held = await ok(await book(driver_client, station))
    assert held["cancellable"] is True
    clock.advance(timedelta(minutes=11))
    assert (await ok(await driver_client.get(f"/api/bookings/{held['booking_id']}")))["cancellable"] is False
    await problem(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"), 409, "conflict")


async def test_quote_states_what_to_pay(driver_client: ApiClient, station) -> None:
    held = await ok(await book(driver_client, station, minutes=90))
    quote = await ok(await driver_client.get(f"/api/bookings/{held['booking_id']}/quote"))
    assert quote == {
        "booking_id": held["booking_id"],
        "amount_due": "375.00",
        "currency": "INR",
        "payable": True,
        "reason": None,
        "hold_expires_at": "2026-12-02T05:10:00+00:00",
        "breakdown": {"price_per_hour": "250.00", "duration_minutes": 90},
    }


async def test_booking_endpoints_are_in_the_openapi_document(client: ApiClient) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    for path in ("/api/bookings", "/api/bookings/{booking_id}", "/api/bookings/{booking_id}/quote"):
        assert path in spec["paths"], sorted(spec["paths"])
    assert "/api/bookings/{booking_id}/cancel" in spec["paths"]


async def test_booking_and_cancelling_tell_live_clients_which_chargers_are_free(
    driver_client: ApiClient, station, app
) -> None:
    with state(app).bus.subscribe(events.station_channel(station.id)) as live:
        held = await ok(await book(driver_client, station, slot="2026-12-02T10:30:00"))  # starts now
        taken = await next_event(live, "availability")
        assert taken["available_chargers"] == 2
        assert [c["available_now"] for c in taken["chargers"]] == [False, True, True]
        status = await ok(await driver_client.get(f"/api/stations/{station.id}/status"))
        assert status["available_chargers"] == 2
        await ok(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"))
        freed = await next_event(live, "availability")
        assert freed["available_chargers"] == 3
        assert freed["seq"] > taken["seq"]
    assert (await ok(await driver_client.get(f"/api/stations/{station.id}/status")))["available_chargers"] == 3
