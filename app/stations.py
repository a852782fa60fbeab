"""Stations: creating and changing them, and storing and loading their opening hours.

Hours are stored relationally (a 24/7 flag on the station, weekly periods, exceptional periods)
and turned into an ``app.hours.HoursSpec`` for every decision.

Every operator change commits in one transaction holding the station row (PostgreSQL) or the
write lock (SQLite), so concurrent edits of one station apply one after the other, and then
publishes on the station's channel (``app.events``): ``status`` when it can change whether the
station is open or bookable, ``availability`` when it changes which chargers are usable,
``changed`` otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from tortoise.transactions import in_transaction

from app.bus import Bus
from app.db import is_postgres, write_transaction
from app.errors import NotFound, ValidationFailed
from app.events import publish_availability, publish_changed, publish_status, quietly
from app.hours import MAX_EXCEPTIONAL_PERIODS, HoursSpec
from app.job_queue import JobQueue
from app.models import Charger, ChargerStatus, ExceptionalPeriod, RegularHours, Station
from app.notifications import deliver_soon
from app.payment_provider import PaymentProvider
from app.rebooking import Affected, refund_pending, settle
from app.station_views import spec_from_values

T = TypeVar("T")


@dataclass(frozen=True)
class ChargerSpec:
    charger_type: str
    power_kw: float


async def load_hours_spec(station: Station) -> HoursSpec:
    """The station's hours as stored now (plain rows: booking and payment read them every time)."""
    regular = await RegularHours.filter(station_id=station.id).values("weekday", "period_begin", "period_end")
    exceptional = await ExceptionalPeriod.filter(station_id=station.id).values(
        "is_closing", "period_begin", "period_end"
    )
    return spec_from_values(station.twentyfourseven, regular, exceptional)


async def write_hours(station: Station, spec: HoursSpec) -> None:
    """Replace a station's hours; call inside a transaction."""
    await RegularHours.filter(station_id=station.id).delete()
    await ExceptionalPeriod.filter(station_id=station.id).delete()
    await RegularHours.bulk_create(
        [
            RegularHours(station_id=station.id, weekday=p.weekday, period_begin=p.begin, period_end=p.end)
            for p in spec.regular_hours
        ]
    )
    await ExceptionalPeriod.bulk_create(
        [
            ExceptionalPeriod(station_id=station.id, is_closing=closing, period_begin=p.begin, period_end=p.end)
            for closing, periods in ((False, spec.exceptional_openings), (True, spec.exceptional_closings))
            for p in periods
        ]
    )
    if station.twentyfourseven != spec.twentyfourseven:
        station.twentyfourseven = spec.twentyfourseven
        await station.save(update_fields=["twentyfourseven", "updated_at"])


async def add_chargers(station: Station, chargers: Sequence[ChargerSpec]) -> list[Charger]:
    """Add chargers numbered after the station's highest number; call inside a transaction."""
    last = await Charger.filter(station_id=station.id).order_by("-charger_number").first()
    start = (last.charger_number if last else 0) + 1
    created = []
    for number, spec in enumerate(chargers, start=start):
        created.append(
            await Charger.create(
                station_id=station.id, charger_number=number, charger_type=spec.charger_type, power_kw=spec.power_kw
            )
        )
    return created


async def insert_station(*, hours: HoursSpec, chargers: Sequence[ChargerSpec] = (), **fields: Any) -> Station:
    """Store a station with its hours and chargers in one transaction, all of it or none, telling
    nobody: for seeding a database no process serves yet (and tests that do the same)."""
    async with in_transaction():
        station = await Station.create(twentyfourseven=hours.twentyfourseven, **fields)
        await write_hours(station, hours)
        await add_chargers(station, chargers)
    return station


async def create_station(
    *, hours: HoursSpec, chargers: Sequence[ChargerSpec] = (), bus: Bus, now: datetime, **fields: Any
) -> Station:
    """An operator's new station: stored, then announced."""
    station = await insert_station(hours=hours, chargers=chargers, **fields)
    await quietly(publish_status(bus, station.id, now))
    return station


# -- operator changes -----------------------------------------------------------------------------

#: Fields whose change can flip whether the station is open or bookable.
STATUS_FIELDS = frozenset({"timezone", "status"})


async def _locked_station(station_id: int) -> Station:
    query = Station.filter(id=station_id)
    if is_postgres():
        query = query.select_for_update()
    station = await query.first()
    if station is None:
        raise NotFound("Station not found.")
    return station


