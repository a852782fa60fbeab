"""Open/close transitions: when each station's next one is, and telling everyone at that instant.

The opening-hours module decides every instant; this module only asks it ``next_change`` for each
station and publishes the station's status (``app.events.status_changed``) when one arrives. Two
runners share it: the arq worker (``workers/``), which turns each next transition into a deferred
job with a stable id so that any number of workers broadcast it once, and ``TransitionScheduler``
below, which does the same inside the web process in the embedded default.

A planned instant can stop being a transition when an operator edits the hours after it was
planned. Nothing is cancelled then: when the stale instant comes, ``broadcast`` sees that the
station does not flip there and publishes nothing. Every hours change publishes a ``status`` event
(the stations API calls ``status_changed``), and both runners re-plan the station when they see one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.bus import Bus
from app.clock import Clock
from app.directory import StationDirectory
from app.events import CHANGED, STATUS, status_changed
from app.hours import Schedule, compile_schedule
from app.models import ExceptionalPeriod, RegularHours, Station
from app.stations import spec_from_values

log = logging.getLogger(__name__)

_TICK = timedelta(microseconds=1)
#: How many stations' statuses are computed and published at once when catching up.
CATCH_UP_CONCURRENCY = 16

Sleeper = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Transition:
    """The instant at which a station next opens or closes."""

    station_id: int
    at: datetime

    @property
    def job_id(self) -> str:
        """Stable across processes: two workers planning the same transition enqueue one job."""
        return f"transition:{self.station_id}:{self.at.isoformat()}"


async def load_schedules(station_ids: Collection[int] | None, now: datetime) -> dict[int, Schedule]:
    """Compiled schedules for the given stations (every station when None), in three queries.

    Exceptional periods that ended before ``now`` cannot affect a future transition and are left
    out.
    """
    stations = Station.all() if station_ids is None else Station.filter(id__in=list(station_ids))
    rows = await stations.values("id", "timezone", "twentyfourseven")
    if not rows:
        return {}
    ids = [row["id"] for row in rows]
    regular: dict[int, list[dict[str, Any]]] = defaultdict(list)
    exceptional: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for period in await RegularHours.filter(station_id__in=ids).values(
        "station_id", "weekday", "period_begin", "period_end"
    ):
        regular[period["station_id"]].append(period)
    for period in await ExceptionalPeriod.filter(station_id__in=ids, period_end__gt=now).values(
        "station_id", "is_closing", "period_begin", "period_end"
    ):
        exceptional[period["station_id"]].append(period)
    return {
        row["id"]: compile_schedule(
            row["timezone"], spec_from_values(row["twentyfourseven"], regular[row["id"]], exceptional[row["id"]])
        )
        for row in rows
    }


def next_transitions(schedules: Mapping[int, Schedule], now: datetime) -> list[Transition]:
    """Each station's first transition after ``now``; stations that never change have none."""
    planned = []
    for station_id, schedule in schedules.items():
        at = schedule.next_change(now)
        if at is not None:
            planned.append(Transition(station_id, at))
    return planned


def flips_at(schedule: Schedule, at: datetime) -> bool:
    """Whether the station opens or closes exactly at ``at`` (intervals are half-open)."""
    return schedule.is_open(at - _TICK) != schedule.is_open(at)


async def broadcast(station_id: int, at: datetime, *, bus: Bus, directory: StationDirectory) -> bool:
    """Publish the station's status for the transition at ``at``, unless the hours changed since it
    was planned and the station no longer flips then. Returns whether anything was published."""
    # Periods ending exactly at ``at`` matter here (the station closes as one ends).
    schedule = (await load_schedules([station_id], at - timedelta(minutes=1))).get(station_id)
    if schedule is None or not flips_at(schedule, at):
        log.info("transition of station %s at %s is no longer one; nothing to publish", station_id, at)
        return False
    return await status_changed(station_id, bus=bus, directory=directory) is not None


async def publish_statuses(station_ids: Iterable[int], *, bus: Bus, directory: StationDirectory) -> int:
    """Publish the current status of every given station (catching up after a restart)."""
    semaphore = asyncio.Semaphore(CATCH_UP_CONCURRENCY)

    async def one(station_id: int) -> bool:
        async with semaphore:
            return await status_changed(station_id, bus=bus, directory=directory) is not None

    results = await asyncio.gather(*(one(station_id) for station_id in station_ids))
    return sum(results)


async def all_station_ids() -> list[int]:
    return [row["id"] for row in await Station.all().order_by("id").values("id")]


