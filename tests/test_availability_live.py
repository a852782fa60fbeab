"""Availability transitions: a connected kiosk hears that a charger became busy or free at the
instant a booked slot starts or ends or an unpaid hold runs out, with nobody touching anything;
in the embedded scheduler and through the arq worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from quart import Quart

from app import events
from app.availability import BookingSpan, busy_changes, next_busy_change
from app.clock import FrozenClock
from app.events import AVAILABILITY
from app.hours import HoursSpec
from app.models import BookingStatus, Station
from app.state import state
from app.transitions import Transition, TransitionScheduler, broadcast, upcoming
from tests.conftest import DEFAULT_NOW, ApiClient, Backend
from tests.helpers import book as book_through_api
from tests.helpers import (
    drain,
    eventually,
    live_stack,
    make_kolkata_station,
    make_station,
    make_worker,
    never,
    ok,
    pay,
    real_now,
    receive,
    run_burst,
)
from tests.helpers import insert_booking as book

HOUR = timedelta(hours=1)
ALWAYS_OPEN = HoursSpec(twentyfourseven=True)


def span(start: int, end: int, *, charger: int = 1, hold: int | None = None) -> BookingSpan:
    """A booking from ``start`` to ``end`` hours after DEFAULT_NOW (hold likewise)."""
    held = None if hold is None else DEFAULT_NOW + hold * HOUR
    return BookingSpan(charger, DEFAULT_NOW + start * HOUR, DEFAULT_NOW + end * HOUR, held)


def hours(instants: Any) -> list[float]:
    return sorted({(at - DEFAULT_NOW) / HOUR for at in instants})


async def next_availability(socket: Any, timeout: float = 5.0) -> dict[str, Any]:
    """The socket's next availability event, past heartbeats and status events."""
    while True:
        message = await receive(socket, timeout)
        if message["type"] == AVAILABILITY:
            return message
        assert message["type"] in ("status", "ping"), message


def free(event: dict[str, Any]) -> list[bool]:
    return [charger["available_now"] for charger in event["chargers"]]


# -- when availability changes (pure) ----------------------------------------------------------


def test_a_charger_changes_where_its_bookings_start_and_end_but_not_where_two_meet() -> None:
    assert hours(busy_changes([span(1, 2), span(2, 3), span(5, 6)])) == [1, 3, 5, 6]
    assert hours(busy_changes([span(1, 4), span(2, 3)])) == [1, 4]  # one inside another
    assert hours(busy_changes([span(1, 2), span(2, 3, charger=2)])) == [1, 2, 3]  # two chargers


def test_an_unpaid_hold_changes_availability_only_if_it_runs_out_during_its_slot() -> None:
    assert hours(busy_changes([span(1, 2, hold=-1)])) == []  # lapsed before the slot: never blocks
    assert hours(busy_changes([span(1, 3, hold=2)])) == [1, 2]
    assert hours(busy_changes([span(1, 3, hold=5)])) == [1, 3]


def test_the_next_change_is_strictly_after_the_instant_asked_about() -> None:
    spans = [span(-1, 1), span(2, 3)]
    assert next_busy_change(spans, DEFAULT_NOW) == DEFAULT_NOW + HOUR
    assert next_busy_change(spans, DEFAULT_NOW + HOUR) == DEFAULT_NOW + 2 * HOUR
    assert next_busy_change(spans, DEFAULT_NOW + 3 * HOUR) is None


async def test_only_bookings_that_block_a_charger_are_planned(db: Backend) -> None:
    busy, idle = await make_station("Busy", hours=ALWAYS_OPEN), await make_station("Idle", hours=ALWAYS_OPEN)
    await book(busy, start=DEFAULT_NOW + 2 * HOUR, status=BookingStatus.PAID)
    await book(busy, start=DEFAULT_NOW + HOUR, status=BookingStatus.CANCELLED, charger_number=2)
    await book(idle, start=DEFAULT_NOW + HOUR, hold_until=DEFAULT_NOW + timedelta(minutes=10))
    planned = await upcoming(None, DEFAULT_NOW)
    assert planned == [Transition(busy.id, DEFAULT_NOW + 2 * HOUR, AVAILABILITY)]
    assert planned[0].job_id == f"availability:{busy.id}:2026-12-02T07:00:00+00:00"


async def test_an_instant_a_cancellation_removed_is_not_broadcast(app: Quart, db: Backend, clock: FrozenClock) -> None:
    station = await make_station(hours=ALWAYS_OPEN)
    booking = await book(station, start=DEFAULT_NOW + HOUR, status=BookingStatus.PAID)
    booking.status = BookingStatus.CANCELLED
    await booking.save()
    app_state = state(app)
    with app_state.bus.subscribe(events.station_channel(station.id)) as subscription:
        clock.set(DEFAULT_NOW + HOUR)
        kept = await broadcast(
            station.id, DEFAULT_NOW + HOUR, bus=app_state.bus, now=app_state.clock.now(), kind=AVAILABILITY
        )
        await asyncio.sleep(0.05)  # give a (wrong) message time to arrive through Redis
        assert not kept and drain(subscription) == []


# -- the embedded scheduler, with a kiosk connected ---------------------------------------------


@pytest.fixture
async def running(app: Quart, db: Backend, clock: FrozenClock) -> AsyncIterator[TransitionScheduler]:
    """The embedded scheduler, running; it only looks at the clock when told to (``wake``)."""
    app_state = state(app)
    scheduler = TransitionScheduler(app_state.bus, clock, sleep=never)
    task = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(scheduler.ready.wait(), 5)
    yield scheduler
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def station(db: Backend) -> Station:
    """Open 08:00-22:00 in Kolkata, where it is 10:30; three chargers."""
    return await make_kolkata_station()


