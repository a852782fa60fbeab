"""Faults, with real processes: Redis stopped and started under a running worker and web process,
a worker killed and restarted, a web process killed. What a user would notice: the board shows a
transition soon after Redis is back, and hears it once; sign-in guessing is still stopped; the other
web processes keep serving; a notification written while the worker was dead reaches the driver
once it is back, once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import websockets
from arq.constants import job_key_prefix, result_key_prefix
from redis.exceptions import RedisError

from app import events
from app.bus import RedisBus
from app.hours import HoursSpec
from app.job_queue import DELIVER, ArqQueue
from app.models import Notification, Station, User
from app.stations import write_hours
from app.transitions import Transition
from tests.conftest import ApiClient
from tests.helpers import (
    Processes,
    RedisProcess,
    answers,
    book,
    eventually,
    make_station,
    open_until,
    stop_process,
)
from workers.jobs import queue_for

#: Longer than arq's plain worker survives (about 3 s) and than our longest backoff (1 s): the
#: worker behaves the same in any longer outage, so the test need not last 30 s.
OUTAGE = 6.0
#: How soon after Redis is back a transition missed meanwhile must reach a connected board.
DELIVERY = 2.0


@pytest.fixture
async def store(redis: RedisProcess) -> AsyncIterator[aioredis.Redis]:
    """The test's own look into Redis (it reconnects by itself after a restart)."""
    client = aioredis.Redis.from_url(redis.url, socket_connect_timeout=1)
    yield client
    await client.aclose()


async def queued(store: aioredis.Redis, prefix: str, transition: Transition) -> bool:
    return await store.zscore(queue_for(prefix), transition.job_id) is not None


async def station_seq(store: aioredis.Redis, prefix: str, station: Station) -> int:
    """How many events were published for the station since Redis (re)started."""
    return int(await store.get(f"{prefix}:seq:{events.station_channel(station.id)}") or 0)


async def close_soon(station: Station, bus: RedisBus, seconds: float) -> datetime:
    """An operator's edit: the station now closes ``seconds`` from now (published, as the API does)."""
    instant = datetime.now(UTC) + timedelta(seconds=seconds)
    await write_hours(station, open_until(instant))
    await events.publish_status(bus, station.id, datetime.now(UTC))
    return instant


@pytest.fixture
async def operator_bus(processes: Processes) -> AsyncIterator[RedisBus]:
    bus = RedisBus(processes.redis.url, processes.prefix, max_backoff=0.1)
    await bus.start()
    assert await bus.wait_connected(5)
    yield bus
    await bus.close()


# -- 1. a worker rides out a Redis outage -------------------------------------------------------


async def test_a_worker_rides_out_a_redis_outage_and_announces_the_transition_it_missed_once(
    processes: Processes, store: aioredis.Redis, operator_bus: RedisBus
) -> None:
    station = await make_station(hours=open_until(datetime.now(UTC) + timedelta(hours=1)))
    worker = processes.start("worker", "worker")
    web = await processes.web("web")
    await eventually(lambda: "caught up" in processes.log("worker"), 60, "the worker starting")
    async with websockets.connect(web.replace("http", "ws") + f"/ws/stations/{station.id}") as board:
        snapshot = json.loads(await board.recv())
        assert snapshot["is_open"] is True
        instant = await close_soon(station, operator_bus, seconds=2)
        await eventually(lambda: queued(store, processes.prefix, Transition(station.id, instant)), 5, "re-planning")

        processes.redis.stop()
        stopped = time.monotonic()
        assert datetime.now(UTC) < instant, "the transition must come due during the outage"
        await eventually(
            lambda: worker.poll() is not None or (time.monotonic() - stopped >= OUTAGE and datetime.now(UTC) > instant),
            OUTAGE + 10,
            "the outage",
        )
        assert worker.poll() is None, f"the worker exited:\n{processes.log('worker')[-3000:]}"

        await processes.redis.start()  # empty: the deferred job and the counters are gone
        back = time.monotonic()
        async with asyncio.timeout(DELIVERY):
            while (shown := json.loads(await board.recv())).get("is_open") is not False:
                pass
        board_delay = time.monotonic() - back
        assert shown["epoch"] != snapshot["epoch"], "Redis restarted its counters: the board must know"
        await eventually(lambda: station_seq_is(store, processes, station, 1), DELIVERY, "the worker announcing it")
        worker_delay = time.monotonic() - back

    await eventually(lambda: processes.log("worker").count("caught up") == 2, 10, "the worker catching up")
    assert await station_seq(store, processes.prefix, station) == 1, "announced once"
    announced = await store.hget(f"{processes.prefix}:announced", f"{events.station_channel(station.id)}:status")
    assert announced is not None and json.loads(announced)[0] is False
    log = processes.log("worker")
    assert log.count("Redis is unreachable") == 1 and log.count("Redis is back") == 1, "once per change"
    assert worker.poll() is None

    processes.redis.stop()  # and stopping it while Redis is away is a clean stop
    worker.terminate()
    assert await asyncio.to_thread(worker.wait, 15) == 0, processes.log("worker")[-3000:]
    print(f"board shows the closing {board_delay:.2f} s, worker announced it {worker_delay:.2f} s after Redis")