@dataclass(frozen=True)
class Change:
    """How to carry out one operator change: at what instant, through which bus and payment
    provider, and whether only to say what it would do to bookings (``dry_run``)."""

    now: datetime
    bus: Bus
    provider: PaymentProvider
    dry_run: bool = False
    #: Where the delivery of the notifications it writes is enqueued (None: left to catch-up).
    jobs: JobQueue | None = None


class _RolledBack(Exception):
    """Carries a dry run's answer out of the transaction it undoes."""

    def __init__(self, result: object, affected: Affected) -> None:
        super().__init__()
        self.result, self.affected = result, affected


async def _apply(
    station_id: int,
    change: Change,
    edit: Callable[[Station], Awaitable[T]],
    announce: Callable[[Bus, int, datetime], Awaitable[object]],
) -> tuple[T, Affected]:
    """Run ``edit`` and settle the bookings it makes impossible (``app.rebooking``) in one
    transaction holding the station; then announce the change and refund what is owed. A dry run
    rolls everything back and only answers."""
    try:
        async with write_transaction():
            station = await _locked_station(station_id)
            result = await edit(station)
            affected = await settle(station_id, change.now)
            if change.dry_run:
                raise _RolledBack(result, affected)
    except _RolledBack as dry:
        return dry.result, dry.affected  # type: ignore[return-value]
    await quietly(announce(change.bus, station_id, change.now))
    if affected.booking_ids:
        # A status event does not list chargers; an availability one already shows the moves.
        if announce is not publish_availability:
            await quietly(publish_availability(change.bus, station_id, change.now))
        await refund_pending(change.provider, affected.cancelled)
        if change.jobs is not None:
            cause = f"change:{station_id}:{affected.booking_ids[0]}:{change.now.isoformat()}"
            await quietly(deliver_soon(change.jobs, cause))
    return result, affected


async def update_station(
    station_id: int, changes: Mapping[str, Any], hours: HoursSpec | None, change: Change
) -> Affected:
    """Apply field changes and/or new hours."""

    async def edit(station: Station) -> None:
        if changes:
            station.update_from_dict(dict(changes))
            await station.save(update_fields=[*changes, "updated_at"])
        if hours is not None:
            await write_hours(station, hours)

    status_may_change = hours is not None or bool(STATUS_FIELDS & changes.keys())
    _, affected = await _apply(station_id, change, edit, publish_status if status_may_change else _publish_changed)
    return affected


async def _publish_changed(bus: Bus, station_id: int, now: datetime) -> object:
    return await publish_changed(bus, station_id)


async def add_exception(
    station_id: int, *, closing: bool, begin: datetime, end: datetime, change: Change
) -> tuple[ExceptionalPeriod, Affected]:
    async def edit(station: Station) -> ExceptionalPeriod:
        if await ExceptionalPeriod.filter(station_id=station_id, is_closing=closing).count() >= MAX_EXCEPTIONAL_PERIODS:
            kind = "closings" if closing else "openings"
            msg = f"a station can have at most {MAX_EXCEPTIONAL_PERIODS} exceptional {kind}"
            raise ValidationFailed([{"loc": ["body", "kind"], "msg": msg}])
        return await ExceptionalPeriod.create(
            station_id=station_id, is_closing=closing, period_begin=begin, period_end=end
        )

    return await _apply(station_id, change, edit, publish_status)


async def remove_exception(station_id: int, exception_id: int, change: Change) -> Affected:
    async def edit(station: Station) -> None:
        if not await ExceptionalPeriod.filter(id=exception_id, station_id=station_id).delete():
            raise NotFound("Exceptional period not found.")

    _, affected = await _apply(station_id, change, edit, publish_status)
    return affected


async def add_charger(station_id: int, spec: ChargerSpec, *, bus: Bus, now: datetime) -> Charger:
    """A new charger takes no booking away from anyone: nothing to settle."""
    async with write_transaction():
        station = await _locked_station(station_id)
        (charger,) = await add_chargers(station, [spec])
    await quietly(publish_availability(bus, station_id, now))
    return charger


async def set_charger_status(
    station_id: int, charger_id: int, status: ChargerStatus, change: Change
) -> tuple[Charger, Affected]:
    async def edit(station: Station) -> Charger:
        charger = await Charger.filter(id=charger_id, station_id=station_id).first()
        if charger is None:
            raise NotFound("Charger not found.")
        if charger.status != status:
            charger.status = status
            await charger.save(update_fields=["status"])
        return charger

    return await _apply(station_id, change, edit, publish_availability)
