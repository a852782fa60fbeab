"""The server clock, injected so tests can move time instead of waiting for it.

Every decision about "now" (is the station open, has the hold expired) asks the app's clock;
nothing in app/ calls datetime.now() directly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


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
