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

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app.availability import holds_charger, reports_fault
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
from app.station_views import ChargerView, load_views

log = logging.getLogger(__name__)


#: What a driver is told when a booking can no longer happen, by cause.
BROKEN = {
    CancelReason.STATION_INACTIVE: "The station is not taking bookings.",
    CancelReason.STATION_CLOSED: "The slot no longer lies inside the station's opening hours.",
    CancelReason.CHARGER_OUT_OF_SERVICE: "The booked charger is out of service.",
    CancelReason.CHARGER_FAULT: "The booked charger reports a fault or is offline.",
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
    cancelled: list[int] = []
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
            moved.append(booking.id)
        else:
            await _cancel(booking, reason, now)
            cancelled.append(booking.id)
    return Affected(tuple(moved), tuple(cancelled))


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


async def _cancel(booking: Booking, reason: CancelReason, now: datetime) -> None:
    was_paid = booking.status == BookingStatus.PAID
    booking.status = BookingStatus.CANCELLED
    booking.cancel_reason = reason
    booking.updated_at = now
    await booking.save(update_fields=["status", "cancel_reason", "updated_at"])
    if was_paid:
        await Payment.filter(booking_id=booking.id, status=PaymentStatus.SUCCESS).update(
            status=PaymentStatus.REFUND_PENDING
        )


async def refund_pending(provider: PaymentProvider, booking_ids: Iterable[int] | None = None) -> int:
    """Refund payments owed back (all of them when ``booking_ids`` is None); returns how many went
    through. Each is marked REFUNDED only from REFUND_PENDING, so two processes retrying at once
    record it once; a real provider dedupes the refund of one transaction itself."""
    owed = Payment.filter(status=PaymentStatus.REFUND_PENDING)
    if booking_ids is not None:
        owed = owed.filter(booking_id__in=list(booking_ids))
    done = 0
    for payment in await owed:
        try:
            result = await provider.refund(payment.transaction_id, payment.amount)
        except Exception:
            log.warning("refund of payment %s failed; it will be retried", payment.id, exc_info=True)
            continue
        if not result.approved:
            log.warning("refund of payment %s refused (%s); it will be retried", payment.id, result.reason)
            continue
        done += await Payment.filter(id=payment.id, status=PaymentStatus.REFUND_PENDING).update(
            status=PaymentStatus.REFUNDED
        )
    return done


async def move_off_faulted_charger(booking_id: int, now: datetime) -> Affected:
    """A booking about to start on a charger that reports a fault or is offline (DESIGN §14): move
    it to a usable free charger of the same type, else cancel it (``charger_fault``). Call inside a
    transaction; the refund follows the commit (``refund_pending``)."""
    booking = await Booking.filter(id=booking_id).first()
    if booking is None or not holds_charger(booking.status, booking.hold_expires_at, now):
        return Affected()
    (station,) = await load_views([booking.station_id], now)  # type: ignore[attr-defined]
    current = next(c for c in station.chargers if c.id == booking.charger_id)  # type: ignore[attr-defined]
    if not reports_fault(current.linked, current.online, current.live_status):
        return Affected()
    usable = [
        c
        for c in station.chargers
        if c.status == ChargerStatus.AVAILABLE and not reports_fault(c.linked, c.online, c.live_status)
    ]
    live = [
        b
        for b in await Booking.filter(
            station_id=booking.station_id,  # type: ignore[attr-defined]
            status__in=(BookingStatus.CONFIRMED, BookingStatus.PAID),
            slot_end__gt=now,
        )
        if holds_charger(b.status, b.hold_expires_at, now)
    ]
    target = _free_charger(booking, current, usable, live, now)
    if target is not None:
        await _move(booking, target, now)
        return Affected(moved=(booking.id,))
    await _cancel(booking, CancelReason.CHARGER_FAULT, now)
    return Affected(cancelled=(booking.id,))
