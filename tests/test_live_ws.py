"""The live channel: a socket gets a snapshot, then every status and availability event of its
station, heartbeats, and a fresh snapshot whenever messages may have been lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
from quart import Quart
from quart.testing.connections import WebsocketDisconnectError, WebsocketResponseError

from app import create_app, events
from app.bus import RedisBus
from app.live import CLOSE_TOO_SLOW, Hub
from app.models import Station
from app.state import state
from tests.conftest import DEFAULT_NOW, ApiClient, Backend, base_settings
from tests.helpers import (
    daily,
    eventually,
    free_port,
    live_stack,
    make_station,
    own_redis,
    receive,
    receive_type,
    redis_server,
    require_redis_server,
    wait_for_port,
)
from tests.helpers import insert_booking as book


async def publish_status(app: Quart, station_id: int) -> dict[str, Any]:
    app_state = state(app)
    message = await events.publish_status(app_state.bus, station_id, app_state.clock.now())
    assert message is not None
    return message


@contextmanager
def hub_settings(app: Quart, **values: Any) -> Iterator[Hub]:
    live = state(app).hub
    saved = {name: getattr(live, name) for name in values}
    for name, value in values.items():
        setattr(live, name, value)
    try:
        yield live
    finally:
        for name, value in saved.items():
            setattr(live, name, value)


@pytest.fixture
async def station(db: Backend) -> Station:
    return await make_station()


@pytest.fixture
async def socket(app: Quart, station: Station) -> AsyncIterator[Any]:
    async with app.test_client().websocket(f"/ws/stations/{station.id}") as connection:
        yield connection


async def test_a_socket_gets_the_station_snapshot_first(socket: Any, station: Station) -> None:
    snapshot = await receive(socket)
    assert snapshot["type"] == "snapshot"
    assert snapshot["station_id"] == station.id
    assert snapshot["is_open"] is True  # 05:00 UTC, open 04:00-20:00
    assert snapshot["open_time"] == "04:00:00" and snapshot["close_time"] == "20:00:00"
    assert datetime.fromisoformat(snapshot["next_change_at"]) == DEFAULT_NOW.replace(hour=20)
    assert datetime.fromisoformat(snapshot["server_time"]) == DEFAULT_NOW
    assert [c["charger_number"] for c in snapshot["chargers"]] == [1, 2]
    # Whole chargers (connector, power, what the charger itself reports): a page draws one it has
    # not seen before from this alone.
    assert set(snapshot["chargers"][0]) == {
        "id",
        "charger_number",
        "charger_type",
        "power_kw",
        "status",
        "available_now",
        "live_status",
        "online",
        "session",
    }
    assert snapshot["total_chargers"] == 2
    assert all(c["available_now"] for c in snapshot["chargers"])
    assert isinstance(snapshot["seq"], int)


async def test_a_status_change_reaches_the_socket_after_the_snapshot(
    app: Quart, socket: Any, station: Station, clock: Any
) -> None:
    snapshot = await receive(socket)
    clock.set(DEFAULT_NOW.replace(hour=20))
    published = await publish_status(app, station.id)
    event = await receive_type(socket, "status")
    assert event["is_open"] is False
    assert event["station_id"] == station.id
    assert event["seq"] == published["seq"] == snapshot["seq"] + 1
    assert datetime.fromisoformat(event["next_change_at"]) == DEFAULT_NOW.replace(hour=4) + timedelta(days=1)
    assert "channel" not in event


async def test_a_booking_change_reaches_the_socket_as_availability(app: Quart, socket: Any, station: Station) -> None:
    await receive(socket)
    await book(station, start=DEFAULT_NOW, hold_until=DEFAULT_NOW + timedelta(minutes=10))
    app_state = state(app)
    await events.publish_availability(app_state.bus, station.id, app_state.clock.now())
    event = await receive_type(socket, "availability")
    assert [c["available_now"] for c in event["chargers"]] == [False, True]


async def test_cache_only_messages_and_other_stations_events_are_not_forwarded(
    app: Quart, socket: Any, station: Station
) -> None:
    await receive(socket)
    other = await make_station("Other")
    app_state = state(app)
    await events.publish_changed(app_state.bus, station.id)
    await publish_status(app, other.id)
    await publish_status(app, station.id)
    event = await receive_type(socket, "status")
    assert event["station_id"] == station.id


async def test_the_all_stations_channel_snapshots_every_station_then_forwards_their_events(
    app: Quart, db: Backend
) -> None:
    first, second = await make_station("A"), await make_station("B", hours=daily("08:00", "20:00"))
    async with app.test_client().websocket("/ws/stations") as connection:
        snapshot = await receive(connection)
        assert snapshot["type"] == "snapshot"
        by_id = {s["station_id"]: s for s in snapshot["stations"]}
        assert by_id[first.id]["is_open"] is True and by_id[second.id]["is_open"] is False
        assert {"seq", "next_change_at", "available_chargers"} <= set(by_id[first.id])
        await publish_status(app, second.id)
        await publish_status(app, first.id)
        assert (await receive_type(connection, "status"))["station_id"] == second.id
        assert (await receive_type(connection, "status"))["station_id"] == first.id


async def test_the_all_stations_channel_can_be_narrowed_to_the_stations_a_page_shows(app: Quart, db: Backend) -> None:
    first, second = await make_station("A"), await make_station("B")
    async with app.test_client().websocket(f"/ws/stations?ids={second.id}") as connection:
        snapshot = await receive(connection)
        assert [s["station_id"] for s in snapshot["stations"]] == [second.id]
        await publish_status(app, first.id)
        await publish_status(app, second.id)
        assert (await receive_type(connection, "status"))["station_id"] == second.id


async def test_a_cross_site_handshake_is_refused(app: Quart, station: Station) -> None:
    headers = {"Origin": "https://evil.example"}
    with pytest.raises(WebsocketResponseError) as refused:
        async with app.test_client().websocket(f"/ws/stations/{station.id}", headers=headers) as connection:
            await receive(connection)
    assert refused.value.response.status_code == 403


async def test_a_same_origin_handshake_is_accepted(app: Quart, station: Station) -> None:
    headers = {"Origin": "http://localhost"}
    async with app.test_client().websocket(f"/ws/stations/{station.id}", headers=headers) as connection:
        assert (await receive(connection))["type"] == "snapshot"


async def test_an_unknown_station_is_refused_with_404(app: Quart, db: Backend) -> None:
    with pytest.raises(WebsocketResponseError) as refused:
        async with app.test_client().websocket("/ws/stations/999") as connection:
            await receive(connection)
    assert refused.value.response.status_code == 404
    assert state(app).hub.client_count == 0


async def test_an_idle_socket_gets_heartbeats(app: Quart, station: Station) -> None:
    with hub_settings(app, heartbeat=0.01):
        async with app.test_client().websocket(f"/ws/stations/{station.id}") as connection:
            await receive(connection)
            assert await receive(connection) == {"type": "ping"}


async def test_a_resync_sends_a_fresh_snapshot(app: Quart, socket: Any, station: Station) -> None:
    await receive(socket)
    # A change whose event was lost (Redis was away): only the resync can tell the client.
    await Station.filter(id=station.id).update(status="MAINTENANCE")
    await state(app).bus.publish("anything", {"type": "resync"})
    fresh = await receive_type(socket, "snapshot")
    assert fresh["station_status"] == "MAINTENANCE"


async def test_a_client_too_slow_for_its_queue_is_disconnected_without_holding_up_others(
    app: Quart, station: Station
) -> None:
    status = {"type": "status", "seq": 1, "station_id": station.id, "is_open": True}
    path = f"/ws/stations/{station.id}"
    async with app.test_client().websocket(path) as fast:
        await receive(fast)
        with hub_settings(app, client_queue_size=3) as live:
            async with app.test_client().websocket(path) as slow:
                await receive(slow)
                for _ in range(5):  # more than the slow socket's queue holds, before it can send any
                    live.dispatch(status)
                received = [await receive(slow) for _ in range(3)]
                with pytest.raises(WebsocketDisconnectError) as closed:
                    await receive(slow)
        assert closed.value.args == (CLOSE_TOO_SLOW,)
        assert [m["type"] for m in received] == ["status"] * 3
        assert [(await receive(fast))["type"] for _ in range(5)] == ["status"] * 5


async def test_with_redis_down_http_and_sockets_keep_working_and_resync_when_it_returns(
    db: Backend, clock: Any
) -> None:
    require_redis_server()
    station = await make_station()
    port = free_port()
    with ExitStack() as redis:
        redis.enter_context(redis_server(port))
        await wait_for_port(port)
        async with live_stack(db, f"redis://127.0.0.1:{port}/0", clock) as web:
            app_state, client = state(web), web.test_client()
            async with client.websocket(f"/ws/stations/{station.id}") as socket:
                assert (await receive(socket))["type"] == "snapshot"

                redis.close()  # Redis goes away
                await eventually(lambda: not app_state.bus.connected)
                status = await client.get(f"/api/stations/{station.id}/status")
                assert status.status_code == 200 and (await status.get_json())["is_open"] is True
                assert (await client.get("/readyz")).status_code == 503
                # A change made meanwhile: announcing it must not fail the request that made it,
                # and this process's own sockets hear of it even without Redis.
                await Station.filter(id=station.id).update(status="MAINTENANCE")
                await events.publish_status(app_state.bus, station.id, app_state.clock.now())
                assert (await receive_type(socket, "status"))["station_status"] == "MAINTENANCE"
                assert app_state.hub.client_count == 1  # the socket is still open

                redis.enter_context(redis_server(port))  # Redis is back
                fresh = await receive_type(socket, "snapshot", timeout=10)
                assert fresh["station_status"] == "MAINTENANCE"
                assert (await client.get("/readyz")).status_code == 200


async def test_a_quiet_bus_is_not_mistaken_for_a_lost_one() -> None:
    """Sockets would get a needless snapshot every quiet spell if silence looked like an outage."""
    async with own_redis() as url:
        bus = RedisBus(url, "quiet", socket_timeout=0.1)
        await bus.start()
        try:
            assert await bus.wait_connected(5)
            with bus.subscribe() as subscription:
                await asyncio.sleep(0.5)  # several socket timeouts without a message
                assert subscription.queue.empty()
                assert bus.connected
        finally:
            await bus.close()


def test_the_server_declines_per_message_compression_that_browsers_offer() -> None:
    """A compressor per socket would cost about 130 KiB of every idle socket's memory."""
    from hypercorn.protocol.ws_stream import Handshake

    create_app(base_settings())
    offer = [
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    _, headers, _ = Handshake(offer, "1.1").accept(None, [])
    assert b"sec-websocket-extensions" not in dict(headers)


def test_declining_compression_fails_loudly_if_the_hypercorn_internal_it_patches_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The decline works by replacing a name Hypercorn's handshake looks up in its own module; if
    a Hypercorn upgrade moves it, starting the app must fail, not quietly cost 136 KiB a socket."""
    from hypercorn.protocol import ws_stream

    assert "PerMessageDeflate" in ws_stream.Handshake.accept.__code__.co_names
    monkeypatch.delattr(ws_stream, "PerMessageDeflate")
    with pytest.raises(RuntimeError, match="PerMessageDeflate moved"):
        create_app(base_settings())


async def test_a_new_charger_reaches_the_socket_whole_with_the_new_counts(
    socket: Any, station: Station, operator_client: ApiClient
) -> None:
    await receive(socket)  # the snapshot
    added = await operator_client.post(
        f"/api/stations/{station.id}/chargers", json={"charger_type": "CHADEMO", "power_kw": 150}
    )
    assert added.status_code == 201
    event = await receive(socket)
    assert event["type"] == "availability"
    new = next(c for c in event["chargers"] if c["charger_number"] == 3)
    assert (new["charger_type"], new["power_kw"], new["status"], new["available_now"]) == (
        "CHADEMO",
        150.0,
        "AVAILABLE",
        True,
    )
    assert (event["available_chargers"], event["total_chargers"]) == (3, 3)
