"""The composition root: every per-process service, built once and handed down as typed fields.

``Services`` is what any Chargeslot process needs (settings, clock, bus, payment provider, booking
policy, background tasks); the arq worker builds exactly that. A web process builds ``AppState``,
which adds what serves requests: the station directory (a cache), the live hub, the sign-in
throttle and the figures ``/metrics`` reports. Domain modules never reach back here: blueprints
and the worker pass them what they need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from quart import Quart, current_app

from app.bookings import BookingPolicy
from app.bus import Bus, create_bus
from app.clock import Clock, SystemClock
from app.config import Settings
from app.delivery import MailContext, backlog
from app.directory import StationDirectory
from app.job_queue import JobQueue, create_queue
from app.live import Hub
from app.mail import Mailer, create_mailer
from app.metrics import Metrics
from app.payment_provider import PaymentProvider, SimulatedProvider
from app.ratelimit import Throttle
from app.tasks import TaskSet

EXTENSION = "chargeslot"


@dataclass
class Services:
    settings: Settings
    clock: Clock
    bus: Bus
    tasks: TaskSet
    policy: BookingPolicy
    #: Jobs for the worker (or, embedded, for this process): notification delivery, reminders.
    jobs: JobQueue
    #: Sends notification mail; None when ``SMTP_URL`` is not set.
    mailer: Mailer | None
    #: Who charges and refunds; a deployment with a real acquirer swaps in another implementation.
    provider: PaymentProvider = field(default_factory=SimulatedProvider)

    @property
    def mail(self) -> MailContext | None:
        """What a delivery pass needs to send mail; None when mail is disabled."""
        if self.mailer is None:
            return None
        return MailContext(self.mailer, self.jobs, self.settings.public_url)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Self:
        tasks = TaskSet()
        clock = clock or SystemClock()
        return cls(
            settings=settings,
            clock=clock,
            bus=create_bus(settings.redis_url, settings.redis_prefix, tasks),
            tasks=tasks,
            policy=BookingPolicy.from_settings(settings),
            jobs=create_queue(settings.redis_url, settings.redis_prefix, clock),
            mailer=create_mailer(settings),
        )


@dataclass
class AppState(Services):
    directory: StationDirectory = field(init=False)
    hub: Hub = field(init=False)
    throttle: Throttle = field(init=False)
    #: What ``GET /metrics`` reports for this process; modules add gauges with ``register_gauge``.
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        self.directory = StationDirectory(self.bus, self.clock)
        self.hub = Hub(self.bus, self.directory, self.clock, self.tasks)
        self.throttle = Throttle.from_settings(self.settings, self.clock)
        self.metrics = Metrics.of_web_process(self.bus, lambda: self.hub.client_count)

        async def outbox_backlog() -> float:
            return await backlog(self.clock.now(), self.mailer is not None)

        self.metrics.register_gauge(
            "chargeslot_outbox_backlog", "Notifications not yet delivered on all their channels.", outbox_backlog
        )


def state(app: Quart | None = None) -> AppState:
    """The app's services: for blueprints and lifecycle hooks, never for domain modules."""
    target = app if app is not None else current_app
    value: AppState = target.extensions[EXTENSION]
    return value
