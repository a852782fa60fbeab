"""How stations are used (DESIGN §15): bookings, booked and open charger-hours, utilization,
revenue and lost bookings, per station-local day and as an hour-of-week heatmap.

Definitions, so the figures can be checked by hand:

* A *booking* is one that was paid (PAID or COMPLETED); it is counted on the station-local day its
  slot starts, with its amount due as revenue (per currency). Cancelled and expired ones are counted
  apart, on the same day rule.
* *Booked charger-hours* are the real hours of paid slots, split across the station-local days and
  hours they cover (an overnight slot counts on both days), clipped to the date range.
* *Open charger-hours* are the hours the hours engine (``app.hours``) has the station open in each
  local hour, times its chargers in service now. DST days have their real length (23 or 25 hours);
  the repeated hour of a fall-back night is one bucket holding two hours.
* *Utilization* is booked ÷ open charger-hours (None where nothing was open).

On PostgreSQL the booking figures are aggregated in SQL (``generate_series`` splits slots into
local hours); only one row per day and hour comes back. SQLite has neither time zones nor
``generate_series``, so the embedded default splits the range's paid slots in Python with the same
function that splits opening hours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tortoise import connections

from app.db import is_postgres
from app.models import Booking, BookingStatus, Charger, ChargerStatus, Station
from app.station_views import load_views

PAID = (BookingStatus.PAID, BookingStatus.COMPLETED)
HOUR = timedelta(hours=1)
#: Longest range one request may ask for.
MAX_DAYS = 366

#: (station-local day, hour of day)
Bucket = tuple[date, int]


@dataclass(frozen=True)
class InsightsQuery:
    station_id: int | None
    first_day: date
    last_day: date


@dataclass
class Figures:
    bookings: int = 0
    booked_hours: float = 0.0
    open_hours: float = 0.0
    revenue: dict[str, int] = field(default_factory=dict)  # currency -> minor units

    @property
    def utilization(self) -> float | None:
        return self.booked_hours / self.open_hours if self.open_hours > 0 else None


@dataclass
class Insights:
    query: InsightsQuery
    totals: Figures
    cancelled: int
    expired: int
    days: list[tuple[date, Figures]]
    #: (ISO weekday 1-7, hour 0-23) -> (booked hours, open hours), every one of the 168 cells.
    heatmap: dict[tuple[int, int], tuple[float, float]]


def local_hours(start: datetime, end: datetime, zone: ZoneInfo) -> Iterator[tuple[Bucket, float]]:
    """``[start, end)`` split at the zone's local hour boundaries: (bucket, real hours in it)."""
    t = start
    while t < end:
        local = t.astimezone(zone)
        top = local.replace(minute=0, second=0, microsecond=0)
        boundary = (top.replace(tzinfo=None) + HOUR).replace(tzinfo=zone).astimezone(UTC)
        stop = min(end, boundary) if boundary > t else min(end, t + HOUR)
        yield (top.date(), top.hour), (stop - t).total_seconds() / 3600
        t = stop


