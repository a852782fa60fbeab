"""``/ocpp/{identity}``: where charge points connect (OCPP 1.6J over WebSocket, DESIGN §14).

The handshake is checked before it is accepted: it must offer the ``ocpp1.6`` subprotocol (which
we echo) and carry HTTP Basic credentials, user = the identity, password = its auth key (OCPP
security profiles 1 and 2; TLS is the reverse proxy's). A refused handshake gets an HTTP problem
response instead of the upgrade: 400 without the subprotocol, 401 for an unknown identity or a
wrong key. Then the socket is handed to ``app.ocpp_link``, which speaks OCPP over it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib

from quart import Blueprint, websocket

from app import charge_points
from app.errors import DomainError, Unauthenticated
from app.state import state

blueprint = Blueprint("ocpp", __name__)

SUBPROTOCOL = "ocpp1.6"


class SubprotocolRequired(DomainError):
    status, code = 400, "subprotocol_required"
    detail = "Offer the ocpp1.6 WebSocket subprotocol."


class ChargePointUnauthenticated(Unauthenticated):
    detail = "Unknown charge point or wrong key."
    #: RFC 7235: a 401 names the scheme the client should answer with.
    headers = {"WWW-Authenticate": 'Basic realm="Chargeslot charge points", charset="UTF-8"'}


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


class _QuartSocket:
    """What ``ocpp``'s ChargePoint needs of a connection, over Quart's websocket object (captured,
    so commands sent from other tasks reach it too)."""

    def __init__(self, socket: object) -> None:
        self._socket = socket

    async def recv(self) -> str:
        message = await self._socket.receive()  # type: ignore[attr-defined]
        return message.decode() if isinstance(message, bytes) else str(message)

    async def send(self, message: str) -> None:
        await self._socket.send(message)  # type: ignore[attr-defined]


@blueprint.websocket("/ocpp/<identity>")
async def charge_point_socket(identity: str) -> None:
    if SUBPROTOCOL not in websocket.requested_subprotocols:
        raise SubprotocolRequired()
    credentials = _basic_credentials(websocket.headers.get("Authorization"))
    row = None
    if credentials is not None and credentials[0] == identity:
        row = await charge_points.authenticate(identity, credentials[1])
    if row is None:
        raise ChargePointUnauthenticated()
    await websocket.accept(subprotocol=SUBPROTOCOL)
    link = state().chargers
    session = await link.attach(row, _QuartSocket(websocket._get_current_object()))  # type: ignore[attr-defined]
    try:
        reading = asyncio.ensure_future(session.start())
        replaced = asyncio.ensure_future(session.replaced.wait())
        try:
            await asyncio.wait({reading, replaced}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reading, replaced):
                task.cancel()
            if reading.done() and not reading.cancelled() and reading.exception() is not None:
                raise reading.exception()  # type: ignore[misc]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(link.detach(session))
