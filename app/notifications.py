"""The notifications outbox (DESIGN §13): what a driver is told, written with its cause.

A notification is a row written in the same transaction as the change that causes it (a booking
made, paid, moved or cancelled) or by the job of a timed kind (a hold about to run out, a slot
about to start or end, a station about to close). Delivery is separate (``app.delivery``): the
row is the promise that the driver will be told, on every channel, once. ``dedupe_key`` makes a
cause written twice (a job that ran twice) one notification.

Titles and bodies are short and say times as the driver's station shows them: in the station's
own zone, which is named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch, instant
from app.job_queue import DELIVER, Job, JobQueue
from app.models import Booking, CancelReason, Charger, Notification, NotificationKind, Station
from app.money import format_money

K = NotificationKind

#: Kinds also sent by email: what changes a driver's plans or proves a payment. The rest are
#: moments only worth telling an open page about.
MAILED = frozenset({K.PAYMENT_RECEIPT, K.BOOKING_MOVED, K.BOOKING_CANCELLED, K.SLOT_REMINDER})

#: How long before their moment the timed kinds are sent (DESIGN §13).
HOLD_EXPIRING_BEFORE = timedelta(minutes=2)
SLOT_REMINDER_BEFORE = timedelta(minutes=15)
SLOT_ENDING_BEFORE = timedelta(minutes=10)
CLOSING_SOON_BEFORE = timedelta(minutes=15)

#: What a cancelled booking's driver is told, by cause (None: the driver cancelled it).
WHY_CANCELLED = {
    CancelReason.STATION_INACTIVE: "the station has stopped taking bookings",
    CancelReason.STATION_CLOSED: "the station is now closed during your slot",
    CancelReason.CHARGER_OUT_OF_SERVICE: "your charger is out of service and no other one of its type is free",
    CancelReason.CHARGER_FAULT: "your charger reported a fault and no other one of its type is free",
}

#: The fields of a notification, in the list and in its live event alike.
FIELDS = ("id", "kind", "booking_id", "station_id", "title", "body", "created_at", "read_at")


@dataclass(frozen=True)
class Slot:
    """What the texts say about a booking: where, which charger, when (and at what price)."""

    booking_id: int
    user_id: int
    station_id: int
    station_name: str
    timezone: str
    charger_number: int
    start: datetime
    end: datetime
    amount: int = 0
    currency: str = ""

    def local(self, at: datetime) -> datetime:
        return at.astimezone(ZoneInfo(self.timezone))

    def clock(self, at: datetime) -> str:
        return self.local(at).strftime("%H:%M")

    @property
    def when(self) -> str:
        """``Wed 2 Dec, 12:00-13:00 (Asia/Kolkata)``"""
        start = self.local(self.start)
        return f"{start:%a} {start.day} {start:%b}, {self.clock(self.start)}-{self.clock(self.end)} ({self.timezone})"

    @property
    def money(self) -> str:
        return f"{format_money(self.amount)} {self.currency}"


def slot_of(booking: Booking) -> Slot:
    """A booking's slot, from a booking read with its station and charger."""
    station: Station = booking.station
    charger: Charger = booking.charger
    return Slot(
        booking.id, booking.user_id, station.id, station.name, station.timezone, charger.charger_number,  # type: ignore[attr-defined]
        booking.slot_start, booking.slot_end, booking.amount_due, booking.currency,
    )  # fmt: skip


@dataclass(frozen=True)
class Note:
    """A notification about to be written."""

    kind: NotificationKind
    slot: Slot
    title: str
    body: str
    at: datetime
    #: What makes this notification unique besides its kind and booking (defaults to ``at``).
    instant: datetime | None = None

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind.value}:{self.slot.booking_id}:{(self.instant or self.at).isoformat()}"

    @property
    def mail_next_at(self) -> datetime | None:
        return self.at if self.kind in MAILED else None

    def values(self) -> list[Any]:
        """The row, in ``INSERT_COLUMNS`` order."""
        slot = self.slot
        return [
            slot.user_id, self.kind.value, slot.booking_id, slot.station_id, self.title[:200], self.body[:1000],
            self.at, self.mail_next_at, self.dedupe_key,
        ]  # fmt: skip


INSERT_COLUMNS = (
    "notifications (user_id, kind, booking_id, station_id, title, body, created_at, mail_next_at, dedupe_key, "
    "mail_attempts)"
)
_PER_ROW = 9
#: Rows per statement: well inside both databases' limits on parameters.
CHUNK = 300


def placeholders(first: int) -> str:
    """``($first, …, $first+8, 0)``: one row of ``INSERT_COLUMNS`` whose values start at ``$first``."""
    return "(" + ", ".join(f"${first + n}" for n in range(_PER_ROW)) + ", 0)"


async def write(notes: Iterable[Note], *, connection: BaseDBAsyncClient | None = None) -> int:
    """Write notifications, inside the caller's transaction when there is one; one already
    written for the same cause (``dedupe_key``) is left as it is. Returns how many were new."""
    rows = list(notes)
    connection = connection or connections.get("default")
    written = 0
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        params = [value for note in chunk for value in note.values()]
        values = ", ".join(placeholders(1 + n * _PER_ROW) for n in range(len(chunk)))
        written += len(
            await fetch(
                f"INSERT INTO {INSERT_COLUMNS} VALUES {values} ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
                *params,
                connection=connection,
            )
        )
    return written


