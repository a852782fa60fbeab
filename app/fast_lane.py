"""The status fast lane: ``GET /api/stations/{id}/status`` answered before Quart, when it can be.

Every client without a WebSocket polls that endpoint, so it must be the cheapest thing the
service does. The answer is a dict lookup and a memoised computation, but Quart's request
machinery and the app-wide hooks cost several times that (``bench/RESULTS.md``), and they have
nothing to do here: a public GET, no session, no CSRF, no cookies to set. For a station already in
this process's directory the lane sends the route's body; ``PolicyHeaders`` wraps the lane as it
wraps Quart, so both answers carry the headers of the one ``HeaderPolicy``. Anything else (a
cold cache, an unknown id, any other request) goes on to Quart.
``tests/test_stations_api.py`` checks that both answer the same.
"""

from __future__ import annotations

import re
from typing import Any

from app.clock import Clock
from app.directory import StationDirectory
from app.headers import ASGIApp
from app.station_views import encode_json

_PATH = re.compile(r"/api/stations/([1-9][0-9]{0,9})/status")


class StatusFastLane:
    def __init__(self, inner: ASGIApp, directory: StationDirectory, clock: Clock) -> None:
        self._inner = inner
        self._directory = directory
        self._clock = clock

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _PATH.fullmatch(scope["path"])
            view = self._directory.cached(int(match[1])) if match else None
            if view is not None:
                body = encode_json(view.status_at(self._clock.now()))
                headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self._inner(scope, receive, send)
