"""Charger link: 1,000 OCPP 1.6J charge points on one web process (DESIGN §12, §14).

    python bench/bench_ocpp.py [--charge-points 1000] [--samples 200] [--bookings 200] [--record]

Starts one Hypercorn web process (uvloop, a single process) and one arq worker against a fresh
PostgreSQL database and Redis: 100 stations open around the clock, each charger linked to a charge
point of its own. This process then plays every charge point, with the ``ocpp`` package's
``ChargePoint`` over ``websockets`` clients (``app.simulator``), and one browser on ``/ws/stations``:

1. **Held**: every charge point connects (HTTP Basic auth, argon2-checked), boots and reports its
   connector Available; how many are held, and the server's resident memory per charge point
   (VmRSS before and after).
2. **Status → browser**: ``--samples`` StatusNotifications (Faulted / Available, one at a time on
   random charge points); per sample, the delay from sending it to the ``availability`` event with
   that charger's new ``live_status`` arriving on the browser socket. Target p99 <= 250 ms. The
   reference, measured in the same run on the same sockets: a Heartbeat's round trip (OCPP framing,
   schema checks and one database write, without the publish).
3. **ReserveNow on time**: ``--bookings`` paid bookings of distinct chargers all starting at the same
   minute; the worker plans each reservation ``RESERVE_LEAD_MINUTES`` before it as a deferred job.
   Per booking, the delay from that planned instant to the ReserveNow arriving at its charge point.
   Target: all within 1 s.

``--record`` replaces the "## Charger link (OCPP)" section of bench/RESULTS.md. Needs PostgreSQL
(``BENCH_DATABASE_URL``) and Redis (``BENCH_REDIS_URL``); everything shares the machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvloop
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.bus import RedisBus  # noqa: E402
from app.events import publish_availability  # noqa: E402
from app.hours import HoursSpec  # noqa: E402
from app.models import Booking, BookingStatus, ChargePoint, Charger, Role, User  # noqa: E402
from app.passwords import hash_password  # noqa: E402
from app.simulator import SimulatedChargePoint, connected  # noqa: E402
from app.stations import ChargerSpec, insert_station  # noqa: E402
from bench.bench_ws import (  # noqa: E402
    fresh_stack,
    percentile,
    raise_fd_limit,
    rss_kib,
    start_processes,
    wait_ready,
)
from bench.common import machine, record_section  # noqa: E402

SECTION = "## Charger link (OCPP)"
STATUS_P99_TARGET_MS = 250.0
RESERVE_LATE_TARGET_S = 1.0
STATIONS = 100
CONNECT_CONCURRENCY = 50
KEY = "bench-charge-point-key-0123456789"


@dataclass
class Result:
    charge_points: int
    held: int
    connect_seconds: float
    rss_before_kib: int
    rss_after_kib: int
    status_ms: list[float]
    heartbeat_ms: list[float]
    reserve_late_s: list[float]
    bookings: int

    @property
    def kib_per_charge_point(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / max(1, self.held)


async def seed(charge_points: int) -> list[Charger]:
    """Stations open around the clock, every charger linked to a charge point of its own; all
    charge points share one key (hashed once: the bench measures connecting, not seeding)."""
    key_hash = await hash_password(KEY)
    per_station = -(-charge_points // STATIONS)
    chargers: list[Charger] = []
    for n in range(STATIONS):
        count = min(per_station, charge_points - len(chargers))
        if count <= 0:
            break
        station = await insert_station(
            name=f"Bench Yard {n}",
            location="1 Benchmark Road",
            city="Pune",
            latitude=18.5,
            longitude=73.8,
            timezone="UTC",
            price_per_hour=15000,
            currency="INR",
            hours=HoursSpec(twentyfourseven=True),
            chargers=[ChargerSpec("CCS2", 22)] * count,
        )
        for charger in await Charger.filter(station_id=station.id).order_by("charger_number"):
            point = await ChargePoint.create(
                station_id=station.id, identity=f"BENCH-{len(chargers):04d}", auth_key_hash=key_hash
            )
            charger.charge_point_id = point.id  # type: ignore[attr-defined]
            charger.connector_id = 1
            await charger.save(update_fields=["charge_point_id", "connector_id"])
            chargers.append(charger)
    return chargers


@dataclass
class Fleet:
    """The charge points this process plays, each in a task of its own until ``stop`` is set."""

    points: list[SimulatedChargePoint]
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def open_charge_points(port: int, count: int) -> Fleet:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    points: list[SimulatedChargePoint] = []
    stop = asyncio.Event()

    async def one(n: int) -> None:
        async with gate:
            url = f"ws://127.0.0.1:{port}/ocpp/BENCH-{n:04d}"
            context = connected(url, KEY, say=lambda _: None, open_timeout=300, ping_interval=None)
            point = await context.__aenter__()
            await point.boot()
            await point.status(1, "Available")
        points.append(point)
        try:
            await stop.wait()
        finally:
            await context.__aexit__(None, None, None)

    tasks = [asyncio.create_task(one(n)) for n in range(count)]
    while len(points) < count:
        failed = [task for task in tasks if task.done()]
        if failed:
            await failed[0]  # raises what went wrong
            raise RuntimeError("a charge point stopped early")
        await asyncio.sleep(0.1)
    return Fleet(sorted(points, key=lambda p: p.id), stop, tasks)


async def browser_events(port: int, events: asyncio.Queue[tuple[float, dict[str, Any]]]) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws/stations", ping_interval=None, max_size=None) as socket_:
        async for raw in socket_:
            arrived = time.perf_counter()
            message = json.loads(raw)
            if message.get("type") == "availability":
                await events.put((arrived, message))


async def measure_status(
    points: list[SimulatedChargePoint], chargers: list[Charger], port: int, samples: int
) -> tuple[list[float], list[float]]:
    events: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
    browser = asyncio.create_task(browser_events(port, events))
    await asyncio.sleep(1.0)  # the snapshot and its subscription
    while not events.empty():
        events.get_nowait()
    delays: list[float] = []
    heartbeats: list[float] = []
    rng = random.Random(14)
    try:
        for n in range(samples):
            index = rng.randrange(len(points))
            point, charger = points[index], chargers[index]
            began = time.perf_counter()
            await point.heartbeat()
            heartbeats.append((time.perf_counter() - began) * 1000)
            wanted = "Faulted" if n % 2 == 0 else "Available"
            sent = time.perf_counter()
            await point.status(1, wanted)
            while True:
                arrived, message = await asyncio.wait_for(events.get(), 10)
                shown = next((c for c in message["chargers"] if c["id"] == charger.id), None)
                if shown is not None and shown["live_status"] == wanted:
                    delays.append((arrived - sent) * 1000)
                    break
    finally:
        browser.cancel()
    # Leave no charger Faulted: a reservation due on one would move its booking elsewhere.
    for point in points:
        if point.connectors[1].status != "Available":
            await point.status(1, "Available")
    return delays, heartbeats


async def measure_reservations(
    points: list[SimulatedChargePoint], chargers: list[Charger], bus: RedisBus, count: int
) -> list[float]:
    count = min(count, len(points))
    lead = timedelta(minutes=int(os.environ.get("RESERVE_LEAD_MINUTES", "10")))
    start = (datetime.now(UTC) + lead + timedelta(seconds=40)).replace(second=0, microsecond=0) + timedelta(minutes=1)
    planned = start - lead
    stations: set[int] = set()
    for n in range(count):
        user = await User.create(
            email=f"bench{n}-{secrets.token_hex(3)}@example.com",
            username=f"bench{n}-{secrets.token_hex(3)}",
            password_hash="x",
            role=Role.DRIVER,
        )
        charger = chargers[n]
        await Booking.create(
            user=user,
            station_id=charger.station_id,  # type: ignore[attr-defined]
            charger=charger,
            slot_start=start,
            slot_end=start + timedelta(hours=1),
            status=BookingStatus.PAID,
            amount_due=15000,
            currency="INR",
        )
        stations.add(charger.station_id)  # type: ignore[attr-defined]
    for station_id in stations:  # as the booking path does after its commit: the worker re-plans
        await publish_availability(bus, station_id, datetime.now(UTC))
    print(f"{count} bookings start at {start:%H:%M:%S}; reservations planned for {planned:%H:%M:%S}")

    async def arrival(point: SimulatedChargePoint) -> float:
        while True:
            command = await point.received.get()
            if command.action == "ReserveNow":
                return time.time()

    wait = (planned - datetime.now(UTC)).total_seconds() + 30
    arrivals = await asyncio.wait_for(asyncio.gather(*(arrival(p) for p in points[:count])), wait)
    return [at - planned.timestamp() for at in arrivals]


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def rows(result: Result) -> list[tuple[str, str, str]]:
    """(measure, figure, target) for the report and RESULTS.md."""
    status_p50, status_p99 = percentile(result.status_ms, 0.5), percentile(result.status_ms, 0.99)
    beat_p50, beat_p99 = percentile(result.heartbeat_ms, 0.5), percentile(result.heartbeat_ms, 0.99)
    late = result.reserve_late_s
    mib = f"{result.rss_before_kib // 1024} -> {result.rss_after_kib // 1024} MiB"
    return [
        (
            "charge points held (connected, booted, status reported)",
            f"{result.held:,} of {result.charge_points:,} in {result.connect_seconds:.1f} s",
            f"all: {_verdict(result.held == result.charge_points)}",
        ),
        ("server memory per charge point (VmRSS)", f"{result.kib_per_charge_point:.1f} KiB ({mib})", "recorded"),
        (
            f"StatusNotification -> `/ws/stations` event, {len(result.status_ms)} samples: p50 / p99",
            f"{status_p50:.1f} / {status_p99:.1f} ms",
            f"p99 <= {STATUS_P99_TARGET_MS:.0f} ms: {_verdict(status_p99 <= STATUS_P99_TARGET_MS)}",
        ),
        (
            "reference: Heartbeat round trip on the same sockets: p50 / p99",
            f"{beat_p50:.1f} / {beat_p99:.1f} ms",
            f"status p99 = {status_p99 / beat_p99:.1f}x the reference's",
        ),
        (
            f"ReserveNow after its planned instant, {result.bookings} bookings at one minute: min / p50 / max",
            f"{min(late):.3f} / {percentile(late, 0.5):.3f} / {max(late):.3f} s ({len(late)} arrived)",
            f"all <= {RESERVE_LATE_TARGET_S:.0f} s: {_verdict(max(late) <= RESERVE_LATE_TARGET_S)}",
        ),
    ]


def record(result: Result) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    table = ["| measure | figure | target |", "| --- | --- | --- |"]
    table += [f"| {measure} | {figure} | {target} |" for measure, figure, target in rows(result)]
    body = "\n".join(
        [
            f"`python bench/bench_ocpp.py`, {when}; {machine()}. PostgreSQL + Redis on the same machine; one "
            "Hypercorn process (uvloop, `--workers 0`) and one arq worker; the charge points (the `ocpp` "
            "package's `ChargePoint` over `websockets`) and the browser socket run in the benchmark's own "
            f"process next to them. Load average when it finished: {load} (1 / 5 / 15 min).",
            "",
            *table,
            "",
            "Connecting includes each charge point's HTTP Basic check, an argon2 verification of its key (tens "
            "of milliseconds of CPU, off the event loop), so a thousand charge points reconnecting at once "
            "(after a web process restart) take that long to be all back. The status delay runs from the charge "
            "point sending StatusNotification to the browser reading the event: the handler stores the status, "
            "reads the station's chargers in one statement and publishes through Redis, whose subscriber in the "
            "web process fans it out to the browser socket. The reference is a Heartbeat's round trip on the "
            "same sockets (OCPP framing and schema checks on both ends, one database write, no publish).",
        ]
    )
    record_section(SECTION, body)


async def run(args: argparse.Namespace) -> Result:
    async with fresh_stack(args, "ocpp") as (stack, bus):
        chargers = await seed(args.charge_points)
        start_processes(stack)
        await wait_ready(stack, bus)
        before = rss_kib(stack.server.pid)
        began = time.perf_counter()
        fleet = await open_charge_points(stack.port, args.charge_points)
        points = fleet.points
        connect_seconds = time.perf_counter() - began
        await asyncio.sleep(2)
        after = rss_kib(stack.server.pid)
        print(f"{len(points)} charge points held in {connect_seconds:.1f} s")
        status_ms, heartbeat_ms = await measure_status(points, chargers, stack.port, args.samples)
        late = await measure_reservations(points, chargers, bus, args.bookings)
        await fleet.close()
    return Result(
        args.charge_points,
        len(points),
        connect_seconds,
        before,
        after,
        status_ms,
        heartbeat_ms,
        late,
        min(args.bookings, len(points)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--charge-points", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=200, help="StatusNotifications timed to the browser")
    parser.add_argument("--bookings", type=int, default=200, help="bookings starting at the same minute")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    raise_fd_limit()
    print(machine())
    result = uvloop.run(run(args))
    for measure, figure, target in rows(result):
        print(f"{measure}: {figure} ({target})")
    if args.record:
        record(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
