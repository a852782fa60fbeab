"""Database wiring: the Tortoise configuration, start-up and shutdown, migrations, and the
write transaction that booking and payment use for check-then-insert."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.config import Settings

MODELS_MODULE = "app.models"


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": db_url},
        "apps": {
            "models": {
                "models": [MODELS_MODULE],
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def _ensure_sqlite_dir(db_url: str) -> None:
    if db_url.startswith("sqlite://") and ":memory:" not in db_url:
        Path(db_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)


async def init_db(settings: Settings) -> None:
    """Initialise Tortoise for this process.

    Tortoise 1.x keeps its state in a ContextVar; Hypercorn runs start-up hooks in the lifespan
    task, so without the global fallback request handlers would see no context at all.
    """
    _ensure_sqlite_dir(settings.database_url)
    await Tortoise.init(config=tortoise_config(settings.tortoise_db_url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate(settings: Settings, progress: Any = None) -> None:
    """Apply every migration under migrations/ to DATABASE_URL."""
    from tortoise.migrations.api import migrate as run_migrations

    _ensure_sqlite_dir(settings.database_url)
    await run_migrations(config=tortoise_config(settings.tortoise_db_url), progress=progress)


def is_postgres(connection: BaseDBAsyncClient | None = None) -> bool:
    connection = connection or connections.get("default")
    return connection.capabilities.dialect == "postgres"


@asynccontextmanager
async def write_transaction() -> AsyncIterator[BaseDBAsyncClient]:
    """A transaction that holds the database's write lock from its first statement.

    On PostgreSQL this is a plain transaction: the exclusion constraint is the final guard
    against overlaps. On SQLite a deferred BEGIN would let two processes both read "free" and then
    both write, so the deferred transaction Tortoise opened is swapped for BEGIN IMMEDIATE before
    anything is read.
    """
    async with in_transaction() as connection:
        if not is_postgres(connection):
            raw = connection._connection  # type: ignore[attr-defined]
            await raw.execute("COMMIT")
            await raw.execute("BEGIN IMMEDIATE")
        yield connection


#: For Tortoise's own command line (`tortoise -c app.db.TORTOISE_ORM makemigrations`).
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL") or "sqlite://data/chargeslot.db")
