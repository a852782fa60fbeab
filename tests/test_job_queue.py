"""The worker's queue as the web process fills it: all of a request's jobs in one round trip to
Redis, each stored as arq's own ``enqueue_job`` stores it, so a real arq worker runs them; a job id
that is queued or has run already is never queued again."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq import Worker, func
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import Job as ArqJob
from arq.jobs import JobStatus
from arq.utils import to_unix_ms

from app import reminders
from app.hours import HoursSpec
from app.job_queue import ArqQueue, Job, queue_for
from app.models import NotificationKind, User
from app.state import state
from tests.conftest import ApiClient, Backend
from tests.helpers import book, free_port, live_stack, make_station, ok, real_now, signed_in


@pytest.fixture
async def arq_redis(private_redis: str) -> Any:
    redis = await create_pool(RedisSettings.from_dsn(private_redis))
    try:
        yield redis
    finally:
        await redis.aclose()


def fresh_queue() -> str:
    return queue_for(f"jobs-{secrets.token_hex(4)}")


async def queued(redis: ArqRedis, queue: str) -> dict[str, Any]:
    return {job.job_id: job for job in await redis.queued_jobs(queue_name=queue)}


async def test_jobs_enqueued_together_are_stored_as_arq_stores_them(private_redis: str, arq_redis: ArqRedis) -> None:
    queue = fresh_queue()
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    jobs = ArqQueue(private_redis, queue)
    try:
        await jobs.enqueue_all(
            [
                Job("deliver_notifications", (), "deliver:test"),
                Job("send_reminder", ("slot_reminder", 7, later), "remind:test", later),
            ]
        )
    finally:
        await jobs.close()
    reference = fresh_queue()  # what arq's own enqueue_job makes of the deferred one
    await arq_redis.enqueue_job(
        "send_reminder",
        "slot_reminder",
        7,
        later,
        _job_id="remind:reference",
        _defer_until=later,
        _queue_name=reference,
    )

    found = await queued(arq_redis, queue)
    assert set(found) == {"deliver:test", "remind:test"}
    now_ms = datetime.now(UTC).timestamp() * 1000
    assert found["deliver:test"].function == "deliver_notifications" and found["deliver:test"].args == ()
    assert abs(found["deliver:test"].score - now_ms) < 60_000  # due at once
    mine, theirs = found["remind:test"], (await queued(arq_redis, reference))["remind:reference"]
    assert (mine.function, mine.args, mine.kwargs, mine.job_try) == (theirs.function, theirs.args, theirs.kwargs, None)
    assert mine.score == theirs.score == to_unix_ms(later)
    assert mine.args == ("slot_reminder", 7, later)
    ttl_mine = await arq_redis.pttl(job_key_prefix + "remind:test")
    ttl_theirs = await arq_redis.pttl(job_key_prefix + "remind:reference")
    assert abs(ttl_mine - ttl_theirs) < 60_000  # both live until a day after the instant
    assert await ArqJob("remind:test", arq_redis, _queue_name=queue).status() == JobStatus.deferred


async def test_a_job_id_queued_or_done_already_is_not_queued_again(private_redis: str, arq_redis: ArqRedis) -> None:
    queue = fresh_queue()
    await arq_redis.set(result_key_prefix + "deliver:ran", b"a result")  # it has run: arq keeps its result
    jobs = ArqQueue(private_redis, queue)
    try:
        await jobs.enqueue_all([Job("deliver_notifications", ("first",), "deliver:once")])
        await jobs.enqueue_all(
            [
                Job("deliver_notifications", ("second",), "deliver:once"),
                Job("deliver_notifications", (), "deliver:ran"),
                Job("deliver_notifications", (), "deliver:new"),
            ]
        )
    finally:
        await jobs.close()
    found = await queued(arq_redis, queue)
    assert set(found) == {"deliver:once", "deliver:new"}
    assert found["deliver:once"].args == ("first",)  # the first one stands


async def test_an_arq_worker_runs_the_jobs_that_are_due_and_keeps_the_deferred_ones(
    private_redis: str, arq_redis: ArqRedis
) -> None:
    queue = fresh_queue()
    ran: list[tuple[str, Any]] = []

    async def remember(ctx: dict[str, Any], label: str, at: datetime) -> None:
        ran.append((label, at))

    now = datetime.now(UTC)
    jobs = ArqQueue(private_redis, queue)
    try:
        await jobs.enqueue_all(
            [
                Job("remember", ("now", now), "remember:now"),
                Job(
                    "remember",
                    ("just passed", now - timedelta(seconds=1)),
                    "remember:passed",
                    now - timedelta(seconds=1),
                ),
                Job("remember", ("tomorrow", now), "remember:tomorrow", now + timedelta(days=1)),
            ]
        )
    finally:
        await jobs.close()
    worker = Worker(
        functions=[func(remember, name="remember")],
        redis_settings=RedisSettings.from_dsn(private_redis),
        queue_name=queue,
        burst=True,
        max_burst_jobs=2,  # a burst otherwise waits for the deferred job too
        poll_delay=0.01,
        handle_signals=False,
    )
    try:
        await asyncio.wait_for(worker.main(), 10)
    finally:
        await worker.close()
    assert sorted(label for label, _ in ran) == ["just passed", "now"]
    assert await ArqJob("remember:tomorrow", arq_redis, _queue_name=queue).status() == JobStatus.deferred
    assert dict(ran)["now"] == now  # arguments arrive as they were sent, a datetime as a datetime
    assert worker.jobs_complete == 2 and worker.jobs_failed == 0


async def test_enqueueing_while_redis_is_away_gives_up_without_failing_the_request() -> None:
    jobs = ArqQueue(f"redis://127.0.0.1:{free_port()}/0", fresh_queue())
    try:
        await jobs.enqueue_all([Job("deliver_notifications", (), "deliver:nowhere")])  # logged, not raised
    finally:
        await jobs.close()


async def test_a_booking_queues_its_delivery_and_reminders_for_the_worker_once(
    db: Backend, private_redis: str, clock: Any, driver: User
) -> None:
    now = real_now(clock)  # the queue's instants are real ones, as a worker reads them
    slot = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    station = await make_station(hours=HoursSpec(twentyfourseven=True))
    async with live_stack(db, private_redis, clock) as web:
        client = await signed_in(ApiClient(web), driver)
        booking = await ok(await book(client, station, slot.isoformat()))
        services = state(web)
        redis = await create_pool(RedisSettings.from_dsn(private_redis))
        try:
            queue = queue_for(services.settings.redis_prefix)
            first = await queued(redis, queue)
            await reminders.plan_all(services.jobs, now)  # a worker's re-plan
            again = await queued(redis, queue)
        finally:
            await redis.aclose()
    booking_id = booking["booking_id"]
    hold_ends = datetime.fromisoformat(booking["hold_expires_at"])
    expected = {
        f"deliver:created:{booking_id}": None,
        reminders.job_id(NotificationKind.HOLD_EXPIRING, booking_id, hold_ends - timedelta(minutes=2)): hold_ends
        - timedelta(minutes=2),
        reminders.job_id(NotificationKind.SLOT_REMINDER, booking_id, slot - timedelta(minutes=15)): slot
        - timedelta(minutes=15),
        reminders.job_id(NotificationKind.SLOT_ENDING, booking_id, slot + timedelta(minutes=50)): slot
        + timedelta(minutes=50),
    }
    assert first.keys() == expected.keys()
    for job_id, at in expected.items():
        if at is not None:
            assert first[job_id].score == to_unix_ms(at), job_id
    assert again.keys() == first.keys()  # planned again: the same jobs, once each
    assert all(again[job_id].enqueue_time == first[job_id].enqueue_time for job_id in first)
