"""An exceptional closing over 500 booked slots, with two workers: every booking cancelled and
refunded, every driver told, each exactly once; and how long the operator's request takes.

    python bench/bench_changes.py            # print the figures
    python bench/bench_changes.py --record   # also write the "Changes to booked slots" section of bench/RESULTS.md

On a fresh PostgreSQL database (dropped afterwards) and its own Redis prefix:

1. ``python -m app migrate``; one station open 24/7 with ten chargers, 100 drivers and 500 PAID
   bookings (with their payments) over the next days, written straight into the database; an
   operator with a session.
2. Starts ``hypercorn 'app:create_app()'`` and two workers (``python -m workers``), and listens on
   the bus for every driver's events.
3. Reference, in the same run: ``GET /api/stations/{id}`` of that station (the plain read the
   operator's page makes), its median over 50 requests.
4. The operator adds an exceptional closing over all those slots. Measured: the request's own
   latency, and the time from sending it until every booking is CANCELLED, every payment
   REFUNDED and every driver's ``booking_cancelled`` notification delivered live — and that each
   of the 500 was heard exactly once.

DESIGN §12: all within 10 s, the request under 1 s. Environment as for ``bench_bookings.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_bookings import clean_redis, create_database, start_server, stop_server  # noqa: E402
from bench.bench_http import drop_database  # noqa: E402
from bench.common import app_environment, machine, main_recording, migrate  # noqa: E402

SECTION = "## Changes to booked slots"
BOOKINGS = 500
DRIVERS = 100
CHARGERS = 10
REFERENCE_REQUESTS = 50
#: DESIGN §12.
TARGET_ALL_S, TARGET_REQUEST_S = 10.0, 1.0
DEADLINE_S = 60.0


async def seed(env: dict[str, str]) -> dict[str, Any]:
    """The station, drivers, 500 paid bookings with their payments, and the operator's session."""
    import secrets

    import asyncpg
    from quart_auth import generate_auth_token

    from app import create_app
    from app.auth import CSRF_COOKIE, CSRF_HEADER, csrf_token_for
    from app.config import load_settings
    from app.db import close_db, init_db
    from app.hours import HoursSpec
    from app.models import Role, Session, User
    from app.stations import ChargerSpec, insert_station

    settings = load_settings(env)
    app = create_app(settings)
    await init_db(settings)
    try:
        station = await insert_station(
            hours=HoursSpec(twentyfourseven=True),
            chargers=[ChargerSpec("CCS2", 60.0) for _ in range(CHARGERS)],
            name="Closing",
            location="Bench Road 1",
            city="Bench",
            latitude=0.0,
            longitude=0.0,
            timezone="UTC",
            price_per_hour=10_000,
            currency="EUR",
        )
        operator = await User.create(
            email="operator@bench.example", username="bench-operator", password_hash="x", role=Role.OPERATOR
        )
        session = await Session.create(
            id=secrets.token_urlsafe(32), user=operator, expires_at=datetime.now(UTC) + timedelta(days=1)
        )
        async with app.app_context():
            csrf = csrf_token_for(session.id)
        cookie = f"chargeslot_session={generate_auth_token(app.test_client(), session.id)}; {CSRF_COOKIE}={csrf}"
    finally:
        await close_db()

    conn = await asyncpg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://", 1))
    try:
        now = datetime.now(UTC)
        first = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
        users = await conn.fetch(
            "INSERT INTO users (email, username, password_hash, role, is_active, created_at) "
            "SELECT 'driver' || n || '@bench.example', 'driver' || n, 'x', 'driver', TRUE, $1 "
            "FROM generate_series(1, $2) n RETURNING id",
            now,
            DRIVERS,
        )
        chargers = [row["id"] for row in await conn.fetch("SELECT id FROM chargers WHERE station_id = $1", station.id)]
        rows = []
        for n in range(BOOKINGS):
            start = first + timedelta(minutes=30 * (n // CHARGERS))
            rows.append(
                (users[n % DRIVERS]["id"], station.id, chargers[n % CHARGERS], start, start + timedelta(minutes=30))
            )
        booking_ids = await conn.fetch(
            "INSERT INTO bookings (user_id, station_id, charger_id, slot_start, slot_end, status, amount_due, "
            "currency, created_at, updated_at) SELECT u, $1, c, s, e, 'PAID', 5000, 'EUR', now(), now() "
            "FROM unnest($2::int[], $3::int[], $4::timestamptz[], $5::timestamptz[]) AS t(u, c, s, e) "
            "RETURNING id, user_id",
            station.id,
            [r[0] for r in rows],
            [r[2] for r in rows],
            [r[3] for r in rows],
            [r[4] for r in rows],
        )
        await conn.execute(
            "INSERT INTO payments (booking_id, user_id, amount, currency, payment_method, transaction_id, status, "
            "created_at, updated_at) SELECT b, u, 5000, 'EUR', 'UPI', 'TXN_BENCH' || b, 'SUCCESS', now(), now() "
            "FROM unnest($1::int[], $2::int[]) AS t(b, u)",
            [r["id"] for r in booking_ids],
            [r["user_id"] for r in booking_ids],
        )
        last_end = rows[-1][4]
    finally:
        await conn.close()
    return {
        "station": station.id,
        "headers": {"Cookie": cookie, CSRF_HEADER: csrf},
        "closing": (first - timedelta(minutes=30), last_end + timedelta(minutes=30)),
        "users": [row["id"] for row in users],
    }


def start_worker(env: dict[str, str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
    fd, log = tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")
    process = subprocess.Popen(
        [sys.executable, "-m", "workers"], cwd=ROOT, env=env, stdout=fd, stderr=subprocess.STDOUT
    )
    os.close(fd)
    return process, Path(log)


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout} s")
        await asyncio.sleep(0.02)


async def run() -> dict[str, Any]:
    import asyncpg
    import httpx

    from app.bus import RedisBus

    server_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    database_url, name = await create_database(server_url)
    env = app_environment(database_url, redis_url)
    results: dict[str, Any] = {}
    workers: list[tuple[subprocess.Popen[bytes], Path]] = []
    bus = RedisBus(redis_url, env["REDIS_PREFIX"])
    try:
        await migrate(env)
        seeded = await seed(env)
        workers = [start_worker(env, "worker-1"), start_worker(env, "worker-2")]
        for process, log in workers:
            deadline = time.monotonic() + 60
            while "notifications:" not in log.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start; its log: {log}")
                await asyncio.sleep(0.05)
        web = await start_server("app:create_app()", env, "/healthz")
        db = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        await bus.start()
        assert await bus.wait_connected(5)
        try:
            async with httpx.AsyncClient(base_url=web.base, timeout=30) as client:
                station = seeded["station"]
                for _ in range(5):
                    await client.get(f"/api/stations/{station}")
                samples = []
                for _ in range(REFERENCE_REQUESTS):
                    began = time.perf_counter()
                    (await client.get(f"/api/stations/{station}")).raise_for_status()
                    samples.append(time.perf_counter() - began)
                results["reference_s"] = statistics.median(samples)

                with bus.subscribe(maxsize=10 * BOOKINGS) as heard:
                    begin, end = seeded["closing"]
                    body = {"kind": "closing", "period_begin": begin.isoformat(), "period_end": end.isoformat()}
                    started = time.perf_counter()
                    response = await client.post(
                        f"/api/stations/{station}/exceptions", json=body, headers=seeded["headers"]
                    )
                    results["request_s"] = time.perf_counter() - started
                    assert response.status_code == 201, response.text
                    results["affected"] = response.json()["affected_bookings"]

                    async def all_done() -> bool:
                        settled = await db.fetchval(
                            "SELECT count(*) FROM bookings b JOIN payments p ON p.booking_id = b.id "
                            "WHERE b.status = 'CANCELLED' AND p.status = 'REFUNDED'"
                        )
                        told = sum(
                            1
                            for message in list(heard.queue._queue)  # type: ignore[attr-defined]
                            if message.get("type") == "notification" and message.get("kind") == "booking_cancelled"
                        )
                        return bool(settled == BOOKINGS and told >= BOOKINGS)

                    await wait_for(all_done, DEADLINE_S, "every booking cancelled, refunded and told")
                    results["all_s"] = time.perf_counter() - started
                    await asyncio.sleep(1.0)  # anything heard twice arrives within this
                    told = Counter(
                        message["id"]
                        for message in list(heard.queue._queue)  # type: ignore[attr-defined]
                        if message.get("type") == "notification" and message.get("kind") == "booking_cancelled"
                    )
                results["notified"] = len(told)
                results["heard_twice"] = sum(1 for times in told.values() if times > 1)
                results["undelivered"] = await db.fetchval(
                    "SELECT count(*) FROM notifications WHERE live_sent_at IS NULL"
                )
                results["stored"] = await db.fetchval(
                    "SELECT count(*) FROM notifications WHERE kind = 'booking_cancelled'"
                )
        finally:
            await db.close()
            stop_server(web)
    finally:
        for process, log in workers:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.returncode in (0, -15):
                log.unlink(missing_ok=True)
        await bus.close()
        await drop_database(server_url, name)
        await clean_redis(redis_url, env["REDIS_PREFIX"])
    return results


def report(results: dict[str, Any]) -> str:
    ratio = results["request_s"] / results["reference_s"]
    met_request = results["request_s"] < TARGET_REQUEST_S
    met_all = results["all_s"] < TARGET_ALL_S and results["heard_twice"] == 0 and results["notified"] == BOOKINGS
    affected = results["affected"]
    return "\n".join(
        [
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}; "
            "PostgreSQL + Redis, one web process, two workers.",
            "",
            f"- an exceptional closing over {BOOKINGS} paid bookings ({DRIVERS} drivers, {CHARGERS} chargers): "
            f"{affected['cancelled']} cancelled, {affected['moved']} moved",
            f"- reference, `GET /api/stations/{{id}}` of that station (median of {REFERENCE_REQUESTS}): "
            f"{results['reference_s'] * 1000:.1f} ms",
            f"- the operator's request: {results['request_s'] * 1000:.0f} ms = {ratio:.0f}x the reference "
            f"(target < {TARGET_REQUEST_S:.0f} s: {'met' if met_request else 'NOT met'})",
            f"- until every booking was cancelled and refunded and every driver told live: {results['all_s']:.2f} s "
            f"= {results['all_s'] / results['reference_s']:.0f}x the reference "
            f"(target < {TARGET_ALL_S:.0f} s, each once: {'met' if met_all else 'NOT met'})",
            f"- notifications: {results['stored']} written, {results['notified']} distinct heard live, "
            f"{results['heard_twice']} heard twice, {results['undelivered']} left undelivered",
        ]
    )


def main() -> None:
    main_recording(__doc__, SECTION, run, report)


if __name__ == "__main__":
    main()
