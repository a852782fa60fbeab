"""Drivers are told: a booking's history, the notifications outbox, its delivery to the driver's
open pages over /ws/me (once, and never to anyone else) and the timed reminders."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq import Worker
from quart import Quart

from app import delivery, reminders
from app.closeout import close_out
from app.events import driver_channel, publish_to_driver
from app.hours import HoursSpec
from app.job_queue import DELIVER, REMIND, LocalQueue
from app.models import Notification, Station, User
from app.state import state
from tests.conftest import DEFAULT_NOW, ApiClient, Backend
from tests.helpers import (
    book,
    daily,
    drain,
    eventually,
    live_stack,
    make_kolkata_station,
    make_station,
    make_worker,
    ok,
    pay,
    problem,
    real_now,
    receive_type,
    signed_in,
)

#: 12:00-13:00 at the Kolkata station on the test day; the clock says 10:30 there.
SLOT = "2026-12-02T12:00:00"


@pytest.fixture
async def station(db: Backend) -> Station:
    return await make_kolkata_station()


async def booked_and_paid(client: ApiClient, station: Station, slot: str = SLOT) -> dict[str, Any]:
    booking = await ok(await book(client, station, slot))
    await ok(await pay(client, booking, amount=booking["amount_due"]))
    return dict(booking)


async def deliver(app: Quart) -> int:
    services = state(app)
    return await delivery.deliver_pending(services.clock.now(), bus=services.bus)


async def notes(client: ApiClient) -> dict[str, Any]:
    return dict(await ok(await client.get("/api/me/notifications")))


# -- history and the outbox, written with their causes ------------------------------------------------


async def test_booking_and_paying_are_in_the_history_and_the_driver_is_told_in_station_time(
    driver_client: ApiClient, station: Station
) -> None:
    booking = await booked_and_paid(driver_client, station)
    detail = await ok(await driver_client.get(f"/api/bookings/{booking['booking_id']}"))
    assert [line["event"] for line in detail["history"]] == ["created", "paid"]
    assert "Held charger 1 until 10:40 (Asia/Kolkata)" in detail["history"][0]["detail"]
    assert detail["refund"] is None and detail["cancel_reason"] is None

    listed = await notes(driver_client)
    assert (listed["total"], listed["unread_count"]) == (2, 2)
    receipt, confirmed = listed["items"]  # newest first
    assert (receipt["kind"], confirmed["kind"]) == ("payment_receipt", "booking_confirmed")
    assert receipt["title"] == "Paid 250.00 INR: Mumbai Central Charging Hub"
    assert "Wed 2 Dec, 12:00-13:00 (Asia/Kolkata)" in receipt["body"]
    assert "Pay 250.00 INR by 10:40 to keep it." in confirmed["body"]
    assert receipt["booking_id"] == booking["booking_id"] and receipt["station_id"] == station.id
    assert receipt["read_at"] is None


async def test_cancelling_a_paid_booking_tells_the_driver_about_the_refund(
    driver_client: ApiClient, station: Station
) -> None:
    booking = await booked_and_paid(driver_client, station)
    await ok(await driver_client.post(f"/api/bookings/{booking['booking_id']}/cancel"))
    detail = await ok(await driver_client.get(f"/api/bookings/{booking['booking_id']}"))
    assert detail["history"][-1]["event"] == "cancelled"
    assert detail["refund"] == {"amount": "250.00", "currency": "INR", "status": "REFUNDED"}
    latest = (await notes(driver_client))["items"][0]
    assert latest["kind"] == "booking_cancelled"
    assert "Cancelled by you. A full refund of 250.00 INR is on its way." in latest["body"]


async def test_close_out_writes_expired_and_completed_into_the_history(
    app: Quart, driver_client: ApiClient, station: Station, clock: Any
) -> None:
    held = await ok(await book(driver_client, station, SLOT))
    paid = await booked_and_paid(driver_client, station, "2026-12-02T11:00:00")
    clock.advance(timedelta(hours=3))
    await close_out(clock.now(), bus=state(app).bus, provider=state(app).provider)
    for booking, event in ((held, "expired"), (paid, "completed")):
        detail = await ok(await driver_client.get(f"/api/bookings/{booking['booking_id']}"))
        assert detail["history"][-1]["event"] == event


# -- reading and marking read ---------------------------------------------------------------------


async def test_marking_read_counts_down_and_nobody_else_can_touch_them(
    driver_client: ApiClient, other_client: ApiClient, station: Station, make_user: Any
) -> None:
    await booked_and_paid(driver_client, station)
    first, second = (await notes(driver_client))["items"]
    assert (await ok(await driver_client.post(f"/api/me/notifications/{first['id']}/read")))["unread_count"] == 1
    again = await ok(await driver_client.post(f"/api/me/notifications/{first['id']}/read"))
    assert again["unread_count"] == 1
    stranger = await signed_in(other_client, await make_user())
    await problem(await stranger.post(f"/api/me/notifications/{second['id']}/read"), 404, "not_found")
    assert (await notes(stranger))["items"] == []
    assert (await ok(await driver_client.post("/api/me/notifications/read-all")))["unread_count"] == 0
    page = await ok(await driver_client.get("/api/me/notifications?limit=1&offset=1"))
    assert page["total"] == 2 and len(page["items"]) == 1 and page["items"][0]["read_at"] is not None


async def test_notifications_need_a_signed_in_user(client: ApiClient) -> None:
    await problem(await client.get("/api/me/notifications"), 401, "unauthenticated")


# -- live, over /ws/me ----------------------------------------------------------------------------


async def test_ws_me_sends_the_unread_count_then_each_notification_once(
    app: Quart, driver_client: ApiClient, driver: User, station: Station
) -> None:
    await deliver(app)  # nothing else pending from earlier tests
    async with driver_client.raw.websocket("/ws/me") as socket:
        assert (await receive_type(socket, "snapshot")) == {"type": "snapshot", "unread_count": 0}
        booking = await ok(await book(driver_client, station, SLOT))
        assert await deliver(app) == 1
        event = await receive_type(socket, "notification")
        assert (event["kind"], event["booking_id"], event["unread_count"]) == (
            "booking_confirmed",
            booking["booking_id"],
            1,
        )
        assert set(event) >= {"id", "seq", "station_id", "title", "body", "created_at", "read_at"}
        assert "channel" not in event and "_origin" not in event
        assert await deliver(app) == 0, "delivered once"
        # Whatever else is published for this driver (a charging session, say) is forwarded as is.
        await publish_to_driver(state(app).bus, driver.id, {"type": "session", "energy_kwh": 1.5})
        assert (await receive_type(socket, "session"))["energy_kwh"] == 1.5
    stored = await Notification.get(id=event["id"])
    assert stored.live_sent_at is not None


async def test_another_drivers_socket_never_hears_of_it(
    app: Quart, driver_client: ApiClient, other_client: ApiClient, station: Station, make_user: Any
) -> None:
    someone = await make_user()
    stranger = await signed_in(other_client, someone)
    async with stranger.raw.websocket("/ws/me") as socket:
        await receive_type(socket, "snapshot")
        await booked_and_paid(driver_client, station)
        assert await deliver(app) == 2
        # The first thing the stranger hears is what was published for them after the delivery.
        await publish_to_driver(state(app).bus, someone.id, {"type": "session", "marker": True})
        assert (await receive_type(socket, "session"))["marker"] is True


async def test_ws_me_refuses_the_signed_out_and_other_sites(app: Quart, driver_client: ApiClient) -> None:
    from quart.testing.connections import WebsocketResponseError

    with pytest.raises(WebsocketResponseError) as signed_out:
        async with app.test_client().websocket("/ws/me") as socket:
            await socket.receive()
    assert signed_out.value.response.status_code == 401
    with pytest.raises(WebsocketResponseError) as cross_site:
        async with driver_client.raw.websocket("/ws/me", headers={"Origin": "https://evil.example"}) as socket:
            await socket.receive()
    assert cross_site.value.response.status_code == 403


# -- timed kinds, at their instants on the injected clock -----------------------------------------------


def local_queue(app: Quart) -> LocalQueue:
    """The embedded default's queue on the test's clock, running the same job functions."""
    services = state(app)
    queue = LocalQueue(services.clock)

    async def remind(kind: str, booking_id: int, at: Any) -> None:
        await reminders.fire(kind, booking_id, at, now=services.clock.now(), jobs=queue)

    async def deliver_now() -> None:
        await delivery.deliver_pending(services.clock.now(), bus=services.bus)

    queue.handle(REMIND, remind)
    queue.handle(DELIVER, deliver_now)
    return queue


async def kinds(client: ApiClient) -> list[str]:
    return [item["kind"] for item in reversed((await notes(client))["items"])]


async def test_reminders_fire_at_their_instants_and_only_while_they_still_hold(
    app: Quart, driver_client: ApiClient, clock: Any, db: Backend
) -> None:
    # Closes at 13:00 in Kolkata, when the 12:00-13:00 slot ends: "closing soon" at 12:45.
    station = await make_station(timezone="Asia/Kolkata", hours=daily("08:00", "13:00"))
    held = await ok(await book(driver_client, station, "2026-12-02T11:00:00", minutes=30))
    booking = await booked_and_paid(driver_client, station)
    queue = local_queue(app)
    # The hold: hold expiring, slot starting, slot ending. The paid one: starting, closing, ending.
    assert await reminders.plan_all(queue, clock.now()) == 6
    await reminders.plan_all(queue, clock.now())  # planned again (a second worker): one job each
    assert len(queue.pending) == 6

    base = await kinds(driver_client)
    clock.set(DEFAULT_NOW + timedelta(minutes=7, seconds=59))  # the hold runs out at 10:40
    await queue.run_due()
    assert await kinds(driver_client) == base
    clock.set(DEFAULT_NOW + timedelta(minutes=8))
    await queue.run_due()
    assert await kinds(driver_client) == [*base, "hold_expiring"]

    await ok(await driver_client.post(f"/api/bookings/{held['booking_id']}/cancel"))
    base = await kinds(driver_client)
    clock.set(DEFAULT_NOW + timedelta(hours=2))  # 12:30: the cancelled hold's reminders say nothing
    await queue.run_due()
    assert await kinds(driver_client) == [*base, "slot_reminder"]  # 11:45, for the paid one only
    clock.set(DEFAULT_NOW + timedelta(hours=2, minutes=15))  # 12:45
    await queue.run_due()
    clock.set(DEFAULT_NOW + timedelta(hours=2, minutes=20))  # 12:50
    await queue.run_due()
    assert await kinds(driver_client) == [*base, "slot_reminder", "station_closing_soon", "slot_ending"]
    latest = (await notes(driver_client))["items"]
    assert latest[1]["title"] == "Hub closes at 13:00"
    assert latest[0]["title"] == "Your slot ends at 13:00"
    history = (await ok(await driver_client.get(f"/api/bookings/{booking['booking_id']}")))["history"]
    assert [line["event"] for line in history].count("reminder_sent") == 3
    assert queue.pending == {}


async def test_a_reminder_job_run_twice_notifies_once(app: Quart, driver_client: ApiClient, station: Station) -> None:
    booking = await booked_and_paid(driver_client, station)
    at = DEFAULT_NOW + timedelta(minutes=75)  # 11:45 in Kolkata, 15 minutes before the slot
    services = state(app)
    services.clock.set(at)  # type: ignore[attr-defined]
    queue = local_queue(app)
    assert await reminders.fire("slot_reminder", booking["booking_id"], at, now=at, jobs=queue)
    assert not await reminders.fire("slot_reminder", booking["booking_id"], at, now=at, jobs=queue)
    assert (await kinds(driver_client)).count("slot_reminder") == 1
    assert await Notification.filter(kind="slot_reminder").count() == 1


# -- delivered by workers: each notification once, however many run ----------------------------------


async def all_sent_live() -> bool:
    return not await Notification.filter(live_sent_at__isnull=True).exists()


async def no_job_due(worker: Worker) -> bool:
    return not await worker.pool.zcount(worker.queue_name, "-inf", datetime.now(UTC).timestamp() * 1000)


async def test_two_workers_deliver_each_notification_once(
    db: Backend, private_redis: str, clock: Any, driver: User
) -> None:
    now = real_now(clock)  # the workers run on the system clock
    station = await make_station(hours=HoursSpec(twentyfourseven=True), chargers=4)
    async with live_stack(db, private_redis, clock) as web:
        client = await signed_in(ApiClient(web), driver)
        with state(web).bus.subscribe(driver_channel(driver.id), maxsize=1000) as heard:
            # Written before any worker runs: both catch up on them as they start, at once.
            for hours in (1, 2):
                slot = (now + timedelta(hours=hours)).isoformat()
                await booked_and_paid(client, station, slot)
            workers = [make_worker(web, burst=False), make_worker(web, burst=False)]
            running = [asyncio.create_task(worker.async_run()) for worker in workers]
            try:
                # Written while both run: each enqueues a delivery job, both take jobs.
                for hours in (3, 4, 5):
                    await booked_and_paid(client, station, (now + timedelta(hours=hours)).isoformat())
                await eventually(all_sent_live, 10, "every delivery")
                await eventually(lambda: heard.queue.qsize() >= 10, 5, "ten events arriving")
                # A delivery job that found its notification sent by the other worker's may still be
                # finishing: closing a worker cancels what it runs. Jobs leave the queue when done.
                await eventually(lambda: no_job_due(workers[0]), 5, "the workers' jobs finishing")
            finally:
                for worker, task in zip(workers, running, strict=True):
                    await worker.close()
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task
            events = [message for message in drain(heard) if message["type"] == "notification"]
    ids = [event["id"] for event in events]
    assert len(ids) == 10 and len(set(ids)) == 10, "each of the 10 notifications exactly once"
    assert sorted(ids) == sorted(await Notification.all().values_list("id", flat=True))
    seqs = [event["seq"] for event in events]
    assert len(set(seqs)) == 10
