from __future__ import annotations

from quart import Blueprint, Response, jsonify
from quart_schema import hide
from tortoise import connections

from app.state import state

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@hide
async def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
@hide
async def readyz() -> tuple[Response, int]:
    app_state = state()
    checks: dict[str, str] = {}
    try:
        await connections.get("default").execute_query("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    checks["bus"] = "embedded" if app_state.settings.embedded else ("ok" if app_state.bus.connected else "unavailable")
    # A background task that died is being restarted: until it runs again, this process is not
    # doing all of its job.
    for name, reason in sorted(app_state.tasks.down.items()):
        checks[f"task:{name}"] = f"unavailable: {reason}"
    ready = all(value in ("ok", "embedded") for value in checks.values())
    return jsonify({"status": "ready" if ready else "unavailable", "checks": checks}), 200 if ready else 503
