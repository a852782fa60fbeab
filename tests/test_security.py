"""What a security review checks: CSRF, cross-site origins, brute-force throttling, cookies and
headers, and WebSocket handshakes from other sites."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from quart import Quart
from quart.testing import WebsocketResponseError

from app import create_app, passwords
from app.auth import check_websocket_origin
from app.clock import FrozenClock
from app.config import Limit, Settings
from app.errors import RateLimited, register_error_handlers
from app.models import User
from app.ratelimit import SIGN_IN_PER_ACCOUNT, Throttle, account_key
from app.state import EXTENSION, AppState, state
from tests import helpers
from tests.conftest import DEFAULT_NOW, DEFAULT_PASSWORD, TEST_SECRET, ApiClient, Backend

LOGIN = "/api/auth/login"
WRONG = "not-the-right-password"


#: These tests guess passwords many times; what they check does not depend on the hash's cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", CHEAP_HASHER)


@pytest.fixture
def password_hash() -> str:
    """The stored hash of every test user made here (overrides the suite's costly one)."""
    return CHEAP_HASHER.hash(DEFAULT_PASSWORD)


#: Sign-ins come from one documentation address unless a test says otherwise.
login = partial(helpers.login, ip="203.0.113.7")


# --- CSRF ---------------------------------------------------------------------------------------


async def test_cookie_post_needs_the_csrf_token_and_succeeds_with_it(
    driver_client: ApiClient, other_client: ApiClient, make_user: Any
) -> None:
    missing = await driver_client.raw.post("/api/auth/logout")
    assert missing.status_code == 403
    assert (await missing.get_json())["code"] == "csrf_failed"

    wrong = await driver_client.post("/api/auth/logout", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403

    await other_client.sign_in(await make_user())
    someone_elses = other_client.cookie("csrf_token")
    assert someone_elses
    assert (await driver_client.post("/api/auth/logout", headers={"X-CSRF-Token": someone_elses})).status_code == 403

    assert (await driver_client.get("/api/auth/me")).status_code == 200, "refused requests changed nothing"
    assert (await driver_client.post("/api/auth/logout")).status_code == 200
    assert (await driver_client.get("/api/auth/me")).status_code == 401


async def test_sign_in_from_another_site_is_refused(client: ApiClient, driver: User) -> None:
    evil = await client.post(
        LOGIN, json={"email": driver.email, "password": DEFAULT_PASSWORD}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403
    assert (await evil.get_json())["code"] == "csrf_failed"
    no_origin_cross_site = await client.post(
        LOGIN, json={"email": driver.email, "password": DEFAULT_PASSWORD}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert no_origin_cross_site.status_code == 403
    registration = await client.post(
        "/api/auth/register",
        json={"email": "new@example.com", "username": "newbie", "password": "amber-lantern-meadow-7"},
        headers={"Origin": "https://evil.example"},
    )
    assert registration.status_code == 403
    assert client.cookie("chargeslot_session") is None

    own_site = await client.post(
        LOGIN, json={"email": driver.email, "password": DEFAULT_PASSWORD}, headers={"Origin": "http://localhost"}
    )
    assert own_site.status_code == 200


def test_origins_allowed_are_the_site_itself_and_the_listed_ones() -> None:
    settings = Settings(allowed_origins=("https://kiosk.example",))
    assert settings.origin_allowed("https://app.example", "https://app.example")
    assert settings.origin_allowed("https://kiosk.example", "https://app.example")
    assert settings.origin_allowed(None, "https://app.example")
    assert not settings.origin_allowed("https://evil.example", "https://app.example")
    assert not settings.origin_allowed("null", "https://app.example")


# --- brute force --------------------------------------------------------------------------------


async def test_sixth_rapid_failed_sign_in_is_429_until_the_window_ends(
    client: ApiClient, driver: User, clock: FrozenClock
) -> None:
    for _ in range(5):
        assert (await login(client, driver.email, WRONG)).status_code == 401

    refused = await login(client, driver.email)  # even the right password: no more guesses now
    assert refused.status_code == 429
    assert (await refused.get_json())["code"] == "rate_limited"
    retry_after = int(refused.headers["Retry-After"])
    assert retry_after == 15 * 60  # DEFAULT_NOW opens a 15-minute window

    clock.advance(timedelta(seconds=retry_after - 1))
    assert (await login(client, driver.email)).status_code == 429
    clock.advance(timedelta(seconds=1))
    assert (await login(client, driver.email)).status_code == 200


async def test_a_successful_sign_in_resets_the_account_counter(client: ApiClient, driver: User) -> None:
    for _ in range(4):
        assert (await login(client, driver.email, WRONG)).status_code == 401
    assert (await login(client, driver.email)).status_code == 200
    for _ in range(5):
        assert (await login(client, driver.email, WRONG)).status_code == 401
    assert (await login(client, driver.email, WRONG)).status_code == 429


async def test_account_counter_holds_whichever_client_guesses(client: ApiClient, driver: User) -> None:
    for n in range(5):
        assert (await login(client, driver.email, WRONG, ip=f"198.51.100.{n}")).status_code == 401
    assert (await login(client, driver.email, ip="198.51.100.99")).status_code == 429


async def test_one_client_guessing_across_many_accounts_is_throttled(client: ApiClient, driver: User) -> None:
    for n in range(20):
        assert (await login(client, f"guess{n}@example.com", WRONG)).status_code == 401
    assert (await login(client, driver.email)).status_code == 429
    assert (await login(client, driver.email, ip="192.0.2.1")).status_code == 200, "other clients are unaffected"


async def test_registrations_from_one_client_are_limited(client: ApiClient) -> None:
    for n in range(10):
        weak = {"email": f"r{n}@example.com", "username": f"rider{n}", "password": "password"}
        response = await client.post("/api/auth/register", json=weak, scope_base={"client": ("203.0.113.9", 1)})
        assert response.status_code == 422
    good = {"email": "late@example.com", "username": "late", "password": "amber-lantern-meadow-7"}
    refused = await client.post("/api/auth/register", json=good, scope_base={"client": ("203.0.113.9", 1)})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0


async def test_sign_in_counters_are_shared_through_redis_by_every_web_process(
    app: Quart, client: ApiClient, make_user: Any, backend: Backend, clock: FrozenClock
) -> None:
    """A second process is a second ``Throttle`` on the same settings: with Redis it sees the same
    counters both ways; in the embedded single process its counters are its own."""
    ours = state(app).throttle
    theirs = Throttle.from_settings(backend.settings, clock)
    theirs.generation = ours.generation
    first, second = await make_user(), await make_user()
    try:
        for _ in range(5):
            assert (await login(client, first.email, WRONG)).status_code == 401
            await theirs.begin_sign_in(second.email, "192.0.2.50")  # failures seen by the other process

        if backend.is_postgres:
            assert await theirs.remaining(SIGN_IN_PER_ACCOUNT, account_key(first.email)) == 0
            with pytest.raises(RateLimited):
                await theirs.begin_sign_in(first.email, "192.0.2.50")
            assert (await login(client, second.email)).status_code == 429
            redis = aioredis.Redis.from_url(backend.settings.redis_url or "")
            keys = await redis.keys(f"{backend.settings.redis_prefix}:ratelimit:*")
            await redis.aclose()
            assert keys and not any(first.email.encode() in key for key in keys), "namespaced, no emails"
        else:
            assert await theirs.remaining(SIGN_IN_PER_ACCOUNT, account_key(first.email)) == 5
            assert (await login(client, second.email)).status_code == 200
    finally:
        await theirs.close()


async def test_sign_in_is_still_throttled_per_process_when_the_counter_store_is_down(clock: FrozenClock) -> None:
    unreachable = Throttle("redis://127.0.0.1:1/0", "test", clock)
    try:
        for _ in range(5):
            await unreachable.begin_sign_in("someone@example.com", "192.0.2.1")  # counted in memory, logged
        with pytest.raises(RateLimited):
            await unreachable.begin_sign_in("someone@example.com", "192.0.2.1")
        await unreachable.begin_sign_in("someone-else@example.com", "192.0.2.1")  # nobody else locked out
    finally:
        await unreachable.close()


# --- cookies and headers ------------------------------------------------------------------------


def set_cookies(response: Any) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


async def test_session_cookie_is_httponly_and_samesite_and_the_csrf_cookie_is_readable(
    client: ApiClient, driver: User
) -> None:
    cookies = set_cookies(await login(client, driver.email))
    session, csrf = cookies["chargeslot_session"], cookies["csrf_token"]
    assert "HttpOnly" in session and "SameSite=Lax" in session
    assert "HttpOnly" not in csrf and "SameSite=Lax" in csrf
    assert "Secure" not in session, "COOKIE_SECURE=false for plain-http development"


async def test_signing_out_deletes_both_cookies_from_the_browser(client: ApiClient, driver: User) -> None:
    await login(client, driver.email)
    assert client.cookie("chargeslot_session") and client.cookie("csrf_token")
    cookies = set_cookies(await client.post("/api/auth/logout"))
    assert "Max-Age=0" in cookies["chargeslot_session"] and "Max-Age=0" in cookies["csrf_token"]
    assert client.cookie("chargeslot_session") is None and client.cookie("csrf_token") is None


@pytest.mark.filterwarnings("ignore:Secure cookies will be ignored on insecure requests")
async def test_cookies_are_secure_when_cookie_secure_is_set(backend: Backend, client: ApiClient, driver: User) -> None:
    # Shares the running app's database connections; it is never started itself.
    secure_app = create_app(replace(backend.settings, cookie_secure=True), clock=FrozenClock(DEFAULT_NOW))
    try:
        response = await secure_app.test_client().post(
            LOGIN, json={"email": driver.email, "password": DEFAULT_PASSWORD}
        )
        assert response.status_code == 200
        cookies = set_cookies(response)
        assert "Secure" in cookies["chargeslot_session"] and "Secure" in cookies["csrf_token"]
    finally:
        await state(secure_app).throttle.close()


async def test_security_headers_are_on_pages_and_api_responses(client: ApiClient, driver: User) -> None:
    api = await login(client, driver.email)
    page = await client.get("/docs")
    assert page.content_type.startswith("text/html")
    for response in (api, page):
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    script_src = next(d for d in api.headers["Content-Security-Policy"].split(";") if "script-src" in d)
    assert "'unsafe-inline'" not in script_src
    assert api.headers["Cache-Control"] == "no-store"


# --- WebSocket origin ---------------------------------------------------------------------------


@pytest.fixture
def live_app(clock: FrozenClock) -> Quart:
    """A bare app with one WebSocket route guarded the way the live routes are."""
    settings = Settings(secret_key=TEST_SECRET, allowed_origins=("https://kiosk.example",), cookie_secure=False)
    bare = Quart(__name__)
    bare.extensions[EXTENSION] = AppState.build(settings, clock)
    register_error_handlers(bare)

    @bare.websocket("/ws/echo")
    async def echo() -> None:
        from quart import websocket

        check_websocket_origin()
        await websocket.accept()
        await websocket.send("hello")

    return bare


@pytest.mark.parametrize("origin", [None, "http://localhost", "https://kiosk.example"])
async def test_websocket_handshake_from_own_or_listed_origin_is_accepted(live_app: Quart, origin: str | None) -> None:
    headers = {"Origin": origin} if origin else {}
    async with live_app.test_client().websocket("/ws/echo", headers=headers) as ws:
        assert await ws.receive() == "hello"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost.evil.example"])
async def test_cross_origin_websocket_handshake_is_refused(live_app: Quart, origin: str) -> None:
    with pytest.raises(WebsocketResponseError) as refused:
        async with live_app.test_client().websocket("/ws/echo", headers={"Origin": origin}) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 403


async def test_a_configured_sign_in_limit_is_the_one_enforced(
    client: ApiClient, backend: Backend, clock: FrozenClock, driver: User
) -> None:
    async with helpers.another_site(backend, clock, sign_in_limit=Limit(2, 1)) as site:
        for _ in range(2):
            assert (await helpers.login(site, driver.email, WRONG, ip="198.51.100.7")).status_code == 401
        refused = await helpers.login(site, driver.email, ip="198.51.100.7")
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 60
        clock.advance(timedelta(minutes=1))
        assert (await helpers.login(site, driver.email, ip="198.51.100.7")).status_code == 200


async def test_a_configured_registration_limit_is_the_one_enforced(
    client: ApiClient, backend: Backend, clock: FrozenClock
) -> None:
    client_address = {"scope_base": {"client": ("198.51.100.8", 1)}}
    async with helpers.another_site(backend, clock, register_limit=Limit(1, 5)) as site:
        first = {"email": "first@example.com", "username": "first", "password": "amber-lantern-meadow-7"}
        assert (await site.post("/api/auth/register", json=first, **client_address)).status_code == 201
        second = {"email": "second@example.com", "username": "second", "password": "amber-lantern-meadow-7"}
        refused = await site.post("/api/auth/register", json=second, **client_address)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 300
