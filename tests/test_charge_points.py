"""Charge points as operators manage them, and every driver's idTag (DESIGN §14)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.conftest import ApiClient, Backend
from tests.helpers import ROOT

_MIGRATE_TO = """
import asyncio, sys
from tortoise import Tortoise
from tortoise.migrations.api import migrate
from app.db import tortoise_config

async def main():
    try:
        await migrate(config=tortoise_config(sys.argv[1]), target=sys.argv[2] if len(sys.argv) > 2 else None)
    finally:
        await Tortoise.close_connections()

asyncio.run(main())
"""


def _migrate(url: str, *target: str) -> None:
    subprocess.run([sys.executable, "-c", _MIGRATE_TO, url, *target], cwd=ROOT, check=True, timeout=120)


def test_migration_gives_existing_users_each_their_own_id_tag(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _migrate(f"sqlite://{path}", "models.0004_booking_cancel_reason")
    with sqlite3.connect(path) as old:
        for n in range(3):
            old.execute(
                "INSERT INTO users (email, username, password_hash, is_active, role, created_at)"
                " VALUES (?, ?, 'x', 1, 'driver', '2026-01-01 00:00:00')",
                (f"d{n}@example.com", f"d{n}"),
            )
    _migrate(f"sqlite://{path}")
    with sqlite3.connect(path) as new:
        tags = [row[0] for row in new.execute("SELECT id_tag FROM users")]
    assert len(tags) == 3 and len(set(tags)) == 3
    assert all(tag and len(tag) <= 20 and tag.isalnum() for tag in tags)


async def test_a_new_driver_has_an_id_tag_in_me(client: ApiClient, db: Backend) -> None:
    body = {"email": "new@example.com", "username": "newdriver", "password": "a quiet evening drive"}
    created = await client.post("/api/auth/register", json=body)
    assert created.status_code == 201, await created.get_json()
    me = await (await client.get("/api/auth/me")).get_json()
    assert me["id_tag"] and len(me["id_tag"]) <= 20
    assert me["id_tag"] == (await created.get_json())["id_tag"]
