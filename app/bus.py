"""The event bus: publish a JSON message on a channel, subscribe to channels.

Two transports behind one interface. The in-process bus serves the embedded single-process site;
the Redis bus serves many processes. Each process holds exactly one Redis subscriber connection and
one listener task, and fans messages out to in-process queues, one per consumer (a WebSocket), and
to synchronous listeners (a cache, which must forget a view the moment it learns of a change).
Redis pub/sub is at-most-once, so after the listener reconnects every subscriber is told to
resynchronise (``RESYNC``) instead of trusting that nothing was missed.

A message is delivered in the publishing process first, before ``publish`` returns, and reaches
the other processes through Redis; a process skips its own messages when Redis echoes them back.
So the process that made a change reads its own write at once, whatever Redis is doing.

Per-station ``seq`` counters live in Redis, and a Redis that restarts without its data starts them
again from 1. So every counter belongs to an ``epoch``, a random id kept next to them and created
(once, atomically) by whichever process first finds it missing; a sequence number is handed out
together with the epoch it belongs to. A client that sees the epoch change knows the numbers
restarted and resynchronises rather than reading "1" as old news. The embedded bus's counters live
and die with its process, and so does its epoch.

``claim`` lets scheduled announcements say each thing once: it records the last state announced
for a key, atomically, so that of several workers catching up after a restart only one publishes
a change, and none publishes what was already said.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from app.tasks import TaskSet

log = logging.getLogger(__name__)

#: Delivered to every subscriber (on every channel) when messages may have been lost.
RESYNC: dict[str, Any] = {"type": "resync"}
#: Seconds of silence on the subscriber connection before we check that Redis is still there.
PING_INTERVAL = 5.0
#: Marks which process published a message, so that it does not deliver its own message twice.
ORIGIN = "_origin"

#: KEYS: epoch, counter; ARGV: an epoch to create if there is none. Returns the epoch and the next
#: number of the counter, so a number is never paired with an epoch it does not belong to.
_NEXT_SEQ = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then epoch = ARGV[1]; redis.call('SET', KEYS[1], epoch) end
return {epoch, redis.call('INCR', KEYS[2])}
"""
#: KEYS: epoch, counters...; ARGV: an epoch to create if there is none. Returns the epoch and the
#: counters' current values.
_CURRENT_SEQS = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then epoch = ARGV[1]; redis.call('SET', KEYS[1], epoch) end
local found = {epoch}
for i = 2, #KEYS do found[i] = redis.call('GET', KEYS[i]) or '0' end
return found
"""
#: KEYS: the hash of announced states; ARGV: field, state. 1 if recorded, 0 if it was the last one.
_CLAIM = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

Listener = Callable[[dict[str, Any]], None]


class Subscription:
    """A bounded queue of messages for one consumer.

    A consumer that falls behind is not allowed to hold up the others: when its queue is full it is
    marked ``overflowed`` and receives nothing more; it is expected to drop out and resync.
    """

    def __init__(self, bus: Bus, channels: frozenset[str] | None, maxsize: int) -> None:
        self._bus = bus
        self.channels = channels
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.overflowed = False

    def wants(self, channel: str) -> bool:
        return self.channels is None or channel in self.channels

    def deliver(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # Make room for one marker so the consumer learns it fell behind.
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait({"type": "overflow"})

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await self.queue.get()
            yield message
            if message.get("type") == "overflow":
                return

    def close(self) -> None:
        self._bus._subscribers.discard(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus(ABC):
    """Common fan-out; subclasses provide the transport."""

    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self._listeners: list[Listener] = []
        #: Times the connection was lost and made again (``/metrics``); an in-process bus never is.
        self.reconnects = 0
        #: The epoch of the last sequence number handed out (see the module docstring).
        self.epoch = secrets.token_hex(8)

    @property
    def connected(self) -> bool:
        return True

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def subscribe(self, *channels: str, maxsize: int = 256) -> Subscription:
        """Subscribe to the given channels (all channels when none are given)."""
        subscription = Subscription(self, frozenset(channels) or None, maxsize)
        self._subscribers.add(subscription)
        return subscription

    def listen(self, listener: Listener) -> None:
        """Call ``listener`` with every message (and every ``RESYNC``) as it is delivered, before
        any subscription's queue sees it. For caches: nothing can read them between the two."""
        self._listeners.append(listener)

    @abstractmethod
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver ``message`` to this process's listeners and subscribers, then to the others."""

    @abstractmethod
    async def next_seq(self, key: str) -> int:
        """A counter shared by every process on this bus, used for per-station event order."""

    @abstractmethod
    async def current_seqs(self, keys: list[str]) -> list[int]:
        """The last value ``next_seq`` handed out for each key (0 if none), for snapshots."""

    @abstractmethod
    async def claim(self, key: str, state: str) -> bool:
        """Record ``state`` as the last one announced for ``key`` unless it is that already;
        whether it was recorded, i.e. whether the caller should announce it. Atomic: of several
        processes claiming the same new state, exactly one gets True."""

    @abstractmethod
    async def forget_announced(self) -> None:
        """Forget every claimed state: the next claim of each key is news again."""

    def _fan_out(self, channel: str, message: dict[str, Any]) -> None:
        delivered = {**message, "channel": channel}
        for listener in self._listeners:
            listener(delivered)
        for subscription in list(self._subscribers):
            if subscription.wants(channel):
                subscription.deliver(delivered)

    def _resync_all(self) -> None:
        for listener in self._listeners:
            listener(dict(RESYNC))
        for subscription in list(self._subscribers):
            subscription.deliver(dict(RESYNC))


