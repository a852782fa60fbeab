"""Bookings: can I have this slot?

The checks run in the original design's order (DESIGN §5), each failing with its own status and
code: station exists and is ACTIVE → station open *now* by the server clock → user active → slot
valid → hold limit → a charger free for the whole slot. Openness is always recomputed from the
stored hours at request time; no cached answer is trusted for a booking.

No charger is ever booked twice for overlapping time. On PostgreSQL the exclusion constraint on
``bookings`` is the final guard (a violation is a 409); on SQLite the check and the insert share
one ``BEGIN IMMEDIATE`` transaction. Holds that have run out are expired inside that same
transaction, so a stale hold never blocks a new booking even when the close-out job is late.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import timezone
from tortoise.queryset import QuerySet

from app import history, notifications, reminders
from app.availability import holds_charger
from app.booking_search import status_condition
from app.bus import Bus
from app.clock import station_instant
from app.config import Settings
from app.db import fetch, instant, is_postgres, write_transaction
from app.errors import (
    Conflict,
    HoldLimitReached,
    NoChargerAvailable,
    NotFound,
    StationClosed,
    StationInactive,
    UserInactive,
    ValidationFailed,
)
from app.events import publish_availability, quietly
from app.hours import Schedule, compile_schedule
from app.job_queue import JobQueue
from app.models import (
    Booking,
    BookingStatus,
    Charger,
    ChargerStatus,
    Payment,
    PaymentStatus,
    Station,
    StationStatus,
    User,
)
from app.payment_provider import PaymentProvider
from app.payments import refund_booking
from app.rebooking import BROKEN, what_breaks
from app.station_rows import StationRows, station_columns
from app.stations import load_hours_spec

#: Unpaid bookings with a running hold that one user may have at once.
HOLD_LIMIT = 3
MIN_DURATION, MAX_DURATION, DURATION_STEP = 15, 240, 15
LOST_RACE = frozenset({"23P01", "40P01"})
#: Every zone's offset lies within this, so a local date's bookings start inside ±1 day of it.
_MAX_OFFSET = timedelta(hours=14)


@dataclass(frozen=True)
class BookingPolicy:
    """How long an unpaid hold lasts and how far ahead a slot may start."""

    hold_minutes: int = 10
    horizon_days: int = 7

    @classmethod
    def from_settings(cls, settings: Settings) -> BookingPolicy:
        return cls(hold_minutes=settings.booking_hold_minutes, horizon_days=settings.booking_horizon_days)


def amount_for(price_per_hour: int, duration_minutes: int) -> int:
    """Price of a slot in minor units, rounded half-up to the minor unit."""
    exact = Decimal(price_per_hour) * duration_minutes / 60
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def create_booking(
    user: User,
    station_id: int,
    slot_time: datetime,
    duration_minutes: int,
    charger_id: int | None = None,
    charger_type: str | None = None,
    vehicle_number: str | None = None,
    *,
    now: datetime,
    policy: BookingPolicy,
    bus: Bus,
    jobs: JobQueue | None = None,
) -> Booking:
    """Book a charger for ``[slot_time, slot_time + duration)``.

    A naive ``slot_time`` is wall-clock time at the station (its IANA zone), which is what a driver
    standing there means; an aware one is taken as the instant it names.
    """
    loaded = await _load_station(station_id)
    if loaded is None:
        raise NotFound("Station not found.")
    station, schedule = loaded.station, loaded.schedule
    if station.status != StationStatus.ACTIVE:
        raise StationInactive()
    if not schedule.is_open(now):
        raise StationClosed("Station is closed. Booking not allowed.")
    if not user.is_active:
        raise UserInactive()
    start, end = check_slot(schedule, slot_time, duration_minutes, now, policy)
    request = _Request(
        user=user,
        station=station,
        chargers=tuple(loaded.chargers),
        start=start,
        end=end,
        charger_id=charger_id,
        charger_type=charger_type,
        vehicle_number=vehicle_number,
        amount_due=amount_for(station.price_per_hour, duration_minutes),
        hold_expires_at=now + timedelta(minutes=policy.hold_minutes),
        now=now,
    )
    booking = await _insert_with_retry(request)
    await quietly(publish_availability(bus, station.id, now))
    if jobs is not None:
        # Delivery and reminders in one round trip to the queue (see app.job_queue).
        planned = reminders.reminder_jobs(reminders.Planned.of(booking, schedule), now)
        await quietly(jobs.enqueue_all([notifications.delivery_job(f"created:{booking.id}"), *planned]))
    return booking


@dataclass(frozen=True)
class _Request:
    user: User
    station: Station
    chargers: tuple[Charger, ...]
    start: datetime
    end: datetime
    charger_id: int | None
    charger_type: str | None
    vehicle_number: str | None
    amount_due: int
    hold_expires_at: datetime
    now: datetime
    avoid: frozenset[int] = frozenset()


def check_slot(
    schedule: Schedule, slot_time: datetime, duration: int, now: datetime, policy: BookingPolicy
) -> tuple[datetime, datetime]:
    """The slot ``[start, end)`` as instants, if a booking may ask for it: it exists on the
    station's clock, starts no earlier than now and within the horizon, has an allowed length and
    lies wholly inside opening hours. Otherwise ``ValidationFailed`` says why, in words a driver
    understands. Booking decides with this, and the free-chargers hint explains with it."""
    start = station_instant(slot_time, schedule.timezone)
    errors: list[dict[str, Any]] = []

    def error(field: str, msg: str) -> None:
        errors.append({"loc": ["body", field], "msg": msg})

    if start is None:
        error("slot_time", "That time does not exist at the station: the clocks skip it.")
    elif start < now:
        error("slot_time", "The slot starts in the past.")
    elif start > now + timedelta(days=policy.horizon_days):
        error("slot_time", f"Slots can be booked at most {policy.horizon_days} days ahead.")
    if not (MIN_DURATION <= duration <= MAX_DURATION and duration % DURATION_STEP == 0):
        error(
            "duration_minutes",
            f"A slot lasts {MIN_DURATION} to {MAX_DURATION} minutes, in steps of {DURATION_STEP}.",
        )
    if errors:
        raise ValidationFailed(errors)
    assert start is not None
    end = start + timedelta(minutes=duration)
    if not schedule.covers(start, end):
        raise ValidationFailed(
            [{"loc": ["body", "slot_time"], "msg": "The whole slot must lie inside the station's opening hours."}]
        )
    return start, end


class _LostRace(Exception):
    """A concurrent booking won the charger we picked (PostgreSQL only)."""

    def __init__(self, charger_id: int | None) -> None:
        super().__init__(charger_id)
        self.charger_id = charger_id


async def _insert_with_retry(request: _Request) -> Booking:
    """Insert, retrying once when a concurrent booking won the charger we picked ourselves: another
    one may still be free. The retry avoids the contended charger, whose winner may not have
    committed yet and so would still look free."""
    try:
        return await _insert(request)
    except _LostRace as lost:
        if request.charger_id is not None or lost.charger_id is None:
            raise NoChargerAvailable() from None
        avoid = request.avoid | {lost.charger_id}
    try:
        return await _insert(replace(request, avoid=frozenset(avoid)))
    except _LostRace:
        raise NoChargerAvailable() from None


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error, also when Tortoise has wrapped it (as IntegrityError)."""
    for candidate in (exc, exc.__cause__, *exc.args[:1]):
        code = getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return None


