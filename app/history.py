"""A booking's history: what happened to it, when and why (DESIGN §13).

Each line is written in the transaction that made it happen, so the history never claims a change
that was rolled back and never misses one that committed. Events: ``created``, ``paid``,
``moved``, ``cancelled`` (with the reason), ``expired``, ``completed``, ``reminder_sent``, and
whatever the charger link adds (``reservation_sent``, ``reservation_failed``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch, instant

CREATED, PAID, MOVED, CANCELLED = "created", "paid", "moved", "cancelled"
EXPIRED, COMPLETED, REMINDER_SENT = "expired", "completed", "reminder_sent"

#: One history line: (booking id, event, detail, at).
Line = tuple[int, str, str, datetime]

#: Lines per statement: well inside both databases' limits on parameters.
CHUNK = 500

#: A history line as a row of ``SELECT``, for folding into a statement that makes the change.
INSERT_COLUMNS = "booking_events (booking_id, event, detail, at)"


async def record(
    booking_id: int, event: str, detail: str, at: datetime, *, connection: BaseDBAsyncClient | None = None
) -> None:
    """Add one line to a booking's history; inside the caller's transaction when there is one."""
    await record_many([(booking_id, event, detail, at)], connection=connection)


async def record_many(lines: Iterable[Line], *, connection: BaseDBAsyncClient | None = None) -> None:
    """Several lines in one statement (a change that touches many bookings)."""
    rows = list(lines)
    connection = connection or connections.get("default")
    for start in range(0, len(rows), CHUNK):
        values, params = [], []
        for n, (booking_id, event, detail, at) in enumerate(rows[start : start + CHUNK]):
            values.append(f"(${4 * n + 1}, ${4 * n + 2}, ${4 * n + 3}, ${4 * n + 4})")
            params += [booking_id, event, detail[:500], at]
        await fetch(f"INSERT INTO {INSERT_COLUMNS} VALUES {', '.join(values)}", *params, connection=connection)


async def history_of(booking_id: int) -> list[dict[str, Any]]:
    """The booking's history, oldest first: ``[{at, event, detail}]``."""
    rows = await fetch("SELECT at, event, detail FROM booking_events WHERE booking_id = $1 ORDER BY at, id", booking_id)
    return [{"at": instant(row["at"]), "event": row["event"], "detail": row["detail"]} for row in rows]
