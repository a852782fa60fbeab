"""The arq worker's jobs: thin wiring of app/transitions.py, app/closeout.py, app/delivery.py and
app/reminders.py to arq.

- Start-up: catch up (announce every station's status, and the availability of those with a
  booking under way, where they differ from what was last announced; however many workers start
  together, each change goes out once), then plan: each station's
  next open/close transition and next availability change (a booked slot starts or ends, a hold
  runs out) become ``broadcast_transition`` jobs deferred to their instants, with the ids
  ``transition:{station}:{instant}`` and ``availability:{station}:{instant}``. Every worker
  computes the same id, so however many workers plan it the job exists once and runs once.
- ``broadcast_transition`` publishes the station's status (or availability) at the instant and
  plans its next one.
- Changes: every worker follows the bus (``follow_changes``); a station's ``status`` or
  ``changed`` event (hours) or ``availability`` event (bookings) re-plans it at once, a resync
  after a Redis outage re-plans everything, and ``plan_all`` runs every ten minutes as a safety
  net for anything missed.
- ``close_out`` runs at :00 and :30 of every minute, once across all workers (cron ``unique``).
- After a Redis outage (``workers.resilient``) ``reconnected`` catches up and re-plans every
  station, as at start: Redis may have come back empty, and transitions came due meanwhile.
- Notifications: ``deliver_notifications`` is enqueued by whatever wrote some, right after its
  commit; ``send_reminder`` jobs are deferred to their instants (``remind:{kind}:{booking}:{at}``).
  At start, after an outage and with ``plan_all``, every worker sends what was written but not
  sent and plans every live booking's reminders (``app.delivery``, ``app.reminders``).

Jobs may run twice (arq retries, a worker dies mid-job); all of them are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix

from app import charger_duties, charging, closeout, delivery, reminders, transitions
from app.bus import RedisBus
from app.config import ConfigError, Settings, load_settings
from app.db import close_db, init_db
from app.events import STATUS
from app.job_queue import queue_for
from app.state import Services

log = logging.getLogger(__name__)

#: How often the worker looks for due jobs: small, so a transition goes out well within 1 s.
POLL_DELAY = 0.05
MAX_TRIES = 5
#: Jobs run at once: many bookings may start at the same minute, and each reservation mostly waits on
#: its charger's answer, so arq's default of 10 would queue them behind each other.
MAX_JOBS = 50
CONTEXT = "chargeslot"


@dataclass
class WorkerServices:
    """The process's ``Services``, built as ``create_app`` builds them, plus arq's Redis."""

    services: Services
    redis: ArqRedis
    owns_db: bool

    @property
    def bus(self) -> RedisBus:
        assert isinstance(self.services.bus, RedisBus)
        return self.services.bus

    def now(self) -> datetime:
        return self.services.clock.now()


def services(ctx: dict[str, Any]) -> WorkerServices:
    found: WorkerServices = ctx[CONTEXT]
    return found


async def startup(ctx: dict[str, Any]) -> None:
    """``ctx`` may carry ``settings`` and ``db_ready`` (tests share their database set-up)."""
    settings: Settings = ctx.get("settings") or load_settings()
    if settings.redis_url is None:
        raise ConfigError("REDIS_URL is required: the worker schedules and publishes through Redis")
    owns_db = not ctx.get("db_ready", False)
    if owns_db:
        await init_db(settings)
    worker = WorkerServices(Services.build(settings), ctx["redis"], owns_db)
    await worker.bus.start()
    await worker.bus.wait_connected(5)
    ctx[CONTEXT] = worker
    await _catch_up(worker)
    await _catch_up_notifications(worker)
    # The follower plans every station once it has subscribed (so no change can fall between),
    # then follows changes; jobs are only picked up after the plan exists.
    planned = asyncio.Event()
    worker.services.tasks.supervise(
        "follow-changes",
        lambda: transitions.follow_changes(worker.bus, lambda ids, kinds: plan(worker, ids, kinds), planned=planned),
    )
    await planned.wait()


async def shutdown(ctx: dict[str, Any]) -> None:
    worker = ctx.pop(CONTEXT, None)
    if worker is None:
        return
    await worker.services.tasks.cancel_all()
    await worker.services.jobs.close()
    await worker.bus.close()
    if worker.owns_db:
        await close_db()


async def reconnected(ctx: dict[str, Any]) -> None:
    worker = services(ctx)
    await _catch_up(worker)
    await plan(worker, None)
    # Delivery jobs enqueued during the outage were lost, and Redis may have lost the reminders.
    await _catch_up_notifications(worker)


async def _catch_up(worker: WorkerServices) -> None:
    count = await transitions.catch_up(worker.now(), bus=worker.bus)
    log.info("caught up: published %d station events", count)


async def plan(
    worker: WorkerServices, station_ids: Collection[int] | None, kinds: Collection[str] = transitions.KINDS
) -> int:
    """Enqueue each station's next transitions unless they are queued or done already; returns how
    many jobs were added."""
    planned = await transitions.upcoming(station_ids, worker.now(), kinds)
    added = await plan_charger_duties(worker, station_ids)
    if not planned:
        return added
    # One round trip to skip the (usual) case of jobs that exist; enqueue_job re-checks atomically.
    async with worker.redis.pipeline(transaction=False) as pipe:
        for transition in planned:
            pipe.exists(job_key_prefix + transition.job_id, result_key_prefix + transition.job_id)
        existing = await pipe.execute()
    for transition, found in zip(planned, existing, strict=True):
        if found:
            continue
        job = await worker.redis.enqueue_job(
            "broadcast_transition",
            transition.station_id,
            transition.at,
            transition.kind,
            _job_id=transition.job_id,
            _defer_until=transition.at,
        )
        added += job is not None
    return added


async def broadcast_transition(ctx: dict[str, Any], station_id: int, at: datetime, kind: str = STATUS) -> bool:
    worker = services(ctx)
    # arq defers to the nearest millisecond, which may be a fraction of one before the instant.
    early = (at - worker.now()).total_seconds()
    if 0 < early < 1:
        await asyncio.sleep(early)
    try:
        sent = await transitions.broadcast(station_id, at, bus=worker.bus, now=worker.now(), kind=kind)
    except Exception as exc:
        # The instant has come and still needs announcing: try again shortly (the database may
        # be restarting) rather than dropping it.
        if ctx.get("job_try", 1) >= MAX_TRIES:
            raise
        raise Retry(defer=ctx.get("job_try", 1)) from exc
    await plan(worker, [station_id], (kind,))
    return sent


def charger_duties_of(worker: WorkerServices) -> charger_duties.Duties:
    services = worker.services
    timing = charger_duties.Timing.from_settings(services.settings)
    return charger_duties.Duties(services.chargers, services.provider, worker.bus, timing, services.jobs)


async def plan_charger_duties(worker: WorkerServices, station_ids: Collection[int] | None) -> int:
    """Cancel stale reservations now, and enqueue each booking's charger duties (reserve, no-show,
    slot end: ``app.charger_duties``) deferred to their instants, once each by their stable ids."""
    duties = charger_duties_of(worker)
    await charger_duties.reconcile(station_ids, worker.now(), duties)
    added = 0
    for duty in await charger_duties.upcoming(station_ids, worker.now(), duties.timing):
        job = await worker.redis.enqueue_job(
            "run_charger_duty",
            duty.kind,
            duty.booking_id,
            duty.charger_id,
            duty.at,
            _job_id=duty.job_id,
            _defer_until=duty.at,
        )
        added += job is not None
    return added


async def run_charger_duty(ctx: dict[str, Any], kind: str, booking_id: int, charger_id: int, at: datetime) -> bool:
    worker = services(ctx)
    duty = charger_duties.Duty(kind, booking_id, charger_id, at)
    return await charger_duties.perform(duty, worker.now(), charger_duties_of(worker))


async def mark_offline(ctx: dict[str, Any]) -> int:
    worker = services(ctx)
    return await charging.mark_offline(worker.now(), worker.services.settings.ocpp_heartbeat_seconds, worker.bus)


async def plan_all(ctx: dict[str, Any]) -> int:
    worker = services(ctx)
    await _catch_up_notifications(worker)
    return await plan(worker, None)


async def _catch_up_notifications(worker: WorkerServices) -> None:
    """Send what was written but not sent (a worker died mid-way, or none was running), and plan
    every live booking's reminders: both idempotent, so every worker may do it as it starts."""
    sent = await delivery.deliver_pending(worker.now(), bus=worker.bus, mail=worker.services.mail)
    planned = await reminders.plan_all(worker.services.jobs, worker.now())
    log.info("notifications: %d sent late, %d reminders planned", sent, planned)