async def _load_station(station_id: int) -> StationRows | None:
    rows = await fetch("SELECT " + station_columns("$1", chargers=True), station_id)
    return StationRows.of(rows[0])


#: Takes the user's row lock (PostgreSQL) and reads the user's running holds and the bookings that
#: overlap the slot at the station. It reads as of its own start, which may be before the lock was
#: granted: enough to report the hold limit before a busy charger, while the insert counts again.
_LOCK_USER_AND_READ = f"""
SELECT (SELECT count(*) FROM bookings h
        WHERE h.user_id = u.id AND h.status = '{BookingStatus.CONFIRMED}' AND h.hold_expires_at > $2) AS held,
       b.id, b.charger_id, b.status, b.hold_expires_at
FROM users u LEFT JOIN bookings b
  ON b.station_id = $3 AND b.slot_start < $5 AND b.slot_end > $4
 AND b.status IN ('{BookingStatus.CONFIRMED}', '{BookingStatus.PAID}')
WHERE u.id = $1"""

#: Inserts the hold unless the user already has ``$11`` running, counted afresh: the user's lock
#: was taken by an earlier statement, so this one's snapshot sees every hold its previous holders
#: committed. On PostgreSQL the charger's row is locked before the row is inserted.
_INSERT_HOLD = f"""
INSERT INTO bookings (user_id, station_id, charger_id, slot_start, slot_end, status, amount_due, currency,
                      hold_expires_at, vehicle_number, created_at, updated_at)
SELECT $1, c.station_id, c.id, $3, $4, '{BookingStatus.CONFIRMED}', $5, $6, $7, $8, $9, $9
FROM chargers c
WHERE c.id = $2
  AND (SELECT count(*) FROM bookings h
       WHERE h.user_id = $1 AND h.status = '{BookingStatus.CONFIRMED}' AND h.hold_expires_at > $10) < $11"""


