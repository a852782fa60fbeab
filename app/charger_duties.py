"""What the central system tells chargers about bookings, and when (DESIGN §14).

For every PAID booking of a charger linked to a charge point there are three instants:

* **reserve**, ``RESERVE_LEAD_MINUTES`` before the slot (at once when it starts sooner): if the
  charger reports a fault or is offline, the booking is moved to a usable charger or cancelled
  (``charger_fault``, ``app.rebooking``); otherwise ``ReserveNow`` (``reservationId`` = booking id,
  the driver's idTag, ``expiryDate`` = slot start + ``NO_SHOW_MINUTES``);
* **no-show**, slot start + ``NO_SHOW_MINUTES``: nobody started charging, so the reservation is
  cancelled and the booking lets the charger go (COMPLETED with ``no_show_at``);
* **slot end**: a session still running is stopped (``RemoteStopTransaction``).

And one rule that holds at any time (``reconcile``): a reservation held for a booking that is no
longer PAID on that charger (cancelled, expired, moved, a no-show) is cancelled at the charger
(``CancelReservation``). Clearing ``reserved_charger_id`` claims that cancellation atomically, so
of several workers only one sends it.

Two runners share these functions, as with transitions: the arq worker turns each instant into a
deferred job with a stable id (``Duty.job_id``), so any number of workers run it once, and
``DutyRunner`` does the same inside the web process in the embedded default. Every duty re-reads
the booking when it runs, so a stale one (the booking was cancelled or moved since) does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ocpp.v16 import call

from app import charging, history, notifications
from app.availability import reports_fault
from app.bus import Bus
from app.clock import Clock
from app.config import Settings
from app.db import write_transaction
from app.events import publish_availability, quietly, station_of
from app.job_queue import JobQueue
from app.models import Booking, BookingStatus, ChargePoint, Charger, ChargingSession, User
from app.ocpp_link import ChargerLink, ChargerOffline, CommandFailed
from app.payment_provider import PaymentProvider
from app.rebooking import Affected, move_off_faulted_charger, refund_pending
from app.tasks import Sleeper, sleep_unless_woken, stop_if_cancelled

log = logging.getLogger(__name__)

RESERVE, NO_SHOW, SLOT_END = "reserve", "no_show", "slot_end"
KINDS = (RESERVE, NO_SHOW, SLOT_END)


async def note(booking_id: int, event: str, detail: str, at: datetime) -> None:
    """A line of the booking's history: what its charger was told, and what went wrong."""
    await history.record(booking_id, event, detail, at)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Timing:
    lead: timedelta
    no_show: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Timing:
        return cls(timedelta(minutes=settings.reserve_lead_minutes), timedelta(minutes=settings.no_show_minutes))


@dataclass(frozen=True, slots=True)
class Duty:
    kind: str
    booking_id: int
    charger_id: int
    at: datetime

    @property
    def job_id(self) -> str:
        """Stable across processes; the charger is part of it so that a moved booking is reserved
        again on its new charger."""
        return f"ocpp-{self.kind}:{self.booking_id}:{self.charger_id}:{self.at.isoformat()}"


@dataclass
class Duties:
    """What the duties need: the link to chargers, the payment provider (refunds of bookings a
    fault cancels) and the bus."""

    link: ChargerLink
    provider: PaymentProvider
    bus: Bus
    timing: Timing
    #: Where the notifications of a booking a fault moved or cancelled are sent from at once.
    jobs: JobQueue | None = None


async def upcoming(station_ids: Collection[int] | None, now: datetime, timing: Timing) -> list[Duty]:
    """Every duty still to do for PAID bookings of linked chargers (at past instants too: those
    are due now)."""
    bookings = Booking.filter(
        status=BookingStatus.PAID, slot_end__gt=now, no_show_at__isnull=True, charger__charge_point_id__not_isnull=True
    )
    if station_ids is not None:
        bookings = bookings.filter(station_id__in=list(station_ids))
    rows = await bookings.values("id", "charger_id", "slot_start", "slot_end", "reserved_charger_id")
    started = set(
        await ChargingSession.filter(booking_id__in=[r["id"] for r in rows]).values_list("booking_id", flat=True)
    )
    duties: list[Duty] = []
    for row in rows:
        booking_id, charger_id = row["id"], row["charger_id"]
        start, end = row["slot_start"], row["slot_end"]
        if booking_id not in started:
            if row["reserved_charger_id"] != charger_id and now < start + timing.no_show:
                duties.append(Duty(RESERVE, booking_id, charger_id, start - timing.lead))
            duties.append(Duty(NO_SHOW, booking_id, charger_id, start + timing.no_show))
        duties.append(Duty(SLOT_END, booking_id, charger_id, end))
    return duties


