"""Close-out: lapsed unpaid holds expire, finished paid bookings complete, live clients hear which
chargers are free, and running it again changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from arq import create_pool
from arq.connections import RedisSettings
from quart import Quart

from app import events
from app.clock import FrozenClock
from app.closeout import close_out, run_close_out
from app.models import Booking, BookingStatus, IdempotencyRecord, Session, Station, User
from app.state import state
from tests.conftest import DEFAULT_NOW, Backend
from tests.helpers import drain, live_stack, make_station, make_worker, next_event, real_now, receive, run_burst
from tests.helpers import insert_booking as book
from workers import jobs
from workers.jobs import queue_for

HOLD_ENDS = DEFAULT_NOW + timedelta(minutes=10)


@pytest.fixture
async def station(db: Backend) -> Station:
    return await make_station()


async def status_of(booking: Booking) -> BookingStatus:
    return (await Booking.get(id=booking.id)).status


async def test_a_lapsed_hold_expires_and_its_charger_is_announced_free(
    app: Quart, station: Station, clock: FrozenClock
) -> None:
    held = await book(station, start=DEFAULT_NOW + timedelta(minutes=5), hold_until=HOLD_ENDS)
    clock.set(DEFAULT_NOW + timedelta(minutes=6))  # the slot has started, the hold still runs
    app_state = state(app)
    with app_state.bus.subscribe(events.station_channel(station.id)) as subscription:
        assert (await close_out(clock.now(), bus=app_state.bus, provider=app_state.provider)).expired == 0
        assert await status_of(held) == BookingStatus.CONFIRMED

        clock.set(HOLD_ENDS)
        result = await close_out(clock.now(), bus=app_state.bus, provider=app_state.provider)
        assert (result.expired, result.completed, result.station_ids) == (1, 0, (station.id,))
        event = await next_event(subscription, "availability")
    assert await status_of(held) == BookingStatus.EXPIRED
    assert [c["available_now"] for c in event["chargers"]] == [True, True]
    assert event["available_chargers"] == 2


async def test_a_paid_booking_completes_when_its_slot_ends_and_nothing_else_moves(
    app: Quart, station: Station, clock: FrozenClock
) -> None:
    finished = await book(station, start=DEFAULT_NOW - timedelta(hours=1), status=BookingStatus.PAID)
    upcoming = await book(station, start=DEFAULT_NOW + timedelta(hours=1), status=BookingStatus.PAID)
    # Paid a moment before its hold would have lapsed: the hold no longer matters.
    paid_in_time = await book(
        station,
        start=DEFAULT_NOW + timedelta(hours=2),
        status=BookingStatus.PAID,
        hold_until=DEFAULT_NOW - timedelta(minutes=1),
        charger_number=2,
    )
    running_hold = await book(station, start=DEFAULT_NOW + timedelta(hours=3), hold_until=HOLD_ENDS)
    app_state = state(app)
    result = await close_out(clock.now(), bus=app_state.bus, provider=app_state.provider)
    assert (result.expired, result.completed) == (0, 1)
    assert [await status_of(b) for b in (finished, upcoming, paid_in_time, running_hold)] == [
        BookingStatus.COMPLETED,
        BookingStatus.PAID,
        BookingStatus.PAID,
        BookingStatus.CONFIRMED,
    ]


async def test_running_close_out_again_changes_and_announces_nothing(
    app: Quart, station: Station, clock: FrozenClock
) -> None:
    await book(station, start=DEFAULT_NOW, hold_until=DEFAULT_NOW)
    await book(station, start=DEFAULT_NOW - timedelta(hours=1), status=BookingStatus.PAID, charger_number=2)
    app_state = state(app)
    with app_state.bus.subscribe(events.station_channel(station.id)) as subscription:
        first = await close_out(clock.now(), bus=app_state.bus, provider=app_state.provider)
        await next_event(subscription, "availability")  # one per station touched
        again = await close_out(clock.now(), bus=app_state.bus, provider=app_state.provider)
        await asyncio.sleep(0.05)  # time for a (wrong) message to come back through Redis
        assert drain(subscription) == []
    assert (first.expired, first.completed) == (1, 1)
    assert (again.expired, again.completed, again.station_ids) == (0, 0, ())


async def test_two_close_outs_at_once_expire_a_hold_once(app: Quart, station: Station, clock: FrozenClock) -> None:
    held = await book(station, start=DEFAULT_NOW, hold_until=DEFAULT_NOW)
    app_state = state(app)
    results = await asyncio.gather(
        *(close_out(clock.now(), bus=app_state.bus, provider=app_state.provider) for _ in range(2))
    )
    assert sorted(r.expired for r in results) == [0, 1]
    assert await status_of(held) == BookingStatus.EXPIRED


async def test_the_embedded_close_out_runs_at_start_and_then_every_interval(
    app: Quart, station: Station, clock: FrozenClock
) -> None:
    held = await book(station, start=DEFAULT_NOW + timedelta(minutes=5), hold_until=HOLD_ENDS)
    slept: asyncio.Queue[float] = asyncio.Queue()  # one entry per finished run
    tick = asyncio.Event()

    async def sleep(seconds: float) -> None:
        await slept.put(seconds)
        await tick.wait()
        tick.clear()

    app_state = state(app)
    task = asyncio.create_task(run_close_out(clock, bus=app_state.bus, provider=app_state.provider, sleep=sleep))
    try:
        assert await asyncio.wait_for(slept.get(), 5) == 30.0
        assert await status_of(held) == BookingStatus.CONFIRMED
        clock.set(HOLD_ENDS)
        tick.set()
        assert await asyncio.wait_for(slept.get(), 5) == 30.0
        assert await status_of(held) == BookingStatus.EXPIRED
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_worker_close_out_job_expires_a_hold_and_the_socket_hears_of_it(
    station: Station, db: Backend, private_redis: str, clock: FrozenClock
) -> None:
    now = real_now(clock)  # the worker runs on the system clock
    held = await book(station, start=now, hold_until=now)
    async with (
        live_stack(db, private_redis, clock) as web,
        web.test_client().websocket(f"/ws/stations/{station.id}") as socket,
    ):
        snapshot = await receive(socket)
        assert snapshot["chargers"][0]["available_now"] is True  # a lapsed hold blocks nobody already
        settings = state(web).settings
        queue = await create_pool(
            RedisSettings.from_dsn(private_redis), default_queue_name=queue_for(settings.redis_prefix)
        )
        await queue.enqueue_job("close_out")
        await queue.aclose()
        await run_burst(make_worker(web, functions=[jobs.close_out], max_burst_jobs=1))
        event = await receive(socket)
        while event["type"] != "availability":  # after the worker's catch-up status
            event = await receive(socket)
    assert await status_of(held) == BookingStatus.EXPIRED
    assert event["available_chargers"] == 2


async def test_stale_idempotency_records_and_sessions_are_purged_and_live_ones_kept(
    app: Quart, station: Station, driver: User, clock: FrozenClock
) -> None:
    now = clock.now()
    for key, ttl in (("old", -1), ("fresh", 60)):
        await IdempotencyRecord.create(
            user=driver, key=key, request_fingerprint="f", in_progress=False, expires_at=now + timedelta(minutes=ttl)
        )
        await Session.create(id=f"session-{key}", user=driver, expires_at=now + timedelta(minutes=ttl))
    result = await close_out(now, bus=state(app).bus, provider=state(app).provider)
    assert result.purged == 2
    assert [r.key for r in await IdempotencyRecord.all()] == ["fresh"]
    assert [s.id for s in await Session.all()] == ["session-fresh"]
