"""``GET /metrics``: this process's figures in the Prometheus text format (``app.metrics``).

With ``METRICS_TOKEN`` set a scraper must send ``Authorization: Bearer <token>``; anything else is a
401 problem. Unset, the figures are public: they name routes and counts, no user data, but a
deployment reachable from the internet should set the token or keep the path off its proxy.
"""

from __future__ import annotations

import hmac
from typing import ClassVar

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import RootModel
from quart import Blueprint, Response, request
from quart_schema import document_response

from app.errors import Unauthenticated
from app.state import state
from app.wire import Problem

blueprint = Blueprint("metrics", __name__)


class PrometheusText(RootModel[str]):
    """Prometheus text exposition format, version 0.0.4."""

    media_type: ClassVar[str] = "text/plain"


class MetricsTokenRequired(Unauthenticated):
    detail = "Send the metrics token as Authorization: Bearer <token>."
    headers = {"WWW-Authenticate": 'Bearer realm="metrics"'}


@blueprint.get("/metrics")
@document_response(PrometheusText)
@document_response(Problem, 401)
async def metrics() -> Response:
    """Request counts and latency per route, open WebSockets, bus reconnects, transition delay and
    the gauges other modules register, for this web process alone (scrape each process). Needs
    `Authorization: Bearer <METRICS_TOKEN>` when the server sets one."""
    app_state = state()
    token = app_state.settings.metrics_token
    if token is not None:
        sent = request.headers.get("Authorization", "")
        scheme, _, credentials = sent.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(credentials.strip().encode(), token.encode()):
            raise MetricsTokenRequired()
    body = await app_state.metrics.exposition()
    return Response(body, content_type=CONTENT_TYPE_LATEST)
