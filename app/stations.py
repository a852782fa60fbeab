"""Stations: creating them, and storing and loading their opening hours.

Hours are stored relationally (a 24/7 flag on the station, weekly periods, exceptional periods)
and turned into an ``app.hours.HoursSpec`` for every decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise.transactions import in_transaction

from app.db import is_postgres, write_transaction
from app.errors import NotFound, ValidationFailed
from app.hours import MAX_EXCEPTIONAL_PERIODS, HoursSpec, RegularPeriod
from app.hours import ExceptionalPeriod as ExceptionalSpec
from app.models import Charger, ChargerStatus, ExceptionalPeriod, RegularHours, Station

if TYPE_CHECKING:
    from app.station_views import StationView


@dataclass(frozen=True)
class ChargerSpec:
    charger_type: str
    power_kw: float


def spec_from_values(
    twentyfourseven: bool, regular: Iterable[Mapping[str, Any]], exceptional: Iterable[Mapping[str, Any]]
) -> HoursSpec:
    """The hours from plain row values (``.values()`` queries, as the bulk loaders use)."""
    periods = sorted(exceptional, key=lambda e: e["period_begin"])
    return HoursSpec(
        twentyfourseven=bool(twentyfourseven),
        regular_hours=tuple(
            RegularPeriod(weekday=r["weekday"], begin=r["period_begin"], end=r["period_end"])
            for r in sorted(regular, key=lambda r: (r["weekday"], r["period_begin"]))
        ),
        exceptional_openings=tuple(
            ExceptionalSpec(begin=e["period_begin"], end=e["period_end"]) for e in periods if not e["is_closing"]
        ),
        exceptional_closings=tuple(
            ExceptionalSpec(begin=e["period_begin"], end=e["period_end"]) for e in periods if e["is_closing"]
        ),
    )


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


async def create_station(
    *,
    hours: HoursSpec,
    chargers: Sequence[ChargerSpec] = (),
    **fields: Any,
) -> Station:
    """Create a station with its hours and chargers in one transaction: all of it or none."""
    async with in_transaction():
        station = await Station.create(twentyfourseven=hours.twentyfourseven, **fields)
        await write_hours(station, hours)
        await add_chargers(station, chargers)
    return station


# -- operator changes -----------------------------------------------------------------------------
# Each runs in one transaction holding the station row (PostgreSQL) or the write lock (SQLite), so
# concurrent edits of one station apply one after the other; publishing is the caller's job, after
# commit (app/events.py).

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


async def update_station(station_id: int, changes: Mapping[str, Any], hours: HoursSpec | None = None) -> bool:
    """Apply field changes and/or new hours; True when openness or bookability may have changed."""
    async with write_transaction():
        station = await _locked_station(station_id)
        if changes:
            station.update_from_dict(dict(changes))
            await station.save(update_fields=[*changes, "updated_at"])
        if hours is not None:
            await write_hours(station, hours)
    return hours is not None or bool(STATUS_FIELDS & changes.keys())


async def add_exception(station_id: int, *, closing: bool, begin: datetime, end: datetime) -> ExceptionalPeriod:
    async with write_transaction():
        await _locked_station(station_id)
        if await ExceptionalPeriod.filter(station_id=station_id, is_closing=closing).count() >= MAX_EXCEPTIONAL_PERIODS:
            kind = "closings" if closing else "openings"
            msg = f"a station can have at most {MAX_EXCEPTIONAL_PERIODS} exceptional {kind}"
            raise ValidationFailed([{"loc": ["body", "kind"], "msg": msg}])
        return await ExceptionalPeriod.create(
            station_id=station_id, is_closing=closing, period_begin=begin, period_end=end
        )


async def remove_exception(station_id: int, exception_id: int) -> None:
    async with write_transaction():
        await _locked_station(station_id)
        if not await ExceptionalPeriod.filter(id=exception_id, station_id=station_id).delete():
            raise NotFound("Exceptional period not found.")


async def add_charger(station_id: int, spec: ChargerSpec) -> Charger:
    async with write_transaction():
        station = await _locked_station(station_id)
        (charger,) = await add_chargers(station, [spec])
    return charger


async def set_charger_status(station_id: int, charger_id: int, status: ChargerStatus) -> Charger:
    async with write_transaction():
        await _locked_station(station_id)
        charger = await Charger.filter(id=charger_id, station_id=station_id).first()
        if charger is None:
            raise NotFound("Charger not found.")
        if charger.status != status:
            charger.status = status
            await charger.save(update_fields=["status"])
    return charger


# -- the public station list ---------------------------------------------------------------------

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class StationFilter:
    """What a driver narrows the list by; None means "any"."""

    open_now: bool = False
    city: str | None = None
    text: str | None = None
    charger_type: str | None = None
    near: tuple[float, float] | None = None

    def keeps(self, view: StationView, now: datetime) -> bool:
        if self.city is not None and view.city_key != self.city.casefold():
            return False
        if self.text is not None and self.text.casefold() not in view.search_text:
            return False
        if self.charger_type is not None and self.charger_type.casefold() not in view.charger_types:
            return False
        return not self.open_now or view.is_open(now)


def haversine_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def find_stations(
    views: Sequence[StationView], now: datetime, where: StationFilter, limit: int, offset: int
) -> tuple[int, list[tuple[StationView, float | None]]]:
    """(total matching, the page as (view, km away or None)): in id order, or nearest first."""
    unfiltered = where == StationFilter()
    matching = views if unfiltered else [view for view in views if where.keeps(view, now)]
    if where.near is None:
        return len(matching), [(view, None) for view in matching[offset : offset + limit]]
    origin = where.near
    ranked = sorted((haversine_km(origin, (v.latitude, v.longitude)), v.id, v) for v in matching)
    return len(ranked), [(view, km) for km, _, view in ranked[offset : offset + limit]]
