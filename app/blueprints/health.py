from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from quart import Blueprint, Response, jsonify
from quart_schema import document_response
from tortoise import connections

from app.state import state

blueprint = Blueprint("health", __name__)


class Health(BaseModel):
    """The process is up and answering HTTP; says nothing about its database or bus."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """Whether this process can serve traffic now: 200 when its database answers and its bus is
    connected (or embedded), 503 with the failing check otherwise."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(
        description='"database": "ok" or "unavailable: <reason>"; "bus": "ok", "embedded" or "unavailable"; '
        '"mail": "ok", "failing" or "disabled" (no SMTP_URL), which never makes the process unready: '
        "mail that cannot go now is sent later."
    )


@blueprint.get("/healthz")
@document_response(Health)
async def healthz() -> Response:
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
@document_response(Readiness)
@document_response(Readiness, 503)
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
    mailer = app_state.mailer
    checks["mail"] = "disabled" if mailer is None else ("ok" if await mailer.healthy() else "failing")
    return jsonify({"status": "ready" if ready else "unavailable", "checks": checks}), 200 if ready else 503
