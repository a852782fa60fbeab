"""Timed notifications (DESIGN §13): told at their instant, once, and only if still true.

* ``hold_expiring``: 2 minutes before an unpaid hold runs out;
* ``slot_reminder``: 15 minutes before the slot starts (paid, or held with the hold running);
* ``slot_ending``: 10 minutes before a running paid slot ends;
* ``station_closing_soon``: 15 minutes before the station closes, for a booking running then or
  starting before the closing.

Each is a job deferred to its instant (``app.job_queue``) with the id
``remind:{kind}:{booking}:{instant}``: planned when the booking is made (nothing else moves these
instants: paying keeps them, a move keeps the slot) and again for every live booking when a worker
starts and every ten minutes (hours edited meanwhile move the closing), so however often it is
planned the job exists once. When it fires it reads the booking afresh and writes at most one
notification (the outbox's ``dedupe_key``); a booking cancelled, expired or changed since is told
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from app import history, notifications
from app.hours import Schedule
from app.job_queue import REMIND, Job, JobQueue
from app.models import Booking, BookingStatus, NotificationKind
from app.notifications import (
    CLOSING_SOON_BEFORE,
    HOLD_EXPIRING_BEFORE,
    SLOT_ENDING_BEFORE,
    SLOT_REMINDER_BEFORE,
    deliver_soon,
    slot_of,
)
from app.transitions import load_schedules

log = logging.getLogger(__name__)
K = NotificationKind


@dataclass(frozen=True)
class Planned:
    """What planning needs of a booking."""

    booking_id: int
    status: BookingStatus
    hold_expires_at: datetime | None
    slot_start: datetime
    slot_end: datetime
    #: When the station closes after the slot starts (None: not within reach, or never).
    closes_at: datetime | None

    @classmethod
    def of(cls, booking: Booking, schedule: Schedule) -> Planned:
        closes_at = schedule.next_change(booking.slot_start) if schedule.is_open(booking.slot_start) else None
        return cls(
            booking.id,
            BookingStatus(booking.status),
            booking.hold_expires_at,
            booking.slot_start,
            booking.slot_end,
            closes_at,
        )


def instants(booking: Planned, now: datetime) -> list[tuple[NotificationKind, datetime]]:
    """The booking's reminders still ahead of ``now``, as (kind, instant)."""
    planned: list[tuple[NotificationKind, datetime]] = []
    if booking.status == BookingStatus.CONFIRMED and booking.hold_expires_at is not None:
        planned.append((K.HOLD_EXPIRING, booking.hold_expires_at - HOLD_EXPIRING_BEFORE))
    planned.append((K.SLOT_REMINDER, booking.slot_start - SLOT_REMINDER_BEFORE))
    planned.append((K.SLOT_ENDING, booking.slot_end - SLOT_ENDING_BEFORE))
    if booking.closes_at is not None and booking.slot_end > booking.closes_at - CLOSING_SOON_BEFORE:
        planned.append((K.STATION_CLOSING_SOON, booking.closes_at - CLOSING_SOON_BEFORE))
    return [(kind, at) for kind, at in planned if at > now]


def job_id(kind: NotificationKind, booking_id: int, at: datetime) -> str:
    return f"remind:{kind.value}:{booking_id}:{at.isoformat()}"


def reminder_jobs(booking: Planned, now: datetime) -> list[Job]:
    """The booking's reminders still ahead of ``now``, as jobs deferred to their instants."""
    return [
        Job(REMIND, (kind.value, booking.booking_id, at), job_id(kind, booking.booking_id, at), at)
        for kind, at in instants(booking, now)
    ]


async def plan_booking(jobs: JobQueue, booking: Planned, now: datetime) -> int:
    planned = reminder_jobs(booking, now)
    await jobs.enqueue_all(planned)
    return len(planned)


async def plan_all(jobs: JobQueue, now: datetime, station_ids: Collection[int] | None = None) -> int:
    """Plan every live booking's reminders (of the given stations); returns how many were planned."""
    live = Booking.filter(status__in=(BookingStatus.CONFIRMED, BookingStatus.PAID), slot_end__gt=now)
    if station_ids is not None:
        live = live.filter(station_id__in=list(station_ids))
    found = [b for b in await live if b.status == BookingStatus.PAID or (b.hold_expires_at or now) > now]
    schedules = await load_schedules({b.station_id for b in found}, now)  # type: ignore[attr-defined]
    count = 0
    for booking in found:
        schedule = schedules.get(booking.station_id)  # type: ignore[attr-defined]
        if schedule is not None:
            count += await plan_booking(jobs, Planned.of(booking, schedule), now)
    return count


async def fire(kind: str, booking_id: int, at: datetime, *, now: datetime, jobs: JobQueue) -> bool:
    """The reminder of ``kind`` for the booking, planned for ``at``, if it still holds; whether a
    notification was written."""
    reminder = NotificationKind(kind)
    booking = await Booking.get_or_none(id=booking_id).select_related("station", "charger")
    if booking is None:
        return False
    status = BookingStatus(booking.status)
    held = status == BookingStatus.CONFIRMED and (booking.hold_expires_at or now) > now
    live = held or status == BookingStatus.PAID
    slot = slot_of(booking)
    note = None
    if reminder == K.HOLD_EXPIRING:
        if held and booking.hold_expires_at == at + HOLD_EXPIRING_BEFORE:
            note = notifications.hold_expiring(slot, booking.hold_expires_at, now)
    elif reminder == K.SLOT_REMINDER:
        if live and booking.slot_start == at + SLOT_REMINDER_BEFORE:
            note = notifications.slot_reminder(slot, now)
    elif reminder == K.SLOT_ENDING:
        if status == BookingStatus.PAID and booking.slot_end == at + SLOT_ENDING_BEFORE:
            note = notifications.slot_ending(slot, now)
    elif reminder == K.STATION_CLOSING_SOON and live and booking.slot_end > at:
        schedule = (await load_schedules([booking.station_id], now)).get(booking.station_id)  # type: ignore[attr-defined]
        closes_at = at + CLOSING_SOON_BEFORE
        if schedule is not None and schedule.is_open(at) and schedule.next_change(at) == closes_at:
            note = notifications.station_closing_soon(slot, closes_at, now)
    if note is None:
        log.info("%s for booking %s at %s no longer applies", kind, booking_id, at)
        return False
    note = notifications.Note(note.kind, note.slot, note.title, note.body, note.at, instant=at)
    async with in_transaction():
        written = await notifications.write([note])
        if written:
            await history.record(booking_id, history.REMINDER_SENT, note.title, now)
    if written:
        await deliver_soon(jobs, job_id(reminder, booking_id, at))
    return bool(written)