#: The booking's first history line and its ``booking_confirmed`` notification, written by the
#: insert's own statement on PostgreSQL (``WITH b AS (insert) ...``), so booking costs no extra
#: statement. ``$10`` is the booking's ``now`` and ``$1`` its user, as in ``_INSERT_HOLD``.
_CREATED = f"""
, e AS (INSERT INTO {history.INSERT_COLUMNS} SELECT id, '{history.CREATED}', $12, $10 FROM b)
, n AS (INSERT INTO {notifications.INSERT_COLUMNS}
        SELECT $1, $13, id, $14, $15, $16, $10, NULL, $13::varchar || ':' || id || ':' || $17, 0 FROM b)
SELECT id FROM b"""


def _created_notes(request: _Request, charger: Charger, booking_id: int) -> tuple[str, notifications.Note]:
    slot = notifications.Slot(
        booking_id, request.user.id, request.station.id, request.station.name, request.station.timezone,
        charger.charger_number, request.start, request.end, request.amount_due, request.station.currency,
    )  # fmt: skip
    detail = f"Held charger {charger.charger_number} until {slot.clock(request.hold_expires_at)} ({slot.timezone})."
    return detail, notifications.booking_confirmed(slot, request.hold_expires_at, request.now)


async def _insert(request: _Request) -> Booking:
    """Four statements on PostgreSQL: BEGIN, lock the user and read, insert, COMMIT.

    One user's concurrent requests take turns on the user's row lock, so the hold limit cannot be
    raced past; inserts for one charger take turns on the charger's row lock, because two
    uncommitted overlapping rows would wait for each other in the exclusion check, a deadlock
    broken only after 1 s. The locks are always taken in that order (user, then charger)."""
    user, now = request.user, request.now
    charger: Charger | None = None
    try:
        async with write_transaction() as connection:
            lock = " FOR UPDATE OF u" if is_postgres(connection) else ""
            rows = await fetch(
                _LOCK_USER_AND_READ + lock, user.id, now, request.station.id, request.start, request.end,
                connection=connection,
            )  # fmt: skip
            if rows[0]["held"] >= HOLD_LIMIT:
                raise HoldLimitReached()
            charger = _pick_charger(request, await _taken_expiring_lapsed(request, rows))
            created_at = timezone.now()
            detail, note = _created_notes(request, charger, 0)
            params = [
                user.id, charger.id, request.start, request.end, request.amount_due, request.station.currency,
                request.hold_expires_at, request.vehicle_number, created_at, now, HOLD_LIMIT,
            ]  # fmt: skip
            if lock:
                inserted = await fetch(
                    f"WITH b AS ({_INSERT_HOLD} FOR UPDATE OF c RETURNING id){_CREATED}",
                    *params, detail, note.kind.value, request.station.id, note.title, note.body, now.isoformat(),
                    connection=connection,
                )  # fmt: skip
            else:
                inserted = await fetch(_INSERT_HOLD + " RETURNING id", *params, connection=connection)
            if not inserted:
                raise HoldLimitReached()  # a request of the same user's took the last hold meanwhile
            if not lock:
                detail, note = _created_notes(request, charger, inserted[0]["id"])
                await history.record(inserted[0]["id"], history.CREATED, detail, now, connection=connection)
                await notifications.write([note], connection=connection)
    except Exception as exc:
        # 23P01: the exclusion constraint refused an overlap. 40P01: two inserts of overlapping
        # rows waited on each other and PostgreSQL aborted one of them; either way we lost.
        if _sqlstate(exc) in LOST_RACE:
            raise _LostRace(charger.id if charger else None) from exc
        raise
    return Booking(
        id=inserted[0]["id"],
        user=user,
        station=request.station,
        charger=charger,
        slot_start=request.start,
        slot_end=request.end,
        status=BookingStatus.CONFIRMED,
        amount_due=request.amount_due,
        currency=request.station.currency,
        hold_expires_at=request.hold_expires_at,
        vehicle_number=request.vehicle_number,
        created_at=created_at,
        updated_at=created_at,
    )


