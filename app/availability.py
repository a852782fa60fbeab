"""Which chargers are taken for an interval. Live availability is derived from bookings, never
stored: a booking blocks its charger while it is PAID, or CONFIRMED with its hold still running.

A CONFIRMED booking whose hold has expired no longer blocks anyone, even before the close-out job
has marked it EXPIRED; the booking transaction expires such holds itself before it inserts,
because the PostgreSQL exclusion constraint still sees them as active.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.expressions import Q

from app.models import Booking, BookingStatus


def blocking(now: datetime) -> Q:
    """Bookings that hold their charger at ``now``."""
    return Q(status=BookingStatus.PAID) | Q(status=BookingStatus.CONFIRMED, hold_expires_at__gt=now)


def overlapping(start: datetime, end: datetime) -> Q:
    """Bookings whose [slot_start, slot_end) meets [start, end)."""
    return Q(slot_start__lt=end, slot_end__gt=start)


async def busy_charger_ids(station_id: int, start: datetime, end: datetime, now: datetime) -> set[int]:
    rows: list[int] = await Booking.filter(  # type: ignore[assignment]
        blocking(now), overlapping(start, end), station_id=station_id
    ).values_list("charger_id", flat=True)
    return set(rows)
