"""The in-process directory of stations: what the public station endpoints answer from.

It caches one ``StationView`` (``app.station_views``) per station. A view only goes stale when
rows change, and every such change publishes on the station's bus channel (``app.events``). The
directory listens to the bus synchronously: it drops its copy the moment a message is delivered,
which in the publishing process is before ``publish`` returns, so nothing can read a stale view
after a change it made. After a bus reconnect (messages may have been lost) it drops everything.
While the bus is down, copies live at most ``OUTAGE_TTL`` seconds.

The whole catalogue is held too (``catalogue()``), loaded in bulk with a handful of queries, so a
page of the station list costs no database round trip; stations invalidated since are reloaded
together on the next list request.

Booking and payment decisions never use the cached view: they call ``load()`` or read the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time as monotonic
from bisect import bisect_left
from typing import Any

from app.bus import RESYNC, Bus
from app.clock import Clock
from app.events import station_of
from app.station_search import publicly_listed
from app.station_views import StationView, load_views

#: How long a cached view may be trusted while the bus is disconnected (no invalidations arrive).
OUTAGE_TTL = 5.0


class StationDirectory:
    """Cached ``StationView``s for one process, invalidated through the bus."""

    def __init__(self, bus: Bus, clock: Clock) -> None:
        self._bus = bus
        self._clock = clock
        self._views: dict[int, StationView] = {}
        self._versions: dict[int, int] = {}
        self._epoch = 0
        self._loading: dict[int, asyncio.Future[StationView | None]] = {}
        # The catalogue: every station id (sorted) when loaded, else None; ids invalidated since.
        self._catalogue_ids: list[int] | None = None
        self._catalogue: tuple[StationView, ...] | None = None
        self._stale: set[int] = set()
        #: ``publicly_listed`` of the catalogue tuple it was made from, remade when that changes.
        self._listed: tuple[tuple[StationView, ...], tuple[StationView, ...]] | None = None
        self._refreshing: asyncio.Future[None] | None = None
        self._outage_since: float | None = None
        bus.listen(self._handle)

    # -- single stations -------------------------------------------------------------------

    async def get(self, station_id: int) -> StationView | None:
        """The cached view, loading it on a miss; concurrent misses share one load."""
        self._check_bus()
        view = self._views.get(station_id)
        if view is not None:
            return view
        pending = self._loading.get(station_id)
        if pending is None:
            pending = asyncio.ensure_future(self._load_and_keep(station_id))
            self._loading[station_id] = pending
            pending.add_done_callback(lambda done: self._loading_done(station_id, done))
        return await asyncio.shield(pending)

    def cached(self, station_id: int) -> StationView | None:
        """The view if this process holds it, without waiting for anything."""
        self._check_bus()
        return self._views.get(station_id)

    def _loading_done(self, station_id: int, done: asyncio.Future[StationView | None]) -> None:
        if self._loading.get(station_id) is done:
            del self._loading[station_id]
        if not done.cancelled():
            done.exception()  # retrieved: the awaiting requests report it

    async def _load_and_keep(self, station_id: int) -> StationView | None:
        version, epoch = self._versions.get(station_id, 0), self._epoch
        view = await self.load(station_id)
        if view is not None and version == self._versions.get(station_id, 0) and epoch == self._epoch:
            self._views[station_id] = view
            if self._catalogue_ids is not None and station_id not in self._stale:
                self._add_to_catalogue(station_id)  # created without an event reaching us
        return view

    async def load(self, station_id: int) -> StationView | None:
        """A fresh view from the database, bypassing (and not filling) the cache."""
        views = await load_views([station_id], self._clock.now())
        return views[0] if views else None

    def invalidate(self, station_id: int | None = None) -> None:
        if station_id is None:
            self._epoch += 1
            self._views.clear()
            self._versions.clear()
            self._loading.clear()
            self._catalogue_ids = None
            self._catalogue = None
            self._stale.clear()
            return
        self._views.pop(station_id, None)
        self._versions[station_id] = self._versions.get(station_id, 0) + 1
        self._loading.pop(station_id, None)
        self._stale.add(station_id)

    def reset(self) -> None:
        self.invalidate(None)
        self._outage_since = None

    # -- the whole catalogue ---------------------------------------------------------------

    async def catalogue(self) -> tuple[StationView, ...]:
        """Every station, in id order, current with every invalidation received so far."""
        self._check_bus()
        while True:
            if self._catalogue_ids is not None and not self._stale:
                if self._catalogue is None:
                    self._catalogue = tuple(self._views[i] for i in self._catalogue_ids)
                return self._catalogue
            if self._refreshing is None:
                self._refreshing = asyncio.ensure_future(self._refresh())
                self._refreshing.add_done_callback(self._refresh_done)
            await asyncio.shield(self._refreshing)

    async def listed(self, include_inactive: bool = False) -> tuple[StationView, ...]:
        """The catalogue as the public list shows it (``INACTIVE`` stations left out), or all of
        it for an operator who asks."""
        everything = await self.catalogue()
        if include_inactive:
            return everything
        if self._listed is None or self._listed[0] is not everything:
            self._listed = (everything, publicly_listed(everything))
        return self._listed[1]

    def _refresh_done(self, done: asyncio.Future[None]) -> None:
        self._refreshing = None
        if not done.cancelled():
            done.exception()

    async def _refresh(self) -> None:
        epoch, now = self._epoch, self._clock.now()
        if self._catalogue_ids is None:
            self._stale.clear()
            views = await load_views(None, now)
            if epoch != self._epoch:
                return
            for view in views:
                if view.id not in self._stale:
                    self._views[view.id] = view
            self._catalogue_ids = sorted(view.id for view in views)
            self._catalogue = None
            return
        ids = set(self._stale)
        self._stale.clear()
        versions = {i: self._versions.get(i, 0) for i in ids}
        try:
            fresh = {view.id: view for view in await load_views(ids, now)}
        except BaseException:
            self._stale |= ids  # still to be reloaded by the next request
            raise
        if epoch != self._epoch or self._catalogue_ids is None:
            return
        for station_id in ids:
            if versions[station_id] != self._versions.get(station_id, 0):
                continue  # invalidated again meanwhile: it is back in _stale
            found = fresh.get(station_id)
            if found is None:
                self._views.pop(station_id, None)
                with contextlib.suppress(ValueError):
                    self._catalogue_ids.remove(station_id)
            else:
                self._views[station_id] = found
                self._add_to_catalogue(station_id)
        self._catalogue = None

    def _add_to_catalogue(self, station_id: int) -> None:
        assert self._catalogue_ids is not None
        ids = self._catalogue_ids
        position = bisect_left(ids, station_id)
        if position == len(ids) or ids[position] != station_id:
            ids.insert(position, station_id)
            self._catalogue = None

    # -- bus -----------------------------------------------------------------------------

    def _check_bus(self) -> None:
        """Without a bus nobody tells us about changes: trust copies only briefly."""
        if self._bus.connected:
            self._outage_since = None
            return
        started = monotonic.monotonic()
        if self._outage_since is None or started - self._outage_since > OUTAGE_TTL:
            if self._outage_since is not None:
                self.invalidate(None)
            self._outage_since = started

    def _handle(self, message: dict[str, Any]) -> None:
        """A bus listener: forget what the message says has changed."""
        if message.get("type") == RESYNC["type"]:
            self.invalidate(None)
            return
        station_id = station_of(message)
        if station_id is not None:
            self.invalidate(station_id)