@pytest.fixture
async def kiosk(app: Quart, station: Station) -> AsyncIterator[Any]:
    """The station's charger grid, connected; its snapshot has been read."""
    async with app.test_client().websocket(f"/ws/stations/{station.id}") as socket:
        assert free(await receive(socket)) == [True, True, True]
        yield socket


async def test_a_kiosk_sees_a_paid_slot_take_its_charger_at_the_start_and_free_it_at_the_end(
    running: TransitionScheduler, kiosk: Any, station: Station, driver_client: ApiClient, clock: FrozenClock
) -> None:
    # 12:00-13:00 in Kolkata (06:30-07:30 UTC); the hold runs out at 05:10, before the slot.
    held = await ok(await book_through_api(driver_client, station, "2026-12-02T12:00:00"))
    assert free(await next_availability(kiosk)) == [True, True, True]

    quote = await ok(await driver_client.get(f"/api/bookings/{held['booking_id']}/quote"))
    await ok(await pay(driver_client, held, amount=quote["amount_due"]))
    paid = await next_availability(kiosk)
    start, end = datetime.fromisoformat(held["slot_time"]), datetime.fromisoformat(held["slot_end"])
    await eventually(lambda: running.next_at(station.id, AVAILABILITY) == start)

    clock.set(start)
    running.wake()
    started = await next_availability(kiosk)
    assert free(started) == [False, True, True]
    assert started["available_chargers"] == 2
    await eventually(lambda: running.next_at(station.id, AVAILABILITY) == end)

    clock.set(end)
    running.wake()
    ended = await next_availability(kiosk)
    assert free(ended) == [True, True, True]
    assert [paid["seq"] + 1, paid["seq"] + 2] == [started["seq"], ended["seq"]]  # nothing twice
    await eventually(lambda: running.next_at(station.id, AVAILABILITY) is None)


async def test_a_kiosk_sees_a_charger_freed_when_an_unpaid_hold_runs_out(
    running: TransitionScheduler, kiosk: Any, station: Station, driver_client: ApiClient, clock: FrozenClock
) -> None:
    # A slot from now (10:30 in Kolkata): the charger is taken at once, while the hold runs.
    held = await ok(await book_through_api(driver_client, station, "2026-12-02T10:30:00"))
    assert free(await next_availability(kiosk)) == [False, True, True]
    lapses = datetime.fromisoformat(held["hold_expires_at"])
    await eventually(lambda: running.next_at(station.id, AVAILABILITY) == lapses)

    clock.set(lapses)
    running.wake()
    assert free(await next_availability(kiosk)) == [True, True, True]
    response = await driver_client.get(f"/api/stations/{station.id}/status")
    assert (await response.get_json())["available_chargers"] == 3


async def test_the_embedded_scheduler_catches_up_on_stations_with_a_booking_under_way(
    app: Quart, db: Backend, clock: FrozenClock
) -> None:
    busy, idle = await make_station("Busy", hours=ALWAYS_OPEN), await make_station("Idle", hours=ALWAYS_OPEN)
    await book(busy, start=DEFAULT_NOW - HOUR, minutes=120, status=BookingStatus.PAID)
    await book(idle, start=DEFAULT_NOW + HOUR, status=BookingStatus.PAID)
    app_state = state(app)
    scheduler = TransitionScheduler(app_state.bus, clock, sleep=never)
    with app_state.bus.subscribe() as subscription:
        task = asyncio.create_task(scheduler.run())
        await eventually(lambda: scheduler.next_at(idle.id, AVAILABILITY) == DEFAULT_NOW + HOUR)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # let everything published arrive through Redis
        published = drain(subscription)
    announced = [m for m in published if m["type"] == AVAILABILITY]
    assert [(m["station_id"], free(m)) for m in announced] == [(busy.id, [False, True])]
    assert scheduler.next_at(busy.id, AVAILABILITY) == DEFAULT_NOW + HOUR


# -- the arq worker, against real Redis and PostgreSQL ----------------------------------------


async def test_a_booked_slot_starting_reaches_a_connected_socket_within_a_second_of_its_instant(
    db: Backend, private_redis: str, clock: FrozenClock
) -> None:
    start = real_now(clock) + timedelta(seconds=1.5)
    station = await make_station(hours=ALWAYS_OPEN)
    await book(station, start=start, minutes=0.01, status=BookingStatus.PAID)  # 0.6 s
    async with (
        live_stack(db, private_redis, clock) as web,
        web.test_client().websocket(f"/ws/stations/{station.id}") as socket,
    ):
        assert free(await receive(socket)) == [True, True]
        worker = asyncio.create_task(run_burst(make_worker(web)))
        started = await next_availability(socket, timeout=10)
        delay = (datetime.now(UTC) - start).total_seconds()
        ended = await next_availability(socket, timeout=10)
        assert await worker == [2]  # the start and the end; nothing else is ever planned
    assert 0 <= delay < 1.0, delay
    assert (free(started), free(ended)) == ([False, True], [True, True])


async def test_two_workers_broadcast_an_availability_change_exactly_once(
    db: Backend, private_redis: str, clock: FrozenClock
) -> None:
    start = real_now(clock) + timedelta(seconds=1)
    station = await make_station(hours=ALWAYS_OPEN)
    await book(station, start=start, minutes=0.01, status=BookingStatus.PAID)
    async with live_stack(db, private_redis, clock) as web:
        with state(web).bus.subscribe(events.station_channel(station.id)) as subscription:
            completed = await run_burst(make_worker(web), make_worker(web))
            await asyncio.sleep(0.1)  # let any second broadcast arrive through Redis
            announced = [free(m) for m in drain(subscription) if m["type"] == AVAILABILITY]
    assert sum(completed) == 2
    assert announced == [[False, True], [True, True]]
