"""HTTP throughput of the station endpoints against a bare Quart hello-world (DESIGN §12).

    python bench/bench_http.py [--record] [--rounds N]

Starts a hello-world Quart app and Chargeslot twice (with its fast lane, ``app.fast_lane``, and
without it, every request through Quart), each under Hypercorn with the same settings (one worker,
uvloop, 127.0.0.1, a free port). Chargeslot runs against a fresh PostgreSQL database seeded with
10,000 stations (varied zones and hours, a few chargers each) and Redis. Then
``wrk -t2 -c64 -d10s --latency`` measures, in each round, the status endpoint of one station and
the first page of 50 of the station list, with the lane and without, each just after a run of the
hello-world that it is compared with. Targets (DESIGN §12): status >= 0.8x the hello-world's
throughput with p99 <= 1.25x its p99; the list >= 1.0x its throughput. ``--record`` replaces
the "## HTTP throughput" section of bench/RESULTS.md with the machine, date and figures.

Needs PostgreSQL and Redis (``BENCH_DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/test;
``BENCH_REDIS_URL``, default redis://127.0.0.1:6379/0) and ``wrk`` on the PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from quart import Quart  # noqa: E402

from bench.common import machine, record_section  # noqa: E402

STATUS_TARGET, STATUS_P99_TARGET, LIST_TARGET = 0.8, 1.25, 1.0
SECTION = "## HTTP throughput"

#: The reference: the least a Quart app on this Hypercorn can do for a JSON GET.
hello_app = Quart("hello")


@hello_app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


# -- the data set ------------------------------------------------------------------------------

ZONES = (
    ("Asia/Kolkata", "INR", (8, 37), (68, 97)),
    ("Europe/Berlin", "EUR", (47, 55), (6, 15)),
    ("America/New_York", "USD", (25, 45), (-85, -70)),
    ("Australia/Sydney", "AUD", (-38, -28), (145, 153)),
    ("America/Sao_Paulo", "BRL", (-30, -5), (-55, -35)),
    ("Asia/Tokyo", "JPY", (31, 43), (130, 142)),
    ("UTC", "EUR", (-10, 10), (-10, 10)),
)
CITIES = ("Mumbai", "Pune", "Delhi", "Berlin", "Hamburg", "Boston", "Sydney", "Recife", "Osaka", "Lagos")
HOURS = (  # (begin, end, weekdays) per pattern; None = 24/7
    [("08:00", "22:00", range(1, 8))],
    [("20:00", "06:00", range(1, 8))],  # overnight
    None,
    [("07:00", "19:00", range(1, 6)), ("09:00", "14:00", range(6, 7))],
    [("06:00", "12:00", range(1, 8)), ("13:00", "23:30", range(1, 8))],
)
CHARGER_TYPES = (("CCS2", 60.0), ("TYPE2", 22.0), ("CHADEMO", 50.0), ("CCS2", 150.0))


async def seed(dsn: str, count: int) -> None:
    """Bulk-insert ``count`` stations with hours and chargers (COPY, not the ORM: seconds, not minutes)."""
    rng = random.Random(42)
    now = datetime.now(UTC)
    stations, regular, exceptional, chargers = [], [], [], []
    charger_id = regular_id = 0
    for station_id in range(1, count + 1):
        zone, currency, (lat0, lat1), (lon0, lon1) = ZONES[station_id % len(ZONES)]
        pattern = HOURS[station_id % len(HOURS)]
        city = CITIES[station_id % len(CITIES)]
        stations.append(
            (
                station_id,
                f"Station {station_id:05d}",
                f"{rng.randint(1, 400)} Charging Road, {city}",
                city,
                rng.uniform(lat0, lat1),
                rng.uniform(lon0, lon1),
                zone,
                rng.randrange(500, 30000, 50),
                currency,
                "ACTIVE" if station_id % 50 else "MAINTENANCE",
                pattern is None,
                now,
                now,
            )
        )
        for begin, end, days in pattern or ():
            for day in days:
                regular_id += 1
                regular.append((regular_id, station_id, day, begin, end))
        if station_id % 25 == 0:
            start = now + timedelta(days=rng.randint(1, 20))
            exceptional.append((len(exceptional) + 1, station_id, True, start, start + timedelta(hours=6)))
        for number in range(1, 2 + station_id % 4):
            charger_id += 1
            kind, power = CHARGER_TYPES[(station_id + number) % len(CHARGER_TYPES)]
            chargers.append((charger_id, station_id, number, kind, power, "AVAILABLE"))
    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "stations",
            records=stations,
            columns=[
                "id",
                "name",
                "location",
                "city",
                "latitude",
                "longitude",
                "timezone",
                "price_per_hour",
                "currency",
                "status",
                "twentyfourseven",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "regular_hours", records=regular, columns=["id", "station_id", "weekday", "period_begin", "period_end"]
        )
        await conn.copy_records_to_table(
            "exceptional_periods",
            records=exceptional,
            columns=["id", "station_id", "is_closing", "period_begin", "period_end"],
        )
        await conn.copy_records_to_table(
            "chargers",
            records=chargers,
            columns=["id", "station_id", "charger_number", "charger_type", "power_kw", "status"],
        )
        for table in ("stations", "regular_hours", "exceptional_periods", "chargers"):
            await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def create_database(base_url: str, count: int) -> tuple[str, str]:
    from app.config import Settings
    from app.db import migrate

    name = f"chargeslot_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(base_url.replace("postgres://", "postgresql://", 1))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{base_url.rpartition('/')[0]}/{name}"
    await migrate(Settings(database_url=url, secret_key="x"))
    from tortoise import connections

    await connections.close_all()
    await seed(url.replace("postgres://", "postgresql://", 1), count)
    return url, name


async def drop_database(base_url: str, name: str) -> None:
    admin = await asyncpg.connect(base_url.replace("postgres://", "postgresql://", 1))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


# -- servers and wrk ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One Hypercorn process: one worker, uvloop, loopback only."""

    def __init__(self, app: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hypercorn",
                "--worker-class",
                "uvloop",
                "--workers",
                "1",
                "--bind",
                f"127.0.0.1:{self.port}",
                app,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, path: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {self.process.stderr.read().decode() if self.process.stderr else ''}"
                )
            try:
                with urllib.request.urlopen(self.url(path), timeout=30) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{path} did not answer within {timeout}s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(match[1]) * _UNITS[match[2]]


