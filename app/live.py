"""The live channel (DESIGN §7): station status and availability pushed to WebSockets.

One ``Hub`` per process holds one bus subscription and fans each ``status`` or ``availability``
event out to the sockets watching that station, encoded once. Every socket has its own bounded
queue: a client that cannot keep up is disconnected (close code 1013, "try again later") instead
of holding up the others or growing without bound, and it resynchronises by reconnecting.

A socket is registered with the hub before its snapshot is read, so nothing published after the
snapshot can be missed; an event already reflected in the snapshot may arrive again, which is
harmless because every event carries the full new state. Snapshots carry the ``epoch`` of their
``seq`` numbers, as events do (``app.bus``). When the bus may have lost messages
(Redis came back, or the hub itself fell behind) every socket is sent a fresh snapshot instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Final

from quart import Websocket
from wsproto.extensions import PerMessageDeflate

from app.bus import Bus
from app.clock import Clock
from app.directory import StationDirectory
from app.events import AVAILABILITY, STATUS, station_channel, status_fields
from app.station_views import StationView
from app.tasks import TaskSet

log = logging.getLogger(__name__)

#: Event types clients see; anything else on a station channel (``changed``) is for caches only.
FORWARDED = frozenset({STATUS, AVAILABILITY})
HEARTBEAT_SECONDS = 20.0
#: Events a socket may have waiting before it counts as too slow and is disconnected.
CLIENT_QUEUE_SIZE = 256
#: The hub's own subscription; it only moves messages between queues, so it rarely holds many.
HUB_QUEUE_SIZE = 16_384
CLOSE_TOO_SLOW = 1013  # "try again later": reconnect, and the new snapshot catches up
CLOSE_GONE = 4404  # the station was deleted while the socket was open
CHARGER_FIELDS = ("id", "charger_number", "charger_type", "power_kw", "status", "available_now")
PING: Final = json.dumps({"type": "ping"})


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


#: Queue items that are not an encoded event: send a new snapshot / disconnect the slow client.
RESYNC, OVERFLOW = _Marker("resync"), _Marker("overflow")

QueueItem = str | _Marker
Snapshot = Callable[[], Awaitable[dict[str, Any] | None]]


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


class LiveClient:
    """One socket's queue of encoded events, bounded by hand so the overflow marker always fits."""

    __slots__ = ("limit", "overflowed", "queue", "stations")

    def __init__(self, stations: frozenset[int] | None, limit: int) -> None:
        self.stations = stations  # None: every station
        self.limit = limit
        self.overflowed = False
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue()

    def deliver(self, item: QueueItem) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.limit:
            self.overflowed = True
            item = OVERFLOW
        self.queue.put_nowait(item)


