"""The signed-in driver's own channel (DESIGN §13): notifications, live and as a list.

``/ws/me`` is opened with the session cookie like any page, and only from the site's own origin
(or ``ALLOWED_ORIGINS``). It sends ``{"type": "snapshot", "unread_count"}`` first, then every
message on the driver's bus channel (``notification`` events, and whatever else is published
there, like charging sessions), so a page shows the bell right away and every other tab of the
same driver hears of a notification at once; nobody else's. The socket subscribes before the
count is read, so nothing published in between is missed.
"""

from __future__ import annotations

import asyncio
import json

from pydantic import BaseModel, Field
from quart import Blueprint, websocket
from quart_schema import document_response, security_scheme_blueprint, validate_querystring, validate_response

from app import notifications
from app.auth import authorize, check_websocket_origin
from app.errors import NotFound
from app.events import driver_channel
from app.live import CLOSE_TOO_SLOW, PING, discard_incoming, encode
from app.state import state
from app.wire import Offset, Problem, signed_in

blueprint = Blueprint("me", __name__)
security_scheme_blueprint(blueprint, signed_in())

#: Messages a socket may have waiting before it counts as too slow and is disconnected.
QUEUE_SIZE = 256
#: What the bus adds to a message for its own use; never sent to a browser.
INTERNAL = frozenset({"channel", "_origin"})


class NotificationOut(BaseModel):
    id: int
    kind: str = Field(
        description="booking_confirmed, payment_receipt, booking_moved, booking_cancelled, hold_expiring, "
        "slot_reminder, slot_ending or station_closing_soon"
    )
    booking_id: int | None
    station_id: int | None
    title: str
    body: str
    created_at: str
    read_at: str | None


class NotificationPage(BaseModel):
    items: list[NotificationOut] = Field(description="Newest first.")
    total: int
    unread_count: int


class PageQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    offset: Offset = 0


class ReadOut(BaseModel):
    unread_count: int


@blueprint.get("/api/me/notifications")
@validate_querystring(PageQuery)
@validate_response(NotificationPage)
async def list_notifications(query_args: PageQuery) -> NotificationPage:
    """Your notifications, newest first, with how many are unread."""
    user = await authorize()
    items, total, unread = await notifications.page(user.id, query_args.limit, query_args.offset)
    return NotificationPage(items=[NotificationOut(**item) for item in items], total=total, unread_count=unread)


@blueprint.post("/api/me/notifications/<int:notification_id>/read")
@validate_response(ReadOut)
@document_response(Problem, 404)
async def mark_read(notification_id: int) -> ReadOut:
    """Mark one of your notifications read (again is fine); somebody else's is a 404."""
    user = await authorize()
    if not await notifications.mark_read(user.id, notification_id, state().clock.now()):
        raise NotFound("Notification not found.")
    return ReadOut(unread_count=await notifications.unread_count(user.id))


@blueprint.post("/api/me/notifications/read-all")
@validate_response(ReadOut)
async def mark_all_read() -> ReadOut:
    """Mark all your notifications read."""
    user = await authorize()
    await notifications.mark_all_read(user.id, state().clock.now())
    return ReadOut(unread_count=0)


@blueprint.websocket("/ws/me")
async def my_updates() -> None:
    check_websocket_origin()
    user = await authorize()
    services = state()
    heartbeat = services.hub.heartbeat
    with services.bus.subscribe(driver_channel(user.id), maxsize=QUEUE_SIZE) as subscription:
        unread = await notifications.unread_count(user.id)
        incoming = asyncio.ensure_future(discard_incoming(websocket))
        try:
            await websocket.accept()
            await websocket.send(encode({"type": "snapshot", "unread_count": unread}))
            while True:
                try:
                    async with asyncio.timeout(heartbeat):
                        message = await subscription.get()
                except TimeoutError:
                    await websocket.send(PING)
                    continue
                kind = message.get("type")
                if kind == "overflow":
                    await websocket.close(CLOSE_TOO_SLOW, "too slow; reconnect")
                    return
                if kind == "resync":  # the bus may have lost messages: the count is the truth
                    unread = await notifications.unread_count(user.id)
                    await websocket.send(encode({"type": "snapshot", "unread_count": unread}))
                    continue
                await websocket.send(json.dumps({k: v for k, v in message.items() if k not in INTERNAL}))
        finally:
            incoming.cancel()
