"""Jobs for later or for another process: deliver notifications, send a reminder at its instant.

With Redis, a job goes into the worker's arq queue (``ArqQueue``) with a stable id, so a job
enqueued twice (two web processes, a re-plan) exists once and runs once; ``at`` defers it to that
instant. In the embedded default the same jobs run in this process (``LocalQueue``), at the
injected clock's instants, so tests drive them without waiting. Enqueueing never fails the change
that asked for it: the change is committed and the worker's catch-up finds what a lost job would
have done.

A request enqueues all its jobs at once (``enqueue_all``): a booking's delivery and its reminders
are one Redis round trip (``_ENQUEUE_ALL``), where arq's own ``enqueue_job`` takes three per job
(WATCH, EXISTS, MULTI/EXEC). Measured with ``bench/count_statements.py``, which counts Redis round
trips per request too: a booking went from 14 to 3, a payment from 5 to 3.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms, to_unix_ms
from redis.commands.core import AsyncScript
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


@dataclass(frozen=True)
class Job:
    """Job ``name`` with ``args``, to run at ``at`` (else now), once per ``job_id``."""

    name: str
    args: tuple[Any, ...]
    job_id: str
    at: datetime | None = None


class JobQueue(ABC):
    async def enqueue(self, name: str, *args: Any, job_id: str, at: datetime | None = None) -> None:
        """Run job ``name`` with ``args`` (at ``at``, else now) unless ``job_id`` exists already."""
        await self.enqueue_all([Job(name, args, job_id, at)])

    @abstractmethod
    async def enqueue_all(self, jobs: Sequence[Job]) -> None:
        """``enqueue`` each of ``jobs``, in one go."""

    async def close(self) -> None:
        return None


#: arq's ``enqueue_job`` for many jobs in one round trip, atomic as its WATCH/MULTI is: a job whose
#: id is queued or has a result already is left alone. KEYS: the queue, then each job's key and
#: result key; ARGV: each job's id, serialized job, score (ms) and expiry (ms).
_ENQUEUE_ALL = """
local added = 0
for i = 0, #ARGV / 4 - 1 do
  if redis.call('EXISTS', KEYS[2 + 2 * i], KEYS[3 + 2 * i]) == 0 then
    redis.call('PSETEX', KEYS[2 + 2 * i], ARGV[4 + 4 * i], ARGV[2 + 4 * i])
    redis.call('ZADD', KEYS[1], ARGV[3 + 4 * i], ARGV[1 + 4 * i])
    added = added + 1
  end
end
return added
"""


class ArqQueue(JobQueue):
    """The worker's arq queue, reached from any process (one pool, opened on first use)."""

    def __init__(self, redis_url: str, queue_name: str, redis: ArqRedis | None = None) -> None:
        # A request that enqueues must not wait out arq's connection retries while Redis is away.
        self._settings = replace(RedisSettings.from_dsn(redis_url), conn_retries=0, conn_timeout=1)
        self._queue_name = queue_name
        self._redis = redis
        self._owns = redis is None
        self._script: AsyncScript | None = None

    async def _pool(self) -> ArqRedis:
        if self._redis is None:
            self._redis = await create_pool(self._settings, default_queue_name=self._queue_name)
        return self._redis

    async def enqueue_all(self, jobs: Sequence[Job]) -> None:
        if not jobs:
            return
        try:
            async with asyncio.timeout(ENQUEUE_TIMEOUT):
                redis = await self._pool()
                if self._script is None:
                    self._script = redis.register_script(_ENQUEUE_ALL)
                keys, args = self._script_arguments(redis, jobs)
                await self._script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            names = ", ".join(f"{job.name} ({job.job_id})" for job in jobs)
            log.warning("could not enqueue %s: %s; the worker's catch-up will do it", names, exc)

    def _script_arguments(self, redis: ArqRedis, jobs: Sequence[Job]) -> tuple[list[Any], list[Any]]:
        """What ``enqueue_job`` would write for each job: arq's serialized job, its score (when it
        is due) and its key's lifetime (until a day after it is due, arq's default)."""
        enqueued_ms = timestamp_ms()
        keys: list[Any] = [self._queue_name]
        args: list[Any] = []
        for job in jobs:
            score = to_unix_ms(job.at) if job.at is not None else enqueued_ms
            payload = serialize_job(job.name, job.args, {}, None, enqueued_ms, serializer=redis.job_serializer)
            keys += [job_key_prefix + job.job_id, result_key_prefix + job.job_id]
            args += [job.job_id, payload, score, max(1, score - enqueued_ms + redis.expires_extra_ms)]
        return keys, args

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

    async def enqueue_all(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.add(job.name, *job.args, job_id=job.job_id, at=job.at)

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
