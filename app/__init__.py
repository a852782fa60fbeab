"""Chargeslot: book EV charging slots at stations that are open right now.

``create_app`` is the one wiring module: reading it tells the whole shape of the service.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from quart import Quart, g, request
from quart.sessions import SecureCookieSessionInterface
from quart_schema import Info, QuartSchema

from app import live
from app.auth import SESSION_COOKIE, init_auth
from app.clock import Clock
from app.config import Settings, load_settings
from app.cors import Cors
from app.db import close_db, init_db
from app.errors import register_error_handlers
from app.fast_lane import FastLane
from app.headers import REQUEST_ID, HeaderPolicy, PolicyHeaders
from app.job_queue import LocalQueue
from app.metrics import ROUTE, MeasuredRequests
from app.state import EXTENSION, AppState, state
from app.wire import SESSION_SCHEME, ContractOpenAPI, ContractQuart, IdConverter, JsonRequest

__all__ = ["create_app", "start_services", "stop_services"]

log = logging.getLogger("app")


class NoCookieSession(SecureCookieSessionInterface):
    """Quart's signed-cookie session, switched off: sign-in state lives in server-side sessions
    (app/auth.py), and opening the unused cookie session cost every request a serializer."""

    async def open_session(self, app: Quart, request: Any) -> None:
        return None

    async def save_session(self, app: Quart, session: Any, response: Any) -> None:
        return None


def create_app(settings: Settings | None = None, clock: Clock | None = None, *, fast_lane: bool = True) -> Quart:
    """``fast_lane=False`` sends every request through Quart (``app.fast_lane``; the benchmark
    measures both ways)."""
    settings = settings or load_settings()
    app = ContractQuart(__name__, static_folder="../static", template_folder="../templates")
    app.session_interface = NoCookieSession()
    app.request_class = JsonRequest
    app.url_map.converters["int"] = IdConverter
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=64 * 1024,
        QUART_AUTH_COOKIE_SECURE=settings.cookie_secure,
        QUART_AUTH_COOKIE_SAMESITE="Lax",
        QUART_AUTH_DURATION=14 * 24 * 3600,
        QUART_SCHEMA_CONVERSION_PREFERENCE="pydantic",
    )
    app_state = AppState.build(settings, clock)
    live.decline_websocket_compression()
    app.extensions[EXTENSION] = app_state
    QuartSchema(
        app,
        info=Info(
            title="Chargeslot API",
            version="1.0.0",
            description="Book EV charging slots. Errors are RFC 9457 problem JSON with a stable `code`.",
        ),
        openapi_path="/openapi.json",
        # The session cookie that sign-in sets; changes made with it also need the X-CSRF-Token header.
        security_schemes={SESSION_SCHEME: {"type": "apiKey", "in_": "cookie", "name": SESSION_COOKIE}},
        swagger_ui_path=None,  # /docs is a page of ours (app/blueprints/pages.py), served offline
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=ContractOpenAPI,
        # Response fields named after Python keywords (`from`) are declared with an alias.
        pydantic_dump_options={"by_alias": True},
    )
    register_error_handlers(app)
    _register_request_hooks(app)
    init_auth(app)
    _register_lifecycle(app)
    _register_blueprints(app)
    asgi_app: Any = app.asgi_app
    if fast_lane:
        asgi_app = FastLane(asgi_app, app_state.directory, app_state.clock)
    asgi_app = MeasuredRequests(asgi_app, app_state.metrics)
    if settings.cors_origins:
        asgi_app = Cors(asgi_app, settings.cors_origins)
    app.asgi_app = PolicyHeaders(asgi_app, HeaderPolicy(hsts=settings.cookie_secure))  # type: ignore[method-assign,assignment]
    return app


def _register_blueprints(app: Quart) -> None:
    from app.blueprints import (
        auth,
        bookings,
        health,
        insights,
        me,
        metrics,
        operator,
        operator_bookings,
        pages,
        payments,
        stations,
        users,
    )
    from app.blueprints import live as live_updates

    for module in (
        health,
        metrics,
        auth,
        stations,
        operator,
        operator_bookings,
        insights,
        users,
        live_updates,
        bookings,
        payments,
        me,
        pages,
    ):
        app.register_blueprint(module.blueprint)


def _register_lifecycle(app: Quart) -> None:
    @app.before_serving
    async def startup() -> None:
        app_state = state(app)
        await init_db(app_state.settings)
        await start_services(app_state)

    @app.after_serving
    async def shutdown() -> None:
        await stop_services(state(app))
        await close_db()


async def start_services(app_state: AppState) -> None:
    """Start what a web process serves with besides the database: the bus, the live hub and, in
    the embedded default, the worker's jobs. Tests that need a second live process call it too."""
    await app_state.bus.start()
    app_state.hub.start()
    if app_state.settings.run_background_tasks:
        _start_background_jobs(app_state)
    # Loading the catalogue now makes the first list request fast, and it is the bulk of the
    # long-lived objects: tens of thousands of them make every full pass of the cycle collector
    # take 100 ms or more, stalling all requests. Frozen once here, the collector skips them;
    # views hold no reference cycles, so reference counting alone frees them when dropped.
    try:
        await app_state.directory.catalogue()
    except Exception:
        log.warning("could not load the station catalogue at start-up; it loads on first use", exc_info=True)
    else:
        gc.freeze()


async def stop_services(app_state: AppState) -> None:
    await app_state.tasks.cancel_all()
    await app_state.jobs.close()
    await app_state.throttle.close()
    await app_state.bus.close()


def _start_background_jobs(app_state: AppState) -> None:
    """Without a worker (the embedded default) this process broadcasts transitions and closes out
    stale bookings itself, with the same functions the worker runs."""
    from app.closeout import run_close_out
    from app.transitions import TransitionScheduler

    scheduler = TransitionScheduler(app_state.bus, app_state.clock)
    app_state.tasks.supervise("transition-scheduler", scheduler.run)
    if isinstance(app_state.jobs, LocalQueue):
        serve_jobs_here(app_state, app_state.jobs)
        app_state.tasks.supervise("jobs", app_state.jobs.run)
    app_state.tasks.supervise(
        "close-out", lambda: run_close_out(app_state.clock, bus=app_state.bus, provider=app_state.provider)
    )


def serve_jobs_here(services: AppState, queue: LocalQueue) -> None:
    """The worker's notification jobs, run by this process's own queue (the embedded default),
    starting with the worker's catch-up."""
    from app import delivery, reminders
    from app.job_queue import DELIVER, REMIND

    async def deliver() -> None:
        await delivery.deliver_pending(services.clock.now(), bus=services.bus, mail=services.mail)

    async def remind(kind: str, booking_id: int, at: Any) -> None:
        await reminders.fire(kind, booking_id, at, now=services.clock.now(), jobs=queue)

    async def catch_up() -> None:
        await reminders.plan_all(queue, services.clock.now())
        await deliver()

    queue.handle(DELIVER, deliver)
    queue.handle(REMIND, remind)
    queue.handle("catch_up", catch_up)
    queue.add("catch_up", job_id="catch-up")


def _register_request_hooks(app: Quart) -> None:
    @app.before_request
    async def remember_request_id() -> None:
        """The request's id for error reports to quote (``PolicyHeaders`` decided it and puts it on
        the response), and the route template its figures are counted under (``app.metrics``)."""
        g.request_id = request.scope.get(REQUEST_ID, "-")
        if request.url_rule is not None:
            scope: dict[str, Any] = request.scope  # type: ignore[assignment]  # ASGI lets us add keys
            scope[ROUTE] = request.url_rule.rule