def delivery_job(cause: str) -> Job:
    """A delivery pass, now (``cause`` names the job): enqueued after the commit that wrote
    notifications."""
    return Job(DELIVER, (), f"deliver:{cause}")


async def deliver_soon(jobs: JobQueue, cause: str) -> None:
    await jobs.enqueue_all([delivery_job(cause)])


# -- what drivers are told -------------------------------------------------------------------------


def booking_confirmed(slot: Slot, hold_expires_at: datetime, at: datetime) -> Note:
    return Note(
        K.BOOKING_CONFIRMED,
        slot,
        f"Charger {slot.charger_number} held at {slot.station_name}",
        f"{slot.when}. Pay {slot.money} by {slot.clock(hold_expires_at)} to keep it.",
        at,
    )


def payment_receipt(slot: Slot, transaction_id: str, at: datetime) -> Note:
    return Note(
        K.PAYMENT_RECEIPT,
        slot,
        f"Paid {slot.money}: {slot.station_name}",
        f"Charger {slot.charger_number}, {slot.when}. Transaction {transaction_id}.",
        at,
    )


def booking_moved(slot: Slot, from_number: int, at: datetime) -> Note:
    return Note(
        K.BOOKING_MOVED,
        slot,
        f"Your booking moved to charger {slot.charger_number}",
        f"Charger {from_number} at {slot.station_name} is out of service. Your slot, {slot.when}, "
        f"is now on charger {slot.charger_number}.",
        at,
    )


def booking_cancelled(
    slot: Slot, reason: CancelReason | None, refund: int | None, at: datetime, *, by: str = "you"
) -> Note:
    """``reason`` None: cancelled ``by`` the driver ("you") or an operator."""
    why = f"Cancelled by {by}." if reason is None else f"We had to cancel it: {WHY_CANCELLED[reason]}."
    money = (
        f" A full refund of {format_money(refund)} {slot.currency} is on its way."
        if refund
        else " It was not paid, so nothing is owed."
    )
    return Note(
        K.BOOKING_CANCELLED,
        slot,
        f"Booking cancelled: {slot.station_name}",
        f"{slot.when}, charger {slot.charger_number}. {why}{money}",
        at,
    )


def hold_expiring(slot: Slot, hold_expires_at: datetime, at: datetime) -> Note:
    return Note(
        K.HOLD_EXPIRING,
        slot,
        "Your hold runs out in 2 minutes",
        f"Pay {slot.money} by {slot.clock(hold_expires_at)} to keep charger {slot.charger_number} at "
        f"{slot.station_name}, {slot.when}.",
        at,
    )


def slot_reminder(slot: Slot, at: datetime) -> Note:
    return Note(
        K.SLOT_REMINDER,
        slot,
        f"Your slot starts at {slot.clock(slot.start)}",
        f"Charger {slot.charger_number} at {slot.station_name} is yours: {slot.when}.",
        at,
    )


def slot_ending(slot: Slot, at: datetime) -> Note:
    return Note(
        K.SLOT_ENDING,
        slot,
        f"Your slot ends at {slot.clock(slot.end)}",
        f"Charger {slot.charger_number} at {slot.station_name} is booked until {slot.clock(slot.end)} "
        f"({slot.timezone}). Please unplug by then.",
        at,
    )


def station_closing_soon(slot: Slot, closes_at: datetime, at: datetime) -> Note:
    return Note(
        K.STATION_CLOSING_SOON,
        slot,
        f"{slot.station_name} closes at {slot.clock(closes_at)}",
        f"The station closes at {slot.clock(closes_at)} ({slot.timezone}); your slot is {slot.when}.",
        at,
    )


# -- reading -------------------------------------------------------------------------------------


def as_fields(row: Notification | dict[str, Any]) -> dict[str, Any]:
    """A notification as the API and the live event show it."""
    get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
    out = {name: get(name) for name in FIELDS}
    for name in ("created_at", "read_at"):
        value = instant(out[name])
        out[name] = value.isoformat() if value is not None else None
    return out


async def unread_count(user_id: int) -> int:
    return await Notification.filter(user_id=user_id, read_at__isnull=True).count()


async def page(user_id: int, limit: int, offset: int) -> tuple[list[dict[str, Any]], int, int]:
    """Newest first: (items, total, unread count)."""
    mine = Notification.filter(user_id=user_id)
    rows = await mine.order_by("-id").offset(offset).limit(limit).values(*FIELDS)
    return [as_fields(row) for row in rows], await mine.count(), await unread_count(user_id)


async def mark_read(user_id: int, notification_id: int, now: datetime) -> bool:
    """Whether the notification is the user's (read already or now)."""
    mine = Notification.filter(id=notification_id, user_id=user_id)
    if not await mine.exists():
        return False
    await mine.filter(read_at__isnull=True).update(read_at=now)
    return True


async def mark_all_read(user_id: int, now: datetime) -> int:
    return await Notification.filter(user_id=user_id, read_at__isnull=True).update(read_at=now)
