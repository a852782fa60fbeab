"""WebSockets for live station status (DESIGN §7); the fan-out itself lives in app/live.py.

Both channels are public. The handshake is refused (an HTTP problem response instead of the
upgrade) for a cross-site ``Origin`` that is not in ``ALLOWED_ORIGINS`` and for an unknown station.
"""

from __future__ import annotations

from quart import Blueprint, websocket

from app.auth import check_websocket_origin
from app.errors import NotFound, ValidationFailed
from app.state import state

blueprint = Blueprint("live", __name__)

MAX_STATION_IDS = 500


def _station_ids(raw: str | None) -> frozenset[int] | None:
    """``?ids=1,2,3`` narrows the all-stations channel to the stations a page shows."""
    if raw is None or raw == "":
        return None
    try:
        ids = frozenset(int(part) for part in raw.split(","))
    except ValueError:
        raise ValidationFailed([{"loc": ["query", "ids"], "msg": "must be comma-separated station ids"}]) from None
    if len(ids) > MAX_STATION_IDS:
        raise ValidationFailed([{"loc": ["query", "ids"], "msg": f"at most {MAX_STATION_IDS} station ids"}])
    return ids


@blueprint.websocket("/ws/stations/<int:station_id>")
async def station_updates(station_id: int) -> None:
    check_websocket_origin()
    live = state().hub
    # Subscribed before the snapshot is read, so no event can fall between the two.
    with live.subscribed([station_id]) as client:
        first = await live.station_snapshot(station_id)
        if first is None:
            raise NotFound("No such station.")
        await live.serve(websocket, client, first, lambda: live.station_snapshot(station_id))


@blueprint.websocket("/ws/stations")
async def all_station_updates() -> None:
    check_websocket_origin()
    station_ids = _station_ids(websocket.args.get("ids"))
    live = state().hub
    with live.subscribed(station_ids) as client:
        first = await live.stations_snapshot(station_ids)
        await live.serve(websocket, client, first, lambda: live.stations_snapshot(station_ids))