def _pick_charger(request: _Request, busy: set[int]) -> Charger:
    """The asked-for charger, else the lowest-numbered free one (of the asked-for connector type,
    which is a requirement: a plug that does not fit is no use). Out-of-service chargers never."""
    chargers = request.chargers
    if request.charger_id is not None:
        charger = next((c for c in chargers if c.id == request.charger_id), None)
        if charger is None:
            raise NotFound("Charger not found at this station.")
        if charger.status == ChargerStatus.OUT_OF_SERVICE:
            raise NoChargerAvailable(f"Charger {charger.charger_number} is out of service.")
        if charger.id in busy:
            raise NoChargerAvailable(f"Charger {charger.charger_number} is already booked for part of this slot.")
        return charger
    free = [c for c in chargers if c.status == ChargerStatus.AVAILABLE and c.id not in busy | request.avoid]
    if request.charger_type:
        wanted = request.charger_type.upper()
        free = [c for c in free if c.charger_type.upper() == wanted]
        if not free:
            raise NoChargerAvailable(f"No {wanted} charger is free for the whole slot.")
    if not free:
        raise NoChargerAvailable()
    return free[0]


async def _taken_expiring_lapsed(request: _Request, overlapping: list[dict[str, Any]]) -> set[int]:
    """The chargers held for part of the slot, from the overlapping bookings read under the user's
    lock. Overlapping holds that have run out block nobody, but the exclusion constraint still
    counts them, so they are expired here, in the booking's transaction; the usual case (nothing
    lapsed) writes nothing."""
    taken, lapsed = set(), []
    for row in overlapping:
        if row["id"] is None:
            continue  # the outer join's row when nothing overlaps
        if holds_charger(row["status"], instant(row["hold_expires_at"]), request.now):
            taken.add(row["charger_id"])
        else:
            lapsed.append(row["id"])
    if lapsed:
        await Booking.filter(id__in=lapsed, status=BookingStatus.CONFIRMED).update(status=BookingStatus.EXPIRED)
    return taken


# -- reading -------------------------------------------------------------------------------------


def _visible(user: User) -> QuerySet[Booking]:
    """Drivers see their own bookings; operators see everyone's. Anything else is a 404."""
    query = Booking.all().select_related("station", "charger")
    return query if user.is_operator else query.filter(user_id=user.id)


async def get_booking(user: User, booking_id: int) -> Booking:
    booking = await _visible(user).get_or_none(id=booking_id)
    if booking is None:
        raise NotFound("Booking not found.")
    return booking


async def list_bookings(
    user: User,
    *,
    station_id: int | None = None,
    status: BookingStatus | None = None,
    on_date: date | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime,
) -> list[Booking]:
    """Newest slot first. ``status`` filters on what ``effective_status`` reports and ``on_date`` on
    the slot's start date at its station."""
    query = _visible(user)
    if station_id is not None:
        query = query.filter(station_id=station_id)
    if status is not None:
        query = query.filter(status_condition(status, now))
    query = query.order_by("-slot_start", "-id")
    if on_date is None:
        return await query.offset(offset).limit(limit)
    midnight = datetime.combine(on_date, datetime.min.time(), UTC)
    query = query.filter(
        slot_start__gte=midnight - _MAX_OFFSET, slot_start__lt=midnight + timedelta(days=1) + _MAX_OFFSET
    )
    same_day = [b for b in await query if b.slot_start.astimezone(ZoneInfo(b.station.timezone)).date() == on_date]
    return same_day[offset : offset + limit]


