"""What the central system tells chargers about bookings (DESIGN §14), with a real OCPP peer:
ReserveNow before the slot, CancelReservation when the booking goes, the no-show rule, faults,
remote start and stop, and commands that cross from one web process to another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart import Quart

from app import charger_duties, charging
from app.charger_duties import Duties, DutyRunner, Timing
from app.clock import FrozenClock
from app.hours import HoursSpec
from app.models import Booking, BookingStatus, CancelReason, ChargePoint, Charger, ChargingSession, Payment, User
from app.state import state
from tests.conftest import DEFAULT_NOW, ApiClient, Backend
from tests.helpers import (
    book,
    booted_charger,
    eventually,
    insert_booking,
    linked_station,
    live_stack,
    make_worker,
    ok,
    pay,
    problem,
    real_now,
    received,
    served,
    signed_in,
    simulated_charger,
)

#: The next quarter hour after the suite's 05:00 UTC: reserved at 05:05, a no-show at 05:30.
SLOT = DEFAULT_NOW + timedelta(minutes=15)


@pytest.fixture
async def server(app: Quart, db: Backend) -> AsyncIterator[str]:
    async with served(app) as address:
        yield address


def duties_of(app: Quart) -> Duties:
    services = state(app)
    return Duties(services.chargers, services.provider, services.bus, Timing.from_settings(services.settings))


async def due_at(app: Quart, clock: FrozenClock, at: datetime) -> int:
    """Move the clock to ``at`` and do what is due then, as the runners would."""
    clock.set(at)
    return await charger_duties.run_due(at, duties_of(app))


async def reserved_booking(app: Quart, clock: FrozenClock, client: ApiClient, station_id: int, point: Any) -> int:
    """A paid booking of charger 1 for ``SLOT``, reserved at the charger ten minutes before."""
    booking = await paid_booking(client, station_id)
    await due_at(app, clock, SLOT - timedelta(minutes=10))
    assert (await received(point, "ReserveNow"))["reservation_id"] == booking["booking_id"]
    return int(booking["booking_id"])


async def paid_booking(client: ApiClient, station_id: int, charger_number: int = 1) -> dict[str, Any]:
    charger = await Charger.get(station_id=station_id, charger_number=charger_number)
    booking = await ok(await book(client, station_id, SLOT.strftime("%Y-%m-%dT%H:%M:%S"), 60, charger_id=charger.id))
    await ok(await pay(client, booking, amount=booking["amount_due"]))
    return booking


async def test_a_paid_booking_is_reserved_at_its_charger_ten_minutes_before_with_the_drivers_tag(
    server: str, app: Quart, clock: FrozenClock, driver_client: ApiClient, driver: User
) -> None:
    async with booted_charger(server) as (station, point):
        booking = await paid_booking(driver_client, station.id)
        assert await charger_duties.run_due(clock.now(), duties_of(app)) == 0  # 05:00: not yet
        assert point.received.empty()
        clock.set(SLOT - timedelta(minutes=10))
        assert await charger_duties.run_due(clock.now(), duties_of(app)) == 1
        reserve = await received(point, "ReserveNow")
        assert reserve == {
            "connector_id": 1,
            "expiry_date": "2026-12-02T05:30:00Z",
            "id_tag": driver.id_tag,
            "reservation_id": booking["booking_id"],
        }
        assert await charger_duties.run_due(clock.now(), duties_of(app)) == 0  # once
        assert (await Booking.get(id=booking["booking_id"])).reserved_charger_id is not None


async def test_a_booking_that_starts_sooner_than_the_lead_is_reserved_at_once(
    server: str, app: Quart, clock: FrozenClock, driver_client: ApiClient
) -> None:
    station, _, key = await linked_station()
    clock.set(SLOT - timedelta(minutes=3))
    async with simulated_charger(server, key) as point:
        await point.boot()
        booking = await paid_booking(driver_client, station.id)
        await DutyRunner(duties_of(app), clock, 300).run_once()
        assert (await received(point, "ReserveNow"))["reservation_id"] == booking["booking_id"]


async def test_cancelling_the_booking_cancels_the_reservation(
    server: str, app: Quart, clock: FrozenClock, driver_client: ApiClient
) -> None:
    async with booted_charger(server) as (station, point):
        booking_id = await reserved_booking(app, clock, driver_client, station.id, point)
        await ok(await driver_client.post(f"/api/bookings/{booking_id}/cancel"))
        await due_at(app, clock, clock.now())
        assert await received(point, "CancelReservation") == {"reservation_id": booking_id}


async def test_a_no_show_lets_the_charger_go(
    server: str, app: Quart, clock: FrozenClock, driver_client: ApiClient, client: ApiClient
) -> None:
    async with booted_charger(server) as (station, point):
        await point.status(1, "Available")
        booking_id = await reserved_booking(app, clock, driver_client, station.id, point)
        clock.set(SLOT + timedelta(minutes=1))
        detail = await ok(await client.get(f"/api/stations/{station.id}"))
        assert detail["chargers"][0]["available_now"] is False  # held for its driver
        await due_at(app, clock, SLOT + timedelta(minutes=15))
        assert await received(point, "CancelReservation") == {"reservation_id": booking_id}
        stored = await Booking.get(id=booking_id)
        assert stored.status == BookingStatus.COMPLETED and stored.no_show_at == clock.now()
        detail = await ok(await client.get(f"/api/stations/{station.id}"))
        assert detail["chargers"][0]["available_now"] is True


async def test_a_faulted_charger_about_to_be_used_moves_the_booking_to_a_free_one(
    server: str, app: Quart, clock: FrozenClock, driver_client: ApiClient
) -> None:
    async with booted_charger(server) as (station, point):
        await point.status(1, "Faulted")
        booking = await paid_booking(driver_client, station.id)
        await due_at(app, clock, SLOT - timedelta(minutes=10))
    second = await Charger.get(station_id=station.id, charger_number=2)
    assert (await Booking.get(id=booking["booking_id"])).charger_id == second.id  # type: ignore[attr-defined]


async def test_an_offline_charger_with_no_other_free_is_cancelled_and_refunded(
    app: Quart, db: Backend, clock: FrozenClock, driver_client: ApiClient, other_client: ApiClient, make_user
) -> None:
    station, _, _ = await linked_station()  # never connects: offline
    booking = await paid_booking(driver_client, station.id)
    await paid_booking(await signed_in(other_client, await make_user()), station.id, charger_number=2)
    await due_at(app, clock, SLOT - timedelta(minutes=10))
    stored = await Booking.get(id=booking["booking_id"])
    assert (stored.status, stored.cancel_reason) == (BookingStatus.CANCELLED, CancelReason.CHARGER_FAULT)
    assert (await Payment.get(booking_id=booking["booking_id"])).status == "REFUNDED"


async def test_a_silent_charge_point_goes_offline_and_its_charger_is_not_bookable_now(
    server: str, app: Quart, clock: FrozenClock, client: ApiClient
) -> None:
    async with booted_charger(server) as (station, point):
        clock.set(DEFAULT_NOW + timedelta(seconds=599))
        assert await charging.mark_offline(clock.now(), 300, state(app).bus) == 0
        clock.set(DEFAULT_NOW + timedelta(seconds=601))
        assert await charging.mark_offline(clock.now(), 300, state(app).bus) == 1
        detail = await ok(await client.get(f"/api/stations/{station.id}"))
        assert (detail["chargers"][0]["online"], detail["chargers"][0]["available_now"]) == (False, False)
        await point.heartbeat()  # heard from again: back online
        detail = await ok(await client.get(f"/api/stations/{station.id}"))
        assert (detail["chargers"][0]["online"], detail["chargers"][0]["available_now"]) == (True, True)


async def test_the_driver_starts_and_stops_charging_from_the_booking(
    server: str, app: Quart, clock: FrozenClock, driver_client: ApiClient, driver: User
) -> None:
    async with booted_charger(server) as (station, point):
        booking = await paid_booking(driver_client, station.id)
        path = f"/api/bookings/{booking['booking_id']}/charging"
        await problem(await driver_client.post(f"{path}/start"), 409, "not_in_slot")
        clock.set(SLOT + timedelta(minutes=2))
        assert (await ok(await driver_client.post(f"{path}/start")))["status"] == "Accepted"
        assert (await received(point, "RemoteStartTransaction"))["id_tag"] == driver.id_tag
        await eventually(lambda: point.connectors[1].transaction_id is not None, what="the charger's transaction")
        assert await ChargingSession.exists(booking_id=booking["booking_id"], stopped_at__isnull=True)
        await point.meter(1, seconds=900)
        now = await ok(await driver_client.get(path))
        assert now["charging"] is True
        assert (now["session"]["energy_kwh"], now["session"]["power_kw"]) == (2.75, 11.0)
        assert (await ok(await driver_client.post(f"{path}/stop")))["status"] == "Accepted"
        await received(point, "RemoteStopTransaction")
        await eventually(
            lambda: Booking.filter(id=booking["booking_id"], energy_wh__gt=0).exists(), what="energy recorded"
        )
        shown = await ok(await driver_client.get(f"/api/bookings/{booking['booking_id']}"))
        assert shown["energy_wh"] == 2750  # a quarter hour at 11 kW
        await problem(await driver_client.post(f"{path}/stop"), 409, "not_charging")


async def test_starting_on_an_offline_charger_fails_visibly_and_others_bookings_are_not_found(
    app: Quart, db: Backend, clock: FrozenClock, driver_client: ApiClient, other_client: ApiClient, make_user
) -> None:
    station, _, _ = await linked_station()
    booking = await paid_booking(driver_client, station.id)
    clock.set(SLOT + timedelta(minutes=2))
    path = f"/api/bookings/{booking['booking_id']}/charging/start"
    await problem(await driver_client.post(path), 409, "charger_offline")
    stranger = await signed_in(other_client, await make_user())
    await problem(await stranger.post(path), 404, "not_found")


async def test_taking_a_linked_charger_out_of_service_tells_the_charger(
    server: str, operator_client: ApiClient
) -> None:
    station, _, key = await linked_station()
    charger = await Charger.get(station_id=station.id, charger_number=1)
    async with simulated_charger(server, key) as point:
        await point.boot()
        path = f"/api/stations/{station.id}/chargers/{charger.id}"
        await ok(await operator_client.patch(path, json={"status": "OUT_OF_SERVICE"}))
        assert await received(point, "ChangeAvailability") == {"connector_id": 1, "type": "Inoperative"}
        await ok(await operator_client.patch(path, json={"status": "AVAILABLE"}))
        assert await received(point, "ChangeAvailability") == {"connector_id": 1, "type": "Operative"}


async def test_a_command_from_another_web_process_reaches_the_charger(
    server: str, app: Quart, backend: Backend, clock: FrozenClock, driver: User
) -> None:
    """The charger holds its socket in this process (A); the booking is made and its reservation
    sent by another (B), sharing PostgreSQL and Redis."""
    station, _, key = await linked_station()
    settings = state(app).settings
    async with (
        simulated_charger(server, key) as point,
        live_stack(backend, str(settings.redis_url), clock, prefix=settings.redis_prefix) as other,
    ):
        await point.boot()
        through_b = await signed_in(ApiClient(other), driver)
        booking = await paid_booking(through_b, station.id)
        clock.set(SLOT - timedelta(minutes=10))
        assert "CP-1" not in state(other).chargers.held
        assert await charger_duties.run_due(clock.now(), duties_of(other)) == 1
        reserve = await received(point, "ReserveNow")
        assert reserve["reservation_id"] == booking["booking_id"]
        assert await ChargePoint.filter(identity="CP-1", online=True).exists()


async def test_the_worker_sends_reserve_now_at_its_planned_instant(
    db: Backend, private_redis: str, clock: FrozenClock, driver: User
) -> None:
    """Production's way: the worker plans the reservation as a deferred job with a stable id and
    runs it at its instant; the charge point holds its socket in a web process."""
    now = real_now(clock)
    async with live_stack(db, private_redis, clock) as web, served(web) as address:
        timing = Timing.from_settings(state(web).settings)
        async with booted_charger(address, hours=HoursSpec(twentyfourseven=True)) as (station, point):
            planned = now + timedelta(seconds=2)
            booking = await insert_booking(station, start=planned + timing.lead, status=BookingStatus.PAID, user=driver)
            worker = make_worker(web, burst=False)
            running = asyncio.create_task(worker.async_run())
            try:
                reserve = await received(point, "ReserveNow")
                late = (datetime.now(UTC) - planned).total_seconds()
            finally:
                await worker.close()
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
    assert reserve["reservation_id"] == booking.id and reserve["id_tag"] == driver.id_tag
    assert 0 <= late < 1.0
