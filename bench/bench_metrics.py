"""What counting every request for ``GET /metrics`` costs, against a bare Quart hello-world.

    python bench/bench_metrics.py [--record] [--requests N]

In one process, with no network and no database, so that the machine's other load matters as
little as it can: the time of one request to a Quart hello-world through its ASGI app (the
reference, as in ``bench_http.py``), then the time ``MeasuredRequests`` (``app.metrics``) adds to a
request (the same trivial ASGI app called bare and wrapped), and the time of one scrape of
``/metrics`` holding 50 routes' figures. Each figure is the median of 7 runs. The overhead is
reported as a fraction of the hello-world request: what it can take from the status endpoint's
throughput, whose target is 0.8x the hello-world's (DESIGN §12). ``--record`` replaces the
"## Request metrics" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from quart import Quart

from app.metrics import ROUTE, MeasuredRequests, Metrics
from bench.common import machine, record_section

SECTION = "## Request metrics"
RUNS = 7

hello_app = Quart("hello")


@hello_app.get("/")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


async def answered(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do: what the fast lane does, without computing a body."""
    scope[ROUTE] = "/api/stations/<int:station_id>/status"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def http_scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {},
    }


class Client:
    """The request's one body message, then a connection that stays open until the app is done."""

    def __init__(self) -> None:
        self.sent = False

    async def receive(self) -> dict[str, Any]:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # never set: the app cancels this once it has answered
        return {"type": "http.disconnect"}


async def per_call(app: Callable[..., Awaitable[None]], path: str, count: int) -> float:
    """Seconds per request, median of RUNS runs of ``count`` requests."""

    async def send(message: dict[str, Any]) -> None:
        return None

    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(count):
            await app(http_scope(path), Client().receive, send)
        samples.append((time.perf_counter() - started) / count)
    return statistics.median(samples)


async def scrape_time(routes: int) -> float:
    metrics = Metrics()
    for n in range(routes):
        for status in (200, 404):
            metrics.record_request("GET", f"/route/{n}", status, 0.001 * (n % 7))
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for _ in range(20):
            await metrics.exposition()
        samples.append((time.perf_counter() - started) / 20)
    return statistics.median(samples)


async def measure(count: int) -> dict[str, float]:
    async with hello_app.test_app():
        reference = await per_call(hello_app.asgi_app, "/", count // 10)
    bare = await per_call(answered, "/", count)
    measured = await per_call(MeasuredRequests(answered, Metrics()), "/", count)
    return {"hello": reference, "bare": bare, "measured": measured, "scrape": await scrape_time(50)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.requests))
    overhead = figures["measured"] - figures["bare"]
    share = overhead / figures["hello"]
    print(f"hello-world request through Quart: {figures['hello'] * 1e6:8.1f} us (reference)")
    print(f"counting and timing one request:   {overhead * 1e6:8.2f} us = {share:.3f}x the reference")
    print(f"one /metrics scrape, 50 routes:    {figures['scrape'] * 1e3:8.2f} ms")
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        body = "\n".join(
            [
                f"`python bench/bench_metrics.py` on {stamp}; {machine()}.",
                "In one process, no network: a Quart hello-world request through its ASGI app is the reference; "
                "the overhead is a trivial ASGI app wrapped in `MeasuredRequests` minus the same app bare; "
                "medians of 7 runs.",
                "",
                "| measured | time | x hello-world request |",
                "| --- | --- | --- |",
                f"| hello-world request (reference) | {figures['hello'] * 1e6:.1f} us | 1.000 |",
                f"| counting and timing one request | {overhead * 1e6:.2f} us | {share:.3f} |",
                f"| one `/metrics` scrape, 50 routes x 2 statuses | {figures['scrape'] * 1e3:.2f} ms | "
                f"{figures['scrape'] / figures['hello']:.1f} |",
                "",
                "The status endpoint's target is 0.8x the hello-world's throughput; counting takes this "
                "share of a hello-world request's time from it (see HTTP throughput for the end-to-end runs).",
            ]
        )
        print(f"recorded in {record_section(SECTION, body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
