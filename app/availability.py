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
from app.db import instant as instant_of
from app.models import Booking, BookingStatus, ChargerStatus


def holds_charger(status: str, hold_expires_at: datetime | None, now: datetime) -> bool:
    """Whether a booking holds its charger at ``now``: the one rule, for booking, the free-chargers
    hint and the live views alike. ``blocking`` is the same rule as a query."""
    if status == BookingStatus.PAID:
        return True
    return status == BookingStatus.CONFIRMED and hold_expires_at is not None and hold_expires_at > now


#: What a charger may report that makes it unusable whatever its bookings say (DESIGN §14).
UNUSABLE_LIVE = frozenset({"Faulted", "Unavailable"})


def reports_fault(linked: bool, online: bool, live_status: str | None) -> bool:
    """A charger linked to a charge point that is offline, or reports Faulted or Unavailable."""
    return linked and (not online or live_status in UNUSABLE_LIVE)


def live_usable(linked: bool, online: bool, live_status: str | None, charging: bool) -> bool:
    """Whether what the charger itself reports lets a driver use it now: a charger linked to a
    charge point must be online, not Faulted or Unavailable, and not charging somebody already
    (with a booking it is busy anyway; without one it is a walk-in's). One without a charge point
    reports nothing and is judged by its bookings alone."""
    return not reports_fault(linked, online, live_status) and not (linked and charging)


def session_summary(started_at: Any, meter_start: int, meter_last: int | None, power_w: float | None) -> dict[str, Any]:
    """The running session as a station's screens show it: no driver, no booking."""
    return {
        "energy_kwh": round(max(0, (meter_last if meter_last is not None else meter_start) - meter_start) / 1000, 3),
        "power_kw": round((power_w or 0.0) / 1000, 2),
        "since": aware(started_at).isoformat() if isinstance(started_at, datetime) else str(started_at),
    }


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
SELECT c.id, c.charger_number, c.charger_type, c.power_kw, c.status, c.charge_point_id, c.live_status, cp.online,
       cs.started_at, cs.meter_start, cs.meter_last, cs.power_w,
       EXISTS (SELECT 1 FROM bookings b
               WHERE b.charger_id = c.id AND b.slot_start <= $2 AND b.slot_end > $2 AND {_BLOCKING_SQL}) AS busy
FROM stations s LEFT JOIN chargers c ON c.station_id = s.id
LEFT JOIN charge_points cp ON cp.id = c.charge_point_id
LEFT JOIN charging_sessions cs ON cs.id = (SELECT max(o.id) FROM charging_sessions o
                                           WHERE o.charger_id = c.id AND o.stopped_at IS NULL)
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
    return [charger_now(c) for c in rows if c["id"] is not None]


def charger_now(row: dict[str, Any]) -> dict[str, Any]:
    """A charger of an availability event from its ``_CHARGERS_NOW`` row."""
    linked = row["charge_point_id"] is not None
    session = None
    if row["started_at"] is not None:
        session = session_summary(instant_of(row["started_at"]), row["meter_start"], row["meter_last"], row["power_w"])
    usable = live_usable(linked, bool(row["online"]), row["live_status"], session is not None)
    return {
        "id": row["id"],
        "charger_number": row["charger_number"],
        "charger_type": row["charger_type"],
        "power_kw": float(row["power_kw"]),
        "status": str(ChargerStatus(row["status"])),
        "available_now": row["status"] == ChargerStatus.AVAILABLE and not row["busy"] and usable,
        "live_status": row["live_status"],
        "online": bool(row["online"]) if linked else None,
        "session": session,
    }