async def deliver_notifications(ctx: dict[str, Any]) -> int:
    """Enqueued right after a change that wrote notifications commits (``app.job_queue``)."""
    worker = services(ctx)
    return await delivery.deliver_pending(worker.now(), bus=worker.bus, mail=worker.services.mail)


async def send_reminder(ctx: dict[str, Any], kind: str, booking_id: int, at: datetime) -> bool:
    worker = services(ctx)
    early = (at - worker.now()).total_seconds()
    if 0 < early < 1:
        await asyncio.sleep(early)
    return await reminders.fire(kind, booking_id, at, now=worker.now(), jobs=worker.services.jobs)


async def close_out(ctx: dict[str, Any]) -> dict[str, int]:
    worker = services(ctx)
    result = await closeout.close_out(worker.now(), bus=worker.bus, provider=worker.services.provider)
    return {"expired": result.expired, "completed": result.completed, "stations": len(result.station_ids)}


FUNCTIONS = [broadcast_transition, deliver_notifications, send_reminder, run_charger_duty]
CRON_JOBS = [
    cron(close_out, second={0, 30}, unique=True, timeout=120),
    cron(mark_offline, second={15, 45}, unique=True, timeout=60),
    cron(plan_all, minute=set(range(0, 60, 10)), second=5, unique=True, timeout=300),
]


def worker_options(settings: Settings) -> dict[str, Any]:
    """``workers.resilient.Worker`` keyword arguments for these settings (``python -m workers`` and
    tests build workers with it)."""
    assert settings.redis_url is not None
    return {
        "on_reconnect": reconnected,
        "functions": FUNCTIONS,
        "cron_jobs": CRON_JOBS,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "queue_name": queue_for(settings.redis_prefix),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "poll_delay": POLL_DELAY,
        "max_tries": MAX_TRIES,
        "max_jobs": MAX_JOBS,
        "ctx": {"settings": settings},
    }


class WorkerSettings:
    """For arq's own command line (``arq --check workers.WorkerSettings``, say). Run the worker with
    ``python -m workers``: ``arq workers.WorkerSettings`` runs arq's plain worker, which exits when
    Redis goes away. Only the Redis location is read here, at import; the full settings are loaded
    and checked by ``startup``."""

    functions = FUNCTIONS
    cron_jobs = CRON_JOBS
    redis_settings = RedisSettings.from_dsn(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    queue_name = queue_for(os.environ.get("REDIS_PREFIX") or "chargeslot")
    on_startup = startup
    on_shutdown = shutdown
    poll_delay = POLL_DELAY
    max_tries = MAX_TRIES
    max_jobs = MAX_JOBS