def station_of(message: Mapping[str, Any]) -> int | None:
    """The station a bus message is about, from its channel (``station:{id}``)."""
    channel = message.get("channel")
    if isinstance(channel, str) and channel.startswith("station:"):
        with contextlib.suppress(ValueError):
            return int(channel.removeprefix("station:"))
    return None


Replan = Callable[[Collection[int] | None], Awaitable[object]]


async def follow_changes(bus: Bus, replan: Replan, *, planned: asyncio.Event | None = None) -> None:
    """Re-plan stations whose status or details change, for the life of the process.

    An hours change reaches us as the ``status`` event the stations API publishes. Everything is
    re-planned when this starts (anything may have changed before we listened) and whenever
    messages may have been lost: after a Redis reconnect, or if we fell behind. A burst of events
    (a catch-up, say) is re-planned together, not one station at a time. ``planned`` is set once
    the first plan is done.
    """
    while True:
        with bus.subscribe(maxsize=4096) as subscription:
            await _guarded(replan, None)
            if planned is not None:
                planned.set()
            while True:
                batch = [await subscription.get()]
                while not subscription.queue.empty():
                    batch.append(subscription.queue.get_nowait())
                if any(message.get("type") == "overflow" for message in batch):
                    break
                if any(message.get("type") == "resync" for message in batch):
                    await _guarded(replan, None)
                    continue
                stations = {
                    station_id
                    for message in batch
                    if message.get("type") in (STATUS, CHANGED) and (station_id := station_of(message)) is not None
                }
                if stations:
                    await _guarded(replan, stations)
        log.warning("fell behind the bus; re-planning every station")


async def _guarded(replan: Replan, station_ids: Collection[int] | None) -> None:
    """A failed re-plan (database briefly away) is logged; the next event or resync retries."""
    try:
        await replan(station_ids)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("re-planning transitions failed")


class TransitionScheduler:
    """The embedded default's scheduler: the worker's planning and broadcasting, in-process.

    It keeps every station's next transition in memory and sleeps until the earliest one (never
    longer than ``max_sleep``, so a clock that jumps is noticed), waking early when a re-plan
    (``follow_changes``) or ``wake()`` says the plan changed. ``sleep`` and the clock are injected
    so tests drive it without waiting.
    """

    def __init__(
        self,
        bus: Bus,
        directory: StationDirectory,
        clock: Clock,
        *,
        max_sleep: float = 60.0,
        sleep: Sleeper = asyncio.sleep,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._clock = clock
        self._max_sleep = max_sleep
        self._sleep = sleep
        self._next: dict[int, datetime] = {}
        self._wake = asyncio.Event()

    def next_at(self, station_id: int) -> datetime | None:
        return self._next.get(station_id)

    def wake(self) -> None:
        """Look at the plan again now (it changed, or the clock moved)."""
        self._wake.set()

    async def plan(self, station_ids: Collection[int] | None = None) -> None:
        now = self._clock.now()
        schedules = await load_schedules(station_ids, now)
        if station_ids is None:
            self._next.clear()
        else:
            for station_id in station_ids:
                self._next.pop(station_id, None)
        for transition in next_transitions(schedules, now):
            self._next[transition.station_id] = transition.at
        self.wake()

    async def fire_due(self) -> float:
        """Broadcast every transition whose instant has come; return seconds until the next one."""
        now = self._clock.now()
        due = sorted((at, station_id) for station_id, at in self._next.items() if at <= now)
        for at, station_id in due:
            await broadcast(station_id, at, bus=self._bus, directory=self._directory)
        if due:
            await self.plan([station_id for _, station_id in due])
        if not self._next:
            return self._max_sleep
        wait = (min(self._next.values()) - self._clock.now()).total_seconds()
        return max(0.0, min(wait, self._max_sleep))

    async def run(self) -> None:
        """Catch up (publish every station's status), then follow changes and fire transitions."""
        try:
            await publish_statuses(await all_station_ids(), bus=self._bus, directory=self._directory)
        except Exception:
            log.exception("catching up on station statuses failed")
        async with asyncio.TaskGroup() as group:
            group.create_task(follow_changes(self._bus, self.plan))
            group.create_task(self._fire_forever())

    async def _fire_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                delay = await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("broadcasting transitions failed; trying again shortly")
                delay = 1.0
            await self._sleep_unless_woken(delay)

    async def _sleep_unless_woken(self, delay: float) -> None:
        woken = asyncio.ensure_future(self._wake.wait())
        timer = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            timer.cancel()
