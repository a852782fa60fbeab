"""Stations: creating them, and storing and loading their opening hours.

Hours are stored relationally (a 24/7 flag on the station, weekly periods, exceptional periods)
and turned into an ``app.hours.HoursSpec`` for every decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from app.hours import ExceptionalPeriod as ExceptionalSpec
from app.hours import HoursSpec, RegularPeriod
from app.models import Charger, ExceptionalPeriod, RegularHours, Station


@dataclass(frozen=True)
class ChargerSpec:
    charger_type: str
    power_kw: float


def spec_from_rows(
    station: Station, regular: Iterable[RegularHours], exceptional: Iterable[ExceptionalPeriod]
) -> HoursSpec:
    return spec_from_values(
        station.twentyfourseven,
        ({"weekday": r.weekday, "period_begin": r.period_begin, "period_end": r.period_end} for r in regular),
        ({"is_closing": e.is_closing, "period_begin": e.period_begin, "period_end": e.period_end} for e in exceptional),
    )


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
    regular = await RegularHours.filter(station_id=station.id)
    exceptional = await ExceptionalPeriod.filter(station_id=station.id)
    return spec_from_rows(station, regular, exceptional)


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
