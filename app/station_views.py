"""Station views: everything needed to answer "is it open, what is free" for one station, and the
bulk loader that builds them.

A ``StationView`` holds a station's row, compiled schedule, chargers and the bookings that can still
block a charger. Answers that depend on the instant (``is_open``, today's hours, free chargers) are
computed from the view with the server clock at request time and memoised until the next instant
they can change, so a view stays correct as time passes; it only goes stale when rows change, which
``app.directory`` learns from the bus.
"""

from __future__ import annotations

import contextlib
import gc
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from app.availability import BookingSpan, live_usable, load_spans, next_busy_change, session_summary
from app.clock import aware
from app.hours import ExceptionalPeriod as ExceptionalSpec
from app.hours import HoursSpec, RegularPeriod, Schedule, compile_schedule
from app.models import (
    ChargePoint,
    Charger,
    ChargerStatus,
    ChargingSession,
    ExceptionalPeriod,
    RegularHours,
    Station,
)
from app.money import format_money

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_json(value: Any) -> bytes:
    """Compact JSON, as the hot endpoints send it."""
    return _encoder.encode(value).encode()


#: Time-dependent answers are memoised until the next instant they can change, but never longer.
MOMENT_MAX = timedelta(hours=1)
_CHUNK = 500  # ids per IN (...) query
T = TypeVar("T")

_STATION_FIELDS = (
    "id",
    "name",
    "location",
    "city",
    "latitude",
    "longitude",
    "timezone",
    "price_per_hour",
    "currency",
    "status",
    "twentyfourseven",
)


@dataclass(frozen=True, slots=True)
class ChargerView:
    id: int
    charger_number: int
    charger_type: str
    power_kw: float
    status: str
    #: What its charge point reports (OCPP), for chargers linked to one.
    linked: bool = False
    online: bool = False
    live_status: str | None = None
    #: The running charging session as the station's screens show it, if one runs.
    session: dict[str, Any] | None = None

    def usable(self) -> bool:
        """In service and, for a linked charger, reported usable (``live_usable``)."""
        return self.status == ChargerStatus.AVAILABLE and live_usable(
            self.linked, self.online, self.live_status, self.session is not None
        )


@dataclass(frozen=True, slots=True)
class ExceptionView:
    """An exceptional opening or closing with its id, so operators can remove it."""

    id: int
    kind: str  # "opening" | "closing"
    period_begin: datetime
    period_end: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "period_begin": self.period_begin.isoformat(),
            "period_end": self.period_end.isoformat(),
        }


@dataclass(slots=True)
class Moment:
    """A view's time-dependent answers, valid for ``valid_from <= now < valid_until``."""

    valid_from: datetime
    valid_until: datetime
    is_open: bool
    open_time: str | None
    close_time: str | None
    next_change_at: str | None
    available_chargers: int
    exceptions_today: list[dict[str, str]]
    summary: dict[str, Any]
    #: ``summary`` encoded once, when a list page first needs it.
    summary_json: bytes | None = None


def _clock_text(value: time) -> str:
    return value.isoformat(timespec="seconds")


