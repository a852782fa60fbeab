"""The per-process services a request or background task reaches through the app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quart import Quart, current_app

from app.bus import Bus
from app.clock import Clock
from app.config import Settings
from app.tasks import TaskSet

EXTENSION = "chargeslot"


@dataclass
class AppState:
    settings: Settings
    clock: Clock
    bus: Bus
    tasks: TaskSet = field(default_factory=TaskSet)
    #: Other per-process services (caches, hubs), registered by the modules that own them.
    services: dict[str, Any] = field(default_factory=dict)


def state(app: Quart | None = None) -> AppState:
    target = app if app is not None else current_app
    value: AppState = target.extensions[EXTENSION]
    return value
