"""How many SQL statements one booking + payment round trip sends to PostgreSQL, and which; and
how many round trips to Redis it makes.

    python bench/count_statements.py          # counts per request
    python bench/count_statements.py -v       # and every statement and Redis command, in order

On a fresh PostgreSQL database (dropped afterwards) seeded as ``bench_bookings.py`` seeds it, the
app runs in this process (Quart's test client, real Redis bus) and a few warm-up round trips go
first, so one-off work (type introspection, a first directory load) is not counted. Every statement
asyncpg sends is recorded at the connection, which includes what the ORM does not show: BEGIN,
COMMIT and the reset query the pool runs when a connection is released. Redis round trips are
counted where redis-py sends: a pipeline or a script call is one, whatever it holds (the bus, the
job queue and the throttle alike).

Environment as for ``bench_bookings.py``: ``BENCH_DATABASE_URL``, ``BENCH_REDIS_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_bookings import clean_redis, create_database, seed  # noqa: E402
from bench.bench_http import drop_database  # noqa: E402
from bench.common import app_environment, migrate  # noqa: E402

WARM_UP = 3
MEASURED = 5
#: DESIGN §12: a booking and its payment in at most this many statements.
TARGET = 12


@contextmanager
def recording(statements: list[str]) -> Iterator[None]:
    """Append every statement asyncpg sends on any connection to ``statements``."""
    from asyncpg.connection import Connection

    originals = {name: getattr(Connection, name) for name in ("execute", "_execute", "_executemany")}

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:  # with arguments it goes through _execute, recorded there
            statements.append(query)
        return await originals["execute"](self, query, *args, **kwargs)

    async def _execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return await originals["_execute"](self, query, *args, **kwargs)

    async def _executemany(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        statements.append(query)
        return await originals["_executemany"](self, query, *args, **kwargs)

    Connection.execute, Connection._execute, Connection._executemany = execute, _execute, _executemany  # type: ignore[method-assign]
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(Connection, name, original)


@contextmanager
def recording_redis(commands: list[str]) -> Iterator[None]:
    """Append the first command of every round trip redis-py sends, on any connection, to ``commands``."""
    from redis.asyncio.connection import AbstractConnection

    original = AbstractConnection.send_packed_command

    async def send_packed_command(self: Any, command: Any, *args: Any, **kwargs: Any) -> None:
        first = command if isinstance(command, bytes | str | memoryview) else command[0]
        text = bytes(first).decode(errors="replace") if not isinstance(first, str) else first
        commands.append(" ".join(text.split("\r\n")[2::2][:2]))  # the command and its first argument
        return await original(self, command, *args, **kwargs)

    AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    try:
        yield
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def label(statement: str) -> str:
    """A short name for a statement: its verb and table."""
    text = " ".join(statement.split())
    if text.startswith("WITH "):
        return "WITH ... (" + ", ".join(re.findall(r"(?:INSERT INTO|UPDATE|DELETE FROM)\s+(\w+)", text)) + ")"
    if text.startswith("SELECT pg_advisory_unlock_all"):
        return "pool reset (RESET ALL ...)"
    if text in ("BEGIN;", "BEGIN", "COMMIT;", "COMMIT", "ROLLBACK;", "ROLLBACK"):
        return text.rstrip(";")
    verb = text.split(" ", 1)[0].upper()
    outer = text
    while (inner := re.sub(r"\([^()]*\)", "", outer)) != outer:  # drop subqueries: name what it reads
        outer = inner
    tables = _tables(outer) or _tables(text)
    locking = " ... FOR UPDATE" if " FOR UPDATE" in text else ""
    return f"{verb} {', '.join(tables) or '?'}{locking}"


def _tables(sql: str) -> list[str]:
    found = re.findall(r'(?:FROM|JOIN|INTO|UPDATE)\s+"?(\w+)"?', sql, re.IGNORECASE)
    return list(dict.fromkeys(t for t in found if t.upper() not in ("AS", "OF", "SELECT", "SET")))


async def run(verbose: bool, redis: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The statements of each request of the last measured round trip; with ``redis``, that
    round trip's Redis commands go there, by request."""
    from app import create_app
    from app.config import load_settings

    server_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    database_url, name = await create_database(server_url)
    env = app_environment(database_url, redis_url)
    per_request: dict[str, list[str]] = {}
    try:
        await migrate(env)
        seeded = await seed(env)
        app = create_app(load_settings(env))
        driver = seeded.payers[0]
        slot = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
        async with app.test_app():
            client = app.test_client()
            for n in range(WARM_UP + MEASURED):
                statements: dict[str, list[str]] = {"book": [], "pay": []}
                sent: dict[str, list[str]] = {"book": [], "pay": []}
                body = {"station_id": seeded.open_station, "slot_time": slot.isoformat(), "duration_minutes": 15}
                slot += timedelta(minutes=15)
                with recording(statements["book"]), recording_redis(sent["book"]):
                    booked = await client.post("/api/bookings", json=body, headers=driver.headers)
                assert booked.status_code == 200, await booked.get_data(as_text=True)
                booking = await booked.get_json()
                payment = {
                    "booking_id": booking["booking_id"],
                    "payment_method": "UPI",
                    "amount": booking["amount_due"],
                }
                headers = {**driver.headers, "Idempotency-Key": f"count-{n}"}
                with recording(statements["pay"]), recording_redis(sent["pay"]):
                    paid = await client.post("/api/payments/process", json=payment, headers=headers)
                assert paid.status_code == 200, await paid.get_data(as_text=True)
                await asyncio.sleep(0.05)  # let the directory see its own events before the next round
                if n >= WARM_UP:
                    per_request = statements
                    if redis is not None:
                        redis.update(sent)
    finally:
        await drop_database(server_url, name)
        await clean_redis(redis_url, env["REDIS_PREFIX"])
    return per_request


def report(per_request: dict[str, list[str]], verbose: bool, redis: dict[str, list[str]] | None = None) -> str:
    lines = []
    for request, statements in per_request.items():
        lines.append(f"{request}: {len(statements)} statements")
        for name, count in Counter(label(s) for s in statements).most_common():
            lines.append(f"  {count:3d}  {name}")
        if verbose:
            lines += [f"      {' '.join(s.split())[:160]}" for s in statements]
    for request, commands in (redis or {}).items():
        lines.append(f"{request}: {len(commands)} Redis round trips")
        for name, count in Counter(command.split(" ")[0] for command in commands).most_common():
            lines.append(f"  {count:3d}  {name}")
        if verbose:
            lines += [f"      {command[:160]}" for command in commands]
    count = total(per_request)
    verdict = "met" if count <= TARGET else "NOT met"
    lines.append(f"round trip: {count} statements (target <= {TARGET}: {verdict})")
    return "\n".join(lines)


def total(per_request: dict[str, list[str]]) -> int:
    return sum(len(statements) for statements in per_request.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-v", "--verbose", action="store_true", help="print every statement")
    args = parser.parse_args()
    redis: dict[str, list[str]] = {}
    per_request = asyncio.run(run(args.verbose, redis))
    print(report(per_request, args.verbose, redis))
    if total(per_request) > TARGET:
        sys.exit(1)


if __name__ == "__main__":
    main()
