"""When plans change under a booking: move it or cancel it, never leave it dangling (DESIGN §13).

An operator's change can make a held or paid booking impossible: new hours or an exceptional
closing over its slot, its charger taken out of service, the station set INACTIVE or MAINTENANCE.
``settle`` runs inside the transaction of that change, so the change and its consequences commit
together or not at all. Per booking, in slot order:

* the station no longer takes bookings → cancelled (``station_inactive``);
* what is left of the slot no longer lies inside opening hours → cancelled (``station_closed``);
  another charger would not help;
* its charger is out of service → **moved** to the lowest-numbered usable charger of the same
  type that is free for the whole slot, else cancelled (``charger_out_of_service``).

A cancelled PAID booking is owed its money back. Calling the payment provider inside the
transaction would hold locks for as long as the provider takes, and a refusal would undo the
operator's change, so the payment is marked ``REFUND_PENDING`` in the transaction and refunded
right after the commit (``refund_pending``); whatever does not go through then is retried by
close-out until it does. Nothing is lost if the process dies in between.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app import history, notifications
from app.availability import holds_charger
from app.db import is_postgres
from app.hours import Schedule
from app.models import (
    Booking,
    BookingStatus,
    CancelReason,
    Charger,
    ChargerStatus,
    Payment,
    PaymentStatus,
    StationStatus,
)
from app.payment_provider import PaymentProvider
from app.station_views import ChargerView, StationView, load_views

log = logging.getLogger(__name__)

#: Refunds asked of the payment provider at once.
REFUND_CONCURRENCY = 16


#: What a driver is told when a booking can no longer happen, by cause.
BROKEN = {
    CancelReason.STATION_INACTIVE: "The station is not taking bookings.",
    CancelReason.STATION_CLOSED: "The slot no longer lies inside the station's opening hours.",
    CancelReason.CHARGER_OUT_OF_SERVICE: "The booked charger is out of service.",
}


def what_breaks(
    station_status: str, schedule: Schedule, charger_status: str, start: datetime, end: datetime, now: datetime
) -> CancelReason | None:
    """Why a booking can no longer happen as booked (the first cause, in the order ``settle``
    handles them), or None when it still can. What is left of a running slot is what counts."""
    if station_status != StationStatus.ACTIVE:
        return CancelReason.STATION_INACTIVE
    if not schedule.covers(max(start, now), end):
        return CancelReason.STATION_CLOSED
    if charger_status != ChargerStatus.AVAILABLE:
        return CancelReason.CHARGER_OUT_OF_SERVICE
    return None


@dataclass(frozen=True)
class Affected:
    """What a change did (or, in a dry run, would do) to bookings."""

    moved: tuple[int, ...] = ()
    cancelled: tuple[int, ...] = ()

    @property
    def booking_ids(self) -> list[int]:
        return sorted(self.moved + self.cancelled)


async def settle(station_id: int, now: datetime) -> Affected:
    """Move or cancel every live booking of the station that the stored state no longer allows.
    Call inside the transaction that changed it, after the change: the station is read fresh."""
    bookings = [
        booking
        for booking in await Booking.filter(
            station_id=station_id,
            status__in=(BookingStatus.CONFIRMED, BookingStatus.PAID),
            slot_end__gt=now,
        ).order_by("slot_start", "id")
        if holds_charger(booking.status, booking.hold_expires_at, now)
    ]
    if not bookings:
        return Affected()
    (station,) = await load_views([station_id], now)
    schedule, chargers = station.schedule, station.chargers
    usable = {c.id: c for c in chargers if c.status == ChargerStatus.AVAILABLE}
    moved: list[int] = []
    cancelled: dict[CancelReason, list[Booking]] = {}
    told = _Telling(station, now)
    for booking in bookings:
        current = next(c for c in chargers if c.id == booking.charger_id)  # type: ignore[attr-defined]
        reason = what_breaks(station.status, schedule, current.status, booking.slot_start, booking.slot_end, now)
        if reason is None:
            continue
        target = None
        if reason == CancelReason.CHARGER_OUT_OF_SERVICE:
            target = _free_charger(booking, current, usable.values(), bookings, now)
        if target is not None:
            await _move(booking, target, now)
            told.moved(booking, current, target)
            moved.append(booking.id)
        else:
            cancelled.setdefault(reason, []).append(booking)
    for reason, gone in cancelled.items():
        await _cancel(gone, reason, now)
        for booking in gone:
            told.cancelled(booking, current_number(chargers, booking), reason)
    await told.write()
    return Affected(tuple(moved), tuple(sorted(b.id for gone in cancelled.values() for b in gone)))


def current_number(chargers: Iterable[ChargerView], booking: Booking) -> int:
    return next(c.charger_number for c in chargers if c.id == booking.charger_id)  # type: ignore[attr-defined]


class _Telling:
    """The history lines and notifications of one settling, written together at its end."""

    def __init__(self, station: StationView, now: datetime) -> None:
        self.station, self.now = station, now
        self.lines: list[history.Line] = []
        self.notes: list[notifications.Note] = []

    def _slot(self, booking: Booking, charger_number: int) -> notifications.Slot:
        station = self.station
        return notifications.Slot(
            booking.id, booking.user_id, station.id, station.name, station.timezone, charger_number,  # type: ignore[attr-defined]
            booking.slot_start, booking.slot_end, booking.amount_due, booking.currency,
        )  # fmt: skip

    def moved(self, booking: Booking, was: ChargerView, now_on: ChargerView) -> None:
        why = BROKEN[CancelReason.CHARGER_OUT_OF_SERVICE]
        detail = f"Moved from charger {was.charger_number} to charger {now_on.charger_number}: {why}"
        self.lines.append((booking.id, history.MOVED, detail, self.now))
        self.notes.append(
            notifications.booking_moved(self._slot(booking, now_on.charger_number), was.charger_number, self.now)
        )

    def cancelled(self, booking: Booking, charger_number: int, reason: CancelReason) -> None:
        slot = self._slot(booking, charger_number)
        refund = booking.amount_due if booking.was_paid else None  # type: ignore[attr-defined]
        owed = f" Refund of {slot.money} under way." if refund else ""
        self.lines.append(
            (booking.id, history.CANCELLED, f"Cancelled ({reason.value}): {BROKEN[reason]}{owed}", self.now)
        )
        self.notes.append(notifications.booking_cancelled(slot, reason, refund, self.now))

    async def write(self) -> None:
        await history.record_many(self.lines)
        await notifications.write(self.notes)


def _free_charger(
    booking: Booking, current: ChargerView, usable: Iterable[ChargerView], live: list[Booking], now: datetime
) -> ChargerView | None:
    """The lowest-numbered usable charger of the booking's type free for its whole slot, among the
    station's live bookings as they stand now (moves made earlier in this pass included)."""
    for charger in usable:
        if charger.charger_type.casefold() != current.charger_type.casefold():
            continue
        clash = any(
            other.charger_id == charger.id  # type: ignore[attr-defined]
            and holds_charger(other.status, other.hold_expires_at, now)
            and other.slot_start < booking.slot_end
            and booking.slot_start < other.slot_end
            for other in live
        )
        if not clash:
            return charger
    return None