def effective_status(booking: Booking, now: datetime) -> BookingStatus:
    """A hold that has run out reads EXPIRED even before the close-out job has stored it."""
    if booking.status == BookingStatus.CONFIRMED and (
        booking.hold_expires_at is None or booking.hold_expires_at <= now
    ):
        return BookingStatus.EXPIRED
    return BookingStatus(booking.status)


async def refund_of(booking_id: int) -> Payment | None:
    """The payment being (or already) given back for a cancelled booking, if any."""
    return (
        await Payment.filter(booking_id=booking_id, status__in=(PaymentStatus.REFUND_PENDING, PaymentStatus.REFUNDED))
        .order_by("-id")
        .first()
    )


@dataclass(frozen=True)
class Quote:
    """What paying a booking costs (``amount_due`` was fixed when it was made), whether it can be
    paid now, and if not, why: what payment would answer."""

    booking: Booking
    payable: bool
    reason: str | None = None

    @property
    def duration_minutes(self) -> int:
        return int((self.booking.slot_end - self.booking.slot_start).total_seconds() // 60)


async def quote(user: User, booking_id: int, now: datetime) -> Quote:
    booking = await get_booking(user, booking_id)
    status = effective_status(booking, now)
    if status != BookingStatus.CONFIRMED:
        return Quote(booking, payable=False, reason=f"This booking is {status.value.lower()}.")
    # A station closed right now still leaves the hold payable once it opens: that is a wait, not
    # a broken promise, and payment says so itself (403 station_closed).
    station: Station = booking.station
    schedule = compile_schedule(station.timezone, await load_hours_spec(station))
    charger: Charger = booking.charger
    broken = what_breaks(station.status, schedule, charger.status, booking.slot_start, booking.slot_end, now)
    if broken is not None:
        return Quote(booking, payable=False, reason=BROKEN[broken])
    return Quote(booking, payable=True)


# -- cancelling ----------------------------------------------------------------------------------


def cancellable(status: BookingStatus, slot_start: datetime, now: datetime) -> bool:
    """Whether the driver may cancel (``cancel_booking``'s rule, which pages offer by): an unpaid
    hold still running, or a paid booking before its slot starts, refunded in full."""
    return status == BookingStatus.CONFIRMED or (status == BookingStatus.PAID and now < slot_start)


async def cancel_booking(
    user: User,
    booking_id: int,
    *,
    now: datetime,
    provider: PaymentProvider,
    bus: Bus,
    jobs: JobQueue | None = None,
) -> Booking:
    """CONFIRMED → CANCELLED; PAID → CANCELLED with a refund, only before the slot starts."""
    before = await get_booking(user, booking_id)
    async with write_transaction():
        query = Booking.filter(id=booking_id)
        if is_postgres():
            # Serialises with a payment being recorded for the same booking.
            query = query.select_for_update()
        booking = await query.get()
        current = effective_status(booking, now)
        if not cancellable(current, booking.slot_start, now):
            if current == BookingStatus.PAID:
                raise Conflict("A paid booking can only be cancelled before its slot starts.")
            raise Conflict(f"This booking is {current.value.lower()} and cannot be cancelled.")
        refund = None
        if current == BookingStatus.PAID:
            await refund_booking(provider, booking)
            refund = booking.amount_due
        booking.status = BookingStatus.CANCELLED
        await booking.save(update_fields=["status", "updated_at"])
        slot = notifications.slot_of(before)
        refunded = f" Refunded {slot.money}." if refund else ""
        by = "you" if user.id == before.user_id else "an operator"  # type: ignore[attr-defined]
        await history.record(booking.id, history.CANCELLED, f"Cancelled by {by}.{refunded}", now)
        await notifications.write([notifications.booking_cancelled(slot, None, refund, now, by=by)])
    await quietly(publish_availability(bus, booking.station_id, now))  # type: ignore[attr-defined]
    if jobs is not None:
        await quietly(notifications.deliver_soon(jobs, f"cancel:{booking.id}"))
    return await get_booking(user, booking_id)
