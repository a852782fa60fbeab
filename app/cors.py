"""Cross-origin reads of the API by a separately hosted front end (``CORS_ORIGINS``, DESIGN §16).

Applied at the ASGI boundary, like the header policy (``app.headers``), so the fast lane's answers
carry the same headers as Quart's. Only the listed origins are answered, and always with
credentials allowed (the session cookie); a request from any other origin gets no CORS header at
all, so the browser keeps its response from that page. Without ``CORS_ORIGINS`` this middleware is
not installed: no CORS header anywhere.

A preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is answered
here with 204; one from another origin goes on to the app, whose plain answer the browser refuses.
State changes still need the ``X-CSRF-Token`` header, which the preflight allows; such a front end
cannot read this site's cookie, so it reads the token from the ``X-CSRF-Token`` response header of
its signed-in requests (``app.auth``). The session cookie is ``SameSite=Lax``: browsers send it only
to a front end on the same site (``app.example.com`` calling ``api.example.com``); from another
site, only what needs no sign-in can be read.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from app.headers import ASGIApp

ALLOWED_METHODS = b"GET, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = b"Content-Type, X-CSRF-Token, Idempotency-Key, X-Request-ID, Authorization"
#: What a cross-origin script may read besides the simple headers: when to retry, which request id
#: to quote in a report, and the CSRF token its changes must send back (``app.auth``).
EXPOSED_HEADERS = b"Retry-After, X-Request-ID, X-CSRF-Token"
#: How long a browser may reuse a preflight's answer, in seconds.
PREFLIGHT_MAX_AGE = b"600"


class Cors:
    def __init__(self, inner: ASGIApp, origins: tuple[str, ...]) -> None:
        self._inner = inner
        self._origins = frozenset(origin.encode() for origin in origins)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._inner(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin not in self._origins:
            await self._inner(scope, receive, send)
            return
        allowed = [(b"access-control-allow-origin", origin), (b"access-control-allow-credentials", b"true")]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            preflight = [
                (b"access-control-allow-methods", ALLOWED_METHODS),
                (b"access-control-allow-headers", ALLOWED_HEADERS),
                (b"access-control-max-age", PREFLIGHT_MAX_AGE),
                (b"content-length", b"0"),
            ]
            answer = [*allowed, (b"vary", b"Origin"), *preflight]
            await send({"type": "http.response.start", "status": 204, "headers": answer})
            await send({"type": "http.response.body", "body": b""})
            return
        exposed = (b"access-control-expose-headers", EXPOSED_HEADERS)

        async def send_allowed(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*varying(message["headers"]), *allowed, exposed]}
            await send(message)

        await self._inner(scope, receive, send_allowed)


def varying(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``Origin`` added to their ``Vary``: the answer differs by origin, and a
    cache on the way must not hand one origin's answer to another."""
    others = [header for header in headers if header[0].lower() != b"vary"]
    varies = [value for name, value in headers if name.lower() == b"vary"]
    return [*others, (b"vary", b", ".join([*varies, b"Origin"]))]
