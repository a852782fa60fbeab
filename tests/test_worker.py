"""Transitions: planned from stored hours, broadcast at their instant exactly once, re-planned when
hours change, caught up after a restart; in the arq worker and in the embedded scheduler."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from quart import Quart

from app import events
from app.clock import FrozenClock
from app.hours import HoursSpec, compile_schedule
from app.models import User
from app.state import state
from app.stations import write_hours
from app.transitions import (
    Transition,
    TransitionScheduler,
    broadcast,
    catch_up,
    flips_at,
    load_schedules,
    next_transitions,
)
from tests.conftest import DEFAULT_NOW, ApiClient, Backend
from tests.helpers import (
    daily,
    drain,
    eventually,
    live_stack,
    make_station,
    make_worker,
    never,
    next_event,
    open_until,
    real_now,
    receive,
    run_burst,
)
from workers.jobs import queue_for

EIGHT_PM = DEFAULT_NOW.replace(hour=20)


# -- planning (pure) ---------------------------------------------------------------------------


def test_each_station_is_planned_at_its_next_open_or_close_instant() -> None:
    schedules = {
        1: compile_schedule("UTC", daily("04:00", "20:00")),  # open: closes at 20:00
        2: compile_schedule("Asia/Kolkata", daily("12:00", "22:00")),  # closed: opens 12:00 IST
        3: compile_schedule("UTC", HoursSpec(twentyfourseven=True)),  # never changes
    }
    planned = next_transitions(schedules, DEFAULT_NOW)
    assert planned == [
        Transition(1, EIGHT_PM),
        Transition(2, datetime(2026, 12, 2, 6, 30, tzinfo=UTC)),
    ]
    assert planned[0].job_id == "transition:1:2026-12-02T20:00:00+00:00"


def test_an_instant_is_a_transition_only_where_the_station_flips() -> None:
    schedule = compile_schedule("UTC", daily("04:00", "20:00"))
    assert flips_at(schedule, EIGHT_PM)
    assert flips_at(schedule, DEFAULT_NOW.replace(hour=4))
    assert not flips_at(schedule, DEFAULT_NOW)


# -- broadcasting ------------------------------------------------------------------------------


async def test_a_broadcast_publishes_the_status_the_station_has_from_that_instant(
    app: Quart, db: Backend, clock: FrozenClock
) -> None:
    station = await make_station()
    app_state = state(app)
    with app_state.bus.subscribe(events.station_channel(station.id)) as subscription:
        clock.set(EIGHT_PM)
        assert await broadcast(station.id, EIGHT_PM, bus=app_state.bus, now=app_state.clock.now())
        event = await next_event(subscription)
    assert event["is_open"] is False
    assert datetime.fromisoformat(event["next_change_at"]) == DEFAULT_NOW.replace(hour=4) + timedelta(days=1)


async def test_a_planned_instant_that_hours_edits_removed_is_not_broadcast(
    app: Quart, db: Backend, clock: FrozenClock
) -> None:
    station = await make_station()
    await write_hours(station, daily("04:00", "22:00"))
    app_state = state(app)
    with app_state.bus.subscribe(events.station_channel(station.id)) as subscription:
        clock.set(EIGHT_PM)
        assert not await broadcast(station.id, EIGHT_PM, bus=app_state.bus, now=app_state.clock.now())
        await asyncio.sleep(0.05)  # give a (wrong) message time to arrive through Redis
        assert drain(subscription) == []


async def test_a_closing_at_the_end_of_an_exceptional_opening_is_still_found(db: Backend) -> None:
    end = DEFAULT_NOW + timedelta(hours=1)
    station = await make_station(hours=open_until(end))
    schedules = await load_schedules([station.id], DEFAULT_NOW)
    assert next_transitions(schedules, DEFAULT_NOW) == [Transition(station.id, end)]


async def test_a_catch_up_with_nothing_changed_since_the_last_announces_nothing(
    app: Quart, db: Backend, clock: FrozenClock
) -> None:
    station = await make_station()
    bus = state(app).bus
    with bus.subscribe(events.station_channel(station.id)) as subscription:
        assert await catch_up(clock.now(), bus=bus) == 1
        assert await catch_up(clock.now(), bus=bus) == 0  # a restarted worker: nothing new to say
        assert [m["is_open"] for m in drain(subscription)] == [True]


async def test_a_transition_missed_while_down_is_announced_once_by_the_catch_up_and_not_by_its_late_job(
    app: Quart, db: Backend, clock: FrozenClock
) -> None:
    station = await make_station()
    bus = state(app).bus
    await catch_up(clock.now(), bus=bus)  # the worker, before it went down
    clock.set(EIGHT_PM + timedelta(minutes=5))  # it was down across the 20:00 closing
    with bus.subscribe(events.station_channel(station.id)) as subscription:
        assert await catch_up(clock.now(), bus=bus) == 1  # the restarted worker
        assert not await broadcast(station.id, EIGHT_PM, bus=bus, now=clock.now())  # the job, late
        assert [m["is_open"] for m in drain(subscription)] == [False]


# -- the embedded scheduler --------------------------------------------------------------------


@pytest.fixture
async def scheduler(app: Quart, db: Backend, clock: FrozenClock) -> AsyncIterator[TransitionScheduler]:
    app_state = state(app)
    yield TransitionScheduler(app_state.bus, clock, sleep=never)


async def test_the_embedded_scheduler_broadcasts_when_the_clock_reaches_the_instant(
    app: Quart, scheduler: TransitionScheduler, clock: FrozenClock
) -> None:
    station = await make_station()
    await scheduler.plan()
    assert scheduler.next_at(station.id) == EIGHT_PM
    assert await scheduler.fire_due() == 60.0  # nothing due; sleeps at most a minute at a time
    with state(app).bus.subscribe(events.station_channel(station.id)) as subscription:
        clock.set(EIGHT_PM)
        await scheduler.fire_due()
        assert (await next_event(subscription))["is_open"] is False
    assert scheduler.next_at(station.id) == DEFAULT_NOW.replace(hour=4) + timedelta(days=1)


async def test_the_embedded_scheduler_catches_up_replans_on_hours_changes_and_stops_cleanly(
    app: Quart, scheduler: TransitionScheduler, clock: FrozenClock
) -> None:
    station = await make_station()
    app_state = state(app)
    with app_state.bus.subscribe(events.station_channel(station.id)) as subscription:
        task = asyncio.create_task(scheduler.run())
        caught_up = await next_event(subscription)  # published at start, for every station
        assert caught_up["is_open"] is True
        await eventually(lambda: scheduler.next_at(station.id) == EIGHT_PM)

        # The operator moves closing time to 06:00: the stations API publishes the new status.
        await write_hours(station, daily("04:00", "06:00"))
        await events.publish_status(app_state.bus, station.id, app_state.clock.now())
        six_am = DEFAULT_NOW.replace(hour=6)
        await eventually(lambda: scheduler.next_at(station.id) == six_am)

        drain(subscription)
        clock.set(six_am)
        scheduler.wake()
        closed = await next_event(subscription)
        assert closed["is_open"] is False and datetime.fromisoformat(closed["server_time"]) == six_am

        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# -- the arq worker, against real Redis and PostgreSQL ----------------------------------------


async def test_a_transition_reaches_a_connected_socket_within_a_second_of_its_instant(
    db: Backend, private_redis: str, clock: FrozenClock
) -> None:
    instant = real_now(clock) + timedelta(seconds=2)
    station = await make_station(hours=open_until(instant))
    async with (
        live_stack(db, private_redis, clock) as web,
        web.test_client().websocket(f"/ws/stations/{station.id}") as socket,
    ):
        assert (await receive(socket))["is_open"] is True
        worker = asyncio.create_task(run_burst(make_worker(web)))
        while True:
            event = await receive(socket, timeout=10)
            if event["type"] == "status" and event["is_open"] is False:
                break
        delay = (datetime.now(UTC) - instant).total_seconds()
        assert await worker == [1]  # the one transition job; the station never opens again
    assert 0 <= delay < 1.0, delay
    assert event["next_change_at"] is None


async def test_two_workers_broadcast_a_transition_exactly_once(
    db: Backend, private_redis: str, clock: FrozenClock
) -> None:
    instant = real_now(clock) + timedelta(seconds=0.6)
    station = await make_station(hours=open_until(instant))
    async with live_stack(db, private_redis, clock) as web:
        with state(web).bus.subscribe(events.station_channel(station.id)) as subscription:
            completed = await run_burst(make_worker(web), make_worker(web))
            await asyncio.sleep(0.1)  # let any second broadcast arrive through Redis
            statuses = [m for m in drain(subscription) if m["type"] == "status"]
    assert sum(completed) == 1
    assert [m["is_open"] for m in statuses] == [True, False]  # one catch-up, one transition


async def test_a_starting_worker_catches_up_and_plans_every_station(
    db: Backend, private_redis: str, clock: FrozenClock
) -> None:
    now = real_now(clock)
    schedules = {"open": open_until(now + timedelta(hours=3)), "closed": HoursSpec()}
    stations = {name: await make_station(name, hours=hours) for name, hours in schedules.items()}
    async with live_stack(db, private_redis, clock) as web:
        with state(web).bus.subscribe() as subscription:
            await run_burst(make_worker(web, max_burst_jobs=0))  # start up, then stop at once
            await asyncio.sleep(0.1)
            statuses = {m["station_id"]: m["is_open"] for m in drain(subscription) if m["type"] == "status"}
        assert statuses == {stations["open"].id: True, stations["closed"].id: False}
        planned = Transition(stations["open"].id, now + timedelta(hours=3))
        queue = queue_for(state(web).settings.redis_prefix)
        score = await state(web).bus.client.zscore(queue, planned.job_id)  # type: ignore[attr-defined]
        assert score is not None and abs(score / 1000 - planned.at.timestamp()) < 0.001  # deferred to the instant


async def test_a_running_worker_replans_as_soon_as_an_operator_changes_the_hours(
    db: Backend, private_redis: str, clock: FrozenClock, operator: User
) -> None:
    now = real_now(clock)
    station = await make_station(hours=open_until(now + timedelta(hours=3)))
    async with live_stack(db, private_redis, clock) as web:
        queue = queue_for(state(web).settings.redis_prefix)
        redis = state(web).bus.client  # type: ignore[attr-defined]
        worker = make_worker(web, burst=False)
        running = asyncio.create_task(worker.async_run())
        try:
            await eventually(lambda: redis.zscore(queue, Transition(station.id, now + timedelta(hours=3)).job_id))

            closing = (now + timedelta(hours=1)).replace(microsecond=0)
            browser = ApiClient(web)
            await browser.sign_in(operator)
            response = await browser.post(
                f"/api/stations/{station.id}/exceptions",
                json={
                    "kind": "closing",
                    "period_begin": closing.isoformat(),
                    "period_end": (closing + timedelta(minutes=30)).isoformat(),
                },
            )
            assert response.status_code == 201, await response.get_data(as_text=True)
            await eventually(lambda: redis.zscore(queue, Transition(station.id, closing).job_id))
        finally:
            await worker.close()
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running


def test_the_worker_settings_are_what_arq_runs() -> None:
    from workers import WorkerSettings

    assert WorkerSettings.poll_delay <= 0.1
    assert {f.__name__ for f in WorkerSettings.functions} == {
        "broadcast_transition",
        "deliver_notifications",
        "send_reminder",
    }
    assert {job.name for job in WorkerSettings.cron_jobs} == {"cron:close_out", "cron:plan_all"}
