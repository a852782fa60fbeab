from __future__ import annotations

from datetime import timedelta

from app.availability import busy_charger_ids, chargers_now
from app.models import Booking, BookingStatus, Charger, ChargerStatus, Station
from tests.conftest import Backend


async def test_only_paid_and_unexpired_holds_block_their_charger(db: Backend, driver, clock) -> None:
    now = clock.now()
    station = await Station.create(
        name="S", location="L", city="C", latitude=0, longitude=0, timezone="UTC", price_per_hour=1000, currency="EUR"
    )
    chargers = [
        await Charger.create(station=station, charger_number=n, charger_type="CCS2", power_kw=50) for n in range(1, 6)
    ]
    start, end = now + timedelta(hours=1), now + timedelta(hours=2)

    async def book(charger: Charger, status: BookingStatus, hold_minutes: int = 10, shift: int = 0) -> None:
        await Booking.create(
            user=driver,
            station=station,
            charger=charger,
            status=status,
            slot_start=start + timedelta(minutes=shift),
            slot_end=end + timedelta(minutes=shift),
            amount_due=1000,
            currency="EUR",
            hold_expires_at=now + timedelta(minutes=hold_minutes),
        )

    await book(chargers[0], BookingStatus.PAID)
    await book(chargers[1], BookingStatus.CONFIRMED)
    await book(chargers[2], BookingStatus.CONFIRMED, hold_minutes=-1)  # hold ran out
    await book(chargers[3], BookingStatus.CANCELLED)
    await book(chargers[4], BookingStatus.PAID, shift=60)  # starts exactly when the interval ends

    assert await busy_charger_ids(station.id, start, end, now) == {chargers[0].id, chargers[1].id}


async def test_chargers_now_marks_chargers_held_at_this_instant_and_knows_missing_stations(
    db: Backend, driver, clock
) -> None:
    now = clock.now()
    station = await Station.create(
        name="S", location="L", city="C", latitude=0, longitude=0, timezone="UTC", price_per_hour=1000, currency="EUR"
    )
    assert await chargers_now(station.id, now) == []
    assert await chargers_now(station.id + 1, now) is None
    chargers = [
        await Charger.create(station=station, charger_number=n, charger_type="CCS2", power_kw=50) for n in (2, 1, 3, 4)
    ]
    chargers[3].status = ChargerStatus.OUT_OF_SERVICE
    await chargers[3].save()

    async def book(charger: Charger, status: BookingStatus, starts_in: int, hold_minutes: int = 10) -> None:
        await Booking.create(
            user=driver,
            station=station,
            charger=charger,
            status=status,
            slot_start=now + timedelta(minutes=starts_in),
            slot_end=now + timedelta(minutes=starts_in + 60),
            amount_due=1000,
            currency="EUR",
            hold_expires_at=now + timedelta(minutes=hold_minutes),
        )

    await book(chargers[0], BookingStatus.PAID, starts_in=-30)  # number 2: charging now
    await book(chargers[1], BookingStatus.CONFIRMED, starts_in=-30, hold_minutes=-1)  # number 1: hold ran out
    await book(chargers[2], BookingStatus.PAID, starts_in=30)  # number 3: later today

    found = await chargers_now(station.id, now)
    assert found is not None
    assert [(c["charger_number"], c["status"], c["available_now"]) for c in found] == [
        (1, "AVAILABLE", True),
        (2, "AVAILABLE", False),
        (3, "AVAILABLE", True),
        (4, "OUT_OF_SERVICE", False),
    ]
