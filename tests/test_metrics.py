"""``GET /metrics``: what an operator's Prometheus scrapes from each web process (DESIGN §16)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from app.bus import RedisBus
from app.clock import FrozenClock
from app.metrics import Metrics
from app.models import Notification, NotificationKind, Station, User
from app.state import state
from app.transitions import STATUS, broadcast
from tests.conftest import ApiClient, Backend
from tests.helpers import RedisProcess, add_station, another_site, eventually

TOKEN = "scrape-me-please-0123456789"
#: 08:00 in Kolkata on the suite's day: the Mumbai station (08:00-22:00) opens.
OPENING = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)


async def scrape(client: ApiClient, **kwargs: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and labels."""
    response = await client.get("/metrics", **kwargs)
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.get_data(as_text=True)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_of(samples: dict[Any, float], route: str, status: str = "200", method: str = "GET") -> float:
    labels = (("method", method), ("route", route), ("status", status))
    return samples.get(("chargeslot_http_requests_total", labels), 0.0)


def timed(samples: dict[Any, float], route: str) -> float:
    return samples.get(("chargeslot_http_request_duration_seconds_count", (("method", "GET"), ("route", route))), 0.0)


async def test_requests_are_counted_and_timed_by_route_template_fast_lane_included(client: ApiClient) -> None:
    first, second = await add_station(), await add_station("Second")
    status_route = "/api/stations/<int:station_id>/status"
    before = await scrape(client)
    for station_id in (first, second, first):
        assert (await client.get(f"/api/stations/{station_id}/status")).status_code == 200
    await client.get("/api/stations")
    await client.get("/api/stations")  # the catalogue is warm now: the lane answers this one
    await client.get(f"/api/stations/{first}")
    await client.get("/api/stations/999999")
    await client.get("/no/such/page")
    after = await scrape(client)

    def grew(route: str, status: str = "200") -> float:
        return requests_of(after, route, status) - requests_of(before, route, status)

    assert grew(status_route) == 3, "one series for every station's status, lane or not"
    assert grew("/api/stations") == 2
    assert grew("/api/stations/<int:station_id>") == 1
    assert grew("/api/stations/<int:station_id>", "404") == 1
    assert grew("unmatched", "404") == 1
    assert timed(after, status_route) - timed(before, status_route) == 3
    assert not [key for key in after if any(f"/api/stations/{first}" in value for _, value in key[1])], "no raw paths"
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in after.items()
        if name == "chargeslot_http_request_duration_seconds_bucket" and ("route", status_route) in labels
    )
    assert [value for _, value in buckets] == sorted(value for _, value in buckets), "cumulative"
    assert buckets[-1] == (float("inf"), timed(after, status_route))


async def test_invented_methods_and_paths_cannot_grow_the_number_of_series(client: ApiClient) -> None:
    before = await scrape(client)
    for n in range(5):
        await client.request(f"BREW{n}", f"/api/stations/{n}/coffee")
        await client.get(f"/nowhere/{n}")
    after = await scrape(client)
    new = {key for key in after if key[0] == "chargeslot_http_requests_total"} - set(before)
    assert new <= {
        ("chargeslot_http_requests_total", (("method", "OTHER"), ("route", "unmatched"), ("status", "404"))),
        ("chargeslot_http_requests_total", (("method", "GET"), ("route", "unmatched"), ("status", "404"))),
    }, new
    assert requests_of(after, "unmatched", "404", "OTHER") - requests_of(before, "unmatched", "404", "OTHER") == 5


async def test_a_metrics_token_keeps_out_scrapers_without_it(
    client: ApiClient, backend: Backend, clock: FrozenClock
) -> None:
    async with another_site(backend, clock, metrics_token=TOKEN) as site:
        for headers in ({}, {"Authorization": "Bearer wrong-token-of-the-same-size"}, {"Authorization": TOKEN}):
            refused = await site.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["Content-Type"] == "application/problem+json"
            assert refused.headers["WWW-Authenticate"].startswith("Bearer")
            body = await refused.get_json()
            assert body["code"] == "unauthenticated" and "Bearer" in body["detail"]
        samples = await scrape(site, headers={"Authorization": f"Bearer {TOKEN}"})
        assert requests_of(samples, "/metrics", "401") == 3
    assert (await client.get("/metrics")).status_code == 200, "without a token the figures are open"


