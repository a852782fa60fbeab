"""The bus delivers across processes through real Redis, fans out in-process, and survives Redis
going away and coming back."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil

import pytest

from app.bus import InProcessBus, RedisBus
from tests.conftest import service_url
from tests.helpers import free_port, redis_server, wait_for_port


async def next_message(subscription, timeout: float = 5.0) -> dict:
    return await asyncio.wait_for(subscription.get(), timeout)


async def test_in_process_bus_delivers_to_every_subscriber_of_the_channel() -> None:
    bus = InProcessBus()
    first, second, elsewhere = bus.subscribe("station:1"), bus.subscribe(), bus.subscribe("station:2")
    await bus.publish("station:1", {"type": "status", "is_open": True})
    assert (await next_message(first))["is_open"] is True
    assert (await next_message(second))["channel"] == "station:1"
    assert elsewhere.queue.empty()
    first.close()
    assert bus.subscriber_count == 2


async def test_a_slow_subscriber_is_cut_off_without_blocking_others() -> None:
    bus = InProcessBus()
    slow, fast = bus.subscribe(maxsize=2), bus.subscribe(maxsize=100)
    for n in range(5):
        await bus.publish("c", {"n": n})
    assert slow.overflowed
    assert [m["n"] for m in [fast.queue.get_nowait() for _ in range(5)]] == [0, 1, 2, 3, 4]
    assert [m async for m in slow][-1] == {"type": "overflow"}


async def test_in_process_sequence_numbers_increase_per_key() -> None:
    bus = InProcessBus()
    assert [await bus.next_seq("1"), await bus.next_seq("1"), await bus.next_seq("2")] == [1, 2, 1]


async def test_message_published_on_one_redis_bus_reaches_another() -> None:
    url = service_url("TEST_REDIS_URL")
    assert url
    prefix = f"test-{secrets.token_hex(4)}"
    publisher, listener = RedisBus(url, prefix), RedisBus(url, prefix)
    await publisher.start()
    await listener.start()
    try:
        assert await listener.wait_connected(5)
        subscription = listener.subscribe("station:7")
        await publisher.publish("station:7", {"type": "status", "is_open": False})
        message = await next_message(subscription)
        assert message == {"type": "status", "is_open": False, "channel": "station:7"}
        assert await publisher.next_seq("7") + 1 == await listener.next_seq("7")
    finally:
        await publisher.close()
        await listener.close()


async def test_subscriber_survives_a_redis_restart_and_is_told_to_resync() -> None:
    if not shutil.which("redis-server"):
        if os.environ.get("CI"):
            pytest.fail("redis-server is required")
        pytest.skip("redis-server not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    with redis_server(port):
        await wait_for_port(port)
        bus = RedisBus(url, "restart", max_backoff=0.2)
        await bus.start()
        subscription = bus.subscribe("station:1")
        assert await bus.wait_connected(5)
    # Redis is gone: publishing is logged, not raised (this process's own subscribers still get
    # the message first), and the bus says it is disconnected.
    await bus.publish("station:1", {"type": "local"})
    assert await next_message(subscription) == {"type": "local", "channel": "station:1"}
    for _ in range(100):
        if not bus.connected:
            break
        await asyncio.sleep(0.05)
    assert not bus.connected
    try:
        with redis_server(port):
            await wait_for_port(port)
            assert await bus.wait_connected(5)
            assert await next_message(subscription) == {"type": "resync"}
            await bus.publish("station:1", {"type": "after"})
            assert (await next_message(subscription))["type"] == "after"
    finally:
        await bus.close()