class InProcessBus(Bus):
    """The embedded default: delivery is a function call, nothing can be lost."""

    def __init__(self) -> None:
        super().__init__()
        self._counters: dict[str, int] = {}
        self._announced: dict[str, str] = {}

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self._fan_out(channel, message)

    async def next_seq(self, key: str) -> int:
        value = self._counters[key] = self._counters.get(key, 0) + 1
        return value

    async def current_seqs(self, keys: list[str]) -> list[int]:
        return [self._counters.get(key, 0) for key in keys]

    async def claim(self, key: str, state: str) -> bool:
        if self._announced.get(key) == state:
            return False
        self._announced[key] = state
        return True

    async def forget_announced(self) -> None:
        self._announced.clear()


class RedisBus(Bus):
    """Redis pub/sub with one subscriber connection per process and reconnection with backoff."""

    def __init__(
        self,
        url: str,
        prefix: str,
        max_backoff: float = 1.0,
        socket_timeout: float = 5.0,
        tasks: TaskSet | None = None,
    ) -> None:
        super().__init__()
        self._origin = secrets.token_hex(8)
        #: The process's background tasks, which restart the listener if it ever dies.
        self._tasks = tasks if tasks is not None else TaskSet()
        self._url = url
        self._prefix = prefix
        self._max_backoff = max_backoff
        self._client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=socket_timeout, health_check_interval=10
        )
        self._next_seq = self._client.register_script(_NEXT_SEQ)
        self._current_seqs = self._client.register_script(_CURRENT_SEQS)
        self._claim = self._client.register_script(_CLAIM)
        self._listener: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._has_connected_before = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    async def start(self) -> None:
        self._listener = self._tasks.supervise("bus-listener", self._listen)

    async def wait_connected(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), timeout)
        return self.connected

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        await self._client.aclose()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        """Publish; a Redis outage is logged, not raised, because the caller's work is done and
        every subscriber is resynchronised when the bus comes back."""
        self._fan_out(channel, message)
        try:
            await self._client.publish(f"{self._prefix}:{channel}", json.dumps({**message, ORIGIN: self._origin}))
        except (RedisError, OSError) as exc:
            log.warning("bus publish on %s failed: %s", channel, exc)

    async def next_seq(self, key: str) -> int:
        """0 while Redis is unreachable: the message it would number cannot be published either,
        and the caller's work (a booking, say) must not fail for it."""
        try:
            epoch, seq = await self._next_seq(keys=[self._epoch_key, self._seq_key(key)], args=[secrets.token_hex(8)])
        except (RedisError, OSError) as exc:
            log.warning("bus sequence %s unavailable: %s", key, exc)
            return 0
        self.epoch = epoch.decode()
        return int(seq)

    async def current_seqs(self, keys: list[str]) -> list[int]:
        """0s (unknown) while Redis is unreachable; clients get a fresh snapshot when it returns."""
        if not keys:
            return []
        try:
            epoch, *values = await self._current_seqs(
                keys=[self._epoch_key, *map(self._seq_key, keys)], args=[secrets.token_hex(8)]
            )
        except (RedisError, OSError) as exc:
            log.warning("bus sequences unavailable: %s", exc)
            return [0] * len(keys)
        self.epoch = epoch.decode()
        return [int(value) for value in values]

    @property
    def _epoch_key(self) -> str:
        return f"{self._prefix}:seq-epoch"

    def _seq_key(self, key: str) -> str:
        return f"{self._prefix}:seq:{key}"

    async def claim(self, key: str, state: str) -> bool:
        return bool(await self._claim(keys=[self._announced_key], args=[key, state]))

    async def forget_announced(self) -> None:
        await self._client.delete(self._announced_key)

    @property
    def _announced_key(self) -> str:
        return f"{self._prefix}:announced"

    async def _listen(self) -> None:
        backoff = 0.05
        pattern = f"{self._prefix}:*"
        skip = len(self._prefix) + 1
        while True:
            pubsub = self._client.pubsub()
            try:
                await pubsub.psubscribe(pattern)
                self._connected.set()
                if self._has_connected_before:
                    log.info("bus reconnected; resynchronising subscribers")
                    self.reconnects += 1
                    self._resync_all()
                self._has_connected_before = True
                backoff = 0.05
                await self._receive(pubsub, skip)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self._connected.is_set():
                    log.warning("bus connection lost: %s", exc)
                self._connected.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    async def _receive(self, pubsub: PubSub, skip: int) -> None:
        """Fan messages out until the connection fails.

        Reads wait at most a second, never the client's socket timeout: a quiet channel is not a
        lost connection (treating it as one would resync every subscriber each quiet spell). A
        connection that goes silent even to our pings is a lost one.
        """
        loop = asyncio.get_running_loop()
        heard = pinged = loop.time()
        while True:
            raw = await pubsub.get_message(timeout=1.0)
            now = loop.time()
            if raw is None:
                if now - heard > 3 * PING_INTERVAL:
                    raise RedisConnectionError("no answer from Redis to our pings")
                if now - pinged >= PING_INTERVAL:
                    await pubsub.ping()
                    pinged = now
                continue
            heard = now
            if raw.get("type") != "pmessage":
                continue
            channel = raw["channel"].decode()[skip:]
            if channel.startswith("seq:"):
                continue
            message = json.loads(raw["data"])
            if message.pop(ORIGIN, None) != self._origin:
                self._fan_out(channel, message)


def create_bus(redis_url: str | None, prefix: str, tasks: TaskSet) -> Bus:
    return RedisBus(redis_url, prefix, tasks=tasks) if redis_url else InProcessBus()
