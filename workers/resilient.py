"""arq's worker, made to outlive Redis outages instead of exiting.

arq 0.28 lets a Redis ``ConnectionError`` out of its poll loop, which ends the process within
seconds of Redis going away, and ``create_pool`` gives up after five tries at start. Nothing in a
Procfile brings the process back, so transitions stopped until someone noticed. This ``Worker``
changes only those two places: it waits for Redis at start, and a poll that fails for Redis waits
(with a backoff capped at ``MAX_BACKOFF``) and tries again. It logs once when Redis goes and once
when it is back, and then calls ``on_reconnect``: Redis may have restarted empty (no queue, no
deferred jobs) or jobs may have come due while nobody could run them, so the caller re-plans and
announces what it missed. Jobs running when Redis went may fail; arq retries them, and their
effects are idempotent. Stopping during an outage still shuts the services down cleanly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.connections import create_pool
from arq.worker import Worker as ArqWorker
from redis.exceptions import RedisError

from app.tasks import stop_if_cancelled

log = logging.getLogger(__name__)

FIRST_BACKOFF, MAX_BACKOFF = 0.05, 1.0

Hook = Callable[[dict[Any, Any]], Awaitable[object]]


class Outage:
    """Whether Redis is away, said once per change, and how long to wait before the next try."""

    def __init__(self) -> None:
        self.down = False
        self._backoff = FIRST_BACKOFF

    async def wait(self, error: BaseException) -> None:
        if not self.down:
            log.warning("Redis is unreachable (%s); retrying until it is back", error)
            self.down = True
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def ended(self) -> bool:
        """Whether an outage has just ended (then it says so)."""
        if not self.down:
            return False
        log.warning("Redis is back")
        self.down = False
        self._backoff = FIRST_BACKOFF
        return True


class Worker(ArqWorker):
    def __init__(self, *args: Any, on_reconnect: Hook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_reconnect = on_reconnect
        self.outage = Outage()
        self._reconnect_pending = False

    async def main(self) -> None:
        if self._pool is None:
            await self._connect()
        await super().main()

    async def _connect(self) -> None:
        """Make arq's pool, however long Redis takes to answer (arq itself tries five times)."""
        assert self.redis_settings is not None
        settings = dataclasses.replace(self.redis_settings, conn_retries=0)
        while self._pool is None:
            try:
                self._pool = await create_pool(
                    settings,
                    job_deserializer=self.job_deserializer,
                    job_serializer=self.job_serializer,
                    default_queue_name=self.queue_name,
                    expires_extra_ms=self.expires_extra_ms,
                )
            except (RedisError, OSError) as exc:
                await self.outage.wait(exc)
        self.outage.ended()

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except (RedisError, OSError) as exc:
            stop_if_cancelled()
            await self.outage.wait(exc)
            return
        if self.outage.ended():
            self._reconnect_pending = True
        if self._reconnect_pending:
            await self._reconnected()

    async def _reconnected(self) -> None:
        """Run ``on_reconnect``; if it fails (Redis went again, the database is away) it runs
        again after the next good poll."""
        try:
            if self.on_reconnect is not None:
                await self.on_reconnect(self.ctx)
        except Exception:
            stop_if_cancelled()
            log.exception("catching up after the Redis outage failed; trying again")
            await asyncio.sleep(MAX_BACKOFF)
            return
        self._reconnect_pending = False

    async def close(self) -> None:
        """arq's close, except that a Redis that is away does not stop the services from being shut
        down (arq deletes its health-check key first and would give up there)."""
        try:
            await super().close()
        except (RedisError, OSError) as exc:
            log.warning("stopping while Redis is unreachable (%s)", exc)
            if self.on_shutdown is not None:
                await self.on_shutdown(self.ctx)
            await self.pool.close(close_connection_pool=True)
            self._pool = None