def wrk(name: str, url: str, duration: int, connections: int) -> Result:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out)[1])  # type: ignore[index]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out)[1])  # type: ignore[index]
    errors = sum(int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses|timeout|read|write|connect) (\d+)", out))
    return Result(name, rps, p50, p99, errors)


# -- the run ------------------------------------------------------------------------------------

#: What each round measures. "via Quart" is the same app with the fast lane switched off
#: (``create_app(fast_lane=False)``): it shows what the lane is worth.
MEASURED = ("status", "list", "status via Quart", "list via Quart")


@dataclass
class Pair:
    """One endpoint and the hello-world measured just before it: on a shared machine the load
    changes from minute to minute, so each figure is compared with its own neighbour."""

    hello: Result
    measured: Result

    @property
    def ratio(self) -> float:
        return self.measured.rps / self.hello.rps

    @property
    def p99_ratio(self) -> float:
        return self.measured.p99_ms / self.hello.p99_ms


@dataclass
class Round:
    pairs: dict[str, Pair]

    def meets(self, status: str, listing: str) -> bool:
        return (
            self.pairs[status].ratio >= STATUS_TARGET
            and self.pairs[status].p99_ratio <= STATUS_P99_TARGET
            and self.pairs[listing].ratio >= LIST_TARGET
        )

    @property
    def passed(self) -> bool:
        return self.meets("status", "list")


def run_rounds(args: argparse.Namespace, db_url: str) -> list[Round]:
    env = {
        "DATABASE_URL": db_url,
        "REDIS_URL": args.redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "RUN_BACKGROUND_TASKS": "false",
    }
    hello = Server("bench.bench_http:hello_app", {})
    app = Server("app:create_app()", {**env, "REDIS_PREFIX": f"bench-{secrets.token_hex(4)}"})
    plain = Server("app:create_app(fast_lane=False)", {**env, "REDIS_PREFIX": f"bench-{secrets.token_hex(4)}"})
    status_path, list_path = f"/api/stations/{args.station}/status", "/api/stations?limit=50"
    targets = {
        "status": (app, status_path),
        "list": (app, list_path),
        "status via Quart": (plain, status_path),
        "list via Quart": (plain, list_path),
    }

    def measure(name: str, server: Server, path: str) -> Result:
        wrk(name, server.url(path), 2, args.connections)  # warm-up, discarded
        return wrk(name, server.url(path), args.duration, args.connections)

    try:
        hello.wait_ready("/")
        for server in (app, plain):
            server.wait_ready(status_path)
            server.wait_ready(list_path)  # loads the catalogue
        rounds = []
        for number in range(1, args.rounds + 1):
            pairs = {name: Pair(measure("hello-world", hello, "/"), measure(name, *targets[name])) for name in MEASURED}
            current = Round(pairs)
            print_round(number, current)
            rounds.append(current)
        return rounds
    finally:
        for server in (hello, app, plain):
            server.stop()


