"""The server clock, injected so tests can move time instead of waiting for it.

Every decision about "now" (is the station open, has the hold expired) asks the app's clock;
nothing in app/ calls datetime.now() directly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

#: The years a date or time sent to the API may fall in. Far enough inside ``datetime``'s own range
#: that moving between zones and adding a day or a slot never overflows; wide enough for anything real.
FIRST_YEAR, LAST_YEAR = 1970, 9998
YEARS = f"in the years {FIRST_YEAR} to {LAST_YEAR}"

Day = TypeVar("Day", date, datetime)


def supported_year(value: Day) -> Day:
    """``value`` unchanged, or ValueError when it is outside ``FIRST_YEAR``..``LAST_YEAR``."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be {YEARS}")
    return value


def station_instant(value: datetime, timezone: str) -> datetime | None:
    """The UTC instant a driver means: an aware time as it is, a naive one as the station's wall
    clock. In a fold that is the first occurrence; a time the clocks skip in a DST gap does not
    exist at the station and gives None."""
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    zone = ZoneInfo(timezone)
    instant = value.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != value:
        return None
    return instant


def aware(value: datetime) -> datetime:
    """A datetime read back from the database, which SQLite returns without its (UTC) zone."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests, demos, benchmarks)."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._now = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._now = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta
