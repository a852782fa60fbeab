"""The station directory answers from memory and forgets a station the moment its channel speaks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from app import events
from app.directory import StationDirectory
from app.models import Booking, BookingStatus, Charger, Station
from app.state import state
from app.station_views import StationView
from tests import helpers
from tests.conftest import Backend
from tests.helpers import daily, eventually

#: The directory's station: in UTC, open 08:00-20:00, so closed at the suite's 05:00.
make_station = partial(helpers.make_station, hours=daily("08:00", "20:00"))


async def test_a_cached_view_is_served_until_its_station_channel_speaks(db: Backend, app) -> None:
    directory = state(app).directory
    station = await make_station("Old name")
    assert (await directory.get(station.id)).name == "Old name"
    await Station.filter(id=station.id).update(name="New name")
    assert (await directory.get(station.id)).name == "Old name"  # no event yet: still the cached copy

    # Another process publishing on the station's channel is what makes this process reload.
    await state(app).bus.publish(events.station_channel(station.id), {"type": "changed", "seq": 1})

    async def renamed() -> bool:
        return (await directory.get(station.id)).name == "New name"

    await eventually(renamed)


async def test_resync_after_a_bus_reconnect_drops_every_station(db: Backend, app) -> None:
    directory = state(app).directory
    first, second = await make_station("A"), await make_station("B")
    await directory.get(first.id)
    await directory.catalogue()
    await Station.filter(id__in=[first.id, second.id]).update(city="Nagpur")
    await state(app).bus.publish("anything", {"type": "resync"})  # what every subscriber gets after a reconnect

    async def reloaded() -> bool:
        return [v.city for v in await directory.catalogue()] == ["Nagpur", "Nagpur"]

    await eventually(reloaded)
    assert (await directory.get(first.id)).city == "Nagpur"


async def test_the_catalogue_picks_up_edited_and_new_stations_from_their_events(db: Backend, app) -> None:
    directory = state(app).directory
    first = await make_station("A")
    assert [v.name for v in await directory.catalogue()] == ["A"]
    second = await make_station("B")
    await Station.filter(id=first.id).update(name="A2")
    await events.publish_changed(state(app).bus, first.id)
    await events.publish_changed(state(app).bus, second.id)
    assert [v.name for v in await directory.catalogue()] == ["A2", "B"]
    assert (await directory.get(second.id)).name == "B"


async def test_availability_changed_publishes_fresh_charger_state(db: Backend, app, driver, clock) -> None:
    directory = state(app).directory
    station = await make_station(chargers=2)
    charger = await Charger.filter(station_id=station.id, charger_number=1).get()
    assert (await directory.get(station.id)).available_count(clock.now()) == 2
    await Booking.create(
        user=driver,
        station=station,
        charger=charger,
        slot_start=clock.now() - timedelta(minutes=15),
        slot_end=clock.now() + timedelta(minutes=45),
        status=BookingStatus.PAID,
        amount_due=15000,
        currency="INR",
    )
    with state(app).bus.subscribe(events.station_channel(station.id)) as subscription:
        message = await events.publish_availability(state(app).bus, station.id, state(app).clock.now())
        delivered = await asyncio.wait_for(subscription.get(), 5)
    assert message is not None
    assert delivered["type"] == "availability"
    assert delivered["station_id"] == station.id
    assert delivered["seq"] == message["seq"]
    assert delivered["available_chargers"] == 1
    assert [(c["charger_number"], c["available_now"]) for c in delivered["chargers"]] == [(1, False), (2, True)]
    # The publishing process reads its own write at once, before the bus delivers anything.
    assert (await directory.get(station.id)).available_count(clock.now()) == 1


async def test_status_changed_carries_the_live_status_shape(db: Backend, app, clock) -> None:
    station = await make_station(timezone="Asia/Kolkata", hours=daily("08:00", "22:00"))
    clock.set(datetime(2026, 12, 2, 5, 0, tzinfo=UTC))  # 10:30 in Kolkata
    with state(app).bus.subscribe(events.station_channel(station.id)) as subscription:
        await events.publish_status(state(app).bus, station.id, state(app).clock.now())
        delivered = await asyncio.wait_for(subscription.get(), 5)
    assert delivered["type"] == "status"
    assert delivered["is_open"] is True
    assert (delivered["open_time"], delivered["close_time"]) == ("08:00:00", "22:00:00")
    assert delivered["next_change_at"] == "2026-12-02T22:00:00+05:30"
    assert delivered["server_time"] == "2026-12-02T05:00:00+00:00"
    assert delivered["station_status"] == "ACTIVE"
    assert delivered["available_chargers"] == 2
    view = await state(app).directory.get(station.id)
    assert view.status == "ACTIVE"
    assert view.status_at(clock.now())["is_open"] is True


async def test_a_load_overtaken_by_an_invalidation_is_not_kept(db: Backend, app) -> None:
    station = await make_station("Before")
    gate = asyncio.Event()

    class SlowDirectory(StationDirectory):
        async def load(self, station_id: int) -> StationView | None:
            view = await super().load(station_id)
            await gate.wait()
            return view

    directory = SlowDirectory(state(app).bus, state(app).clock)
    reading = asyncio.create_task(directory.get(station.id))
    await asyncio.sleep(0.05)
    await Station.filter(id=station.id).update(name="After")
    directory.invalidate(station.id)  # the change arrives while the old rows are in flight
    gate.set()
    assert (await reading).name == "Before"  # that request may see the old copy...
    assert (await directory.get(station.id)).name == "After"  # ...but it is never cached


async def test_concurrent_misses_share_one_load(db: Backend, app) -> None:
    station = await make_station()
    loads: list[int] = []

    class CountingDirectory(StationDirectory):
        async def load(self, station_id: int) -> StationView | None:
            loads.append(station_id)
            return await super().load(station_id)

    directory = CountingDirectory(state(app).bus, state(app).clock)
    views: list[Any] = await asyncio.gather(*(directory.get(station.id) for _ in range(20)))
    assert loads == [station.id]
    assert {id(v) for v in views} == {id(views[0])}
    assert await directory.get(station.id + 1000) is None


async def test_free_chargers_follow_the_clock_without_any_reload(db: Backend, app, driver, clock) -> None:
    directory = state(app).directory
    station = await make_station(chargers=1)
    charger = await Charger.filter(station_id=station.id).get()
    start = clock.now() + timedelta(hours=1)
    await Booking.create(
        user=driver,
        station=station,
        charger=charger,
        slot_start=start,
        slot_end=start + timedelta(hours=1),
        status=BookingStatus.CONFIRMED,
        hold_expires_at=clock.now() + timedelta(hours=1, minutes=30),
        amount_due=15000,
        currency="INR",
    )
    view = await directory.get(station.id)
    assert view.available_count(clock.now()) == 1
    clock.advance(timedelta(hours=1))
    assert view.available_count(clock.now()) == 0  # the held slot has begun
    clock.advance(timedelta(minutes=30))
    assert view.available_count(clock.now()) == 1  # the hold ran out unpaid


async def test_a_dropped_view_is_freed_without_the_cycle_collector(db: Backend, app, clock) -> None:
    """The catalogue is frozen out of the cycle collector's sight, so views must not hold cycles:
    otherwise every reload after an invalidation would leak the old ones."""
    import gc
    import weakref

    station = await make_station()
    view = await state(app).directory.load(station.id)
    assert view is not None
    view.status_at(clock.now())
    view.summary_json(clock.now())
    gone = weakref.ref(view)
    gc.disable()
    try:
        del view
        assert gone() is None
    finally:
        gc.enable()


async def test_a_failed_reload_is_retried_by_the_next_request(db: Backend, app, monkeypatch) -> None:
    from app import directory as directory_module

    directory = state(app).directory
    station = await make_station("Before")
    await directory.catalogue()
    await Station.filter(id=station.id).update(name="After")
    await events.publish_changed(state(app).bus, station.id)
    real = directory_module.load_views

    async def database_down(*args: Any) -> Any:
        raise ConnectionError("database unavailable")

    monkeypatch.setattr(directory_module, "load_views", database_down)
    with pytest.raises(ConnectionError):
        await directory.catalogue()
    monkeypatch.setattr(directory_module, "load_views", real)
    assert [v.name for v in await directory.catalogue()] == ["After"]
