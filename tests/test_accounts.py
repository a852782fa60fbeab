"""Accounts: registering, signing in and out, and the rules for emails, usernames and passwords."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from app.accounts import common_passwords, email_problem, password_problem, username_problem
from app.models import Role, User
from tests.conftest import DEFAULT_PASSWORD, ApiClient
from tests.helpers import login

GOOD_PASSWORD = "amber-lantern-meadow-7"
SESSION_COOKIE = "chargeslot_session"


async def register(client: ApiClient, **fields: str) -> Any:
    payload = {"email": "ada.king@example.com", "username": "countess", "password": GOOD_PASSWORD, **fields}
    return await client.post("/api/auth/register", json=payload)


async def test_register_me_logout_me_walks_through_a_whole_session(client: ApiClient) -> None:
    registered = await register(client)
    assert registered.status_code == 201, await registered.get_data(as_text=True)
    body = await registered.get_json()
    assert (body["email"], body["username"], body["role"], body["is_active"]) == (
        "ada.king@example.com",
        "countess",
        "driver",
        True,
    )

    me = await client.get("/api/auth/me")
    assert me.status_code == 200
    me_body = await me.get_json()
    assert me_body["id"] == body["id"]
    assert datetime.fromisoformat(me_body["created_at"]).utcoffset() is not None

    assert (await client.post("/api/auth/logout")).status_code == 200
    after = await client.get("/api/auth/me")
    assert after.status_code == 401
    assert (await after.get_json())["code"] == "unauthenticated"


async def test_a_copy_of_the_session_cookie_is_refused_after_logout(
    client: ApiClient, other_client: ApiClient, driver: User
) -> None:
    await client.sign_in(driver)
    stolen = client.cookie(SESSION_COOKIE)
    assert stolen
    replay = {"Cookie": f"{SESSION_COOKIE}={stolen}"}
    assert (await other_client.raw.get("/api/auth/me", headers=replay)).status_code == 200

    assert (await client.post("/api/auth/logout")).status_code == 200

    assert (await other_client.raw.get("/api/auth/me", headers=replay)).status_code == 401


async def test_signing_in_again_starts_a_new_session_and_ends_the_old_one(
    client: ApiClient, other_client: ApiClient, driver: User
) -> None:
    await client.sign_in(driver)
    first = client.cookie(SESSION_COOKIE)
    await client.sign_in(driver)
    second = client.cookie(SESSION_COOKIE)
    assert first and second and first != second
    old = await other_client.raw.get("/api/auth/me", headers={"Cookie": f"{SESSION_COOKIE}={first}"})
    assert old.status_code == 401


async def test_wrong_password_and_unknown_email_get_the_same_401(client: ApiClient, driver: User) -> None:
    wrong = await login(client, driver.email, "not-the-right-password")
    unknown = await login(client, "nobody@example.com", "not-the-right-password")
    assert wrong.status_code == unknown.status_code == 401
    assert await wrong.get_json() == await unknown.get_json()
    assert (await wrong.get_json())["detail"] == "Email or password is incorrect."
    assert client.cookie(SESSION_COOKIE) is None


@pytest.mark.parametrize(
    "clash",
    [{"email": "  ADA.King@Example.com "}, {"username": "COUNTESS", "email": "other@example.com"}],
    ids=["same-email", "same-username-other-case"],
)
async def test_duplicate_email_or_username_is_409_without_saying_which(
    client: ApiClient, other_client: ApiClient, clash: dict[str, str]
) -> None:
    assert (await register(client)).status_code == 201
    response = await register(other_client, **clash)
    assert response.status_code == 409
    body = await response.get_json()
    assert body["code"] == "conflict"
    assert body["detail"] == "That email or username is already in use."
    assert await User.all().count() == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("tiny-7x", "at least 8 characters"),
        ("long-" + "abcdefghij" * 13, "at most 128 characters"),
        ("password123", "most common"),
        ("P@$$w0rd2024!", "most common"),
        ("Qwertyuiop", "most common"),
        ("abababababab", "repetitive"),
        ("COUNTESS", "email address or username"),
        ("my-ada.king-secret", "email address or username"),
    ],
    ids=["too-short", "too-long", "common", "common-dressed-up", "keyboard-walk", "repetitive", "username", "email"],
)
async def test_weak_passwords_are_refused_naming_the_field(client: ApiClient, password: str, reason: str) -> None:
    response = await register(client, password=password)
    assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] == "validation_error"
    assert [e["loc"] for e in body["errors"]] == [["body", "password"]]
    assert reason in body["errors"][0]["msg"]
    assert await User.all().count() == 0


@pytest.mark.parametrize("password", ["Tr4m-Qx9", "lantern " * 15 + "zqxjkvw!"], ids=["8-chars", "128-chars"])
def test_passwords_at_the_length_limits_are_accepted(password: str) -> None:
    assert len(password) in (8, 128)
    assert password_problem(password, "ada@example.com", "countess") is None


def test_the_common_password_list_is_shipped_and_large() -> None:
    words = common_passwords()
    assert len(words) > 3000
    assert {"password", "12345678", "iloveyou", "qwertyuiop"} <= words


async def test_bad_email_and_username_are_both_named(client: ApiClient) -> None:
    response = await register(client, email="not-an-email", username="a b")
    assert response.status_code == 422
    assert [e["loc"] for e in (await response.get_json())["errors"]] == [["body", "email"], ["body", "username"]]


async def test_sign_in_with_an_email_longer_than_any_account_is_the_usual_401(client: ApiClient) -> None:
    response = await client.post("/api/auth/login", json={"email": "a" * 300 + "@example.com", "password": "x" * 10})
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "unauthenticated"


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login"])
async def test_nul_character_in_email_is_422_not_a_database_error(client: ApiClient, path: str) -> None:
    body = {"email": "ada\u0000@example.com", "username": "ada", "password": "Tr4m-Qx9-lantern"}
    response = await client.post(path, json=body)
    assert response.status_code == 422
    assert ["body", "email"] in [e["loc"] for e in (await response.get_json())["errors"]]


@pytest.mark.parametrize(
    "email",
    ["plainaddress", "a@b", "a@@example.com", "a b@example.com", "@example.com", ".a@example.com", "a..b@example.com",
     "a@-example.com", "a@example.c", "x" * 65 + "@example.com"],
)  # fmt: skip
def test_malformed_emails_are_refused(email: str) -> None:
    assert email_problem(email) is not None


@pytest.mark.parametrize("email", ["first.last+tag@sub.example.co.uk", "x_y@example.io", "o'brien@example.ie"])
def test_ordinary_emails_are_accepted(email: str) -> None:
    assert email_problem(email) is None


@pytest.mark.parametrize("username", ["ab", "x" * 65, "has space", "émile", "semi;colon"])
def test_bad_usernames_are_refused(username: str) -> None:
    assert username_problem(username) is not None


@pytest.mark.parametrize("username", ["ada", "a.b-c_d", "X" * 64])
def test_good_usernames_are_accepted(username: str) -> None:
    assert username_problem(username) is None


async def test_email_is_trimmed_and_lower_cased(client: ApiClient) -> None:
    registered = await register(client, email="  Foo@Example.COM ")
    assert registered.status_code == 201
    assert (await registered.get_json())["email"] == "foo@example.com"
    await client.post("/api/auth/logout")

    signed_in = await login(client, "  FOO@example.com", GOOD_PASSWORD)
    assert signed_in.status_code == 200
    assert (await signed_in.get_json())["email"] == "foo@example.com"


async def test_inactive_user_cannot_sign_in(client: ApiClient, make_user: Any) -> None:
    user = await make_user(is_active=False)
    response = await login(client, user.email)
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "user_inactive"
    assert client.cookie(SESSION_COOKIE) is None
    # Only the right password learns that the account exists and is deactivated.
    assert (await login(client, user.email, "not-the-right-password")).status_code == 401


async def test_password_is_stored_as_argon2id(client: ApiClient) -> None:
    assert (await register(client)).status_code == 201
    stored = (await User.get(email="ada.king@example.com")).password_hash
    assert stored.startswith("$argon2id$")
    assert GOOD_PASSWORD not in stored


async def test_sign_in_upgrades_a_hash_made_with_weaker_parameters(client: ApiClient, make_user: Any) -> None:
    user = await make_user()
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(DEFAULT_PASSWORD)
    await user.save()
    assert (await login(client, user.email)).status_code == 200
    upgraded = (await User.get(id=user.id)).password_hash
    assert upgraded.startswith("$argon2id$") and upgraded != user.password_hash
    assert not PasswordHasher().check_needs_rehash(upgraded)


# --- the command line --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def run_cli(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "SECRET_KEY"}}
    env.update(DATABASE_URL=f"sqlite://{cwd / 'cli.db'}", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_create_user_refuses_a_weak_password_with_a_clear_error(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path, "create-user", "--email", "ops@example.com", "--username", "ops", "--password", "letmein1"
    )
    assert result.returncode == 1
    assert "password: This password is one of the most common passwords" in result.stderr


def test_create_user_makes_an_operator_and_refuses_a_duplicate(tmp_path: Path) -> None:
    assert run_cli(tmp_path, "migrate").returncode == 0
    created = run_cli(
        tmp_path, "create-user", "--email", " Ops@Example.com", "--username", "ops", "--role", "operator",
        stdin=GOOD_PASSWORD + "\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "Created operator ops@example.com" in created.stdout

    with sqlite3.connect(tmp_path / "cli.db") as db:
        role, password_hash = db.execute(
            "SELECT role, password_hash FROM users WHERE email = 'ops@example.com'"
        ).fetchone()
    assert role == Role.OPERATOR.value and password_hash.startswith("$argon2id$")

    again = run_cli(
        tmp_path, "create-user", "--email", "ops@example.com", "--username", "ops2", "--password", GOOD_PASSWORD
    )
    assert again.returncode == 1
    assert "already in use" in again.stderr