async def _target(charger_id: int) -> tuple[str, int] | None:
    """The charge point identity and connector of a linked charger."""
    charger = await Charger.filter(id=charger_id, charge_point_id__not_isnull=True).first()
    if charger is None:
        return None
    identity = await ChargePoint.get(id=charger.charge_point_id).values_list("identity", flat=True)  # type: ignore[attr-defined]
    return str(identity), int(charger.connector_id or 0)


async def _reports_fault(charger_id: int) -> bool:
    """A cheap look before the move-or-cancel transaction, which reads the whole station."""
    row = await Charger.filter(id=charger_id).values("charge_point_id", "live_status", "charge_point__online")
    if not row:
        return False
    linked = row[0]["charge_point_id"] is not None
    return reports_fault(linked, bool(row[0]["charge_point__online"]), row[0]["live_status"])


async def command(link: ChargerLink, charger_id: int, message: object, booking_id: int, now: datetime) -> dict | None:
    """Send a command to a charger for a booking; a failure goes into the booking's history."""
    target = await _target(charger_id)
    if target is None:
        return None
    try:
        return await link.send(target[0], message)
    except ChargerOffline:
        await note(booking_id, "command_failed", f"{type(message).__name__}: the charger is offline", now)
    except CommandFailed as failure:
        await note(booking_id, "command_failed", str(failure), now)
    return None


async def perform(duty: Duty, now: datetime, duties: Duties) -> bool:
    """Carry out a duty if it still applies; whether it did anything."""
    booking = await Booking.filter(id=duty.booking_id).first()
    if booking is None or booking.status != BookingStatus.PAID or booking.charger_id != duty.charger_id:  # type: ignore[attr-defined]
        return False
    if duty.kind == RESERVE:
        return await _reserve(booking, now, duties)
    if duty.kind == NO_SHOW:
        return await _no_show(booking, now, duties)
    return await _end_slot(booking, now, duties)


async def _reserve(booking: Booking, now: datetime, duties: Duties) -> bool:
    timing = duties.timing
    if booking.no_show_at is not None or now >= booking.slot_start + timing.no_show:
        return False
    if booking.reserved_charger_id == booking.charger_id:  # type: ignore[attr-defined]
        return False
    if await _reports_fault(booking.charger_id):  # type: ignore[attr-defined]
        async with write_transaction():
            affected = await move_off_faulted_charger(booking.id, now)
    else:
        affected = Affected()
    if affected.booking_ids:
        await refund_pending(duties.provider, affected.cancelled)
        if duties.jobs is not None:
            await quietly(notifications.deliver_soon(duties.jobs, f"fault:{booking.id}"))
        await quietly(publish_availability(duties.bus, booking.station_id, now))  # type: ignore[attr-defined]
        return True
    id_tag = await User.get(id=booking.user_id).values_list("id_tag", flat=True)  # type: ignore[attr-defined]
    target = await _target(booking.charger_id)  # type: ignore[attr-defined]
    if target is None:
        return False
    reserve = call.ReserveNow(
        connector_id=target[1],
        expiry_date=_iso(booking.slot_start + timing.no_show),
        id_tag=str(id_tag),
        reservation_id=booking.id,
    )
    answer = await command(duties.link, booking.charger_id, reserve, booking.id, now)  # type: ignore[attr-defined]
    if answer is None:
        return False
    if answer.get("status") != "Accepted":
        await note(booking.id, "reservation_refused", f"the charger answered {answer.get('status')}", now)
        return False
    await Booking.filter(id=booking.id).update(reserved_charger_id=booking.charger_id)  # type: ignore[attr-defined]
    await note(booking.id, "reservation_sent", f"charger reserved until {reserve.expiry_date}", now)
    return True


async def _no_show(booking: Booking, now: datetime, duties: Duties) -> bool:
    if booking.no_show_at is not None or await ChargingSession.exists(booking_id=booking.id):
        return False
    done = await Booking.filter(id=booking.id, status=BookingStatus.PAID, no_show_at__isnull=True).update(
        status=BookingStatus.COMPLETED, no_show_at=now, updated_at=now
    )
    if not done:
        return False
    await note(booking.id, "no_show", "nobody started charging; the charger is free again", now)
    await reconcile([booking.station_id], now, duties)  # type: ignore[attr-defined]
    await quietly(publish_availability(duties.bus, booking.station_id, now))  # type: ignore[attr-defined]
    return True


async def _end_slot(booking: Booking, now: datetime, duties: Duties) -> bool:
    running = await ChargingSession.filter(booking_id=booking.id, stopped_at__isnull=True)
    for session in running:
        stop = call.RemoteStopTransaction(transaction_id=session.id)
        await command(duties.link, session.charger_id, stop, booking.id, now)  # type: ignore[attr-defined]
    return bool(running)


