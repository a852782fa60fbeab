"""A station as booking and payment must read it: fresh from the database, with its hours (and, for
booking, its chargers), in one statement.

Both decide "open now?" from the stored hours at request time (DESIGN §4), so no cache will do;
read through the ORM that is one query per table. Here the hours and chargers come back as JSON
aggregates in scalar subqueries, which PostgreSQL and SQLite both evaluate (``app.db.in_dialect``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.db import instant
from app.hours import Schedule, compile_schedule
from app.models import Charger, Station
from app.station_views import spec_from_values

_STATION = """(SELECT json_build_object('id', s.id, 'name', s.name, 'timezone', s.timezone, 'status', s.status,
        'price_per_hour', s.price_per_hour, 'currency', s.currency, 'twentyfourseven', s.twentyfourseven)
    FROM stations s WHERE s.id = {station})"""
_REGULAR = """(SELECT coalesce(json_agg(json_build_object('weekday', r.weekday, 'period_begin', r.period_begin,
        'period_end', r.period_end)), '[]')
    FROM regular_hours r WHERE r.station_id = {station})"""
_EXCEPTIONAL = """(SELECT coalesce(json_agg(json_build_object('is_closing', e.is_closing,
        'period_begin', e.period_begin, 'period_end', e.period_end)), '[]')
    FROM exceptional_periods e WHERE e.station_id = {station})"""
_CHARGERS = """(SELECT coalesce(json_agg(json_build_object('id', c.id, 'charger_number', c.charger_number,
        'charger_type', c.charger_type, 'power_kw', c.power_kw, 'status', c.status)), '[]')
    FROM chargers c WHERE c.station_id = {station})"""


def station_columns(station: str, *, chargers: bool = False) -> str:
    """Select-list columns ``station``, ``regular``, ``exceptional`` (and ``chargers``) for the
    station whose id the SQL expression ``station`` gives; read them back with ``StationRows.of``."""
    columns = [
        _STATION.format(station=station) + " AS station",
        _REGULAR.format(station=station) + " AS regular",
        _EXCEPTIONAL.format(station=station) + " AS exceptional",
    ]
    if chargers:
        columns.append(_CHARGERS.format(station=station) + " AS chargers")
    return ",\n".join(columns)


# Models are built with ``_init_from_db``, as Tortoise builds them from rows, so that a booking can
# refer to them like to any station or charger it read.


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class StationRows:
    station: Station
    schedule: Schedule
    chargers: list[Charger]

    @classmethod
    def of(cls, row: dict[str, Any]) -> StationRows | None:
        """The station of a row selected with ``station_columns``; None when there is none."""
        fields = _json(row["station"])
        if fields is None:
            return None
        fields["twentyfourseven"] = bool(fields["twentyfourseven"])
        station = Station._init_from_db(**fields)
        exceptional = [
            {**e, "period_begin": instant(e["period_begin"]), "period_end": instant(e["period_end"])}
            for e in _json(row["exceptional"])
        ]
        spec = spec_from_values(station.twentyfourseven, _json(row["regular"]), exceptional)
        chargers = sorted(
            (Charger._init_from_db(station_id=station.id, **c) for c in _json(row.get("chargers") or "[]")),
            key=lambda c: c.charger_number,
        )
        return cls(station, compile_schedule(station.timezone, spec), chargers)
