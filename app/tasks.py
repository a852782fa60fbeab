"""The long-running background tasks of a process, and what happens when one dies.

Every task a process runs for its whole life (the bus listener, the live hub, the embedded
scheduler and close-out, the worker's change follower) is started through one ``TaskSet``, so
shutdown cancels every one. Such a task is *supervised*: if it fails, or returns when it should
run forever, it is logged, marked down and started again after a backoff that doubles up to
``MAX_BACKOFF``. While a task is down the process is not ready (``/readyz`` answers 503 naming
it), so a load balancer stops sending it traffic instead of the failure being only a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

#: First and longest wait before a failed task is started again.
FIRST_BACKOFF, MAX_BACKOFF = 0.5, 30.0
#: A run that lasted this long counts as healthy: the next failure starts from the first backoff.
HEALTHY_RUN = 60.0

Sleeper = Callable[[float], Awaitable[Any]]


def stop_if_cancelled() -> None:
    """Call in a loop that must go on after failures: in its ``except Exception`` and before each
    wait. A client library may turn a cancellation that lands mid-call into an error of its own, or
    swallow it; a task being cancelled must still stop, or shutdown waits for it forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def sleep_unless_woken(wake: asyncio.Event, delay: float, sleep: Sleeper = asyncio.sleep) -> None:
    """Sleep ``delay`` seconds (through ``sleep``, which tests replace), or until ``wake`` is set."""
    woken = asyncio.ensure_future(wake.wait())
    timer = asyncio.ensure_future(sleep(delay))
    try:
        await asyncio.wait({woken, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        timer.cancel()


class TaskSet:
    def __init__(self, *, sleep: Sleeper = asyncio.sleep) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sleep = sleep
        #: Supervised tasks that are down now, with why.
        self.down: dict[str, str] = {}

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Track a task so that shutdown cancels it; nothing restarts it."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def supervise(self, name: str, run: Callable[[], Awaitable[object]]) -> asyncio.Task[Any]:
        """Run ``run()`` for the life of the process, starting it again whenever it stops."""
        return self.spawn(self._keep_running(name, run), name=name)

    async def _keep_running(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        loop = asyncio.get_running_loop()
        backoff = FIRST_BACKOFF
        while True:
            started = loop.time()
            try:
                await run()
                reason = "stopped"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                stop_if_cancelled()
                reason = f"failed: {type(exc).__name__}"
                log.exception("background task %s failed; restarting in %.1f s", name, backoff)
            else:
                log.error("background task %s stopped; restarting in %.1f s", name, backoff)
            if loop.time() - started >= HEALTHY_RUN:
                backoff = FIRST_BACKOFF
            self.down[name] = reason
            try:
                await self._sleep(backoff)
            finally:
                self.down.pop(name, None)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_all(self, timeout: float = 5.0) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout)
        self.down.clear()

    def __len__(self) -> int:
        return len(self._tasks)
