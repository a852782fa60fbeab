"""The per-process services a request or background task reaches through the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quart import Quart, current_app

from app.bus import Bus
from app.clock import Clock
from app.config import Settings
from app.payment_provider import PaymentProvider, SimulatedProvider
from app.tasks import TaskSet

if TYPE_CHECKING:
    from app.directory import StationDirectory

EXTENSION = "chargeslot"


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    bus: Bus
    tasks: TaskSet = field(default_factory=TaskSet)
    #: Other per-process services (caches, hubs), registered by the modules that own them.
    services: dict[str, Any] = field(default_factory=dict)
    #: Who charges and refunds; tests and deployments may swap in another implementation.
    payment_provider: PaymentProvider = field(default_factory=SimulatedProvider)
    #: Cached station views, invalidated through the bus (app/directory.py).
    directory: StationDirectory = field(init=False)

    def __post_init__(self) -> None:
        from app.directory import StationDirectory  # the directory module itself reads state()

        self.directory = StationDirectory(self.bus, self.clock)


def state(app: Quart | None = None) -> AppState:
    target = app if app is not None else current_app
    value: AppState = target.extensions[EXTENSION]
    return value