async def test_open_websockets_are_a_gauge(app: Quart, client: ApiClient) -> None:
    station_id = await add_station()
    key = ("chargeslot_websockets_open", ())
    assert (await scrape(client))[key] == 0
    async with app.test_client().websocket(f"/ws/stations/{station_id}") as socket:
        await socket.receive_json()
        async with app.test_client().websocket("/ws/stations") as everyone:
            await everyone.receive_json()
            assert (await scrape(client))[key] == 2
    await eventually(lambda: state(app).hub.client_count == 0)
    assert (await scrape(client))[key] == 0


async def test_a_transition_published_late_is_measured_from_its_planned_instant(
    app: Quart, client: ApiClient, clock: FrozenClock
) -> None:
    station_id = await add_station()
    count, total = "chargeslot_transition_delay_seconds_count", "chargeslot_transition_delay_seconds_sum"
    before = await scrape(client)
    clock.set(OPENING + timedelta(milliseconds=400))
    app_state = state(app)
    assert await broadcast(station_id, OPENING, bus=app_state.bus, now=clock.now(), kind=STATUS)

    async def measured() -> bool:
        return (await scrape(client))[(count, ())] == before[(count, ())] + 1

    await eventually(measured, what="the transition's delay")
    after = await scrape(client)
    assert after[(total, ())] - before[(total, ())] == pytest.approx(0.4)
    within_half_a_second = ("chargeslot_transition_delay_seconds_bucket", (("le", "0.5"),))
    assert after[within_half_a_second] - before[within_half_a_second] == 1


async def test_an_operator_change_is_no_transition_and_adds_no_delay(
    client: ApiClient, operator_client: ApiClient
) -> None:
    station_id = await add_station()
    count = ("chargeslot_transition_delay_seconds_count", ())
    before = (await scrape(client))[count]
    response = await operator_client.patch(f"/api/stations/{station_id}", json={"status": "MAINTENANCE"})
    assert response.status_code == 200
    assert (await Station.get(id=station_id)).status == "MAINTENANCE"
    assert (await scrape(client))[count] == before


async def test_a_registered_gauge_is_sampled_at_each_scrape_and_a_failing_one_is_left_out(
    client: ApiClient, backend: Backend, clock: FrozenClock
) -> None:
    waiting = [3]

    async def backlog() -> float:
        return waiting[0]

    async def broken() -> float:
        raise RuntimeError("the table is not there")

    async with another_site(backend, clock) as site:
        metrics = state(site.app).metrics
        metrics.register_gauge("chargeslot_queue_waiting", "Items waiting.", backlog)
        metrics.register_gauge("chargeslot_peers_online", "Peers connected.", broken)
        assert (await scrape(site))[("chargeslot_queue_waiting", ())] == 3
        waiting[0] = 0
        samples = await scrape(site)
        assert samples[("chargeslot_queue_waiting", ())] == 0
        assert not [key for key in samples if key[0].startswith("chargeslot_peers")]
        with pytest.raises(ValueError, match="registered already"):
            metrics.register_gauge("chargeslot_queue_waiting", "twice", backlog)


async def test_the_outbox_backlog_counts_notifications_not_yet_delivered(
    client: ApiClient, driver: User, clock: FrozenClock
) -> None:
    def waiting(samples: dict[Any, float]) -> float:
        return samples[("chargeslot_outbox_backlog", ())]

    before = waiting(await scrape(client))
    written = await Notification.create(
        user=driver,
        kind=NotificationKind.SLOT_REMINDER,
        title="Your slot starts soon",
        body="At 10:00 India Standard Time.",
        created_at=clock.now(),
        dedupe_key="metrics-test",
    )
    assert waiting(await scrape(client)) == before + 1
    written.live_sent_at = clock.now()
    await written.save(update_fields=["live_sent_at"])
    assert waiting(await scrape(client)) == before


async def test_bus_reconnects_are_counted() -> None:
    redis = RedisProcess()
    await redis.start()
    bus = RedisBus(redis.url, "metrics")
    metrics = Metrics.of_web_process(bus, lambda: 0)
    await bus.start()
    try:
        assert await bus.wait_connected(5)
        assert b"chargeslot_bus_reconnects_total 0.0" in await metrics.exposition()
        redis.stop()
        await eventually(lambda: not bus.connected, what="the bus to notice Redis is gone")
        await redis.start()
        await eventually(lambda: bus.reconnects == 1, what="the bus to reconnect")
        assert b"chargeslot_bus_reconnects_total 1.0" in await metrics.exposition()
    finally:
        await bus.close()
        redis.stop()