def _day_bounds(query: InsightsQuery, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The range as instants at a station: its local midnight of the first day to the one after
    the last."""
    begin = datetime.combine(query.first_day, time(0), zone).astimezone(UTC)
    end = datetime.combine(query.last_day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return begin, end


async def compute(query: InsightsQuery, now: datetime) -> Insights:
    views = await load_views(None if query.station_id is None else [query.station_id], now)
    in_service = await _chargers_in_service(query.station_id)
    opened: dict[Bucket, float] = defaultdict(float)
    for view in views:
        chargers = in_service.get(view.id, 0)
        if not chargers:
            continue
        begin, end = _day_bounds(query, view.zone)
        for span_start, span_end in view.schedule.open_intervals(begin, end):
            for bucket, hours in local_hours(span_start, span_end, view.zone):
                opened[bucket] += hours * chargers
    booked, counts = await (_booked_in_sql(query) if is_postgres() else _booked_in_python(query))
    return _assemble(query, opened, booked, counts)


async def _chargers_in_service(station_id: int | None) -> dict[int, int]:
    query = Charger.filter(status=ChargerStatus.AVAILABLE)
    if station_id is not None:
        query = query.filter(station_id=station_id)
    counts: dict[int, int] = defaultdict(int)
    for row in await query.values("station_id"):
        counts[row["station_id"]] += 1
    return counts


#: Per local day: status -> (count, currency -> minor units).
DayCounts = dict[date, dict[str, tuple[int, dict[str, int]]]]


def _coarse_bounds(query: InsightsQuery) -> tuple[datetime, datetime]:
    """UTC instants surely outside every zone's range (offsets are within ±14 hours)."""
    return (
        datetime.combine(query.first_day - timedelta(days=1), time(0), UTC),
        datetime.combine(query.last_day + timedelta(days=2), time(0), UTC),
    )


_BOOKED_SQL = """
SELECT h::date AS day, EXTRACT(HOUR FROM h)::int AS hour,
       SUM(EXTRACT(EPOCH FROM LEAST(b.slot_end, (h + interval '1 hour') AT TIME ZONE s.timezone)
                            - GREATEST(b.slot_start, h AT TIME ZONE s.timezone))) / 3600.0 AS hours
FROM bookings b
JOIN stations s ON s.id = b.station_id
CROSS JOIN LATERAL generate_series(
    date_trunc('hour', b.slot_start AT TIME ZONE s.timezone),
    (b.slot_end AT TIME ZONE s.timezone) - interval '1 microsecond',
    interval '1 hour') AS h
WHERE b.status IN ('PAID', 'COMPLETED') AND {station}
  AND b.slot_start < $2 AND b.slot_end > $3 AND h::date BETWEEN $4 AND $5
GROUP BY 1, 2
"""

_COUNTS_SQL = """
SELECT (b.slot_start AT TIME ZONE s.timezone)::date AS day, b.status, b.currency,
       COUNT(*) AS bookings, SUM(b.amount_due) AS amount
FROM bookings b
JOIN stations s ON s.id = b.station_id
WHERE {station} AND b.slot_start >= $2 AND b.slot_start < $3
GROUP BY 1, 2, 3
"""


def _for_station(sql: str, station_id: int | None) -> str:
    """One station's rows through the bookings index, or every station's: decided when the query
    is written, so the planner never has to keep a plan that serves both."""
    return sql.format(station="b.station_id = $1" if station_id is not None else "$1::int IS NULL")


async def _booked_in_sql(query: InsightsQuery) -> tuple[dict[Bucket, float], DayCounts]:
    low, high = _coarse_bounds(query)
    db = connections.get("default")
    booked: dict[Bucket, float] = {}
    booked_sql = _for_station(_BOOKED_SQL, query.station_id)
    for row in await db.execute_query_dict(booked_sql, [query.station_id, high, low, query.first_day, query.last_day]):
        booked[row["day"], row["hour"]] = float(row["hours"])
    counts: DayCounts = defaultdict(dict)
    for row in await db.execute_query_dict(_for_station(_COUNTS_SQL, query.station_id), [query.station_id, low, high]):
        if query.first_day <= row["day"] <= query.last_day:
            count, amounts = counts[row["day"]].get(row["status"], (0, {}))
            amounts = {**amounts, row["currency"]: amounts.get(row["currency"], 0) + int(row["amount"])}
            counts[row["day"]][row["status"]] = (count + int(row["bookings"]), amounts)
    return booked, counts


async def _booked_in_python(query: InsightsQuery) -> tuple[dict[Bucket, float], DayCounts]:
    low, high = _coarse_bounds(query)
    rows = Booking.filter(slot_start__lt=high, slot_end__gt=low)
    if query.station_id is not None:
        rows = rows.filter(station_id=query.station_id)
    booked: dict[Bucket, float] = defaultdict(float)
    counts: DayCounts = defaultdict(dict)
    for row in await rows.values("slot_start", "slot_end", "status", "currency", "amount_due", "station__timezone"):
        zone = ZoneInfo(row["station__timezone"])
        begin, end = _day_bounds(query, zone)
        start, stop = row["slot_start"], row["slot_end"]
        if row["status"] in PAID:
            for bucket, hours in local_hours(max(start, begin), min(stop, end), zone):
                booked[bucket] += hours
        day = start.astimezone(zone).date()
        if query.first_day <= day <= query.last_day:
            count, amounts = counts[day].get(row["status"], (0, {}))
            amounts = {**amounts, row["currency"]: amounts.get(row["currency"], 0) + row["amount_due"]}
            counts[day][row["status"]] = (count + 1, amounts)
    return booked, counts


def _assemble(
    query: InsightsQuery, opened: dict[Bucket, float], booked: dict[Bucket, float], counts: DayCounts
) -> Insights:
    days: dict[date, Figures] = {}
    day = query.first_day
    while day <= query.last_day:
        days[day] = Figures()
        day += timedelta(days=1)
    heat: dict[tuple[int, int], list[float]] = {(w, h): [0.0, 0.0] for w in range(1, 8) for h in range(24)}
    for (day, hour), hours in booked.items():
        if day in days:
            days[day].booked_hours += hours
            heat[day.isoweekday(), hour][0] += hours
    for (day, hour), hours in opened.items():
        if day in days:
            days[day].open_hours += hours
            heat[day.isoweekday(), hour][1] += hours
    totals, lost = Figures(), {BookingStatus.CANCELLED.value: 0, BookingStatus.EXPIRED.value: 0}
    for day, by_status in counts.items():
        for status, (count, amounts) in by_status.items():
            if status in PAID:
                days[day].bookings += count
                for currency, amount in amounts.items():
                    days[day].revenue[currency] = days[day].revenue.get(currency, 0) + amount
            elif status in lost:
                lost[status] += count
    for figures in days.values():
        totals.bookings += figures.bookings
        totals.booked_hours += figures.booked_hours
        totals.open_hours += figures.open_hours
        for currency, amount in figures.revenue.items():
            totals.revenue[currency] = totals.revenue.get(currency, 0) + amount
    return Insights(
        query=query,
        totals=totals,
        cancelled=lost[BookingStatus.CANCELLED.value],
        expired=lost[BookingStatus.EXPIRED.value],
        days=sorted(days.items()),
        heatmap={cell: (values[0], values[1]) for cell, values in heat.items()},
    )


async def station_exists(station_id: int) -> bool:
    return await Station.exists(id=station_id)
