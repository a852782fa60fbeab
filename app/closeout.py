"""Closing out stale bookings: unpaid holds that ran out become EXPIRED, paid bookings whose slot
has ended become COMPLETED. The same pass retries refunds still owed for bookings the system
cancelled (``app.rebooking``) and forgets what has outlived its use: idempotency records past
their 24 h and sessions past their expiry.

Availability never waits for this job (a lapsed hold stops blocking its charger at
``hold_expires_at``, see ``app.availability``); close-out makes the stored status true and tells
live clients which chargers are free. Every update is conditional on the status it replaces, so
a hold paid a moment before the update is left alone, two runs at once do the work once, and a
second run finds nothing to do and publishes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app import history
from app.bus import Bus
from app.clock import Clock
from app.db import fetch
from app.events import publish_availability
from app.models import Booking, BookingStatus, IdempotencyRecord, Session
from app.payment_provider import PaymentProvider
from app.rebooking import refund_pending
from app.tasks import Sleeper, stop_if_cancelled

log = logging.getLogger(__name__)

#: How often the embedded default runs close-out (the worker's cron runs at :00 and :30).
INTERVAL_SECONDS = 30.0


@dataclass(frozen=True)
class CloseOut:
    expired: int
    completed: int
    station_ids: tuple[int, ...]
    purged: int = 0
    refunded: int = 0


#: What a booking's history says when close-out moves it on.
_EVENTS = {
    BookingStatus.EXPIRED: (history.EXPIRED, "The hold ran out unpaid."),
    BookingStatus.COMPLETED: (history.COMPLETED, "The slot ended."),
}


#: The status each close-out move leaves.
_LEAVES = {BookingStatus.EXPIRED: BookingStatus.CONFIRMED, BookingStatus.COMPLETED: BookingStatus.PAID}


async def _move(condition: Q, to: BookingStatus, now: datetime) -> tuple[int, set[int]]:
    """Move the bookings matching ``condition`` (which names the status they leave) to ``to``,
    with a history line each, in one transaction; (how many, their stations)."""
    if not await Booking.filter(condition).exists():
        return 0, set()
    async with in_transaction() as connection:
        ids = await Booking.filter(condition).values_list("id", flat=True)
        if not ids:
            return 0, set()
        marks = ", ".join(f"${n + 4}" for n in range(len(ids)))
        rows = await fetch(
            f"UPDATE bookings SET status = $1, updated_at = $2 WHERE status = $3 AND id IN ({marks}) "
            "RETURNING id, station_id",
            to.value, now, _LEAVES[to].value, *ids,
            connection=connection,
        )  # fmt: skip
        event, detail = _EVENTS[to]
        await history.record_many(((row["id"], event, detail, now) for row in rows), connection=connection)
    return len(rows), {row["station_id"] for row in rows}


async def close_out(now: datetime, *, bus: Bus, provider: PaymentProvider) -> CloseOut:
    """Expire lapsed holds and complete ended bookings as of ``now``, then publish availability
    for every station touched (after the updates are committed)."""
    expired, expired_at = await _move(
        Q(status=BookingStatus.CONFIRMED, hold_expires_at__lte=now), BookingStatus.EXPIRED, now
    )
    completed, completed_at = await _move(Q(status=BookingStatus.PAID, slot_end__lte=now), BookingStatus.COMPLETED, now)
    station_ids = tuple(sorted(expired_at | completed_at))
    for station_id in station_ids:
        await publish_availability(bus, station_id, now)
    refunded = await refund_pending(provider)
    purged = await IdempotencyRecord.filter(expires_at__lte=now).delete()
    purged += await Session.filter(expires_at__lte=now).delete()
    if expired or completed or purged or refunded:
        log.info(
            "close-out: %d holds expired, %d bookings completed, %d refunds made, %d stale records purged",
            expired,
            completed,
            refunded,
            purged,
        )
    return CloseOut(expired, completed, station_ids, purged, refunded)


async def run_close_out(
    clock: Clock,
    *,
    bus: Bus,
    provider: PaymentProvider,
    interval: float = INTERVAL_SECONDS,
    sleep: Sleeper = asyncio.sleep,
) -> None:
    """The embedded default's close-out: run now, then every ``interval`` seconds."""
    while True:
        try:
            await close_out(clock.now(), bus=bus, provider=provider)
        except Exception:
            stop_if_cancelled()
            log.exception("close-out failed; trying again at the next interval")
        await sleep(interval)
