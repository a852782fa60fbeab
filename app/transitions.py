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
from typing import Any, Literal

from app.bus import Bus, Subscription
from app.clock import Clock
from app.directory import StationDirectory
from app.events import CHANGED, STATUS, status_changed
from app.hours import Schedule, compile_schedule
from app.models import ExceptionalPeriod, RegularHours, Station
from app.stations import spec_from_values

log = logging.getLogger(__name__)

_TICK = timedelta(microseconds=1)
ALL: Literal["all"] = "all"
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


def replan_scope(message: Mapping[str, Any]) -> int | Literal["all"] | None:
    """Which stations a bus message asks the planner to look at again: one (its status or details
    changed, perhaps its hours), all of them (messages may have been lost), or none."""
    kind = message.get("type")
    if kind in ("resync", "overflow"):
        return ALL
    if kind in (STATUS, CHANGED):
        return station_of(message)
    return None


class TransitionScheduler:
    """The embedded default's scheduler: the worker's planning and broadcasting, in-process.

    It keeps every station's next transition in memory, sleeps until the earliest one (never longer
    than ``max_sleep``, so a clock that jumps is noticed) and wakes early when a station's status
    or details change, which is how it hears about new hours. ``sleep`` and the clock are injected
    so tests can drive it without waiting.
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

    def next_at(self, station_id: int) -> datetime | None:
        return self._next.get(station_id)

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
        """Catch up, then broadcast transitions for the life of the process."""
        caught_up = False
        while True:
            try:
                with self._bus.subscribe(maxsize=4096) as subscription:
                    if not caught_up:
                        ids = await all_station_ids()
                        await publish_statuses(ids, bus=self._bus, directory=self._directory)
                        caught_up = True
                    await self.plan()
                    await self._follow(subscription)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("transition scheduler failed; starting over shortly")
                await self._sleep(1.0)

    async def _follow(self, subscription: Subscription) -> None:
        """Returns when the subscription overflowed (messages were dropped)."""
        while True:
            delay = await self.fire_due()
            message = await self._next_message(subscription, delay)
            if message is None:
                continue
            if message.get("type") == "overflow":
                return
            scope = replan_scope(message)
            if scope == ALL:
                await self.plan()
            elif isinstance(scope, int):
                await self.plan([scope])

    async def _next_message(self, subscription: Subscription, delay: float) -> dict[str, Any] | None:
        getter = asyncio.ensure_future(subscription.get())
        timer = asyncio.ensure_future(self._sleep(delay))
        try:
            done, _ = await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (getter, timer):
                task.cancel()
        return getter.result() if getter in done else None
