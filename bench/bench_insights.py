"""Operator insights and the bookings CSV over 100,000 bookings, against a real Hypercorn process on
PostgreSQL.

    python bench/bench_insights.py            # print the figures
    python bench/bench_insights.py --record   # also write the "Operator insights" section of bench/RESULTS.md

On a fresh PostgreSQL database (dropped afterwards): ten stations open 08:00-22:00 in three zones,
four chargers each, and 100,000 bookings over the last year written with COPY (mostly completed,
some cancelled or expired). Then, through HTTP as an operator:

1. ``GET /api/operator/insights`` for one station over 90 days, ``SAMPLES`` times: p50 and p95,
   next to ``GET /api/auth/me`` (one session lookup through the same stack) measured just before
   as the reference. Target (DESIGN §12): p50 <= 200 ms.
2. ``GET /api/operator/bookings.csv`` for all 100,000 rows, read as a stream: rows and bytes
   received, and the server's memory before and at its peak (VmHWM) — the export reads a chunk at a
   time, so the peak should barely move however many rows there are.

Environment: ``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/test``) and
``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_bookings import create_database, percentile, start_server, stop_server  # noqa: E402
from bench.bench_http import drop_database  # noqa: E402
from bench.common import app_environment, machine, migrate, record_section  # noqa: E402

SECTION = "## Operator insights"
BOOKINGS = 100_000
STATIONS = 10
CHARGERS = 4
SAMPLES = 30
ZONES = ("Asia/Kolkata", "Europe/Berlin", "America/New_York")


async def seed(env: dict[str, str], database_url: str) -> tuple[dict[str, str], int]:
    """Stations through the ORM, bookings with COPY; an operator's session cookie."""
    import asyncpg
    from quart_auth import generate_auth_token

    from app import create_app
    from app.config import load_settings
    from app.db import close_db, init_db
    from app.hours import HoursSpec, RegularPeriod
    from app.models import Charger, Role, Session, User
    from app.stations import ChargerSpec, insert_station

    settings = load_settings(env)
    app = create_app(settings)
    await init_db(settings)
    try:
        hours = HoursSpec(regular_hours=tuple(RegularPeriod(day, "08:00", "22:00") for day in range(1, 8)))
        station_ids = []
        for n in range(STATIONS):
            station = await insert_station(
                hours=hours,
                chargers=[ChargerSpec("CCS2", 60.0)] * CHARGERS,
                name=f"Insight {n}",
                location="Bench Road 1",
                city="Bench",
                latitude=0.0,
                longitude=0.0,
                timezone=ZONES[n % len(ZONES)],
                price_per_hour=10_000,
                currency="INR",
            )
            station_ids.append(station.id)
        chargers = {
            sid: [c.id for c in await Charger.filter(station_id=sid).order_by("charger_number")] for sid in station_ids
        }
        operator = await User.create(email="ops@bench.example", username="ops", password_hash="-", role=Role.OPERATOR)
        drivers = [
            (await User.create(email=f"d{n}@bench.example", username=f"d{n}", password_hash="-")).id for n in range(100)
        ]
        session = await Session.create(
            id=secrets.token_urlsafe(32), user=operator, expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        cookie = f"chargeslot_session={generate_auth_token(app.test_client(), session.id)}"
    finally:
        await close_db()
    rows = list(_bookings(station_ids, chargers, drivers))
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        await conn.copy_records_to_table(
            "bookings",
            records=rows,
            columns=[
                "user_id",
                "station_id",
                "charger_id",
                "slot_start",
                "slot_end",
                "status",
                "amount_due",
                "currency",
                "created_at",
                "updated_at",
            ],
        )
        await conn.execute("ANALYZE bookings")
    finally:
        await conn.close()
    return {"Cookie": cookie}, station_ids[0]


def _bookings(station_ids: list[int], chargers: dict[int, list[int]], drivers: list[int]) -> Any:
    """Past hour-long slots that never overlap on one charger: each (charger, hour) once at most."""
    rng = random.Random(7)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    taken: set[tuple[int, datetime]] = set()
    made = 0
    while made < BOOKINGS:
        station = rng.choice(station_ids)
        charger = rng.choice(chargers[station])
        start = now - timedelta(hours=rng.randrange(1, 365 * 24))
        if (charger, start) in taken:
            continue
        taken.add((charger, start))
        status = rng.choices(("COMPLETED", "CANCELLED", "EXPIRED"), weights=(85, 10, 5))[0]
        made += 1
        yield (
            rng.choice(drivers),
            station,
            charger,
            start,
            start + timedelta(hours=1),
            status,
            10_000,
            "INR",
            start,
            start,
        )


async def timed_gets(base: str, path: str, headers: dict[str, str], count: int) -> list[float]:
    import httpx

    samples = []
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        for _ in range(count):
            started = time.perf_counter()
            response = await client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
    return samples


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of the process serving requests: the largest of the started process and its
    children (Hypercorn's parent only supervises; a helper process may sit beside the worker)."""
    children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return max((_status(candidate) for candidate in [pid, *children]), key=lambda fields: fields["VmRSS"])


async def export(base: str, headers: dict[str, str], pid: int) -> dict[str, Any]:
    import httpx

    before = memory_kib(pid)
    rows = size = 0
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=300) as client,
        client.stream("GET", "/api/operator/bookings.csv") as response,
    ):
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            rows += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    after = memory_kib(pid)
    return {"rows": rows - 1, "bytes": size, "seconds": seconds, "before": before, "after": after}


