"""Finding bookings for operators (DESIGN §15): filters, paging and the rows of the CSV export.

Dates are days at each booking's own station, as the operator reading a station's bookings means
them. Stations in different zones start a day at different instants, so a date range becomes one
UTC range per zone (few zones, however many stations), and the database pages and counts exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from app.models import Booking, BookingStatus, Station

#: Rows fetched per round trip while exporting.
EXPORT_CHUNK = 1000


def status_condition(status: BookingStatus, now: datetime) -> Q:
    """Bookings whose status *reads* ``status`` at ``now``: a hold that ran out reads EXPIRED even
    before close-out has stored it (``bookings.effective_status``)."""
    if status == BookingStatus.CONFIRMED:
        return Q(status=status, hold_expires_at__gt=now)
    if status == BookingStatus.EXPIRED:
        return Q(status=status) | Q(status=BookingStatus.CONFIRMED, hold_expires_at__lte=now)
    return Q(status=status)


@dataclass(frozen=True)
class BookingFilter:
    """What an operator narrows the bookings by; None means "any". ``first_day``/``last_day`` are
    inclusive station-local dates of the slot's start."""

    station_id: int | None = None
    status: BookingStatus | None = None
    first_day: date | None = None
    last_day: date | None = None
    email: str | None = None
    newest_first: bool = True


def _local_midnight(day: date, zone: str) -> datetime:
    """In UTC: SQLite compares stored instants as text, so every bound must share their offset."""
    return datetime.combine(day, time(0), ZoneInfo(zone)).astimezone(UTC)


async def _days_condition(where: BookingFilter) -> Q | None:
    if where.first_day is None and where.last_day is None:
        return None
    stations = Station.all() if where.station_id is None else Station.filter(id=where.station_id)
    zones: Collection[str] = await stations.distinct().values_list("timezone", flat=True)  # type: ignore[assignment]
    condition = Q(id__in=[])  # no zone, no booking
    for zone in zones:
        in_zone = Q(station__timezone=zone)
        if where.first_day is not None:
            in_zone &= Q(slot_start__gte=_local_midnight(where.first_day, zone))
        if where.last_day is not None:
            in_zone &= Q(slot_start__lt=_local_midnight(where.last_day + timedelta(days=1), zone))
        condition |= in_zone
    return condition


async def matching(where: BookingFilter, now: datetime) -> QuerySet[Booking]:
    """Every booking the filter keeps, with station, charger and driver, ordered by slot."""
    query = Booking.all().select_related("station", "charger", "user")
    if where.station_id is not None:
        query = query.filter(station_id=where.station_id)
    if where.status is not None:
        query = query.filter(status_condition(where.status, now))
    if where.email:
        query = query.filter(user__email__icontains=where.email.strip().lower())
    days = await _days_condition(where)
    if days is not None:
        query = query.filter(days)
    order = ("-slot_start", "-id") if where.newest_first else ("slot_start", "id")
    return query.order_by(*order)


async def find_bookings(where: BookingFilter, now: datetime, *, limit: int, offset: int) -> tuple[int, list[Booking]]:
    """(how many match, one page of them)."""
    query = await matching(where, now)
    return await query.count(), await query.offset(offset).limit(limit)


async def export_bookings(where: BookingFilter, now: datetime) -> AsyncIterator[Booking]:
    """Every matching booking, read a chunk at a time so an export of any size holds one chunk in
    memory. Each chunk continues after the last row of the one before (by slot, then id), so
    reading the ten-thousandth chunk costs what reading the first did."""
    query = await matching(where, now)
    after: Booking | None = None
    while True:
        chunk = await (query if after is None else query.filter(_beyond(after, where.newest_first))).limit(EXPORT_CHUNK)
        for booking in chunk:
            yield booking
        if len(chunk) < EXPORT_CHUNK:
            return
        after = chunk[-1]


def _beyond(row: Booking, descending: bool) -> Q:
    """Rows after ``row`` in the export's order."""
    if descending:
        return Q(slot_start__lt=row.slot_start) | Q(slot_start=row.slot_start, id__lt=row.id)
    return Q(slot_start__gt=row.slot_start) | Q(slot_start=row.slot_start, id__gt=row.id)
