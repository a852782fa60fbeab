"""Which headers every response carries: one policy, applied at the ASGI boundary to every HTTP
response, Quart's and the fast lane's (``app.fast_lane``) alike, so the two can never drift apart.

It is applied there rather than in an after-request hook because there it is a few list operations
on bytes, while werkzeug's header object checked and case-folded every name and value on every
request: about a tenth of a small request's cost in Quart (``bench/RESULTS.md``).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from functools import cache
from typing import Any

ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
#: API answers are per user and per instant: never stored by a cache on the way.
API_CACHE = ("Cache-Control", "no-store")
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
#: Where the request's id waits in the ASGI scope for the code that logs or reports it.
REQUEST_ID = "chargeslot.request_id"


def request_id(incoming: str | None) -> str:
    """The client's X-Request-ID when it is sensible, else a fresh one."""
    return incoming if incoming and len(incoming) <= 64 else secrets.token_hex(8)


@dataclass(frozen=True)
class HeaderPolicy:
    """The headers a response to ``path`` carries unless its handler set them itself.

    ``hsts``: the site is served over HTTPS, which ``COOKIE_SECURE`` says (secure cookies need it).
    Never over plain-http development, where browsers would then refuse the site's http:// URLs.
    """

    hsts: bool = False

    def defaults(self, path: str) -> tuple[tuple[str, str], ...]:
        headers: tuple[tuple[str, str], ...] = (("Content-Security-Policy", CSP), *SECURITY_HEADERS)
        if self.hsts:
            headers = (*headers, HSTS)
        return (*headers, API_CACHE) if path.startswith("/api/") else headers

    @cache  # noqa: B019 - two policies per process at most, each with two answers
    def encoded(self, api: bool) -> tuple[tuple[bytes, bytes], ...]:
        """``defaults`` as an ASGI server takes them, for API paths or for the others."""
        return tuple((name.lower().encode(), value.encode()) for name, value in self.defaults("/api/" if api else "/"))


class PolicyHeaders:
    """ASGI middleware: every HTTP response gets the policy's missing headers and its request's id.

    The id (the client's ``X-Request-ID`` when sensible) is decided here, before anything else runs,
    and left in the scope under ``REQUEST_ID`` so that error reports quote the id the client sees.
    """

    def __init__(self, inner: ASGIApp, policy: HeaderPolicy) -> None:
        self._inner = inner
        self._api = policy.encoded(True)
        self._other = policy.encoded(False)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._inner(scope, receive, send)
            return
        incoming = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        identifier = request_id(incoming.decode("latin-1"))
        scope[REQUEST_ID] = identifier
        stamp = (b"x-request-id", identifier.encode())
        defaults = self._api if scope["path"].startswith("/api/") else self._other

        async def send_with_policy(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [header for header in message["headers"] if header[0] != b"x-request-id"]
                present = {name for name, _ in headers}
                headers += [header for header in defaults if header[0] not in present]
                headers.append(stamp)
                message = {**message, "headers": headers}
            await send(message)

        await self._inner(scope, receive, send_with_policy)
