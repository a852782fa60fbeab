"""What ``GET /metrics`` reports (DESIGN §16), in the Prometheus text format via ``prometheus-client``.

Every web process counts for itself and exposes its own figures: scrape each process (each one
listens on its own port), and let Prometheus sum across them. Nothing is shared between processes.

Requests are counted where they cost least. ``MeasuredRequests`` wraps the whole ASGI app, the fast
lane included, and adds one to a plain ``int`` in a dict per request, with the duration put in its
histogram bucket the same way; ``prometheus-client``'s own ``Counter`` and ``Histogram`` take a lock
and build label tuples on every call, which the status endpoint (answered in tens of microseconds)
would feel. The figures become Prometheus metric families only when scraped (``Collector``).
Requests are labelled by route template (``/api/stations/<int:station_id>/status``), never by raw
path, so the number of series stays fixed whatever ids clients send; a path no route matches is
``unmatched``.

Other gauges are sampled when scraped: open WebSockets, and whatever another module registers with
``Metrics.register_gauge(name, help, sample)``, where ``sample`` is an async function returning the
current value (a count of rows, say). A sample that fails is left out of that scrape and logged,
never the scrape's failure.

Transition delay is how late a planned transition (a station opening or closing, a charger becoming
busy or free) was published: the publisher puts the planned instant and its lateness on the event
(``app.transitions``), and every web process sees every event on the bus, so each reports the
delay of all transitions, whichever process (worker or embedded scheduler) published them.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from app.bus import Bus
from app.headers import ASGIApp

log = logging.getLogger(__name__)

#: Where the route template that answered waits in the ASGI scope (set by the app's request hook
#: and by the fast lane).
ROUTE = "chargeslot.route"
UNMATCHED = "unmatched"
#: Methods counted by name; any other (clients may send any token) is counted as OTHER, so that
#: nobody can grow the number of series by inventing methods.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Seconds. From the fast lane's tens of microseconds to a slow export.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Seconds late. The contract wants transitions on screens within a second of their instant.
TRANSITION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Sample = Callable[[], Awaitable[float]]


class Histogram:
    """Plain counts per bucket, a count and a sum: what a Prometheus histogram needs, kept with
    nothing dearer than a bisect and three additions per observation."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        running, buckets = 0, list[tuple[str, float]]()
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


@dataclass
class Metrics:
    """One web process's figures and the gauges sampled when they are scraped."""

    requests: dict[tuple[str, str, int], int] = field(default_factory=dict)
    durations: dict[tuple[str, str], Histogram] = field(default_factory=dict)
    transition_delay: Histogram = field(default_factory=lambda: Histogram(TRANSITION_BUCKETS))
    gauges: dict[str, tuple[str, Sample]] = field(default_factory=dict)
    #: Counters read when scraped (bus reconnects): name -> (help, read).
    counters: dict[str, tuple[str, Callable[[], float]]] = field(default_factory=dict)

    @classmethod
    def of_web_process(cls, bus: Bus, open_websockets: Callable[[], int]) -> Metrics:
        """A web process's figures: its requests (``MeasuredRequests``), its open WebSockets, its
        bus's reconnects and every transition's delay seen on that bus."""
        metrics = cls()

        async def websockets() -> float:
            return open_websockets()

        metrics.register_gauge(
            "chargeslot_websockets_open", "Live-update WebSockets this process holds open now.", websockets
        )
        metrics.register_counter(
            "chargeslot_bus_reconnects",
            "Times this process's bus connection was lost and made again.",
            lambda: bus.reconnects,
        )
        bus.listen(metrics.observe_event)
        return metrics

    def record_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        histogram = self.durations.get((method, route))
        if histogram is None:
            histogram = self.durations[method, route] = Histogram(REQUEST_BUCKETS)
        histogram.observe(seconds)

    def register_gauge(self, name: str, help: str, sample: Sample) -> None:
        """Report ``await sample()`` as the gauge ``name`` at every scrape. For figures that live
        elsewhere (rows waiting in a table, peers connected), so that nothing counts them between
        scrapes. ``name`` follows Prometheus naming (``chargeslot_outbox_backlog``)."""
        if name in self.gauges or name in self.counters:
            raise ValueError(f"a metric named {name} is registered already")
        self.gauges[name] = (help, sample)

    def register_counter(self, name: str, help: str, read: Callable[[], float]) -> None:
        """Report ``read()``, a count that only grows and that its owner keeps, at every scrape."""
        if name in self.gauges or name in self.counters:
            raise ValueError(f"a metric named {name} is registered already")
        self.counters[name] = (help, read)

    def observe_event(self, message: dict[str, Any]) -> None:
        """A bus listener: the lateness of every planned transition published, by anyone."""
        late = message.get("late_by_ms")
        if isinstance(late, int | float) and not isinstance(late, bool):
            self.transition_delay.observe(max(0.0, late / 1000))

    async def exposition(self) -> bytes:
        """The Prometheus text for a scrape: the gauges sampled now, everything else as counted."""
        sampled: list[Metric] = []
        for name, (help, sample) in sorted(self.gauges.items()):
            try:
                value = float(await sample())
            except Exception:
                log.warning("metrics: could not sample %s; left out of this scrape", name, exc_info=True)
                continue
            gauge = GaugeMetricFamily(name, help)
            gauge.add_metric([], value)
            sampled.append(gauge)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(self, sampled))
        return generate_latest(registry)


class _Snapshot(Collector):
    def __init__(self, metrics: Metrics, sampled: list[Metric]) -> None:
        self._metrics = metrics
        self._sampled = sampled

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "chargeslot_http_requests",
            "HTTP requests answered, by route template.",
            labels=["method", "route", "status"],
        )
        for (method, route, status), count in sorted(metrics.requests.items()):
            requests.add_metric([method, route, str(status)], count)
        yield requests
        durations = HistogramMetricFamily(
            "chargeslot_http_request_duration_seconds",
            "Time from a request's arrival to its last byte sent, by route template.",
            labels=["method", "route"],
        )
        for (method, route), histogram in sorted(metrics.durations.items()):
            durations.add_metric([method, route], histogram.cumulative(), histogram.total)
        yield durations
        delay = HistogramMetricFamily(
            "chargeslot_transition_delay_seconds",
            "How long after its planned instant a station's opening, closing or charger change was published.",
        )
        delay.add_metric([], metrics.transition_delay.cumulative(), metrics.transition_delay.total)
        yield delay
        for name, (help, read) in sorted(metrics.counters.items()):
            counter = CounterMetricFamily(name, help)
            counter.add_metric([], read())
            yield counter
        yield from self._sampled


class MeasuredRequests:
    """ASGI middleware: every HTTP request counted and timed under its route template."""

    def __init__(self, inner: ASGIApp, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._inner(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server sends when the app fails before starting a response

        async def send_counted(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._inner(scope, receive, send_counted)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            self._metrics.record_request(method, scope.get(ROUTE, UNMATCHED), status, time.perf_counter() - started)