async def reconcile(station_ids: Collection[int] | None, now: datetime, duties: Duties) -> int:
    """Cancel, at the charger, every reservation whose booking no longer holds that charger."""
    held = Booking.filter(reserved_charger_id__not_isnull=True)
    if station_ids is not None:
        held = held.filter(station_id__in=list(station_ids))
    cancelled = 0
    for booking in await held:
        reserved = booking.reserved_charger_id
        still_good = (
            booking.status == BookingStatus.PAID
            and booking.charger_id == reserved  # type: ignore[attr-defined]
            and booking.no_show_at is None
            and booking.slot_end > now
        )
        if still_good:
            continue
        # Whoever clears it sends the cancellation: once, however many run this at once.
        if not await Booking.filter(id=booking.id, reserved_charger_id=reserved).update(reserved_charger_id=None):
            continue
        cancel = call.CancelReservation(reservation_id=booking.id)
        answer = await command(duties.link, int(reserved or 0), cancel, booking.id, now)
        if answer is not None:
            await note(booking.id, "reservation_cancelled", f"the charger answered {answer.get('status')}", now)
            cancelled += 1
    return cancelled


async def remote_start(booking: Booking, now: datetime, link: ChargerLink) -> dict | None:
    id_tag = await User.get(id=booking.user_id).values_list("id_tag", flat=True)  # type: ignore[attr-defined]
    target = await _target(booking.charger_id)  # type: ignore[attr-defined]
    if target is None:
        return None
    start = call.RemoteStartTransaction(id_tag=str(id_tag), connector_id=target[1])
    return await link.send(target[0], start)


async def run_due(now: datetime, duties: Duties) -> int:
    """Every duty whose instant has come, and every stale reservation: the embedded runner's pass
    (the worker runs each duty as its own job instead)."""
    await reconcile(None, now, duties)
    done = 0
    for duty in sorted(await upcoming(None, now, duties.timing), key=lambda d: d.at):
        if duty.at <= now:
            done += await perform(duty, now, duties)
    return done


async def next_due(now: datetime, timing: Timing) -> datetime | None:
    return min((d.at for d in await upcoming(None, now, timing) if d.at > now), default=None)


class DutyRunner:
    """The embedded default's runner: every pass does what is due and marks offline charge points
    (``charging.mark_offline``); it sleeps until the next duty (at most ``max_sleep``) or until a
    station event says bookings changed. ``sleep`` is injected, so tests drive it without waiting."""

    def __init__(
        self,
        duties: Duties,
        clock: Clock,
        heartbeat_seconds: int,
        *,
        max_sleep: float = 30.0,
        sleep: Sleeper = asyncio.sleep,
    ) -> None:
        self._duties = duties
        self._clock = clock
        self._heartbeat_seconds = heartbeat_seconds
        self._max_sleep = max_sleep
        self._sleep = sleep
        self._wake = asyncio.Event()
        duties.bus.listen(self._on_message)

    def _on_message(self, message: dict) -> None:
        if station_of(message) is not None:
            self._wake.set()

    async def run_once(self) -> float:
        now = self._clock.now()
        await charging.mark_offline(now, self._heartbeat_seconds, self._duties.bus)
        await run_due(now, self._duties)
        upcoming_at = await next_due(now, self._duties.timing)
        wait = self._max_sleep if upcoming_at is None else (upcoming_at - self._clock.now()).total_seconds()
        return max(0.0, min(wait, self._max_sleep))

    async def run(self) -> None:
        while True:
            stop_if_cancelled()
            self._wake.clear()
            try:
                delay = await self.run_once()
            except Exception:
                stop_if_cancelled()
                log.exception("charger duties failed; trying again shortly")
                delay = 1.0
            await sleep_unless_woken(self._wake, delay, self._sleep)


async def remote_stop(session: ChargingSession, link: ChargerLink) -> dict | None:
    target = await _target(session.charger_id)  # type: ignore[attr-defined]
    if target is None:
        return None
    return await link.send(target[0], call.RemoteStopTransaction(transaction_id=session.id))


async def change_availability(charger_id: int, in_service: bool, now: datetime, link: ChargerLink) -> str | None:
    """Tell a linked charger it was taken out of service or brought back (ChangeAvailability);
    the charger's answer, or None when it has no charge point or could not be reached."""
    target = await _target(charger_id)
    if target is None:
        return None
    kind = "Operative" if in_service else "Inoperative"
    try:
        answer = await link.send(target[0], call.ChangeAvailability(connector_id=target[1], type=kind))
    except (ChargerOffline, CommandFailed) as failure:
        log.warning("ChangeAvailability %s for charger %s failed: %s", kind, charger_id, failure)
        return None
    return str(answer.get("status"))
