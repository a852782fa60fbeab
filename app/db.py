"""Database wiring: the Tortoise configuration, start-up and shutdown, migrations, and the
write transaction that booking and payment use for check-then-insert."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from asyncpg.connection import Connection
from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.transactions import in_transaction

from app.clock import aware
from app.config import Settings

MODELS_MODULE = "app.models"


class SessionlessConnection(Connection):  # type: ignore[misc]
    """An asyncpg connection that skips the reset query when the pool takes it back.

    On every release asyncpg's pool sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL;`` to undo session state a previous user may have left: advisory locks, open
    cursors, LISTEN registrations, ``SET`` parameters. This service uses none of them (the bus is
    Redis, locks are row locks, settings are fixed at connect), so the query undid nothing and cost
    a database round trip after nearly every ORM statement. A transaction left open is still rolled
    back on release: asyncpg does that separately from this query. Code that starts using session
    state (a plain ``SET``, ``LISTEN``, advisory locks) must undo it itself or drop this class.
    """

    def get_reset_query(self) -> str:
        return ""


def _connection(db_url: str) -> str | dict[str, Any]:
    if not db_url.startswith(("postgres://", "asyncpg://")):
        return db_url
    expanded = expand_db_url(db_url)
    expanded["credentials"]["connection_class"] = SessionlessConnection
    return expanded


def tortoise_config(db_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(db_url)},
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


#: What SQLite calls the PostgreSQL names that raw statements here are written with.
_SQLITE_SPELLING = {"json_build_object(": "json_object(", "json_agg(": "json_group_array("}
_PLACEHOLDER = re.compile(r"\$(\d+)")


def in_dialect(sql: str, connection: BaseDBAsyncClient) -> str:
    """A raw statement written once, in PostgreSQL's spelling (``$n`` placeholders, ``json_agg``,
    ``json_build_object``), as the connection's database reads it: SQLite numbers its placeholders
    ``?n`` and has the same JSON functions under other names."""
    if is_postgres(connection):
        return sql
    for postgres, sqlite in _SQLITE_SPELLING.items():
        sql = sql.replace(postgres, sqlite)
    return _PLACEHOLDER.sub(r"?\1", sql)


async def fetch(sql: str, *params: Any, connection: BaseDBAsyncClient | None = None) -> list[dict[str, Any]]:
    """Rows of one raw statement (see ``in_dialect``), on ``connection`` or the default one.

    For the hot paths where one statement replaces several ORM round trips; everything else uses
    the ORM."""
    connection = connection or connections.get("default")
    return await connection.execute_query_dict(in_dialect(sql, connection), list(params))


def instant(value: datetime | str | None) -> datetime | None:
    """A timestamp from a raw row or a JSON aggregate: PostgreSQL gives datetimes (or ISO text inside
    JSON), SQLite the text it stored; both are UTC instants."""
    if value is None or isinstance(value, datetime):
        return aware(value) if value is not None else None
    return aware(datetime.fromisoformat(value))


#: For Tortoise's own command line (`tortoise -c app.db.TORTOISE_ORM makemigrations`).
TORTOISE_ORM = tortoise_config(os.environ.get("DATABASE_URL") or "sqlite://data/chargeslot.db")
