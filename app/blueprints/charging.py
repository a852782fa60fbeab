"""Start and stop charging from the booking page (DESIGN §14): the driver's own booking, inside
its slot, on its own connector; the command goes to the charger over the charger link."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import document_response, security_scheme_blueprint, validate_response

from app import charger_duties, charging
from app.auth import authorize
from app.bookings import get_booking
from app.errors import Conflict, NotFound
from app.models import Booking, BookingStatus, ChargingSession
from app.ocpp_link import ChargerOffline, CommandFailed
from app.state import state
from app.wire import Problem, signed_in

blueprint = Blueprint("charging", __name__, url_prefix="/api/bookings")
security_scheme_blueprint(blueprint, signed_in())


class NotInSlot(Conflict):
    code, detail = "not_in_slot", "Charging can be started and stopped only inside the booked slot."


class NotChargeable(Conflict):
    code, detail = "charger_not_linked", "This charger cannot be started remotely."


class ChargerUnreachable(Conflict):
    code, detail = "charger_offline", "The charger is offline: the command could not be delivered."


class ChargerRefused(Conflict):
    code, detail = "charger_refused", "The charger did not accept the command."


class NotCharging(Conflict):
    code, detail = "not_charging", "No charging session is running for this booking."


class ChargingCommand(BaseModel):
    booking_id: int
    status: str = Field(description="The charger's answer: Accepted.")


class SessionOut(BaseModel):
    transaction_id: int
    energy_kwh: float
    power_kw: float
    since: datetime
    elapsed_seconds: int
    stopped_at: datetime | None


class ChargingState(BaseModel):
    booking_id: int
    charging: bool = Field(description="Whether a charging session for this booking runs now.")
    session: SessionOut | None = Field(description="The running session, else the last one, if any.")


async def _own_booking(booking_id: int) -> Booking:
    user = await authorize()
    booking = await get_booking(user, booking_id)
    if booking.user_id != user.id:  # type: ignore[attr-defined]
        raise NotFound("Booking not found.")  # operators see bookings, but charge only their own
    return booking


@blueprint.get("/<int:booking_id>/charging")
@validate_response(ChargingState)
async def charging_state(booking_id: int) -> ChargingState:
    """Your booking's charging session: energy (kWh), power (kW) and time since it started."""
    booking = await _own_booking(booking_id)
    session = await ChargingSession.filter(booking_id=booking.id).order_by("-id").first()
    figures = charging.session_figures(session, state().clock.now()) if session is not None else None
    return ChargingState(
        booking_id=booking.id,
        charging=session is not None and session.stopped_at is None,
        session=SessionOut.model_validate(figures) if figures else None,
    )


async def _own_booking_in_slot(booking_id: int) -> Booking:
    booking = await _own_booking(booking_id)
    now = state().clock.now()
    if booking.status != BookingStatus.PAID or not booking.slot_start <= now < booking.slot_end:
        raise NotInSlot()
    return booking


def _answer(booking: Booking, answer: dict | None) -> ChargingCommand:
    if answer is None:
        raise NotChargeable()
    if answer.get("status") != "Accepted":
        raise ChargerRefused(f"The charger answered {answer.get('status')}.")
    return ChargingCommand(booking_id=booking.id, status="Accepted")


@blueprint.post("/<int:booking_id>/charging/start")
@validate_response(ChargingCommand)
@document_response(Problem, 409)
async def start_charging(booking_id: int) -> ChargingCommand:
    """Ask the booked charger to start charging for you (RemoteStartTransaction). 409
    `not_in_slot` outside the paid slot, `charger_offline`, `charger_refused`, `charger_not_linked`."""
    booking = await _own_booking_in_slot(booking_id)
    try:
        answer = await charger_duties.remote_start(booking, state().clock.now(), state().chargers)
    except ChargerOffline:
        await charger_duties.note(
            booking.id, "command_failed", "RemoteStartTransaction: the charger is offline", state().clock.now()
        )
        raise ChargerUnreachable() from None
    except CommandFailed as failure:
        raise ChargerRefused(str(failure)) from None
    return _answer(booking, answer)


@blueprint.post("/<int:booking_id>/charging/stop")
@validate_response(ChargingCommand)
@document_response(Problem, 409)
async def stop_charging(booking_id: int) -> ChargingCommand:
    """Stop your running charging session (RemoteStopTransaction). 409 `not_charging` when none runs."""
    booking = await _own_booking_in_slot(booking_id)
    session = await ChargingSession.filter(booking_id=booking.id, stopped_at__isnull=True).first()
    if session is None:
        raise NotCharging()
    try:
        answer = await charger_duties.remote_stop(session, state().chargers)
    except ChargerOffline:
        await charger_duties.note(
            booking.id, "command_failed", "RemoteStopTransaction: the charger is offline", state().clock.now()
        )
        raise ChargerUnreachable() from None
    except CommandFailed as failure:
        raise ChargerRefused(str(failure)) from None
    return _answer(booking, answer)
