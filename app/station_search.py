"""The public station list: what a driver narrows it by, and distance. The read side, next to the
views it reads (``app.station_views``); nothing here touches the database."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from app.models import StationStatus
from app.station_views import StationView

EARTH_RADIUS_KM = 6371.0088
#: How far ``near`` looks unless the query says otherwise, and the most it may say (DESIGN §16).
DEFAULT_RADIUS_KM = 50.0
MAX_RADIUS_KM = 500.0


@dataclass(frozen=True)
class StationFilter:
    """What a driver narrows the list by; None means "any"."""

    open_now: bool = False
    city: str | None = None
    text: str | None = None
    charger_type: str | None = None
    near: tuple[float, float] | None = None
    radius_km: float = DEFAULT_RADIUS_KM

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
    """(total matching, the page as (view, km away or None)): in id order, or nearest first and at
    most ``radius_km`` away. ``views`` is what may be listed at all (``publicly_listed``)."""
    unfiltered = where == StationFilter()
    matching = views if unfiltered else [view for view in views if where.keeps(view, now)]
    if where.near is None:
        return len(matching), [(view, None) for view in matching[offset : offset + limit]]
    origin = where.near
    distances = ((haversine_km(origin, (v.latitude, v.longitude)), v.id, v) for v in matching)
    ranked = sorted(entry for entry in distances if entry[0] <= where.radius_km)
    return len(ranked), [(view, km) for km, _, view in ranked[offset : offset + limit]]


def publicly_listed(views: Sequence[StationView]) -> tuple[StationView, ...]:
    """What the public list and search show: every station but the ``INACTIVE`` ones (DESIGN §16);
    a station under maintenance is still listed, saying so. Operators may ask for all."""
    return tuple(view for view in views if view.status != StationStatus.INACTIVE)