async def run() -> dict[str, Any]:
    import os

    server_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    database_url, name = await create_database(server_url)
    env = app_environment(database_url, redis_url)
    try:
        await migrate(env)
        print(f"seeding {BOOKINGS:,} bookings ...", flush=True)
        headers, station_id = await seed(env, database_url)
        web = await start_server("app:create_app()", env, "/healthz")
        try:
            to = datetime.now(UTC).date()
            span = f"station_id={station_id}&from={to - timedelta(days=89)}&to={to}"
            await timed_gets(web.base, "/api/auth/me", headers, 5)  # warm-up
            reference = await timed_gets(web.base, "/api/auth/me", headers, SAMPLES)
            await timed_gets(web.base, f"/api/operator/insights?{span}", headers, 3)  # warm-up
            print("measuring insights ...", flush=True)
            insights = await timed_gets(web.base, f"/api/operator/insights?{span}", headers, SAMPLES)
            print("exporting the CSV ...", flush=True)
            exported = await export(web.base, headers, web.process.pid)
        finally:
            stop_server(web)
    finally:
        await drop_database(server_url, name)
    return {"reference": reference, "insights": insights, "export": exported}


def report(results: dict[str, Any]) -> str:
    ref, ins, exp = results["reference"], results["insights"], results["export"]
    p50 = percentile(ins, 50)
    grown = (exp["after"]["VmHWM"] - exp["before"]["VmHWM"]) / 1024
    verdict = "met" if p50 <= 200 else "not met"
    size = f"{exp['rows']:,} / {exp['bytes'] / 1048576:.1f} MiB / {exp['seconds']:.1f} s"
    return "\n".join(
        [
            f"`python bench/bench_insights.py`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}.",
            f"PostgreSQL, {BOOKINGS:,} bookings at {STATIONS} stations ({CHARGERS} chargers each, three zones) "
            "over the last year; one Hypercorn process (uvloop); requests one at a time over HTTP as an operator.",
            "",
            "| measure | figure | target |",
            "| --- | --- | --- |",
            f"| insights, one station, 90 days: p50 | {p50:.0f} ms | <= 200 ms: **{verdict}** |",
            f"| insights: p95 | {percentile(ins, 95):.0f} ms | |",
            f"| reference `GET /api/auth/me`: p50 / p95 | {percentile(ref, 50):.1f} / {percentile(ref, 95):.1f} ms | |",
            f"| insights p50 ÷ reference p50 | {p50 / percentile(ref, 50):.1f}x | |",
            f"| CSV export: rows / size / time | {size} | all rows |",
            f"| server peak memory (VmHWM) before → after the export | {exp['before']['VmHWM'] / 1024:.0f} → "
            f"{exp['after']['VmHWM'] / 1024:.0f} MiB (+{grown:.1f} MiB) | flat |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--record", action="store_true", help="write the figures to bench/RESULTS.md")
    args = parser.parse_args()
    body = report(asyncio.run(run()))
    print(body)
    if args.record:
        print(f"recorded in {record_section(SECTION, body)}")


if __name__ == "__main__":
    main()
