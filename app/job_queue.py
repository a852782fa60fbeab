"""Jobs for later or for another process: deliver notifications, send a reminder at its instant.

With Redis, a job goes into the worker's arq queue (``ArqQueue``) with a stable id, so a job
enqueued twice (two web processes, a re-plan) exists once and runs once; ``at`` defers it to that
instant. In the embedded default the same jobs run in this process (``LocalQueue``), at the
injected clock's instants, so tests drive them without waiting. Enqueueing never fails the change
that asked for it: the change is committed and the worker's catch-up finds what a lost job would
have done.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from app.clock import Clock
from app.tasks import Sleeper, sleep_unless_woken, stop_if_cancelled

log = logging.getLogger(__name__)

DELIVER = "deliver_notifications"
#: Seconds an enqueue may take before it is given up (the worker's catch-up does the job later).
ENQUEUE_TIMEOUT = 2.0
REMIND = "send_reminder"


def queue_for(prefix: str) -> str:
    """Jobs live in a queue named after the deployment's Redis prefix, like its bus channels."""
    return f"{prefix}:queue"


class JobQueue(ABC):
    @abstractmethod
    async def enqueue(self, name: str, *args: Any, job_id: str, at: datetime | None = None) -> None:
        """Run job ``name`` with ``args`` (at ``at``, else now) unless ``job_id`` exists already."""

    async def close(self) -> None:
        return None


class ArqQueue(JobQueue):
    """The worker's arq queue, reached from any process (one pool, opened on first use)."""

    def __init__(self, redis_url: str, queue_name: str, redis: ArqRedis | None = None) -> None:
        # A request that enqueues must not wait out arq's connection retries while Redis is away.
        self._settings = replace(RedisSettings.from_dsn(redis_url), conn_retries=0, conn_timeout=1)
        self._queue_name = queue_name
        self._redis = redis
        self._owns = redis is None

    async def _pool(self) -> ArqRedis:
        if self._redis is None:
            self._redis = await create_pool(self._settings, default_queue_name=self._queue_name)
        return self._redis

    async def enqueue(self, name: str, *args: Any, job_id: str, at: datetime | None = None) -> None:
        try:
            async with asyncio.timeout(ENQUEUE_TIMEOUT):
                redis = await self._pool()
                await redis.enqueue_job(name, *args, _job_id=job_id, _defer_until=at, _queue_name=self._queue_name)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("could not enqueue %s (%s): %s; the worker's catch-up will do it", name, job_id, exc)

    async def close(self) -> None:
        if self._owns and self._redis is not None:
            await self._redis.aclose()
            self._redis = None


Handler = Callable[..., Awaitable[object]]


class LocalQueue(JobQueue):
    """The embedded default's queue: jobs run in this process at their instants on the clock.

    Ids of jobs that ran are remembered (the last ``MEMORY`` of them), as arq keeps its results,
    so a job planned again after it ran does not run twice."""

    MEMORY = 10_000

    def __init__(self, clock: Clock, *, max_sleep: float = 30.0, sleep: Sleeper = asyncio.sleep) -> None:
        self._clock = clock
        self._max_sleep = max_sleep
        self._sleep = sleep
        self._handlers: dict[str, Handler] = {}
        self._pending: dict[str, tuple[datetime | None, str, tuple[Any, ...]]] = {}
        self._done: dict[str, None] = {}
        self._wake = asyncio.Event()

    def handle(self, name: str, handler: Handler) -> None:
        self._handlers[name] = handler

    @property
    def pending(self) -> dict[str, datetime | None]:
        return {job_id: at for job_id, (at, _, _) in self._pending.items()}

    async def enqueue(self, name: str, *args: Any, job_id: str, at: datetime | None = None) -> None:
        self.add(name, *args, job_id=job_id, at=at)

    def add(self, name: str, *args: Any, job_id: str, at: datetime | None = None) -> None:
        """``enqueue``, for code that cannot wait (start-up wiring)."""
        if job_id in self._pending or job_id in self._done:
            return
        self._pending[job_id] = (at, name, args)
        self._wake.set()

    async def run_due(self) -> int:
        """Run every job whose instant has come (in instant order); returns how many ran."""
        ran = 0
        while True:
            now = self._clock.now()
            due = sorted(
                ((at or now, job_id) for job_id, (at, _, _) in self._pending.items() if at is None or at <= now),
                key=lambda item: item[0],
            )
            if not due:
                return ran
            for _, job_id in due:
                _, name, args = self._pending.pop(job_id)
                self._done[job_id] = None
                if len(self._done) > self.MEMORY:
                    del self._done[next(iter(self._done))]
                handler = self._handlers.get(name)
                if handler is None:
                    log.warning("no handler for job %s (%s); dropped", name, job_id)
                    continue
                try:
                    await handler(*args)
                except Exception:
                    stop_if_cancelled()
                    log.exception("job %s (%s) failed", name, job_id)
                ran += 1

    async def run(self) -> None:
        """Run jobs as they come due, for the life of the process."""
        while True:
            self._wake.clear()
            await self.run_due()
            instants = [at for at, _, _ in self._pending.values() if at is not None]
            delay = self._max_sleep
            if instants:
                delay = max(0.0, min(delay, (min(instants) - self._clock.now()).total_seconds()))
            await sleep_unless_woken(self._wake, delay, self._sleep)


def create_queue(redis_url: str | None, prefix: str, clock: Clock) -> JobQueue:
    return ArqQueue(redis_url, queue_for(prefix)) if redis_url else LocalQueue(clock)
