"""Which chargers are taken, and when that next changes. Live availability is derived from
bookings, never stored: a booking blocks its charger while it is PAID, or CONFIRMED with its hold
still running.

A CONFIRMED booking whose hold has expired no longer blocks anyone, even before the close-out job
has marked it EXPIRED; the booking transaction expires such holds itself before it inserts,
because the PostgreSQL exclusion constraint still sees them as active.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from app.clock import aware
from app.db import fetch
from app.models import Booking, BookingStatus, ChargerStatus


def holds_charger(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    """Whether a booking holds its charger at ``now``: the one rule, for booking, the free-chargers
    hint and the live views alike. ``blocking`` is the same rule as a query."""
    if status == BookingStatus.PAID:
        return True
    return status == BookingStatus.CONFIRMED and hold_expires_at is not None and hold_expires_at > now


def blocking(now: datetime) -> Q:
    """Bookings that hold their charger at ``now`` (``holds_charger`` as a query; ``_BLOCKING_SQL``
    in raw SQL)."""
    return Q(status=BookingStatus.PAID) | Q(status=BookingStatus.CONFIRMED, hold_expires_at__gt=now)


def overlapping(start: datetime, end: datetime) -> Q:
    """Bookings whose [slot_start, slot_end) meets [start, end)."""
    return Q(slot_start__lt=end, slot_end__gt=start)


async def busy_charger_ids(station_id: int, start: datetime, end: datetime, now: datetime) -> set[int]:
    rows: list[int] = await Booking.filter(  # type: ignore[assignment]
        blocking(now), overlapping(start, end), station_id=station_id
    ).values_list("charger_id", flat=True)
    return set(rows)


@dataclass(frozen=True, slots=True)
class BookingSpan:
    """A CONFIRMED or PAID booking that has not ended; it blocks its charger over ``[start, end)``
    unless its hold runs out first (``hold_expires_at`` is None for PAID bookings)."""

    charger_id: int
    start: datetime
    end: datetime
    hold_expires_at: datetime | None

    @property
    def until(self) -> datetime:
        """When it stops blocking: at its end, or when its hold runs out if that comes first."""
        return self.end if self.hold_expires_at is None else min(self.end, self.hold_expires_at)

    def blocks(self, now: datetime) -> bool:
        return self.start <= now < self.until


async def load_spans(station_ids: Collection[int] | None, now: datetime) -> dict[int, list[BookingSpan]]:
    """The bookings that block a charger at or after ``now``, by station (every station when
    None), in one query. Stations without any are left out."""
    bookings = Booking.filter(blocking(now), slot_end__gt=now)
    if station_ids is not None:
        bookings = bookings.filter(station_id__in=list(station_ids))
    spans: dict[int, list[BookingSpan]] = defaultdict(list)
    for row in await bookings.values("station_id", "charger_id", "slot_start", "slot_end", "status", "hold_expires_at"):
        held = None if row["status"] == BookingStatus.PAID else aware(row["hold_expires_at"])
        spans[row["station_id"]].append(
            BookingSpan(row["charger_id"], aware(row["slot_start"]), aware(row["slot_end"]), held)
        )
    return spans


def busy_changes(spans: Iterable[BookingSpan]) -> Iterator[datetime]:
    """The instants at which a charger becomes busy or free. Back-to-back bookings of one charger
    change nothing where they meet, and a hold that runs out before its slot starts never blocks,
    so neither counts."""
    by_charger: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for span in spans:
        if span.start < span.until:
            by_charger[span.charger_id].append((span.start, span.until))
    for intervals in by_charger.values():
        intervals.sort()
        start, end = intervals[0]
        for next_start, next_end in intervals[1:]:
            if next_start > end:
                yield start
                yield end
                start = next_start
            end = max(end, next_end)
        yield start
        yield end


def next_busy_change(spans: Iterable[BookingSpan], after: datetime) -> datetime | None:
    """The first instant after ``after`` at which one of these bookings makes a charger busy or
    free."""
    return min((at for at in busy_changes(spans) if at > after), default=None)


#: ``blocking`` in SQL, for a booking row ``b`` and the instant ``$2``.
_BLOCKING_SQL = (
    f"(b.status = '{BookingStatus.PAID}' OR (b.status = '{BookingStatus.CONFIRMED}' AND b.hold_expires_at > $2))"
)

_CHARGERS_NOW = f"""
SELECT c.id, c.charger_number, c.charger_type, c.power_kw, c.status,
       EXISTS (SELECT 1 FROM bookings b
               WHERE b.charger_id = c.id AND b.slot_start <= $2 AND b.slot_end > $2 AND {_BLOCKING_SQL}) AS busy
FROM stations s LEFT JOIN chargers c ON c.station_id = s.id
WHERE s.id = $1
ORDER BY c.charger_number"""


async def chargers_now(station_id: int, now: datetime) -> list[dict[str, Any]] | None:
    """Each charger of the station (by number), with all a page shows of it (connector, power) and
    whether it is free at ``now``; None when there is no such station. One statement, for the
    availability event published after every booking or charger change, which must not cost a
    reload of the whole station, and lets a page draw a charger it has never seen at once."""
    rows = await fetch(_CHARGERS_NOW, station_id, now)
    if not rows:
        return None
    return [
        {
            "id": c["id"],
            "charger_number": c["charger_number"],
            "charger_type": c["charger_type"],
            "power_kw": float(c["power_kw"]),
            "status": str(ChargerStatus(c["status"])),
            "available_now": c["status"] == ChargerStatus.AVAILABLE and not c["busy"],
        }
        for c in rows
        if c["id"] is not None
    ]