async def station_seq_is(store: aioredis.Redis, processes: Processes, station: Station, expected: int) -> bool:
    try:
        return await station_seq(store, processes.prefix, station) == expected
    except (OSError, RedisError):
        return False  # its connection from before the restart


async def test_a_worker_started_while_redis_is_down_waits_for_it_and_then_catches_up(
    processes: Processes, store: aioredis.Redis
) -> None:
    station = await make_station()
    processes.redis.stop()
    worker = processes.start("worker", "worker")
    started = time.monotonic()
    await eventually(
        lambda: (
            worker.poll() is not None
            or ("Redis is unreachable" in processes.log("worker") and time.monotonic() - started >= OUTAGE)
        ),
        OUTAGE + 60,
        "the worker waiting",
    )
    assert worker.poll() is None, f"the worker exited:\n{processes.log('worker')[-3000:]}"
    await processes.redis.start()
    await eventually(lambda: "caught up" in processes.log("worker"), 30, "the worker starting")
    assert await station_seq(store, processes.prefix, station) == 1  # its status, announced at start


# -- 2. a worker killed before a transition announces it once when restarted ---------------------


async def test_a_transition_due_while_the_worker_was_killed_is_announced_once_after_its_restart(
    processes: Processes, store: aioredis.Redis, operator_bus: RedisBus
) -> None:
    station = await make_station(hours=open_until(datetime.now(UTC) + timedelta(hours=1)))
    first = processes.start("worker", "first")
    await eventually(lambda: "caught up" in processes.log("first"), 60, "the first worker starting")
    instant = await close_soon(station, operator_bus, seconds=1.5)
    job = Transition(station.id, instant)
    await eventually(lambda: queued(store, processes.prefix, job), 5, "re-planning")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    await eventually(lambda: datetime.now(UTC) > instant, 5, "the transition coming due")
    before = await station_seq(store, processes.prefix, station)

    processes.start("worker", "second")
    await eventually(lambda: "caught up" in processes.log("second"), 60, "the second worker starting")
    await eventually(lambda: _exists(store, result_key_prefix + job.job_id), 10, "the late transition job running")
    assert not await store.exists(job_key_prefix + job.job_id)
    assert await station_seq(store, processes.prefix, station) == before + 1, "the closing, announced once"

    # Restarted again with nothing changed: nothing to say.
    stop_process(processes.started[-1])
    processes.start("worker", "third")
    await eventually(lambda: "caught up: published 0" in processes.log("third"), 60, "the third worker starting")
    assert await station_seq(store, processes.prefix, station) == before + 1


async def _exists(store: aioredis.Redis, key: str) -> bool:
    return bool(await store.exists(key))


