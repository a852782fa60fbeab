"""Which headers every response carries: one policy, applied by the after-request hook and by the
status fast lane (``app.fast_lane``) alike, so the two can never drift apart."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

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