async def _move(booking: Booking, target: ChargerView, now: datetime) -> None:
    if is_postgres():
        # Takes turns with bookings being inserted for the target charger (app/bookings.py).
        await Charger.filter(id=target.id).select_for_update().values_list("id", flat=True)
    booking.charger_id = target.id  # type: ignore[attr-defined]
    booking.updated_at = now
    await booking.save(update_fields=["charger_id", "updated_at"])


async def _cancel(bookings: list[Booking], reason: CancelReason, now: datetime) -> None:
    """Cancel bookings for one reason together (an exceptional closing may hit hundreds)."""
    paid = [b.id for b in bookings if b.status == BookingStatus.PAID]
    for booking in bookings:
        booking.was_paid = booking.status == BookingStatus.PAID  # type: ignore[attr-defined]
        booking.status = BookingStatus.CANCELLED
        booking.cancel_reason = reason
    await Booking.filter(id__in=[b.id for b in bookings]).update(
        status=BookingStatus.CANCELLED, cancel_reason=reason, updated_at=now
    )
    if paid:
        await Payment.filter(booking_id__in=paid, status=PaymentStatus.SUCCESS).update(
            status=PaymentStatus.REFUND_PENDING
        )


async def refund_pending(provider: PaymentProvider, booking_ids: Iterable[int] | None = None) -> int:
    """Refund payments owed back (all of them when ``booking_ids`` is None); returns how many went
    through. Each is marked REFUNDED only from REFUND_PENDING, so two processes retrying at once
    record it once; a real provider dedupes the refund of one transaction itself. The provider is
    asked for several at once and the outcomes are recorded in one statement: a closing over
    hundreds of paid slots must not cost hundreds of round trips in the operator's request."""
    owed = Payment.filter(status=PaymentStatus.REFUND_PENDING)
    if booking_ids is not None:
        owed = owed.filter(booking_id__in=list(booking_ids))
    payments = await owed
    if not payments:
        return 0
    limit = asyncio.Semaphore(REFUND_CONCURRENCY)

    async def refund(payment: Payment) -> int | None:
        async with limit:
            try:
                result = await provider.refund(payment.transaction_id, payment.amount)
            except Exception:
                log.warning("refund of payment %s failed; it will be retried", payment.id, exc_info=True)
                return None
        if not result.approved:
            log.warning("refund of payment %s refused (%s); it will be retried", payment.id, result.reason)
            return None
        return payment.id

    refunded = [paid for paid in await asyncio.gather(*(refund(p) for p in payments)) if paid is not None]
    if not refunded:
        return 0
    return int(
        await Payment.filter(id__in=refunded, status=PaymentStatus.REFUND_PENDING).update(status=PaymentStatus.REFUNDED)
    )