async def test_a_notification_written_while_the_worker_was_killed_is_delivered_once_after_its_restart(
    processes: Processes, operator_bus: RedisBus, driver_client: ApiClient, driver: User
) -> None:
    first = processes.start("worker", "first")
    await eventually(lambda: "notifications: " in processes.log("first"), 60, "the first worker starting")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    # Written and its delivery job enqueued, as a web process does, while no worker runs.
    station = await make_station(hours=HoursSpec(twentyfourseven=True))
    booked = await book(driver_client, station, "2026-12-02T08:00:00")
    assert booked.status_code == 200, await booked.get_json()
    jobs = ArqQueue(processes.redis.url, queue_for(processes.prefix))
    await jobs.enqueue(DELIVER, job_id="deliver:written-while-down")
    await jobs.close()

    with operator_bus.subscribe(events.driver_channel(driver.id)) as heard:
        processes.start("worker", "second")
        await eventually(lambda: "notifications: 1 sent late" in processes.log("second"), 60, "the restart")
        event = await asyncio.wait_for(heard.get(), 5)
        assert (event["type"], event["kind"]) == ("notification", "booking_confirmed")
        await eventually(lambda: "deliver_notifications" in processes.log("second"), 10, "the queued job")
        stop_process(processes.started[-1])
        processes.start("worker", "third")
        await eventually(lambda: "notifications: 0 sent late" in processes.log("third"), 60, "a second restart")
        assert heard.queue.empty(), "delivered once"
    assert await Notification.filter(live_sent_at__isnull=True).count() == 0


# -- 3. sequence numbers after Redis lost them ------------------------------------------------------


async def test_sequence_numbers_restarted_by_an_emptied_redis_come_with_a_new_epoch(redis: RedisProcess) -> None:
    publisher, reader = RedisBus(redis.url, "epoch"), RedisBus(redis.url, "epoch")
    await publisher.start()
    try:
        assert [await publisher.next_seq("station:1") for _ in range(3)] == [1, 2, 3]
        before = publisher.epoch
        redis.stop()
        await redis.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while (seq := await publisher.next_seq("station:1")) == 0:  # 0: its connection from before
            assert loop.time() < deadline
        assert seq == 1 and publisher.epoch != before
        assert await reader.current_seqs(["station:1"]) == [1] and reader.epoch == publisher.epoch
    finally:
        await publisher.close()
        await reader.close()


# -- 4. sign-in throttling while Redis is down -----------------------------------------------------


async def test_sign_in_guessing_is_still_stopped_while_redis_is_down(processes: Processes, driver: User) -> None:
    web = await processes.web("web")
    processes.redis.stop()
    async with httpx.AsyncClient(base_url=web, timeout=10) as client:
        statuses = [
            (await client.post("/api/auth/login", json={"email": driver.email, "password": "wrong-guess"})).status_code
            for _ in range(24)
        ]
    assert statuses == [401] * 5 + [429] * 19


# -- 5. one crashed web process takes nothing else down -------------------------------------------


def serving_processes(process: subprocess.Popen[bytes]) -> list[int]:
    """The processes that answer requests for a Procfile web process: the process itself, or the
    workers it started (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    workers = [int(pid) for pid in children if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return workers or [process.pid]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def test_a_killed_web_process_takes_nothing_else_down(processes: Processes) -> None:
    first_url, second_url = await processes.web("first"), await processes.web("second")
    first, second = processes.started
    victim, *siblings = serving_processes(first)
    others = siblings + serving_processes(second)

    os.kill(victim, signal.SIGKILL)
    await asyncio.to_thread(first.wait, 10)  # whatever the process does about it, it has done it

    assert all(alive(pid) for pid in others), "a sibling of the killed process was stopped"
    assert await answers(second_url)
    async with httpx.AsyncClient(base_url=second_url, timeout=5) as client:
        assert (await client.get("/api/stations")).status_code == 200
    assert not await answers(first_url)  # gone until its supervisor starts it again
