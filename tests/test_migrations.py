"""Migrations build the schema from empty, and on PostgreSQL the database itself refuses overlaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from app.models import Booking, BookingStatus, Charger, Station
from tests.conftest import Backend
from tests.helpers import insert_booking

T0 = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


async def _charger() -> Charger:
    station = await Station.create(
        name="S", location="L", city="C", latitude=0, longitude=0, timezone="UTC", price_per_hour=1000, currency="EUR"
    )
    return await Charger.create(station=station, charger_number=1, charger_type="CCS2", power_kw=50)


async def _book(user, charger: Charger, start: datetime, minutes: int, status=BookingStatus.CONFIRMED) -> Booking:
    return await insert_booking(
        charger.station_id,
        start=start,
        minutes=minutes,
        status=status,
        charger_number=charger.charger_number,
        user=user,
    )


async def test_every_table_exists_after_migrating_from_empty(db: Backend) -> None:
    conn = connections.get("default")
    if db.is_postgres:
        rows = await conn.execute_query_dict("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
    else:
        rows = await conn.execute_query_dict("SELECT name FROM sqlite_master WHERE type = 'table'")
    names = {row["name"] for row in rows}
    assert {
        "users",
        "sessions",
        "stations",
        "regular_hours",
        "exceptional_periods",
        "chargers",
        "bookings",
        "payments",
        "idempotency_records",
        "booking_events",
        "notifications",
    } <= names


async def test_database_rejects_overlapping_active_bookings_of_one_charger(db: Backend, driver) -> None:
    if not db.is_postgres:
        pytest.skip("the exclusion constraint is PostgreSQL's; SQLite relies on BEGIN IMMEDIATE")
    charger = await _charger()
    await _book(driver, charger, T0, 60)
    with pytest.raises(IntegrityError) as raised:
        await _book(driver, charger, T0 + timedelta(minutes=30), 60)
    assert getattr(raised.value.__cause__, "sqlstate", None) == "23P01"


async def test_database_accepts_back_to_back_and_inactive_overlaps(db: Backend, driver) -> None:
    charger = await _charger()
    await _book(driver, charger, T0, 60)
    await _book(driver, charger, T0 + timedelta(minutes=60), 60)  # [) ranges touch, never overlap
    await _book(driver, charger, T0 + timedelta(minutes=15), 30, status=BookingStatus.CANCELLED)
    await _book(driver, charger, T0 + timedelta(minutes=15), 30, status=BookingStatus.EXPIRED)
    assert await Booking.filter(charger=charger).count() == 4
