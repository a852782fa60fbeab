"""Background tasks that die are started again, and the process says it is not ready meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Quart

from app.state import state
from app.tasks import TaskSet
from tests.conftest import Backend


class Gate:
    """An injected sleep that returns only when the test opens it, recording each wait asked for."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._open = asyncio.Event()
        self.asked = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.asked.set()
        await self._open.wait()
        self._open.clear()
        self.asked.clear()

    def open(self) -> None:
        self._open.set()


class Dies:
    """A task body that fails on its first ``failures`` runs, then runs until cancelled."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0
        self.running = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise ConnectionError("lost it")
        self.running.set()
        await asyncio.Event().wait()


async def test_a_task_that_dies_is_restarted_with_a_growing_backoff() -> None:
    gate, body = Gate(), Dies(failures=2)
    tasks = TaskSet(sleep=gate.sleep)
    tasks.supervise("listener", body)
    try:
        for _ in range(2):
            await asyncio.wait_for(gate.asked.wait(), 5)
            assert tasks.down == {"listener": "failed: ConnectionError"}
            gate.open()
        await asyncio.wait_for(body.running.wait(), 5)
        assert (body.runs, tasks.down, gate.waits) == (3, {}, [0.5, 1.0])
    finally:
        await tasks.cancel_all()


async def test_a_task_that_returns_is_restarted_too() -> None:
    gate, runs = Gate(), []

    async def returns_once() -> None:
        runs.append(1)
        if len(runs) > 1:
            await asyncio.Event().wait()

    tasks = TaskSet(sleep=gate.sleep)
    tasks.supervise("follower", returns_once)
    try:
        await asyncio.wait_for(gate.asked.wait(), 5)
        assert tasks.down == {"follower": "stopped"}
        gate.open()
        for _ in range(100):
            if len(runs) == 2:
                break
            await asyncio.sleep(0)
        assert (len(runs), tasks.down) == (2, {})
    finally:
        await tasks.cancel_all()


async def test_readyz_is_503_naming_a_dead_task_until_it_runs_again(app: Quart, db: Backend) -> None:
    app_state = state(app)
    gate, body = Gate(), Dies(failures=1)
    original, app_state.tasks = app_state.tasks, TaskSet(sleep=gate.sleep)
    client: Any = app.test_client()
    try:
        app_state.tasks.supervise("scheduler", body)
        await asyncio.wait_for(gate.asked.wait(), 5)
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert (await response.get_json())["checks"]["task:scheduler"] == "unavailable: failed: ConnectionError"
        gate.open()
        await asyncio.wait_for(body.running.wait(), 5)
        response = await client.get("/readyz")
        assert response.status_code == 200
        assert "task:scheduler" not in (await response.get_json())["checks"]
    finally:
        await app_state.tasks.cancel_all()
        app_state.tasks = original
