"""Throttling of sign-in guessing and mass registration (brute force and credential stuffing).

Counting is the ``limits`` library's fixed-window strategy, kept in Redis when ``REDIS_URL`` is set
so that every web process sees the same counters, and in memory for the embedded single process.
While Redis is unreachable each process counts in its own memory instead: a guesser then gets a few
more tries (one allowance per web process) but is still stopped, where failing open would let an
outage become an unlimited guessing window. Counts made during an outage are not carried over.
The window is aligned to the app clock and its number is part of each key: every process agrees on
where a window starts, ``Retry-After`` is exact, and tests move the clock instead of sleeping.

A sign-in attempt is counted *before* the password is checked, with one atomic increment, so a
burst of parallel guesses cannot all slip past a check-then-count gap; a successful sign-in then
clears the account's count and gives the client back its attempt, leaving only failures counted.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from app.clock import Clock
from app.config import Limit, Settings
from app.errors import RateLimited

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Rule:
    name: str
    amount: int
    window: timedelta

    @property
    def seconds(self) -> int:
        return int(self.window.total_seconds())


#: A client address may fail this many times the per-account allowance, across accounts: one
#: address may be a whole office or a mobile carrier's NAT.
CLIENT_FACTOR = 4


def sign_in_rules(limit: Limit) -> tuple[Rule, Rule]:
    """Failed sign-ins per account from anywhere (``SIGN_IN_LIMIT``, default 5 per 15 minutes: the
    sixth rapid one is refused) and per client address across accounts (four times that)."""
    window = timedelta(minutes=limit.minutes)
    return (
        Rule("sign-in-account", limit.amount, window),
        Rule("sign-in-client", CLIENT_FACTOR * limit.amount, window),
    )


def register_rule(limit: Limit) -> Rule:
    """Registrations (successful or not) from one client address; each costs an argon2 hash."""
    return Rule("register-client", limit.amount, timedelta(minutes=limit.minutes))


SIGN_IN_PER_ACCOUNT, SIGN_IN_PER_CLIENT = sign_in_rules(Settings.sign_in_limit)
REGISTER_PER_CLIENT = register_rule(Settings.register_limit)


def _limits_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return "async+" + redis_url


def account_key(email: str) -> str:
    """Counters name accounts by a digest, so the Redis keyspace holds no email addresses."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class Throttle:
    """Per-process handle on the shared counters."""

    def __init__(
        self,
        redis_url: str | None,
        prefix: str,
        clock: Clock,
        sign_in: Limit = Settings.sign_in_limit,
        register: Limit = Settings.register_limit,
    ) -> None:
        self.sign_in_per_account, self.sign_in_per_client = sign_in_rules(sign_in)
        self.register_per_client = register_rule(register)
        self._redis_url = redis_url
        self._prefix = prefix
        self._clock = clock
        self._pool: aioredis.ConnectionPool | None = None
        self._limiter: FixedWindowRateLimiter | None = None
        #: This process's own counters, used only while the shared ones are unreachable.
        self._local = FixedWindowRateLimiter(MemoryStorage())
        self._shared_down = False
        #: Part of every key; ``reset`` moves to a fresh set of counters without scanning Redis.
        self.generation = 0

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> Throttle:
        return cls(settings.redis_url, settings.redis_prefix, clock, settings.sign_in_limit, settings.register_limit)

    def _strategy(self) -> FixedWindowRateLimiter:
        # Built on first use, inside the running event loop the storage belongs to.
        if self._limiter is None:
            storage: Storage
            if self._redis_url is None:
                storage = MemoryStorage()
            else:
                self._pool = aioredis.ConnectionPool.from_url(
                    self._redis_url, socket_connect_timeout=2, socket_timeout=2
                )
                storage = RedisStorage(
                    _limits_uri(self._redis_url),
                    implementation="redispy",
                    key_prefix=f"{self._prefix}:ratelimit",
                    wrap_exceptions=True,
                    connection_pool=self._pool,  # type: ignore[arg-type]  # accepted, though typed as scalars
                )
            self._limiter = FixedWindowRateLimiter(storage)
        return self._limiter

    def _window(self, rule: Rule) -> tuple[RateLimitItemPerSecond, str, int]:
        """The limit item, the current window's number and the seconds until that window ends."""
        now = self._clock.now().timestamp()
        number = int(now // rule.seconds)
        retry_after = max(1, math.ceil((number + 1) * rule.seconds - now))
        item = RateLimitItemPerSecond(rule.amount, rule.seconds, namespace=f"g{self.generation}")
        return item, str(number), retry_after

    async def _counting(self, use: Callable[[FixedWindowRateLimiter], Awaitable[T]]) -> T:
        """``use`` the shared counters, or this process's own while those are unreachable."""
        try:
            result = await use(self._strategy())
        except StorageError as exc:
            if not self._shared_down:
                log.error("rate-limit storage unavailable; counting in this process until it is back: %s", exc)
                self._shared_down = True
            return await use(self._local)
        if self._shared_down:
            log.warning("rate-limit storage is back; counting there again")
            self._shared_down = False
        return result

    async def hit(self, rule: Rule, subject: str) -> None:
        """Count one attempt; ``RateLimited`` when it goes over the rule."""
        item, window, retry_after = self._window(rule)
        if not await self._counting(lambda limiter: limiter.hit(item, rule.name, subject, window)):
            raise RateLimited(retry_after=retry_after)

    async def give_back(self, rule: Rule, subject: str) -> None:
        """Undo one ``hit`` for an attempt that turned out not to count."""
        item, window, _ = self._window(rule)
        await self._counting(lambda limiter: limiter.hit(item, rule.name, subject, window, cost=-1))

    async def clear(self, rule: Rule, subject: str) -> None:
        item, window, _ = self._window(rule)
        await self._counting(lambda limiter: limiter.clear(item, rule.name, subject, window))

    async def remaining(self, rule: Rule, subject: str) -> int:
        item, window, _ = self._window(rule)
        stats = await self._counting(lambda limiter: limiter.get_window_stats(item, rule.name, subject, window))
        return stats.remaining

    async def begin_sign_in(self, email: str, client: str) -> None:
        """Count a sign-in attempt against the client and the account before checking it."""
        await self.hit(self.sign_in_per_client, client)
        try:
            await self.hit(self.sign_in_per_account, account_key(email))
        except RateLimited:
            await self.give_back(self.sign_in_per_client, client)  # refused unchecked: no guess made
            raise

    async def sign_in_succeeded(self, email: str, client: str) -> None:
        await self.clear(self.sign_in_per_account, account_key(email))
        await self.give_back(self.sign_in_per_client, client)

    async def count_registration(self, client: str) -> None:
        await self.hit(self.register_per_client, client)

    def reset(self) -> None:
        """Start again from empty counters in this process; the old keys expire on their own."""
        self.generation += 1

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.disconnect()
        self._pool = None
        self._limiter = None
