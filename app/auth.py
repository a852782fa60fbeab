"""Who is asking: server-side sessions behind quart-auth cookies, role guards and CSRF.

The cookie carries only a signed random session id; the session row is the truth, so signing out
(deleting the row) ends the session even for a copy of the cookie. CSRF uses signed double-submit:
the ``csrf_token`` cookie is an HMAC of the session id, and every cookie-authenticated state change
must echo it in ``X-CSRF-Token``. A token forged or planted without the server key never matches.
WebSocket handshakes carry the session cookie too but cannot carry a header, so live routes check
the ``Origin`` instead (``check_websocket_origin``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from quart import Quart, Response, current_app, g, request, websocket
from quart_auth import AuthUser, QuartAuth, login_user, logout_user
from quart_auth import current_user as auth_cookie

from app.db import fetch, instant
from app.errors import CsrfFailed, Forbidden, Unauthenticated
from app.models import Role, Session, User
from app.state import state

SESSION_DAYS = 14
SESSION_COOKIE = "chargeslot_session"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Sign-in and registration create the session, so they cannot carry its token; they refuse a
#: cross-site Origin instead.
ORIGIN_CHECKED_PATHS = frozenset({"/api/auth/login", "/api/auth/register"})


def csrf_token_for(session_id: str) -> str:
    key = current_app.secret_key
    assert isinstance(key, str)
    return hmac.new(key.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


#: The session's user and when the session ends, in one statement. Every signed-in request starts
#: with it, and building it through the ORM's ``select_related`` cost more of the server's time
#: than the query itself (profiled under ``bench/bench_bookings.py``).
_SESSION_USER = (
    "SELECT s.expires_at AS session_expires_at, u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
)


async def current_user() -> User | None:
    """The signed-in user of this request, or None. Looked up once per request."""
    if "user" in g:
        user: User | None = g.user
        return user
    g.user = None
    session_id = auth_cookie.auth_id
    if session_id:
        rows = await fetch(_SESSION_USER, session_id)
        expires_at = instant(rows[0]["session_expires_at"]) if rows else None
        if expires_at is not None and expires_at > state().clock.now():
            g.session_id = session_id
            g.user = User._init_from_db(**rows[0])
    return g.user


async def authorize(*roles: Role) -> User:
    """The one guard: 401 when signed out, 403 ``forbidden`` when the role lacks the right."""
    user = await current_user()
    if user is None:
        raise Unauthenticated()
    if roles and user.role not in roles:
        raise Forbidden()
    return user


async def sign_in(user: User) -> Session:
    """Start a fresh session (never reuse one from before sign-in) and hand out its CSRF token."""
    await sign_out()
    now = state().clock.now()
    await Session.filter(user=user, expires_at__lte=now).delete()  # tidy this user's stale sessions
    session = await Session.create(
        id=secrets.token_urlsafe(32), user=user, expires_at=now + timedelta(days=SESSION_DAYS)
    )
    login_user(AuthUser(session.id), remember=True)
    g.user = user
    g.session_id = session.id
    g.new_csrf_token = csrf_token_for(session.id)
    return session


async def sign_out() -> None:
    session_id = auth_cookie.auth_id
    if session_id:
        await Session.filter(id=session_id).delete()
    logout_user()
    g.user = None
    g.pop("session_id", None)
    g.clear_csrf = True


async def _check_csrf() -> None:
    if request.method in SAFE_METHODS:
        return
    settings = state().settings
    if request.path in ORIGIN_CHECKED_PATHS:
        origin = request.headers.get("Origin")
        cross_site = request.headers.get("Sec-Fetch-Site") == "cross-site" and not origin
        if cross_site or not settings.origin_allowed(origin, site_origin(request.scheme, request.host)):
            raise CsrfFailed("Cross-site sign-in requests are refused.")
        return
    if not auth_cookie.auth_id:
        return  # not authenticated by cookie: nothing a forged request could ride on
    if not _tokens_match(request.headers.get(CSRF_HEADER, ""), csrf_token_for(auth_cookie.auth_id)):
        raise CsrfFailed()


def _tokens_match(sent: str, expected: str) -> bool:
    """Constant-time comparison of a token from a header, which may hold any character: compared as
    bytes, because ``hmac.compare_digest`` raises TypeError for a non-ASCII string."""
    return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())


def check_websocket_origin() -> None:
    """Refuse a WebSocket handshake from another site; call it first in every WebSocket route.

    Browsers send our cookies with a cross-site handshake and the same-origin policy does not
    apply to WebSockets, so without this any page could open the live channel as the visitor.
    A browser always sends ``Origin`` here; clients without one (kiosk scripts, tools) pass.
    Raises ``Forbidden``, which Quart answers with an HTTP 403 instead of accepting.
    """
    origin = websocket.headers.get("Origin")
    if not state().settings.origin_allowed(origin, site_origin(websocket.scheme, websocket.host)):
        raise Forbidden("This origin may not open a live connection.")


def site_origin(scheme: str, host: str) -> str:
    """This site's origin as browsers name it in ``Origin``, for a request that came in by ``scheme``.

    A WebSocket's ``ws``/``wss`` is its page's ``http``/``https``. With ``COOKIE_SECURE`` the site
    is served over HTTPS (browsers keep secure cookies only from HTTPS pages) even where a proxy
    in front passes requests on over plain HTTP.
    """
    secure = scheme in ("https", "wss") or state().settings.cookie_secure
    return f"{'https' if secure else 'http'}://{host}"


async def _set_csrf_cookie(response: Response) -> Response:
    _hand_token_to_front_end(response)
    if "new_csrf_token" not in g and "clear_csrf" not in g and SESSION_COOKIE not in request.cookies:
        return response  # nobody signed in or out, and no session whose token could be restored
    secure = state().settings.cookie_secure
    if g.get("clear_csrf") and "new_csrf_token" not in g:
        response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="Lax")
        return response
    token = g.get("new_csrf_token")
    if token is None and auth_cookie.auth_id and request.cookies.get(CSRF_COOKIE) is None:
        token = csrf_token_for(auth_cookie.auth_id)  # a page load restores a lost cookie
    if token is not None:
        response.set_cookie(
            CSRF_COOKIE,
            token,
            path="/",
            secure=secure,
            httponly=False,
            samesite="Lax",
            max_age=SESSION_DAYS * 24 * 3600,
        )
    return response


def _hand_token_to_front_end(response: Response) -> None:
    """A front end on another origin listed in ``CORS_ORIGINS`` cannot read this site's
    ``csrf_token`` cookie, so its signed-in requests get the token in the ``X-CSRF-Token`` response
    header instead (exposed to it by ``app.cors``), to send back on its changes."""
    origin = request.headers.get("Origin")
    if not origin or origin not in state().settings.cors_origins:
        return
    token = g.get("new_csrf_token")
    if token is None and auth_cookie.auth_id and not g.get("clear_csrf"):  # not just signed out
        token = csrf_token_for(auth_cookie.auth_id)
    if token is not None:
        response.headers[CSRF_HEADER] = token


def init_auth(app: Quart) -> None:
    auth = QuartAuth(app, cookie_name=SESSION_COOKIE, cookie_samesite="Lax", duration=SESSION_DAYS * 24 * 3600)
    _skip_untouched_sessions(app, auth)
    app.before_request(_check_csrf)
    app.after_request(_set_csrf_cookie)


def _skip_untouched_sessions(app: Quart, auth: QuartAuth) -> None:
    """Run quart-auth's after-request hook only for requests that looked at the session cookie.

    The hook writes or deletes the cookie only after ``login_user`` or ``logout_user``, which keep
    their user in ``g`` under the extension's attribute name; for every other request it parsed the
    cookies just to find nothing to do. Sign-in and sign-out tests fail if quart-auth moves that.
    """
    name = auth.attribute_name
    assert name is not None

    async def save_session_cookie(response: Response) -> Response:
        return await auth.after_request(response) if name in g else response

    hooks = app.after_request_funcs[None]
    hooks[hooks.index(auth.after_request)] = save_session_cookie
