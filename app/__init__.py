"""Chargeslot: book EV charging slots at stations that are open right now.

``create_app`` is the one wiring module: reading it tells the whole shape of the service.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from quart import Quart, Response, g, request
from quart.sessions import SecureCookieSessionInterface
from quart_schema import Info, QuartSchema

from app import live
from app.auth import init_auth
from app.bus import create_bus
from app.clock import Clock, SystemClock
from app.config import Settings, load_settings
from app.db import close_db, init_db
from app.errors import register_error_handlers
from app.state import EXTENSION, AppState, state
from app.wire import ContractOpenAPI, IdConverter, JsonRequest

__all__ = ["create_app"]

log = logging.getLogger("app")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
STATIC_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)

#: What every /api/ response carries besides its own headers (the fast status lane sends the same).
API_HEADERS = (("Content-Security-Policy", CSP), *STATIC_SECURITY_HEADERS, ("Cache-Control", "no-store"))


def request_id(incoming: str | None) -> str:
    """The client's X-Request-ID when it is sensible, else a fresh one."""
    return incoming if incoming and len(incoming) <= 64 else secrets.token_hex(8)


class NoCookieSession(SecureCookieSessionInterface):
    """Quart's signed-cookie session, switched off: sign-in state lives in server-side sessions
    (app/auth.py), and opening the unused cookie session cost every request a serializer."""

    async def open_session(self, app: Quart, request: Any) -> None:
        return None

    async def save_session(self, app: Quart, session: Any, response: Any) -> None:
        return None


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Quart:
    settings = settings or load_settings()
    app = Quart(__name__, static_folder="../static", template_folder="../templates")
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
    app_state = AppState(
        settings=settings, clock=clock or SystemClock(), bus=create_bus(settings.redis_url, settings.redis_prefix)
    )
    app_state.services[live.SERVICE] = live.Hub(app_state.bus, app_state.directory, app_state.tasks)
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
        swagger_ui_path=None,  # /docs is a page of ours (app/blueprints/pages.py), served offline
        redoc_ui_path=None,
        scalar_ui_path=None,
        openapi_provider_class=ContractOpenAPI,
    )
    register_error_handlers(app)
    _register_request_hooks(app)
    init_auth(app)
    _register_lifecycle(app)
    _register_blueprints(app)
    from app.blueprints.stations import StatusFastLane

    app.asgi_app = StatusFastLane(app.asgi_app, state(app), API_HEADERS, request_id)  # type: ignore[method-assign,assignment]
    return app


def _register_blueprints(app: Quart) -> None:
    from app.blueprints import auth, bookings, health, operator, pages, payments, stations
    from app.blueprints import live as live_updates

    for module in (health, auth, stations, operator, live_updates, bookings, payments, pages):
        app.register_blueprint(module.blueprint)


def _register_lifecycle(app: Quart) -> None:
    @app.before_serving
    async def startup() -> None:
        app_state = state(app)
        await init_db(app_state.settings)
        await app_state.bus.start()
        app_state.tasks.spawn(app_state.directory.run(), name="station-directory")
        live.hub_of(app_state).start()
        if app_state.settings.run_background_tasks:
            _start_background_jobs(app_state)

    @app.after_serving
    async def shutdown() -> None:
        app_state = state(app)
        await app_state.tasks.cancel_all()
        await app_state.bus.close()
        await close_db()


def _start_background_jobs(app_state: AppState) -> None:
    """Without a worker (the embedded default) this process broadcasts transitions and closes out
    stale bookings itself, with the same functions the worker runs."""
    from app.closeout import run_close_out
    from app.transitions import TransitionScheduler

    scheduler = TransitionScheduler(app_state.bus, app_state.directory, app_state.clock)
    app_state.tasks.spawn(scheduler.run(), name="transition-scheduler")
    app_state.tasks.spawn(
        run_close_out(app_state.clock, bus=app_state.bus, directory=app_state.directory), name="close-out"
    )


def _register_request_hooks(app: Quart) -> None:
    @app.before_request
    async def assign_request_id() -> None:
        g.request_id = request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    async def security_headers(response: Response) -> Response:
        # Checked against one set of present names: werkzeug's setdefault raises and catches an
        # exception per missing header, which was a measurable share of a small request's cost.
        headers: Any = response.headers
        headers["X-Request-ID"] = g.get("request_id", "")
        present = {name.lower() for name, _ in headers.items()}
        path = request.path
        for name, value in (("Content-Security-Policy", CSP), *STATIC_SECURITY_HEADERS):
            if name.lower() not in present:
                headers.add(name, value)
        if path.startswith("/api/") and "cache-control" not in present:
            headers.add("Cache-Control", "no-store")
        return response