def verdict(r: Round, status: str, listing: str) -> str:
    return (
        f"{status} {r.pairs[status].ratio:.2f}x hello (target >= {STATUS_TARGET}), "
        f"p99 {r.pairs[status].p99_ratio:.2f}x (target <= {STATUS_P99_TARGET}); "
        f"{listing} {r.pairs[listing].ratio:.2f}x (target >= {LIST_TARGET}): "
        f"{'PASS' if r.meets(status, listing) else 'MISS'}"
    )


def figures(result: Result) -> str:
    errors = f"  errors {result.errors}" if result.errors else ""
    return f"{result.rps:6.0f} req/s p99 {result.p99_ms:6.1f} ms{errors}"


def print_round(number: int, r: Round) -> None:
    print(f"round {number}")
    for name, pair in r.pairs.items():
        print(f"  {name:<17} {figures(pair.measured)}   hello just before: {figures(pair.hello)}")
    print(f"  {verdict(r, 'status', 'list')}")
    print(f"  without the fast lane: {verdict(r, 'status via Quart', 'list via Quart')}")


def record(rounds: list[Round], args: argparse.Namespace) -> None:
    lines = [
        SECTION,
        "",
        f"`python bench/bench_http.py --rounds {args.rounds}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}.",
        f"Hypercorn, 1 worker, uvloop; `wrk -t2 -c{args.connections} -d{args.duration}s --latency`; "
        f"{args.stations:,} stations in PostgreSQL, Redis bus. Status of station {args.station}; list "
        '`/api/stations?limit=50`; "via Quart" is the same app with the fast lane switched off. Each '
        "endpoint is compared with a hello-world run just before it. wrk, PostgreSQL and the servers "
        "share the machine's cores.",
        "",
        "| round | measured | req/s | p99 | hello req/s | hello p99 | req/s xhello | p99 xhello |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for number, r in enumerate(rounds, 1):
        for name, pair in r.pairs.items():
            lines.append(
                f"| {number} | {name} | {pair.measured.rps:.0f} | {pair.measured.p99_ms:.1f} ms "
                f"| {pair.hello.rps:.0f} | {pair.hello.p99_ms:.1f} ms | {pair.ratio:.2f} | {pair.p99_ratio:.2f} |"
            )
    lines += [
        "",
        f"Targets: status >= {STATUS_TARGET}x hello throughput and p99 <= {STATUS_P99_TARGET}x hello p99; "
        f"list >= {LIST_TARGET}x hello throughput. Met in {sum(r.passed for r in rounds)} of {len(rounds)} "
        f"rounds with the fast lane; status via Quart met its target in "
        f"{sum(r.meets('status via Quart', 'list') for r in rounds)}, list via Quart in "
        f"{sum(r.pairs['list via Quart'].ratio >= LIST_TARGET for r in rounds)}.",
    ]
    if args.note:
        lines += ["", args.note]
    path = record_section(SECTION, "\n".join(lines[2:]))
    print(f"recorded in {path.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--station", type=int, default=4_321, help="the station whose status is polled")
    parser.add_argument("--note", default="", help="a sentence to record under the table")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    base_url = args.database_url.replace("postgresql://", "postgres://", 1)
    started = time.monotonic()
    db_url, name = asyncio.run(create_database(base_url, args.stations))
    print(f"seeded {args.stations:,} stations in {time.monotonic() - started:.1f}s; {machine()}")
    try:
        rounds = run_rounds(args, db_url)
    finally:
        asyncio.run(drop_database(base_url, name))
    if args.record:
        record(rounds, args)
    return 0 if all(r.passed for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
