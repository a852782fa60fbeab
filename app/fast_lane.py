"""The fast lane: the public GETs every client repeats, answered before Quart when they can be.

``GET /api/stations`` (every home page and its filters) and ``GET /api/stations/{id}/status``
(every client polling without a WebSocket) are answered from this process's directory: a dict
lookup, a memoised computation and, for the list, a join of per-station JSON. Quart's request
machinery costs several times that, and most of it has nothing to do here: a public GET with no
cookie has no session, no CSRF and no cookie to set. So a cookie-less GET of one of these paths
is answered here, with the body the route would send (built by the route's own functions) and
the headers of the one ``HeaderPolicy`` (``PolicyHeaders`` wraps the lane as it wraps Quart).
Anything else goes on to Quart: another path or method, a request with cookies, a cold cache, an
unknown id, a list asking for inactive stations (operators only, whom the route checks), a list
query that does not validate (so that its 422 is the route's problem JSON) and any failure, which
the route then meets and reports as it always does.

Measured (``bench/RESULTS.md``, "HTTP throughput", 2026-12-02): a request through Quart, hooks
made as cheap as they go, costs 1.4x (status) and 1.6x (list) the CPU of a bare Quart hello-world;
in the lane 0.08x and 0.19x. Under wrk the status through Quart reached 0.86x the hello-world's
throughput in the quietest round and 0.48x in a busy one, against a target of 0.8x: too close to
drop its lane. The list met its 1.0x target only through the lane (1.14x to 2.09x; through Quart
0.66x to 0.84x). ``tests/test_stations_api.py`` checks that lane and route answer alike;
``bench/bench_http.py`` measures both (``create_app(fast_lane=False)`` sends all through Quart).
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from app.blueprints.stations import list_page, read_stations_query
from app.clock import Clock
from app.directory import StationDirectory
from app.headers import ASGIApp
from app.metrics import ROUTE
from app.station_views import encode_json

LIST_PATH = "/api/stations"
#: The route templates of the two paths, which requests answered here are counted under.
LIST_ROUTE, STATUS_ROUTE = LIST_PATH, "/api/stations/<int:station_id>/status"
_STATUS_PATH = re.compile(r"/api/stations/([1-9][0-9]{0,9})/status")
_JSON = (b"content-type", b"application/json")


class FastLane:
    def __init__(self, inner: ASGIApp, directory: StationDirectory, clock: Clock) -> None:
        self._inner = inner
        self._directory = directory
        self._clock = clock

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not _has_cookies(scope):
            try:
                body = await self._answer(scope)
            except Exception:
                body = None  # the route meets it too: a 422 for the query, a 503 for the database
            if body is not None:
                headers = [_JSON, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self._inner(scope, receive, send)

    async def _answer(self, scope: MutableMapping[str, Any]) -> bytes | None:
        """The route's body, or None to let the route answer."""
        path = scope["path"]
        if path == LIST_PATH:
            query = read_stations_query(scope["query_string"])
            if query.include_inactive:
                return None  # operators only: the route checks who is asking
            scope[ROUTE] = LIST_ROUTE
            return await list_page(self._directory, self._clock.now(), query)
        match = _STATUS_PATH.fullmatch(path)
        view = self._directory.cached(int(match[1])) if match else None
        if view is None:
            return None
        scope[ROUTE] = STATUS_ROUTE
        return encode_json(view.status_at(self._clock.now()))


def _has_cookies(scope: MutableMapping[str, Any]) -> bool:
    return any(name == b"cookie" for name, _ in scope["headers"])
