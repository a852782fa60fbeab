"""Bookings API (DESIGN §5): book a slot, list, show, quote and cancel bookings."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as LocalDate
from typing import Annotated, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, RootModel, StrictInt, field_validator
from quart import Blueprint, Response
from quart_schema import (
    document_response,
    security_scheme_blueprint,
    validate_querystring,
    validate_request,
    validate_response,
)

from app import bookings, history
from app.auth import authorize
from app.blueprints.pages import public_url_for
from app.clock import supported_year
from app.delivery import calendar_entry, changes_of
from app.errors import Forbidden, NotFound
from app.ics import PUBLISH, booking_ics
from app.models import Booking, BookingStatus, CancelReason, Charger, Station, User
from app.money import format_money
from app.state import state
from app.wire import Id, Offset, PlainStr, Problem, StrictId, parse_date_time, signed_in

blueprint = Blueprint("bookings", __name__, url_prefix="/api/bookings")
security_scheme_blueprint(blueprint, signed_in())


def check_user_id(sent: int | None, user: User) -> None:
    """The user is always the session's. A ``user_id`` in the body is accepted only when it names
    that same user, so a client that believes it acts for someone else learns it at once."""
    if sent is not None and sent != user.id:
        raise Forbidden("user_id does not match the signed-in user.")


class BookingIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"station_id": 1, "slot_time": "2026-12-02T18:00:00", "duration_minutes": 60},
                {
                    "station_id": 1,
                    "slot_time": "2026-12-02T12:30:00Z",
                    "duration_minutes": 45,
                    "charger_type": "CCS2",
                    "vehicle_number": "MH01AB1234",
                },
            ]
        }
    )

    station_id: StrictId
    slot_time: datetime = Field(
        description="ISO 8601 start. Without a UTC offset it is wall-clock time at the station "
        "(its own time zone); with an offset it is that instant."
    )
    duration_minutes: StrictInt = Field(
        description="15 to 240, in steps of 15.",
        json_schema_extra={"minimum": 15, "maximum": 240, "multipleOf": 15},
    )
    charger_id: StrictId | None = Field(None, description="Book this charger; 409 if it is taken for the slot.")
    charger_type: PlainStr | None = Field(
        None, max_length=32, description="Only chargers with this connector (e.g. CCS2); lowest-numbered free one."
    )
    vehicle_number: PlainStr | None = Field(None, max_length=32)
    user_id: StrictInt | None = Field(
        None, description="Optional and never needed: if sent it must be the signed-in user's id, else 403."
    )

    @field_validator("slot_time", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> datetime:
        return parse_date_time(value)

    @field_validator("vehicle_number", "charger_type")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return (value.strip() or None) if value is not None else None


class BookingOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "booking_id": 42,
                    "station_id": 1,
                    "station_name": "Mumbai Central Charging Hub",
                    "charger_id": 3,
                    "charger_number": 1,
                    "charger_type": "CCS2",
                    "slot_time": "2026-12-02T18:00:00+05:30",
                    "slot_end": "2026-12-02T19:00:00+05:30",
                    "duration_minutes": 60,
                    "status": "CONFIRMED",
                    "amount_due": "250.00",
                    "currency": "INR",
                    "hold_expires_at": "2026-12-02T05:10:00+00:00",
                    "vehicle_number": None,
                    "user_id": 7,
                    "created_at": "2026-12-02T05:00:00+00:00",
                }
            ]
        }
    )

    booking_id: int
    station_id: int
    station_name: str
    charger_id: int
    charger_number: int
    charger_type: str
    slot_time: str = Field(description="Slot start with the station's UTC offset.")
    slot_end: str
    duration_minutes: int
    status: BookingStatus = Field(description="A CONFIRMED booking whose hold ran out reads EXPIRED.")
    amount_due: str = Field(description="Decimal string in major units.")
    currency: str
    hold_expires_at: str | None = Field(description="Pay before this instant (UTC) or the hold lapses.")
    vehicle_number: str | None
    user_id: int
    created_at: str
    cancel_reason: CancelReason | None = Field(
        None, description="Why the system cancelled it (the station closed, the charger went out of service, ...)."
    )
    cancellable: bool = Field(
        False,
        description="Whether cancelling is allowed now: an unpaid hold, or a paid booking before its slot starts "
        "(refunded in full).",
    )


class Refund(BaseModel):
    amount: str = Field(description="Decimal string in major units: the full amount paid.")
    currency: str
    status: str = Field(description="`REFUND_PENDING` until the payment provider confirms it, then `REFUNDED`.")


class HistoryLine(BaseModel):
    at: str
    event: str = Field(
        description="created, paid, moved, cancelled, expired, completed, reminder_sent, reservation_sent, ..."
    )
    detail: str


class BookingDetail(BookingOut):
    refund: Refund | None = Field(description="The refund of a cancelled paid booking; null when none is owed.")
    history: list[HistoryLine] = Field(description="What happened to the booking, oldest first.")


class BookingCalendar(RootModel[str]):
    """An iCalendar file (RFC 5545) with the booking as one event."""

    media_type: ClassVar[str] = "text/calendar"


class BookingQuery(BaseModel):
    station_id: Id | None = None
    status: BookingStatus | None = None
    date: Annotated[LocalDate, AfterValidator(supported_year)] | None = Field(
        None, description="Slot start date (YYYY-MM-DD) at the booking's station."
    )
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0


class Breakdown(BaseModel):
    price_per_hour: str
    duration_minutes: int


class QuoteOut(BaseModel):
    booking_id: int
    amount_due: str = Field(description="Send exactly this as `amount` to /api/payments/process.")
    currency: str
    payable: bool
    reason: str | None = Field(None, description="Why it cannot be paid now: what payment would answer.")
    hold_expires_at: str | None
    breakdown: Breakdown


def _instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def slot_times(booking: Booking) -> tuple[str, str]:
    """The slot's start and end with the station's own UTC offset, as drivers read them."""
    zone = ZoneInfo(booking.station.timezone)
    return booking.slot_start.astimezone(zone).isoformat(), booking.slot_end.astimezone(zone).isoformat()


def booking_out(booking: Booking, now: datetime) -> BookingOut:
    """Slot times carry the station's own UTC offset; other instants are UTC."""
    station: Station = booking.station
    charger: Charger = booking.charger
    slot_time, slot_end = slot_times(booking)
    return BookingOut(
        booking_id=booking.id,
        station_id=station.id,
        station_name=station.name,
        charger_id=charger.id,
        charger_number=charger.charger_number,
        charger_type=charger.charger_type,
        slot_time=slot_time,
        slot_end=slot_end,
        duration_minutes=int((booking.slot_end - booking.slot_start).total_seconds() // 60),
        status=bookings.effective_status(booking, now),
        amount_due=format_money(booking.amount_due),
        currency=booking.currency,
        hold_expires_at=_instant(booking.hold_expires_at),
        vehicle_number=booking.vehicle_number,
        user_id=booking.user_id,  # type: ignore[attr-defined]
        created_at=booking.created_at.astimezone(UTC).isoformat(),
        cancel_reason=booking.cancel_reason,
        cancellable=bookings.cancellable(bookings.effective_status(booking, now), booking.slot_start, now),
    )


def _out(booking: Booking) -> BookingOut:
    return booking_out(booking, state().clock.now())


@blueprint.post("")
@validate_request(BookingIn)
@validate_response(BookingOut)
@document_response(Problem, 403)
@document_response(Problem, 404)
@document_response(Problem, 409)
@document_response(Problem, 422)
async def create_booking(data: BookingIn) -> BookingOut:
    """Book a charger for a slot.

    Checked in this order: request format (422) → signed in (401) → station exists (404) and
    ACTIVE (403 `station_inactive`) → station open now by the server clock (403 `station_closed`)
    → user active (403 `user_inactive`) → slot valid: not in the past, within the booking horizon,
    15-240 minutes in steps of 15, wholly inside opening hours (422) → at most 3 unpaid holds
    (409 `hold_limit_reached`) → a charger free for the whole slot (409 `no_charger_available`).
    The booking is held unpaid until `hold_expires_at`; pay it with `POST /api/payments/process`.
    """
    user = await authorize()
    check_user_id(data.user_id, user)
    services = state()
    booking = await bookings.create_booking(
        user,
        data.station_id,
        data.slot_time,
        data.duration_minutes,
        charger_id=data.charger_id,
        charger_type=data.charger_type,
        vehicle_number=data.vehicle_number,
        now=services.clock.now(),
        policy=services.policy,
        bus=services.bus,
        jobs=services.jobs,
    )
    return _out(booking)


@blueprint.get("")
@validate_querystring(BookingQuery)
@validate_response(list[BookingOut])
async def list_bookings(query_args: BookingQuery) -> list[BookingOut]:
    """Your bookings, newest slot first; operators see everyone's."""
    user = await authorize()
    found = await bookings.list_bookings(
        user,
        station_id=query_args.station_id,
        status=query_args.status,
        on_date=query_args.date,
        limit=query_args.limit,
        offset=query_args.offset,
        now=state().clock.now(),
    )
    return [_out(booking) for booking in found]


@blueprint.get("/<int:booking_id>")
@validate_response(BookingDetail)
async def get_booking(booking_id: int) -> BookingDetail:
    """One booking, with its history and, if it was cancelled after being paid, its refund.
    Somebody else's booking is a 404."""
    user = await authorize()
    booking = await bookings.get_booking(user, booking_id)
    refund = await bookings.refund_of(booking_id)
    lines = await history.history_of(booking_id)
    return BookingDetail(
        **_out(booking).model_dump(),
        refund=Refund(amount=format_money(refund.amount), currency=refund.currency, status=refund.status)
        if refund is not None
        else None,
        history=[
            HistoryLine(at=_instant(line["at"]) or "", event=line["event"], detail=line["detail"]) for line in lines
        ],
    )


@blueprint.get("/<int:booking_id>/calendar.ics")
@document_response(BookingCalendar, 200)
@document_response(Problem, 404)
async def calendar(booking_id: int) -> Response:
    """The booking as an iCalendar file (RFC 5545) for "Add to calendar": times in the station's
    zone, a UID that stays the booking's, STATUS:CANCELLED once it is cancelled."""
    user = await authorize()
    booking = await bookings.get_booking(user, booking_id)
    if booking.user_id != user.id:  # type: ignore[attr-defined]
        raise NotFound("Booking not found.")  # operators see bookings, but a calendar entry is the driver's
    link = public_url_for("pages.bookings")
    changes = (await changes_of([booking_id])).get(booking_id, 0)
    body = booking_ics(
        calendar_entry(booking, changes, link),
        method=PUBLISH,
        stamp=state().clock.now(),
        host=urlsplit(link).hostname or "chargeslot",
    )
    response = Response(body, content_type="text/calendar; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="booking-{booking_id}.ics"'
    return response


@blueprint.get("/<int:booking_id>/quote")
@validate_response(QuoteOut)
async def quote(booking_id: int) -> QuoteOut:
    """What to pay for a booking: send `amount_due` as the payment's `amount`."""
    user = await authorize()
    found = await bookings.quote(user, booking_id, state().clock.now())
    return QuoteOut(
        booking_id=found.booking.id,
        amount_due=format_money(found.booking.amount_due),
        currency=found.booking.currency,
        payable=found.payable,
        reason=found.reason,
        hold_expires_at=_instant(found.booking.hold_expires_at),
        breakdown=Breakdown(
            price_per_hour=format_money(found.booking.station.price_per_hour),
            duration_minutes=found.duration_minutes,
        ),
    )


@blueprint.post("/<int:booking_id>/cancel")
@validate_response(BookingOut)
@document_response(Problem, 409)
async def cancel(booking_id: int) -> BookingOut:
    """Cancel a booking: a held one at any time, a paid one before its slot starts (the payment is
    refunded and reads REFUNDED). Anything else is 409 `conflict`. Operators may cancel any booking."""
    user = await authorize()
    services = state()
    cancelled = await bookings.cancel_booking(
        user, booking_id, now=services.clock.now(), provider=services.provider, bus=services.bus, jobs=services.jobs
    )
    return _out(cancelled)