class Hub:
    def __init__(
        self,
        bus: Bus,
        directory: StationDirectory,
        clock: Clock,
        tasks: TaskSet,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        client_queue_size: int = CLIENT_QUEUE_SIZE,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._clock = clock
        self._tasks = tasks
        self.heartbeat = heartbeat
        self.client_queue_size = client_queue_size
        self._by_station: dict[int, set[LiveClient]] = {}
        self._everywhere: set[LiveClient] = set()
        self._listener: asyncio.Task[None] | None = None

    # -- registration ----------------------------------------------------------------------

    def start(self) -> None:
        """Subscribe to the bus and start fanning out (idempotent)."""
        if self._listener is None:
            self._listener = self._tasks.supervise("live-hub", self._listen)

    @contextlib.contextmanager
    def subscribed(self, stations: Iterable[int] | None) -> Iterator[LiveClient]:
        """A queue of the given stations' events (every station's when None) while inside."""
        client = self.connect(stations)
        try:
            yield client
        finally:
            self.disconnect(client)

    def connect(self, stations: Iterable[int] | None) -> LiveClient:
        self.start()
        client = LiveClient(None if stations is None else frozenset(stations), self.client_queue_size)
        if client.stations is None:
            self._everywhere.add(client)
        else:
            for station_id in client.stations:
                self._by_station.setdefault(station_id, set()).add(client)
        return client

    def disconnect(self, client: LiveClient) -> None:
        if client.stations is None:
            self._everywhere.discard(client)
            return
        for station_id in client.stations:
            watchers = self._by_station.get(station_id)
            if watchers is not None:
                watchers.discard(client)
                if not watchers:
                    del self._by_station[station_id]

    @property
    def client_count(self) -> int:
        return len(self._clients())

    # -- fan-out ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Move bus messages to the sockets' queues. Whenever this (re)starts, or falls behind the
        bus, messages may have been missed: every socket gets a fresh snapshot."""
        while True:
            with self._bus.subscribe(maxsize=HUB_QUEUE_SIZE) as subscription:
                self._resync_everyone()
                async for message in subscription:
                    self.dispatch(message)
            log.warning("live hub fell behind the bus; resynchronising every socket")

    def dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "resync":
            self._resync_everyone()
            return
        station_id = message.get("station_id")
        if kind not in FORWARDED or not isinstance(station_id, int):
            return
        text = encode({key: value for key, value in message.items() if key != "channel"})
        for client in self._by_station.get(station_id, ()):
            client.deliver(text)
        for client in self._everywhere:
            client.deliver(text)

    def _clients(self) -> set[LiveClient]:
        return self._everywhere.union(*self._by_station.values())

    def _resync_everyone(self) -> None:
        for client in self._clients():
            client.deliver(RESYNC)

    # -- snapshots -------------------------------------------------------------------------

    async def _seqs(self, station_ids: list[int]) -> list[int]:
        """The stations' current ``seq``s; 0 (unknown) while Redis is unreachable."""
        return await self._bus.current_seqs([station_channel(i) for i in station_ids])

    async def station_snapshot(self, station_id: int) -> dict[str, Any] | None:
        (seq,) = await self._seqs([station_id])
        epoch = self._bus.epoch
        view = await self._directory.get(station_id)
        if view is None:
            return None
        now = self._clock.now()
        return {
            "type": "snapshot",
            "seq": seq,
            "epoch": epoch,
            "station_id": station_id,
            **status_fields(view, now),
            "chargers": [{key: c[key] for key in CHARGER_FIELDS} for c in view.chargers_now(now)],
        }

    async def stations_snapshot(self, station_ids: frozenset[int] | None) -> dict[str, Any]:
        """Every station's status (or the requested ones'), for the all-stations channel."""
        views: list[StationView] = list(await self._directory.catalogue())
        if station_ids is not None:
            views = [view for view in views if view.id in station_ids]
        seqs = await self._seqs([view.id for view in views])
        epoch = self._bus.epoch
        now = self._clock.now()
        stations = []
        for view, seq in zip(views, seqs, strict=True):
            status = view.status_at(now)
            del status["current_server_time"]
            stations.append({"seq": seq, **status})
        return {"type": "snapshot", "epoch": epoch, "server_time": now.isoformat(), "stations": stations}

    # -- one socket ------------------------------------------------------------------------

    async def serve(self, websocket: Websocket, client: LiveClient, first: dict[str, Any], snapshot: Snapshot) -> None:
        """Send ``first``, then events, heartbeats and fresh snapshots until the socket closes."""
        incoming = asyncio.ensure_future(discard_incoming(websocket))
        try:
            await websocket.accept()
            await websocket.send(encode(first))
            while True:
                try:
                    async with asyncio.timeout(self.heartbeat):
                        item = await client.queue.get()
                except TimeoutError:
                    await websocket.send(PING)
                    continue
                if item is OVERFLOW:
                    await websocket.close(CLOSE_TOO_SLOW, "too slow; reconnect")
                    return
                if item is RESYNC:
                    fresh = await snapshot()
                    if fresh is None:
                        await websocket.close(CLOSE_GONE, "station deleted")
                        return
                    await websocket.send(encode(fresh))
                    continue
                assert isinstance(item, str)
                await websocket.send(item)
        finally:
            incoming.cancel()


async def discard_incoming(websocket: Websocket) -> None:
    """Clients have nothing to say; read and drop whatever they send so it cannot pile up."""
    while True:
        await websocket.receive()


class _NoCompression(PerMessageDeflate):
    """Declines every permessage-deflate offer."""

    def accept(self, offer: str) -> bool | str | None:
        return None


def decline_websocket_compression() -> None:
    """Make Hypercorn decline permessage-deflate, which every browser offers.

    Hypercorn accepts it unconditionally and keeps a zlib compressor of about 256 KiB per socket
    for the socket's life; measured, that is most of an idle socket's memory (about 135 KiB of
    136). Our messages are a few hundred bytes of JSON: compressing them saves little, and
    declining keeps thousands of idle kiosks and browser tabs cheap. Clients fall back to plain
    frames, as the protocol requires.
    """
    from hypercorn.protocol import ws_stream

    if not isinstance(getattr(ws_stream, "PerMessageDeflate", None), type):
        raise RuntimeError(
            "hypercorn.protocol.ws_stream.PerMessageDeflate moved: WebSocket compression can no longer be "
            "declined, and every idle socket would cost about 136 KiB again. Update app/live.py."
        )
    ws_stream.PerMessageDeflate = _NoCompression  # type: ignore[misc]
