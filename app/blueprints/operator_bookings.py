"""Every booking, for operators (DESIGN §15): filtered and paged as JSON, or streamed as CSV.

Both read the same filter (``app.booking_search``). The CSV is written a row at a time as the rows
are read, so exporting a year of bookings holds one chunk in memory, not the year. Its slot times
are in each station's own zone with the offset, as on the booking pages.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, RootModel, model_validator
from quart import Blueprint, Response
from quart_schema import document_response, security_scheme_blueprint, validate_querystring, validate_response

from app import booking_search
from app.auth import authorize
from app.blueprints.bookings import BookingOut, booking_out, slot_times
from app.bookings import effective_status
from app.models import Booking, BookingStatus, Role
from app.money import format_money
from app.state import state
from app.wire import Id, IsoDate, Offset, PlainStr, signed_in

blueprint = Blueprint("operator_bookings", __name__, url_prefix="/api/operator")

OPERATORS = (Role.OPERATOR, Role.ADMIN)
security_scheme_blueprint(blueprint, signed_in(*OPERATORS))
#: Rows written to the response at once.
CSV_BATCH = 500
CSV_COLUMNS = (
    "booking_id",
    "station_id",
    "station_name",
    "charger_number",
    "charger_type",
    "driver_email",
    "slot_start",
    "slot_end",
    "status",
    "amount_due",
    "currency",
    "vehicle_number",
    "created_at",
)


class BookingsFilterQuery(BaseModel):
    station_id: Id | None = None
    status: BookingStatus | None = None
    from_: IsoDate | None = Field(None, alias="from", description="First slot date (YYYY-MM-DD) at the station.")
    to: IsoDate | None = Field(None, description="Last slot date (YYYY-MM-DD) at the station, inclusive.")
    email: PlainStr | None = Field(None, max_length=254, description="Part of the driver's email.")
    sort: Literal["slot", "-slot"] = Field("-slot", description="By slot start: `-slot` newest first.")

    @model_validator(mode="after")
    def _ordered(self) -> BookingsFilterQuery:
        if self.from_ is not None and self.to is not None and self.to < self.from_:
            raise ValueError("`to` is before `from`")
        return self

    def to_filter(self) -> booking_search.BookingFilter:
        return booking_search.BookingFilter(
            station_id=self.station_id,
            status=self.status,
            first_day=self.from_,
            last_day=self.to,
            email=self.email,
            newest_first=self.sort == "-slot",
        )


class BookingsPageQuery(BookingsFilterQuery):
    limit: int = Field(50, ge=1, le=200)
    offset: Offset = 0


class BookingsCsv(RootModel[str]):
    """UTF-8 CSV: a header row naming the columns, then one row per booking."""

    media_type: ClassVar[str] = "text/csv"


class OperatorBookingOut(BookingOut):
    driver_email: str


class OperatorBookingPage(BaseModel):
    items: list[OperatorBookingOut]
    total: int
    limit: int
    offset: int


@blueprint.get("/bookings")
@validate_querystring(BookingsPageQuery)
@validate_response(OperatorBookingPage)
async def list_bookings(query_args: BookingsPageQuery) -> OperatorBookingPage:
    """Every booking, filtered by station, status, slot dates (at the station) and driver email."""
    await authorize(*OPERATORS)
    now = state().clock.now()
    total, found = await booking_search.find_bookings(
        query_args.to_filter(), now, limit=query_args.limit, offset=query_args.offset
    )
    items = [
        OperatorBookingOut(**booking_out(booking, now).model_dump(), driver_email=booking.user.email)
        for booking in found
    ]
    return OperatorBookingPage(items=items, total=total, limit=query_args.limit, offset=query_args.offset)


@blueprint.get("/bookings.csv")
@validate_querystring(BookingsFilterQuery)
@document_response(BookingsCsv, 200)
async def export_bookings(query_args: BookingsFilterQuery) -> Response:
    """The same bookings as CSV (UTF-8, a header row), streamed."""
    await authorize(*OPERATORS)
    now = state().clock.now()
    rows = booking_search.export_bookings(query_args.to_filter(), now)
    response = Response(_csv_lines(rows, now), content_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="bookings.csv"'
    return response


async def _csv_lines(bookings: AsyncIterator[Booking], now: datetime) -> AsyncIterator[bytes]:
    """The header, then rows in batches: one write per row would cost a network frame each."""
    yield _encode([CSV_COLUMNS])
    batch: list[tuple[Any, ...]] = []
    async for booking in bookings:
        batch.append(_csv_row(booking, now))
        if len(batch) == CSV_BATCH:
            yield _encode(batch)
            batch = []
    if batch:
        yield _encode(batch)


def _csv_row(booking: Booking, now: datetime) -> tuple[Any, ...]:
    slot_start, slot_end = slot_times(booking)
    return (
        booking.id,
        booking.station.id,
        booking.station.name,
        booking.charger.charger_number,
        booking.charger.charger_type,
        booking.user.email,
        slot_start,
        slot_end,
        effective_status(booking, now).value,
        format_money(booking.amount_due),
        booking.currency,
        booking.vehicle_number or "",
        booking.created_at.astimezone(UTC).isoformat(),
    )


def _encode(rows: Iterable[Iterable[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()