@dataclass(frozen=True, eq=False)
class StationView:
    id: int
    name: str
    location: str
    city: str
    latitude: float
    longitude: float
    timezone: str
    price_per_hour: int  # minor units
    currency: str
    status: str  # ACTIVE | INACTIVE | MAINTENANCE
    schedule: Schedule
    hours: HoursSpec
    chargers: tuple[ChargerView, ...]
    bookings: tuple[BookingSpan, ...]
    exceptions: tuple[ExceptionView, ...] = ()
    #: Lower-cased name + location and city, and the charger types: the list filters use them.
    search_text: str = field(init=False, repr=False)
    city_key: str = field(init=False, repr=False)
    charger_types: frozenset[str] = field(init=False, repr=False)
    _moment: list[Moment] = field(init=False, repr=False, default_factory=list)

    def __post_init__(self) -> None:
        object.__setattr__(self, "search_text", f"{self.name}\n{self.location}".casefold())
        object.__setattr__(self, "city_key", self.city.casefold())
        object.__setattr__(self, "charger_types", frozenset(c.charger_type.casefold() for c in self.chargers))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, now: datetime) -> bool:
        """Whether the hours have the station open at ``now`` (its status is a separate matter)."""
        return self.moment(now).is_open

    def busy_charger_ids(self, now: datetime) -> set[int]:
        return {span.charger_id for span in self.bookings if span.blocks(now)}

    def chargers_now(self, now: datetime) -> list[dict[str, Any]]:
        busy = self.busy_charger_ids(now)
        return [
            {
                "id": c.id,
                "charger_number": c.charger_number,
                "charger_type": c.charger_type,
                "power_kw": c.power_kw,
                "status": c.status,
                "available_now": c.usable() and c.id not in busy,
                "live_status": c.live_status,
                "online": c.online if c.linked else None,
                "session": c.session,
            }
            for c in self.chargers
        ]

    def available_count(self, now: datetime) -> int:
        return self.moment(now).available_chargers

    def status_at(self, now: datetime) -> dict[str, Any]:
        moment = self.moment(now)
        return {
            "station_id": self.id,
            "is_open": moment.is_open,
            "open_time": moment.open_time,
            "close_time": moment.close_time,
            "next_change_at": moment.next_change_at,
            "exceptions_today": moment.exceptions_today,
            "current_server_time": now.isoformat(),
            "available_chargers": moment.available_chargers,
            "total_chargers": len(self.chargers),
            "station_status": self.status,
        }

    def summary(self, now: datetime) -> dict[str, Any]:
        """The station-list item (DESIGN §5). Shared between requests: do not mutate it."""
        return self.moment(now).summary

    def summary_json(self, now: datetime) -> bytes:
        """``summary`` as JSON, shared by every list page served until the answer can change."""
        moment = self.moment(now)
        if moment.summary_json is None:
            moment.summary_json = encode_json(moment.summary)
        return moment.summary_json

    def moment(self, now: datetime) -> Moment:
        memo = self._moment
        if memo:
            cached = memo[0]
            if cached.valid_from <= now < cached.valid_until:
                return cached
        computed = self._compute_moment(now)
        memo[:] = [computed]
        return computed

    def _compute_moment(self, now: datetime) -> Moment:
        schedule = self.schedule
        is_open = schedule.is_open(now)
        next_change = schedule.next_change(now)
        day = schedule.regular_day_hours(now)
        exceptions_today = [
            {"kind": kind, "begin": _clock_text(begin), "end": _clock_text(end)}
            for kind, begin, end in schedule.day_exceptions(now)
        ]
        usable = [c.id for c in self.chargers if c.usable()]
        busy = self.busy_charger_ids(now)
        available = sum(1 for charger_id in usable if charger_id not in busy)
        # Nothing above can change before the next flip, the station's next midnight (today's
        # hours) or the next instant a booking starts, ends or loses its hold.
        local = now.astimezone(self.zone)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0), self.zone).astimezone(UTC)
        edges = [now + MOMENT_MAX, midnight]
        edges.extend(edge for edge in (next_change, next_busy_change(self.bookings, now)) if edge is not None)
        next_change_at = next_change.astimezone(self.zone).isoformat() if next_change is not None else None
        open_time, close_time = (_clock_text(day[0]), _clock_text(day[1])) if day else (None, None)
        summary = {
            "id": self.id,
            "name": self.name,
            "location": self.location,
            "city": self.city,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "timezone": self.timezone,
            "price_per_hour": format_money(self.price_per_hour),
            "currency": self.currency,
            "status": self.status,
            "is_open": is_open,
            "open_time": open_time,
            "close_time": close_time,
            "exceptions_today": exceptions_today,
            "next_change_at": next_change_at,
            "total_chargers": len(self.chargers),
            "available_chargers": available,
        }
        return Moment(
            now, min(edges), is_open, open_time, close_time, next_change_at, available, exceptions_today, summary
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


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Building thousands of views allocates only live objects; the cycle collector would re-scan
    the growing heap again and again (most of the cost of a catalogue load) for nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def load_views(station_ids: Iterable[int] | None, now: datetime) -> list[StationView]:
    """Views for the given stations (all when None): the station rows, then four queries per chunk
    of stations. Between chunks the event loop serves other requests."""
    if station_ids is None:
        rows = await Station.all().order_by("id").values(*_STATION_FIELDS)
    else:
        rows = []
        for ids in _chunks(sorted(set(station_ids))):
            rows += await Station.filter(id__in=list(ids)).order_by("id").values(*_STATION_FIELDS)
    views: list[StationView] = []
    for chunk in _chunks(rows):
        views += await _load_chunk(chunk, now)
    return views


async def _load_chunk(stations: Sequence[dict[str, Any]], now: datetime) -> list[StationView]:
    ids = [row["id"] for row in stations]
    regular = await RegularHours.filter(station_id__in=ids).values(
        "station_id", "weekday", "period_begin", "period_end"
    )
    exceptional = await ExceptionalPeriod.filter(station_id__in=ids).values(
        "id", "station_id", "is_closing", "period_begin", "period_end"
    )
    chargers = await Charger.filter(station_id__in=ids).values(
        "id", "station_id", "charger_number", "charger_type", "power_kw", "status", "charge_point_id", "live_status"
    )
    spans = await load_spans(ids, now)
    online = dict(await ChargePoint.filter(station_id__in=ids).values_list("id", "online"))
    sessions = {
        row["charger_id"]: session_summary(row["started_at"], row["meter_start"], row["meter_last"], row["power_w"])
        for row in await ChargingSession.filter(charger__station_id__in=ids, stopped_at__isnull=True)
        .order_by("id")
        .values("charger_id", "started_at", "meter_start", "meter_last", "power_w")
    }
    for charger in chargers:
        charger["online"] = bool(online.get(charger["charge_point_id"]))
        charger["session"] = sessions.get(charger["id"])
    with _collector_paused():
        parts: dict[int, dict[str, list[Any]]] = {
            station_id: {"regular": [], "exceptional": [], "chargers": []} for station_id in ids
        }
        for key, found in (
            ("regular", regular),
            ("exceptional", exceptional),
            ("chargers", chargers),
        ):
            for row in found:
                parts[row["station_id"]][key].append(row)
        return [_build_view(row, parts[row["id"]], spans.get(row["id"], ())) for row in stations]


def _build_view(row: dict[str, Any], parts: dict[str, list[Any]], bookings: Iterable[BookingSpan]) -> StationView:
    spec = spec_from_values(row["twentyfourseven"], parts["regular"], parts["exceptional"])
    chargers = tuple(
        ChargerView(
            id=c["id"],
            charger_number=c["charger_number"],
            charger_type=c["charger_type"],
            power_kw=float(c["power_kw"]),
            status=str(ChargerStatus(c["status"])),
            linked=c["charge_point_id"] is not None,
            online=c["online"],
            live_status=c["live_status"],
            session=c["session"],
        )
        for c in sorted(parts["chargers"], key=lambda c: c["charger_number"])
    )
    exceptions = tuple(
        ExceptionView(
            id=e["id"],
            kind="closing" if e["is_closing"] else "opening",
            period_begin=aware(e["period_begin"]).astimezone(UTC),
            period_end=aware(e["period_end"]).astimezone(UTC),
        )
        for e in sorted(parts["exceptional"], key=lambda e: (aware(e["period_begin"]), e["id"]))
    )
    return StationView(
        id=row["id"],
        name=row["name"],
        location=row["location"],
        city=row["city"],
        latitude=float(row["latitude"]),
        longitude=float(row["longitude"]),
        timezone=row["timezone"],
        price_per_hour=int(row["price_per_hour"]),
        currency=row["currency"],
        status=str(row["status"]),
        schedule=compile_schedule(row["timezone"], spec),
        hours=spec,
        chargers=chargers,
        bookings=tuple(bookings),
        exceptions=exceptions,
    )
