"""Delivering the notifications outbox: each notification once per channel (DESIGN §13).

A delivery pass claims undelivered rows, sends them and marks them sent. On PostgreSQL the claim
is ``FOR UPDATE SKIP LOCKED`` inside the pass's transaction, so several workers running passes at
once each take different rows and none is sent twice; a worker that dies mid-pass holds no lock
any more, and its rows are sent by the next pass (every worker runs one as it starts). SQLite is
the embedded default's single process, where one pass at a time (a lock) does the same.

Passes are jobs (``app.job_queue``): enqueued right after a change commits, so a notification
reaches the driver's open pages within milliseconds, and at worker start as the catch-up. Nothing
scans the outbox on a timer.

Live: published on the driver's own channel (``app.events.publish_to_driver``) as
``{"type": "notification", "seq", "unread_count", ...fields}``; ``seq`` counts per driver, and
``unread_count`` is the driver's count once this notification has arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from app.bus import Bus
from app.db import fetch, is_postgres
from app.events import driver_channel, publish_to_driver
from app.notifications import FIELDS, as_fields

log = logging.getLogger(__name__)

#: Rows one live pass claims per transaction.
BATCH = 200
_local_pass = asyncio.Lock()

_CLAIM_LIVE = f"""
SELECT {", ".join(FIELDS)}, user_id FROM notifications
WHERE live_sent_at IS NULL ORDER BY id LIMIT {BATCH}"""


async def deliver_pending(now: datetime, *, bus: Bus) -> int:
    """Send every notification not yet sent live; returns how many were sent by this pass."""
    sent = 0
    while True:
        batch = await _live_batch(now, bus)
        sent += batch
        if batch < BATCH:
            return sent


async def _live_batch(now: datetime, bus: Bus) -> int:
    if not is_postgres():
        async with _local_pass:
            rows = await fetch(_CLAIM_LIVE)
            await _publish(rows, bus)
            await _mark_live(rows, now)
            return len(rows)
    async with in_transaction() as connection:
        rows = await fetch(_CLAIM_LIVE + " FOR UPDATE SKIP LOCKED", connection=connection)
        await _publish(rows, bus)
        await _mark_live(rows, now, connection)
        return len(rows)


async def _mark_live(rows: list[dict[str, Any]], now: datetime, connection: Any = None) -> None:
    if rows:
        ids = [row["id"] for row in rows]
        marks = ", ".join(f"${n + 2}" for n in range(len(ids)))
        await fetch(
            f"UPDATE notifications SET live_sent_at = $1 WHERE id IN ({marks})", now, *ids, connection=connection
        )


async def _publish(rows: list[dict[str, Any]], bus: Bus) -> None:
    """Publish in id order, each with the driver's unread count as of its arrival."""
    if not rows:
        return
    users = sorted({row["user_id"] for row in rows})
    marks = ", ".join(f"${n + 1}" for n in range(len(users)))
    unread = {
        row["user_id"]: row["unread"]
        for row in await fetch(
            f"SELECT user_id, count(*) AS unread FROM notifications WHERE read_at IS NULL AND user_id IN ({marks}) "
            "GROUP BY user_id",
            *users,
        )
    }
    # Unread rows of this batch not yet published, per driver: subtracted so counts rise one by one.
    ahead = Counter(row["user_id"] for row in rows if row["read_at"] is None)
    for row in rows:
        user_id = row["user_id"]
        if row["read_at"] is None:
            ahead[user_id] -= 1
        seq = await bus.next_seq(driver_channel(user_id))
        message = {"type": "notification", "seq": seq, "unread_count": unread.get(user_id, 0) - ahead[user_id]}
        await publish_to_driver(bus, user_id, {**message, **as_fields(row)})
