"""Transitions: when each station next changes by itself, and telling everyone at that instant.

A station changes with nobody touching it in two ways: it opens or closes (a ``status``
transition: the opening-hours module's ``next_change``), and a charger becomes busy or free as a
booked slot starts or ends or an unpaid hold runs out (an ``availability`` transition:
``app.availability.next_busy_change``). At the instant this module publishes the station's status
(``app.events.publish_status``) or availability (``publish_availability``). Two runners share it:
the arq worker (``workers/``), which turns each next transition into a deferred job with a stable
id so that any number of workers broadcast it once, and ``TransitionScheduler`` below, which does
the same inside the web process in the embedded default.

A planned instant can stop being a transition when an operator edits the hours, or a booking is
cancelled, after it was planned. Nothing is cancelled then: when the stale instant comes,
``broadcast`` sees that nothing changes there and publishes nothing. Every such edit publishes an
event on the station's channel (hours: ``status``; bookings: ``availability``), and both runners
re-plan the station when they see one. Our own broadcasts come back as such events too; re-planning
then finds the next instant strictly after now, which is planned already, so nothing loops.

A transition is announced once, late rather than never: a worker that was down (or cut off from
Redis) catches up by announcing every station's current state when it is back, and a transition
job may still run after that catch-up. Both go through ``announce``, which publishes only what
differs from the state last announced for the station (``Bus.claim``: kept in Redis, claimed
atomically), so a restart with nothing changed says nothing, and two workers never say it twice.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.availability import busy_changes, chargers_now, load_spans, next_busy_change
from app.bus import Bus
from app.clock import Clock
from app.events import (
    AVAILABILITY,
    CHANGED,
    STATUS,
    publish_availability,
    publish_status,
    station_channel,
    station_of,
    status_fields,
)
from app.hours import Schedule, compile_schedule
from app.models import ExceptionalPeriod, RegularHours, Station
from app.station_views import load_views, spec_from_values
from app.tasks import Sleeper, sleep_unless_woken, stop_if_cancelled

log = logging.getLogger(__name__)

_TICK = timedelta(microseconds=1)
#: What a station's next change can be: it opens or closes, or a charger becomes busy or free.
KINDS = (STATUS, AVAILABILITY)
PUBLISH = {STATUS: publish_status, AVAILABILITY: publish_availability}
#: How many stations' statuses are computed and published at once when catching up.
CATCH_UP_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Transition:
    """The instant at which a station next opens or closes (``kind`` STATUS), or at which one of
    its chargers next becomes busy or free (AVAILABILITY)."""

    station_id: int
    at: datetime
    kind: str = STATUS

    @property
    def job_id(self) -> str:
        """Stable across processes: two workers planning the same transition enqueue one job."""
        prefix = "transition" if self.kind == STATUS else self.kind
        return f"{prefix}:{self.station_id}:{self.at.isoformat()}"


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


async def upcoming(
    station_ids: Collection[int] | None, now: datetime, kinds: Collection[str] = KINDS
) -> list[Transition]:
    """Each given station's next transition of each kind strictly after ``now`` (every station when
    None), from the hours and the bookings that can still block a charger."""
    planned = []
    if STATUS in kinds:
        planned += next_transitions(await load_schedules(station_ids, now), now)
    if AVAILABILITY in kinds:
        for station_id, spans in (await load_spans(station_ids, now)).items():
            at = next_busy_change(spans, now)
            if at is not None:
                planned.append(Transition(station_id, at, AVAILABILITY))
    return planned


def flips_at(schedule: Schedule, at: datetime) -> bool:
    """Whether the station opens or closes exactly at ``at`` (intervals are half-open)."""
    return schedule.is_open(at - _TICK) != schedule.is_open(at)


async def broadcast(station_id: int, at: datetime, *, bus: Bus, now: datetime, kind: str = STATUS) -> bool:
    """Publish the station's status (or availability) for the transition at ``at``, unless the
    hours (or bookings) changed since it was planned and nothing changes then. Returns whether
    anything was published."""
    if not await _changes_at(station_id, at, kind):
        log.info("%s transition of station %s at %s is no longer one; nothing to publish", kind, station_id, at)
        return False
    return await announce(station_id, bus=bus, now=now, kind=kind, planned_at=at)


async def announce(
    station_id: int, *, bus: Bus, now: datetime, kind: str = STATUS, planned_at: datetime | None = None
) -> bool:
    """Publish the station's status (or availability) at ``now`` unless that is what was last
    announced for it; returns whether it was published. ``planned_at``: the instant it was
    planned for, which the event then carries with its lateness."""
    state = await _announced_state(station_id, now, kind)
    if state is None or not await bus.claim(f"{station_channel(station_id)}:{kind}", state):
        return False
    return await PUBLISH[kind](bus, station_id, now, planned_at) is not None


async def _announced_state(station_id: int, now: datetime, kind: str) -> str | None:
    """What a client acts on in the event: not the time it was sent, nor its ``seq``."""
    if kind == AVAILABILITY:
        chargers = await chargers_now(station_id, now)
        return None if chargers is None else json.dumps([(c["id"], c["available_now"]) for c in chargers])
    views = await load_views([station_id], now)
    if not views:
        return None
    fields = status_fields(views[0], now)
    return json.dumps([fields["is_open"], fields["next_change_at"], fields["station_status"]])


async def _changes_at(station_id: int, at: datetime, kind: str) -> bool:
    # Periods and bookings ending exactly at ``at`` matter here (the station closes as one ends).
    since = at - timedelta(minutes=1)
    if kind == AVAILABILITY:
        return at in busy_changes((await load_spans([station_id], since)).get(station_id, ()))
    schedule = (await load_schedules([station_id], since)).get(station_id)
    return schedule is not None and flips_at(schedule, at)


async def announce_each(station_ids: Iterable[int], *, bus: Bus, now: datetime, kind: str = STATUS) -> int:
    """Announce the current status (or availability) of every given station that changed."""
    semaphore = asyncio.Semaphore(CATCH_UP_CONCURRENCY)

    async def one(station_id: int) -> bool:
        async with semaphore:
            return await announce(station_id, bus=bus, now=now, kind=kind)

    results = await asyncio.gather(*(one(station_id) for station_id in station_ids))
    return sum(results)


async def catch_up(now: datetime, *, bus: Bus) -> int:
    """After a restart or an outage: announce every station's status, and the availability of every
    station with a booking under way, whose start may have passed with nobody broadcasting, where
    they differ from what was last announced. (Ends and lapsed holds missed meanwhile are announced
    by close-out.) Returns how many events were published."""
    statuses = await announce_each(await all_station_ids(), bus=bus, now=now)
    under_way = [
        station_id
        for station_id, spans in (await load_spans(None, now)).items()
        if any(span.blocks(now) for span in spans)
    ]
    return statuses + await announce_each(under_way, bus=bus, now=now, kind=AVAILABILITY)


async def all_station_ids() -> list[int]:
    return [row["id"] for row in await Station.all().order_by("id").values("id")]


#: Re-plans the given stations (every station when None), for the given kinds of transition.
Replan = Callable[[Collection[int] | None, Collection[str]], Awaitable[object]]


def _stations(batch: Iterable[Mapping[str, Any]], kinds: Collection[str]) -> set[int]:
    return {
        station_id
        for message in batch
        if message.get("type") in kinds and (station_id := station_of(message)) is not None
    }


async def follow_changes(bus: Bus, replan: Replan, *, planned: asyncio.Event | None = None) -> None:
    """Re-plan stations whose status, details or bookings change, for the life of the process.

    An hours change reaches us as the ``status`` event the stations API publishes; a booking
    created, cancelled or paid as an ``availability`` event, which re-plans availability only (the
    hours are unchanged). Everything is re-planned when this starts (anything may have changed
    before we listened) and whenever messages may have been lost: after a Redis reconnect, or if we
    fell behind. A burst of events (a catch-up, say) is re-planned together, not one station at a
    time. ``planned`` is set once the first plan is done.
    """
    while True:
        with bus.subscribe(maxsize=4096) as subscription:
            await _guarded(replan, None, KINDS)
            if planned is not None:
                planned.set()
            while True:
                batch = [await subscription.get()]
                while not subscription.queue.empty():
                    batch.append(subscription.queue.get_nowait())
                if any(message.get("type") == "overflow" for message in batch):
                    break
                if any(message.get("type") == "resync" for message in batch):
                    await _guarded(replan, None, KINDS)
                    continue
                changed = _stations(batch, (STATUS, CHANGED))
                if changed:
                    await _guarded(replan, changed, KINDS)
                booked = _stations(batch, (AVAILABILITY,)) - changed
                if booked:
                    await _guarded(replan, booked, (AVAILABILITY,))
        log.warning("fell behind the bus; re-planning every station")


async def _guarded(replan: Replan, station_ids: Collection[int] | None, kinds: Collection[str]) -> None:
    """A failed re-plan (database briefly away) is logged; the next event or resync retries."""
    try:
        await replan(station_ids, kinds)
    except Exception:
        stop_if_cancelled()
        log.exception("re-planning transitions failed")


class TransitionScheduler:
    """The embedded default's scheduler: the worker's planning and broadcasting, in-process.

    It keeps every station's next transition of each kind in memory and sleeps until the earliest
    one (never longer than ``max_sleep``, so a clock that jumps is noticed), waking early when a
    re-plan (``follow_changes``) or ``wake()`` says the plan changed. ``sleep`` and the clock are
    injected so tests drive it without waiting.
    """

    def __init__(
        self,
        bus: Bus,
        clock: Clock,
        *,
        max_sleep: float = 60.0,
        sleep: Sleeper = asyncio.sleep,
    ) -> None:
        self._bus = bus
        self._clock = clock
        self._max_sleep = max_sleep
        self._sleep = sleep
        self._next: dict[tuple[int, str], datetime] = {}
        self._wake = asyncio.Event()
        # One plan at a time, so one that read the database before a change cannot overwrite the
        # plan made after it.
        self._planning = asyncio.Lock()
        #: Set once the first plan is made and changes are being followed.
        self.ready = asyncio.Event()

    def next_at(self, station_id: int, kind: str = STATUS) -> datetime | None:
        return self._next.get((station_id, kind))

    def wake(self) -> None:
        """Look at the plan again now (it changed, or the clock moved)."""
        self._wake.set()

    async def plan(self, station_ids: Collection[int] | None = None, kinds: Collection[str] = KINDS) -> None:
        async with self._planning:
            planned = await upcoming(station_ids, self._clock.now(), kinds)
            if station_ids is None:
                self._next = {key: at for key, at in self._next.items() if key[1] not in kinds}
            else:
                for key in itertools.product(station_ids, kinds):
                    self._next.pop(key, None)
            for transition in planned:
                self._next[transition.station_id, transition.kind] = transition.at
        self.wake()

    async def fire_due(self) -> float:
        """Broadcast every transition whose instant has come; return seconds until the next one."""
        now = self._clock.now()
        due = sorted((at, station_id, kind) for (station_id, kind), at in self._next.items() if at <= now)
        for at, station_id, kind in due:
            await broadcast(station_id, at, bus=self._bus, now=now, kind=kind)
        for kind in KINDS:
            fired = {station_id for _, station_id, fired_kind in due if fired_kind == kind}
            if fired:
                await self.plan(fired, (kind,))
        if not self._next:
            return self._max_sleep
        wait = (min(self._next.values()) - self._clock.now()).total_seconds()
        return max(0.0, min(wait, self._max_sleep))

    async def run(self) -> None:
        """Catch up (``catch_up``), then follow changes and fire transitions."""
        try:
            await catch_up(self._clock.now(), bus=self._bus)
        except Exception:
            log.exception("catching up on station statuses failed")
        async with asyncio.TaskGroup() as group:
            group.create_task(follow_changes(self._bus, self.plan, planned=self.ready))
            group.create_task(self._fire_forever())

    async def _fire_forever(self) -> None:
        while True:
            stop_if_cancelled()  # a client library may have swallowed the cancellation
            self._wake.clear()
            try:
                delay = await self.fire_due()
            except Exception:
                stop_if_cancelled()
                log.exception("broadcasting transitions failed; trying again shortly")
                delay = 1.0
            await sleep_unless_woken(self._wake, delay, self._sleep)
